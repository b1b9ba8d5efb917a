"""Local paths and ``file://`` URLs as handles: the resolver that reads them in place, and
its words for a path with nothing there (`hub.resolvers` chains it last)."""

import os

from hubensemble.catalogue_here import as_written, missing_path_words
from hubensemble.catalogue_urls import variables_note
from hubensemble.errors import ModuleLoadError
from hubensemble.handlehere import caller_form, unnamed_handle, was_recorded
from hubensemble.handles import (KERAS_FILE_SUFFIXES, HandleFormError, file_not_module,
                                 file_url_path)


class LocalResolver:
    """Local paths and ``file://`` URLs, read in place: SavedModel folders, Keras model files
    (.keras, .h5) and keras-hub preset folders.

    Raises ModuleLoadError(stage="local path") for a missing path (what the path written
    means when it is not what was meant: `catalogue_urls.variables_note`, a Windows form) and
    ModuleLoadError(stage="savedmodel") for another kind of file (an archive must be unpacked
    first).
    """

    def is_supported(self, handle):
        """Any handle: the last resolver of a chain."""
        return True

    def __call__(self, handle):
        try:
            path = file_url_path(handle) if handle.startswith("file://") else handle
        except HandleFormError as e:  # file://HOST/… off Windows: a Python caller's (a
            # catalogue refuses it when read), told in a call's words, as `unnamed`
            raise ModuleLoadError(f"{e.problem}; {e.python_hint}", handle=handle,
                                  stage="local path") from None
        missing = missing_path_words(path)  # also a Windows form (handles.stored_handle)
        if missing:  # words rank and fit say before TensorFlow too (catalogue_here)
            # Stage "local path", said once: it was a FileNotFoundError reclassified as
            # "[savedmodel] …: FileNotFoundError: P does not exist (note) (check the path)".
            # A relative name given in Python (load_module("abc")): the handle forms too, as
            # a call passes one (a catalogue's relative path is absolute: stored_handle).
            # A catalogue's relative path is named as it wrote it (`as_written`, rank's words).
            # A path a call passes now (load_module, HubLayer: `handlehere.typed_by`) is
            # told its mistyped sibling and no run; a run's record (`was_recorded`) to be put
            # back, never "did you mean" a sibling, which is another network (tune after
            # `mv mods/m0` was offered mods/m1); a catalogue's, rank's words.
            python = caller_form() == "python"
            unnamed = None if variables_note(path) else unnamed_handle(handle, os.getcwd())
            said = (f"{unnamed.problem}; {unnamed.python_hint}" if unnamed
                    else missing if python
                    else as_written(path, missing, recorded=was_recorded(handle)))
            raise ModuleLoadError(said, handle=handle, stage="local path")
        if not os.path.isdir(path) and not path.lower().endswith(KERAS_FILE_SUFFIXES):
            raise ModuleLoadError(file_not_module(path), handle=handle, stage="savedmodel")
        return path

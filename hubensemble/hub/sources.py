"""Modules built with Keras: ``keras.applications`` architectures, .keras/.h5 files, presets.

Each becomes one Keras 3 model, float32 images ``[B, H, W, 3]`` -> embeddings ``[B, D]``, that
`ModuleRuntime` holds and calls like a loaded SavedModel (the same resize, value range and
`training` argument); HubLayer tracks the model, so fine-tuning trains its own variables.

* ``keras:NAME``: ``keras.applications.NAME(include_top=False, pooling="avg")`` after the
  application's own ``preprocess_input``; it takes images in [0, 1] (scaled to the [0, 255]
  pixels ``preprocess_input`` expects). ImageNet weights are the file Keras' ``get_file``
  asks for, in Keras' cache (``$KERAS_HOME`` or ``~/.keras``, sub-folder ``models``),
  downloaded by hubensemble with its timeouts; or a local weights file.
* a .keras / .h5 model file: ``keras.saving.load_model(safe_mode=not trust)``, cut at the
  ``layer`` whose output is the embedding (default: the input of the last Dense layer, or
  of a convolutional classifier head), a feature map averaged over space (`hub.kerasfiles`,
  its functions importable from here too).
* a keras-hub preset (a folder, ``kaggle://…`` or ``hf://…``): the preset's Backbone, after
  its ImageConverter's scale and offset, globally average-pooled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import threading
import time
import warnings

import keras

from hubensemble import kerasenv
# $HUBENSEMBLE_KERAS_WEIGHTS_MIRROR (WEIGHTS_MIRROR_ENV, importable from here too): a base URL
# serving Keras' weights files by file name, for machines that cannot reach Keras' storage;
# read and checked by hubensemble.environment.
from hubensemble.environment import WEIGHTS_MIRROR_ENV, weights_mirror
from hubensemble.errors import ModuleLoadError, first_line, held_stops
from hubensemble.handles import HandleFormError, keras_application, keras_file_problem
from hubensemble.hub import loaders, remote
from hubensemble.hub.answers import failure_text
from hubensemble.hub.hosts import status_hint
# .keras/.h5 model files: their own module; hub.runtime and hub.outputs reach them through here
from hubensemble.saidwords import Words, said
from hubensemble.hub.kerasfiles import guess_value_range, load_model_file  # noqa: F401
from hubensemble.terminal import download_bar, showing
from hubensemble.threads import warnings_block

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# keras.applications


@keras.saving.register_keras_serializable(package="hubensemble")
class ApplicationPreprocess(keras.layers.Layer):
    """float32 images in [0, 1] -> ``keras.applications.<module>.preprocess_input(255 x)``:
    the application's own preprocessing (see `handles.KerasApplication.preprocessing`)."""

    def __init__(self, module, **kwargs):
        super().__init__(**kwargs)
        self.module = module
        self._preprocess = getattr(keras.applications, module).preprocess_input

    def call(self, images):
        """[B, H, W, 3] in [0, 1] -> the same shape, as the application's inputs."""
        return self._preprocess(images * 255.0)

    def get_config(self):
        """Keras config: the layer's own plus ``module``."""
        return {**super().get_config(), "module": self.module}


@dataclasses.dataclass(frozen=True)
class WeightsRequest:
    """What Keras' ``get_file`` is asked for when an application loads its ImageNet weights:
    the file name, its origin URL, its hash (md5 or sha256 hex, or None) and where Keras
    keeps it (``path``: CACHE_DIR/CACHE_SUBDIR/FNAME). ``hash_algorithm`` is as asked
    ("auto", "md5" or "sha256"); `algorithm` is the one Keras checks the file with."""

    fname: str
    origin: str
    file_hash: str | None
    hash_algorithm: str
    cache_subdir: str
    cache_dir: str | None

    @property
    def algorithm(self) -> str:
        """"sha256" or "md5": Keras' get_file's rule (keras/src/utils/file_utils.py's
        resolve_hasher, 3.15): "sha256" when asked, or "auto" with a 64-digit hash; else
        "md5"."""
        if self.hash_algorithm == "sha256" or (self.hash_algorithm == "auto" and self.file_hash
                                               and len(self.file_hash) == 64):
            return "sha256"
        return "md5"

    @property
    def path(self) -> str:
        """Where Keras' get_file keeps (and looks for) the file: ``$KERAS_HOME`` (default
        ``~/.keras``; /tmp/.keras when that is not writable; `kerasenv.imported_keras_home`)
        / cache_subdir / fname."""
        import tempfile

        # Keras' get_file's own rule (keras/src/utils/file_utils.py, 3.15).
        base = os.path.expanduser(self.cache_dir or kerasenv.imported_keras_home())
        if not os.access(base, os.W_OK):
            base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(),
                                ".keras")
        return os.path.join(base, self.cache_subdir, self.fname)


class _Wanted(Exception):
    def __init__(self, request):
        super().__init__(request.fname)
        self.request = request


_GET_FILE_LOCK = threading.Lock()
#: The refusal of a Keras that moved the internal `imagenet_weights_request` reads.
WEIGHTS_PROBE_GONE = (
    "Keras {version} has no keras.src.utils.file_utils.get_file, the Keras internal through "
    "which hubensemble learns which ImageNet weights file a keras.applications architecture "
    "loads (setup.cfg notes it): install a Keras in the range hubensemble's setup.cfg "
    "allows, or set `weights:` on the catalogue entry to a local weights file")


@contextlib.contextmanager
def _intercept_get_file(handler):
    """Routes keras.applications' ``file_utils.get_file`` calls to ``handler(WeightsRequest)``
    while the block runs (applications call it through that module; tests/test_sources.py
    checks that they still do). The public ``keras.utils.get_file`` is the same function, but
    replacing it there would not reach the applications' calls: so the internal module
    keras.src.utils.file_utils (noted in setup.cfg). Raises RuntimeError (`WEIGHTS_PROBE_GONE`)
    on a Keras without it."""
    try:
        from keras.src.utils import file_utils
    except ImportError as e:
        raise RuntimeError(WEIGHTS_PROBE_GONE.format(version=keras.__version__)) from e
    if not callable(getattr(file_utils, "get_file", None)):
        raise RuntimeError(WEIGHTS_PROBE_GONE.format(version=keras.__version__))

    def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
                 cache_subdir="datasets", hash_algorithm="auto", extract=False,
                 archive_format="auto", cache_dir=None, force_download=False):
        if md5_hash is not None and file_hash is None:
            file_hash, hash_algorithm = md5_hash, "md5"
        return handler(WeightsRequest(fname or os.path.basename(origin), origin, file_hash,
                                      hash_algorithm, cache_subdir, cache_dir))

    with _GET_FILE_LOCK:
        original = file_utils.get_file
        file_utils.get_file = get_file
        try:
            yield
        finally:  # whole (errors.held_stops): a Ctrl-C here left Keras' get_file routed here
            with held_stops():
                file_utils.get_file = original


def _architecture(name, module=None):
    """The KerasApplication of ``keras:NAME``; ModuleLoadError(stage "handle") for an unknown
    NAME, with the closest known one to pass (`handles.keras_application`, in a call's words):
    a catalogue's handle is checked when it is read, so only a Python caller's (`locate`,
    `ModuleRuntime.load`) reaches here. It was a bare KeyError, with no way on."""
    try:
        return keras_application(f"keras:{name}")
    except HandleFormError as e:
        raise ModuleLoadError(f"{e.problem}; {e.python_hint}", module=module,
                              handle=f"keras:{name}", stage="handle") from None


def _application_shape(input_size):
    return (int(input_size[0]), int(input_size[1]), 3) if input_size else (None, None, 3)


@functools.lru_cache(maxsize=None)
def imagenet_weights_request(name, input_size=None) -> WeightsRequest:
    """The WeightsRequest of ``keras.applications.NAME(weights="imagenet", include_top=False,
    pooling="avg")`` at ``input_size`` (some architectures, e.g. MobileNet, have weights per
    resolution): found by building the architecture with Keras' ``get_file`` intercepted,
    so the file name is Keras' own. Nothing is downloaded. Raises ModuleLoadError(stage
    "handle") for an unknown name (`_architecture`) and RuntimeError when the architecture
    never asks for a file."""
    _architecture(name)
    app = getattr(keras.applications, name)

    def record(request):
        raise _Wanted(request)

    try:
        # Keras warns, without an input size, that the 224 x 224 weights are loaded: the
        # probe only reads which file; the module's documented size is its catalogue entry's.
        with _intercept_get_file(record), warnings_block():
            warnings.filterwarnings("ignore", message=".*input_shape. is undefined",
                                    category=UserWarning)
            app(include_top=False, weights="imagenet", pooling="avg",
                input_shape=_application_shape(input_size))
    except _Wanted as wanted:
        return wanted.request
    raise RuntimeError(f"keras.applications.{name} did not ask for its ImageNet weights file "
                       "through keras.src.utils.file_utils.get_file (Keras "
                       f"{keras.__version__}); set `weights:` on the catalogue entry to a "
                       "local weights file")


def _validate(path, request):
    """Whether the file at ``path`` has the hash Keras expects (True without one): Keras'
    own check (its get_file's validate_file, not public API), by hashlib."""
    if request.file_hash is None:
        return True
    digest = hashlib.new(request.algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == str(request.file_hash)


def _not_weights(path, request):
    # Keras gives no hash for some weights files (keras.applications.MobileNet and
    # MobileNetV2, 3.15): without this, a page a server answered for one was kept in Keras'
    # cache and failed every later build. Weights are HDF5 (.h5) files.
    if request.file_hash is not None or not request.fname.lower().endswith((".h5", ".hdf5")):
        return None
    return keras_file_problem(path)


#: The way on of an ImageNet weights file that cannot be fetched, as a catalogue's author and a
#: Python caller give a weights file (`saidwords.said`).
_LOCAL_WEIGHTS = (Words("set `weights:` on the entry to a local weights file",
                        "pass weights= the path of a local weights file",
                        "pass --weights FILE, a local weights file"),)


def fetch_imagenet_weights(name, input_size=None, *, module=None, timeout, deadline,
                           form="yaml") -> str:
    """The local path of the ImageNet weights file of ``keras:NAME``, in Keras' own cache
    (`WeightsRequest.path`), downloaded when missing (each read waits at most ``timeout``
    seconds; the download ends by ``deadline``, a time.monotonic() value) from Keras' origin
    or ``$HUBENSEMBLE_KERAS_WEIGHTS_MIRROR``/FNAME, and checked against Keras' own hash.

    Raises ModuleLoadError: stage "network" naming the file Keras wanted, its origin and
    where to put it when it cannot be downloaded (e.g. offline), or a local weights file to
    give instead in `form`'s words ("yaml": `weights:` on a catalogue entry; "python": the
    weights= keyword of load_module and HubLayer); "checksum" when the file
    does not match Keras' hash, "load" when a file Keras has no hash for is not an HDF5 file
    (a download is removed; a file someone put there is left and named).
    """
    handle = f"keras:{name}"
    _architecture(name, module)  # an unknown name, refused naming the module
    request = imagenet_weights_request(name, tuple(input_size) if input_size else None)
    path = request.path
    if os.path.exists(path):
        if not_weights := _not_weights(path, request):
            raise ModuleLoadError(
                f"{not_weights}; delete it so that it is downloaded again, or replace it with "
                f"the file from {request.origin}", module=module, handle=handle, stage="load")
        if not _validate(path, request):
            raise ModuleLoadError(
                f"{path} does not match the {request.algorithm} hash Keras expects for "
                f"{request.fname} ({request.file_hash}); delete it so that it is downloaded "
                "again, or replace it with the file from "
                f"{request.origin}", module=module, handle=handle, stage="checksum")
        return path
    mirror = weights_mirror()  # checked before the command's work too
    url = f"{mirror.rstrip('/')}/{request.fname}" if mirror else request.origin
    try:
        with download_bar(url) as bar, remote.redrawn(bar):
            remote.download(url, path, timeout=timeout, deadline=deadline, progress=bar)
    except Exception as e:  # noqa: BLE001 - any failure to fetch has the same fix
        _raise_full_disk(e, f"the ImageNet weights {request.fname} were downloaded",
                         "KERAS_HOME may name a folder on another disk", path)
        shown = failure_text(e)
        status = status_hint(e, url, shown=shown)  # every download's words of a status
        raise ModuleLoadError(
            f"cannot download the ImageNet weights {request.fname} from {url}"
            f"{f' (the mirror {WEIGHTS_MIRROR_ENV} names)' if mirror else ''} "
            f"({shown}{f'; {status}' if status else ''}); offline, "
            "fetch that file elsewhere and put "
            f"it at {path}, or " + said(_LOCAL_WEIGHTS, form),
            module=module, handle=handle, stage="network") from e
    if not_weights := _not_weights(path, request):  # a web page answered 200, say
        os.unlink(path)
        raise ModuleLoadError(f"the download from {url} is not the weights file: "
                              f"{not_weights}; removed it, so the next run downloads it again",
                              module=module, handle=handle, stage="load")
    if not _validate(path, request):
        os.unlink(path)
        raise ModuleLoadError(
            f"the download of {request.fname} from {url} does not match the "
            f"{request.algorithm} hash Keras expects ({request.file_hash}); removed it",
            module=module, handle=handle, stage="checksum")
    return path


def _raise_full_disk(error, what: str, elsewhere: str, filename=None) -> None:
    """Raises, for a fetch that failed with `error` because the disk had no room for it
    (`resolvers.full_disk`: a full disk or quota, a file size limit), OSError of its errno
    saying `what` was being done and `elsewhere` (the variable that moves that cache), naming
    the file (`filename` when the error names none): the disk's, not the network's nor the
    module's, so the command stops (exits.WAY_ON) rather than refusing the module."""
    from hubensemble.hub.resolvers import full_disk

    disk = full_disk(error)
    if disk is not None:
        raise OSError(disk.errno, f"{disk.strerror} while {what} ({elsewhere})",
                      disk.filename or filename) from error


def build_application(name, weights_path, input_size=None, *, module=None) -> keras.Model:
    """``keras:NAME`` as a Keras model: float32 images [B, H, W, 3] in [0, 1] ->
    `ApplicationPreprocess` -> ``keras.applications.NAME(include_top=False,
    pooling="avg")`` with the weights of the local file ``weights_path`` -> [B, D] with D =
    ``KERAS_APPLICATIONS[NAME].output_dim``. Built for ``input_size`` (height, width) when
    given, else for any size. Raises ModuleLoadError(stage="load") when Keras refuses the
    size or the weights file, stage "handle" for an unknown NAME (`_architecture`)."""
    info = _architecture(name, module)
    shape = _application_shape(input_size)
    try:
        base = getattr(keras.applications, name)(include_top=False, weights=weights_path,
                                                 input_shape=shape, pooling="avg")
    except Exception as e:  # noqa: BLE001 - Keras raises ValueError/OSError/h5py errors
        raise ModuleLoadError(f"keras.applications.{name} cannot be built with the weights "
                              f"{weights_path}: {type(e).__name__}: {first_line(e)}",
                              module=module, handle=f"keras:{name}", stage="load") from e
    inputs = keras.Input(shape, name="images")
    outputs = base(ApplicationPreprocess(info.module, name="preprocess")(inputs))
    return keras.Model(inputs, outputs, name=f"keras_{name.lower()}")


# ---------------------------------------------------------------------------------------------
# keras-hub presets


def _keras_hub(handle, module):
    try:
        import keras_hub
    except ImportError as e:
        raise ModuleLoadError("keras-hub presets need keras-hub: pip install "
                              "'hubensemble[keras-hub]'", module=module, handle=handle,
                              stage="handle") from e
    return keras_hub


def _passing_not_retried(handle, error) -> bool:
    """Whether a preset fetch that failed with `error` may pass (`remote.transient`) and was
    not already tried again by its loader: huggingface_hub (1.33.0 to 2.5.0, `_http_backoff_base`)
    tries a HEAD again on HTTP 408/429/5xx and a dropped connection, up to 5 times with waits
    of 1 to 8 s, and resumes a body cut short, but asks for a body (GET) once on a 5xx; it is
    not tried again twice over. kagglehub (1.0.2, 1.0.3) tries nothing again."""
    if not remote.transient(error):
        return False
    if not handle.startswith("hf://"):
        return True
    status = remote.http_status(error)
    return (status is not None and status not in (408, 429)
            and remote.http_method(error) == "GET")


def fetch_preset(handle, *, module=None, deadline_seconds) -> str:
    """The local folder of a ``kaggle://…`` or ``hf://…`` preset, fetched by keras-hub's own
    loader (kagglehub / huggingface_hub; their files are cached there): config.json,
    metadata.json, model.weights.h5 or, for a sharded preset, model.weights.json and each
    shard it names (`loaders.shard_names`), and image_converter.json when there; within
    ``deadline_seconds`` (the loaders take no timeout: the fetch runs in a thread that is
    abandoned at the deadline). A fetch that fails `remote.transient`ly (HTTP 429/503, a
    connection dropped) and that its loader did not try again itself
    (`_passing_not_retried`) is made again as the other downloads are
    (`remote.with_retries`; the loaders keep what they completed and never call a cut file
    complete). The loaders print no progress of their own unless hubensemble shows
    progress (`loaders.quiet_loaders`, held in the fetch's thread: a fetch abandoned at the
    deadline stays quiet to its end), and wait no longer for one answer than hubensemble
    does (`loaders.capped_loader_waits`: a Retry-After above `remote.MAX_RETRY_AFTER` fails
    the fetch at once, said as such). Raises
    ModuleLoadError(stage="handle") without keras-hub, (stage="network") when the files
    cannot be fetched in time or the server refuses them, naming the status and what to do
    (`resolvers.network_hint`: e.g. HF_TOKEN or KAGGLE_USERNAME/KAGGLE_KEY for 401/403),
    (stage="load") when a fetched file is not the preset's (`loaders.preset_files_problem`:
    e.g. a web page answered with HTTP 200), which is removed from the loader's cache
    (`loaders.drop_preset`) so that the next run fetches it again."""
    _keras_hub(handle, module)
    from keras_hub.src.utils import preset_utils

    def fetch():
        config = preset_utils.get_file(handle, preset_utils.CONFIG_FILE)
        preset_utils.get_file(handle, preset_utils.METADATA_FILE)
        try:
            preset_utils.get_file(handle, preset_utils.MODEL_WEIGHTS_FILE)
        except FileNotFoundError as missing:  # keras-hub's word for a 404 (and a gated 403)
            _fetch_shards(preset_utils, handle, missing)
        for name in (preset_utils.IMAGE_CONVERTER_CONFIG_FILE,):
            with contextlib.suppress(Exception):
                preset_utils.get_file(handle, name)
        return os.path.dirname(config)

    deadline, quiet = time.monotonic() + deadline_seconds, not showing().progress

    def fetch_all():
        # Quiet and capped in the fetch's own thread, to its end: one abandoned at the
        # deadline goes on with the preset's next files, which showed the loaders' bars and
        # lines (and waited uncapped) once the caller had put the loaders back.
        with loaders.quiet_loaders(quiet), loaders.capped_loader_waits():
            return remote.with_retries(fetch, what=f"fetching the preset {handle}",
                                       deadline=deadline, may_pass=functools.partial(
                                           _passing_not_retried, handle))

    try:
        folder = remote.call_with_deadline(fetch_all, timeout=deadline_seconds, whole=True,
                                           what=f"fetching the preset {handle}")
    except remote.DeadlineExceeded as e:
        raise ModuleLoadError(f"keras-hub cannot fetch the preset: {e} (raise "
                              "HUBENSEMBLE_DOWNLOAD_DEADLINE for a large preset on a slow link)",
                              module=module, handle=handle, stage="network") from e
    except ImportError as e:  # its loader (huggingface_hub, kagglehub) is not installed:
        # keras-hub's own words name the package and the pip command; no connection is at fault
        raise ModuleLoadError(f"keras-hub cannot fetch the preset: {first_line(e)}",
                              module=module, handle=handle, stage="handle") from e
    except Exception as e:  # noqa: BLE001 - kagglehub / huggingface_hub raise their own types
        from hubensemble.hub.resolvers import network_hint  # the words of every download

        _raise_full_disk(e, f"the preset {handle} was fetched", "KAGGLEHUB_CACHE for kaggle://, "
                         "HF_HOME for hf:// may name a folder on another disk")
        hint = network_hint(e, handle)
        if hint == "check the URL and your connection":  # its last words, said of a URL
            hint = "check the handle and your connection"
        raise ModuleLoadError(f"keras-hub cannot fetch the preset: {failure_text(e)} ({hint})",
                              module=module, handle=handle, stage="network") from e
    # A file that came whole but is not the preset's (a sign-in or Wi-Fi portal page answered
    # 200) is named now, before its pin or fingerprint is read, and not kept in the loader's
    # cache, which would serve it to every later run without asking the server again.
    problem = loaders.preset_files_problem(folder)
    if problem:
        raise ModuleLoadError(f"keras-hub fetched a file that is not the preset's: {problem}; "
                              f"{loaders.drop_preset(handle, folder)}",
                              module=module, handle=handle, stage="load")
    return folder


def _fetch_shards(preset_utils, handle, missing):
    # A sharded preset (keras-hub saves one above its max_shard_size): its index, then each
    # shard it names, as keras-hub's own loader does when model.weights.h5 is not there
    # (KerasPresetLoader._load_backbone_weights, 0.32). Without an index either, the error
    # is that of model.weights.h5, the file a preset has.
    try:
        index = preset_utils.get_file(handle, loaders.PRESET_SHARDS_INDEX)
    except FileNotFoundError:
        raise missing from None
    try:
        shards = loaders.shard_names(index)
    except ValueError:  # not Keras' index: preset_files_problem names it, and it is dropped
        return
    for shard in shards:
        preset_utils.get_file(handle, shard)


@keras.saving.register_keras_serializable(package="hubensemble")
class ScaleOffset(keras.layers.Layer):
    """float32 images in [0, 1] -> ``255 x * scale + offset`` (per channel when lists): a
    keras-hub ImageConverter's rescaling, without its resizing (the runtime resizes)."""

    def __init__(self, scale=1.0, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def call(self, images):
        """[B, H, W, 3] -> [B, H, W, 3]."""
        scale = keras.ops.convert_to_tensor(self.scale if self.scale is not None else 1.0,
                                            "float32")
        offset = keras.ops.convert_to_tensor(self.offset if self.offset is not None else 0.0,
                                             "float32")
        return images * 255.0 * scale + offset

    def get_config(self):
        """Keras config: the layer's own plus ``scale`` and ``offset``."""
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@dataclasses.dataclass
class Preset:
    """A keras-hub preset loaded as an embedding model: ``model`` (images in [0, 1] -> [B, D])
    and ``image_size`` (the converter's (height, width), None when it has none)."""

    model: keras.Model
    image_size: tuple[int, int] | None


def load_preset(path, *, trust=False, module=None, handle=None) -> Preset:
    """The keras-hub preset folder ``path`` as a `Preset`: ``Backbone.from_preset`` (in
    Keras' safe mode unless ``trust``) after the preset's ImageConverter scale/offset (none:
    pixels in [0, 255]), its [B, h, w, C] feature map (or [B, T, C] tokens) averaged to
    [B, C]. Raises ModuleLoadError: stage "handle" without keras-hub, "unsafe" when safe mode
    refuses the preset, "load" when keras-hub cannot load it, "output" for a backbone whose
    output is not an image feature map or token sequence."""
    keras_hub = _keras_hub(handle or path, module)
    from hubensemble.hub.resolvers import download_dropped_if_unloadable

    # A fetched preset that keras-hub cannot load is not kept in its loader's cache: the next
    # run fetches it again (a local folder is never touched).
    with download_dropped_if_unloadable(handle or path, stages=("load",), path=path):
        backbone, converter = _backbone(keras_hub, path, trust=trust, module=module,
                                        handle=handle)
    scale = getattr(converter, "scale", None) if converter is not None else 1.0 / 255.0
    offset = getattr(converter, "offset", None) if converter is not None else None
    size = getattr(converter, "image_size", None) if converter is not None else None
    inputs = keras.Input((None, None, 3), name="images")
    features = backbone(ScaleOffset(_plain(scale), _plain(offset), name="rescale")(inputs))
    rank = len(features.shape)
    if rank == 4:
        features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    elif rank == 3:
        features = keras.layers.GlobalAveragePooling1D(name="avg_pool")(features)
    elif rank != 2:
        raise ModuleLoadError(f"the preset's backbone returns a rank-{rank} output "
                              f"{features.shape}; hubensemble needs image features",
                              module=module, handle=handle or path, stage="output")
    model = keras.Model(inputs, features, name="preset_embedding")
    return Preset(model, tuple(int(v) for v in size) if size else None)


def _safe_mode_scope(safe):
    """(context, whether it sets it): Keras' safe mode (no Python code a file carries runs
    as it loads) on, or with ``safe`` False off, for the keras-hub loads in the block.
    keras-hub's from_preset takes no safe_mode argument and Keras' public switch
    (keras.config.enable_unsafe_deserialization) turns it off for the whole process, for
    good: so the internal keras.src.saving.serialization_lib.SafeModeScope (setup.cfg notes
    it). On a Keras without it: no scope, Keras' default holds (safe, unless the process
    turned it off itself), and a trusted preset's Lambda layers are refused (`_backbone`
    says why)."""
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:
        return contextlib.nullcontext(), False
    return SafeModeScope(safe), True


def _backbone(keras_hub, path, *, trust, module, handle):
    """(keras-hub's Backbone, its ImageConverter or None) of the preset folder ``path``;
    raises ModuleLoadError stage "unsafe" (safe mode refused it) or "load"."""
    scope, scoped = _safe_mode_scope(not trust)
    try:
        with scope:
            backbone = keras_hub.models.Backbone.from_preset(path)
            converter = None
            if os.path.exists(os.path.join(path, "image_converter.json")):
                converter = keras_hub.layers.ImageConverter.from_preset(path)
    except Exception as e:  # noqa: BLE001 - keras-hub raises many types for a bad preset
        stage = "unsafe" if "arbitrary code execution" in str(e) else "load"
        gone = ("; `trust: true` cannot lift Keras' safe mode for a keras-hub preset on "
                f"Keras {keras.__version__}, which has no keras.src.saving.serialization_lib."
                "SafeModeScope: install a Keras in the range hubensemble's setup.cfg allows"
                if stage == "unsafe" and trust and not scoped else "")
        raise ModuleLoadError(f"keras-hub cannot load the preset: {type(e).__name__}: "
                              f"{first_line(e)}{gone}", module=module, handle=handle or path,
                              stage=stage) from e
    return backbone, converter


def _plain(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    try:
        return float(value)
    except TypeError:
        return [float(v) for v in list(value)]


def deadline_after(seconds) -> float:
    """time.monotonic() + seconds: the deadline a fetch that starts now ends by."""
    return time.monotonic() + float(seconds)

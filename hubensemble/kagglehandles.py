"""Kaggle Models handles: their one URL form (`kaggle_url`), their parts, a framework's one
spelling and what to write instead of one that names no version. Pure string work (no file
system, no network); `handles.check_handle_form` and `samemodule.canonical_handle` use it."""

from __future__ import annotations

import urllib.parse

from hubensemble.catalogue_urls import url_case
from hubensemble.saidwords import WRITE

KAGGLE_HOSTS = ("kaggle.com", "www.kaggle.com")
_KAGGLE_EXAMPLE = "https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1"


def kaggle_url(handle: str) -> str:
    """The https://www.kaggle.com/models/OWNER/MODEL/FRAMEWORK/VARIATION/VERSION form of any
    Kaggle handle (kaggle:…, the short URL or the long …/frameworks/…/variations/…/versions/…
    URL): the form tensorflow_hub downloads like a tfhub.dev handle."""
    parts = kaggle_parts(handle)
    if parts is None:
        raise ValueError(f"{handle!r} is not a Kaggle Models handle; write e.g. {_KAGGLE_EXAMPLE}")
    return "https://www.kaggle.com/models/" + "/".join(parts)


def kaggle_parts(handle):
    """(owner, model, framework, variation, version) of a Kaggle handle, or None."""
    handle = url_case(handle)
    if handle.startswith("kaggle:"):
        parts = handle[len("kaggle:"):].strip("/").split("/")
    else:
        split = urllib.parse.urlsplit(handle)
        if split.netloc.lower() not in KAGGLE_HOSTS or split.query or split.fragment:
            return None
        parts = split.path.strip("/").split("/")
        if not parts or parts[0] != "models":
            return None
        parts = parts[1:]
        if len(parts) == 8 and (parts[2], parts[4], parts[6]) == (
                "frameworks", "variations", "versions"):
            parts = [parts[0], parts[1], parts[3], parts[5], parts[7]]
    if len(parts) != 5 or not all(parts) or not parts[4].isdigit():
        return None
    return tuple(parts)


def kaggle_way_on(handle: str) -> tuple:
    """What to write instead of Kaggle handle `handle` that names no version (`saidwords.said`
    parts: "write" in a catalogue, "pass" from Python): the user's own
    model with a VERSION (the short URL, or kaggle:… for a kaggle: handle; a query or fragment
    left out), e.g. "write https://www.kaggle.com/models/O/M/F/V/VERSION (OWNER/MODEL/
    FRAMEWORK/VARIATION/VERSION: its version, e.g. …/V/1; …) instead"; the general form with
    another model's example only when `handle` does not name OWNER/MODEL/FRAMEWORK/VARIATION.
    Every unversioned handle was given google/bit's example, a user's own mobilenet URL with
    ?tf-hub-format=compressed too."""
    bare = url_case(handle).split("?")[0].split("#")[0]
    if bare.startswith("kaggle:"):
        parts, prefix = bare[len("kaggle:"):].strip("/").split("/"), "kaggle:"
    else:
        parts = urllib.parse.urlsplit(bare).path.strip("/").split("/")
        prefix = "https://www.kaggle.com/models/"
        parts = parts[1:] if parts[:1] == ["models"] else []
        if len(parts) in (6, 7) and (parts[2], parts[4], parts[6:7]) in (
                ("frameworks", "variations", []), ("frameworks", "variations", ["versions"])):
            parts = [parts[0], parts[1], parts[3], parts[5]]
    if len(parts) == 4 and all(parts):
        own = prefix + "/".join(parts)
        return (WRITE, f"{own}/VERSION (OWNER/MODEL/FRAMEWORK/VARIATION/VERSION: its "
                f"version, e.g. {own}/1; the model's page on kaggle.com lists them) instead")
    return (WRITE, f"{_KAGGLE_EXAMPLE} or kaggle:google/bit/tensorFlow2/m-r50x1/1 "
            "(OWNER/MODEL/FRAMEWORK/VARIATION/VERSION) instead")


def kaggle_framework(framework: str) -> str:
    """One spelling of a Kaggle Models framework: "TensorFlow2", "tensorFlow2", "tensorflow2"
    and "TENSOR_FLOW_2" all name ModelFramework.MODEL_FRAMEWORK_TENSOR_FLOW_2, by the rule
    of Kaggle's client (kagglehub.enum.to_enum: case and underscores ignored); lower case,
    without underscores ("tensorflow2")."""
    return framework.replace("_", "").lower()

"""Who serves a handle, and what to say when it refuses or fails: Kaggle's archive URL and
the account key it is asked with, and the words of an HTTP status (401/403 name the
credentials of the host that refused: KAGGLE_USERNAME/KAGGLE_KEY, HF_TOKEN; 402 the
download allowance or quota it says is used up). One rule for
every scheme: the archives (tfhub.dev, Kaggle, plain URLs), Keras files and weights, and
keras-hub's kaggle:// and hf:// presets (hub.sources)."""

import base64
import os
import re
import urllib.parse

from hubensemble.fileio import read_json
from hubensemble.hub import remote
from hubensemble.hub.answers import server_reason


_KAGGLE_URL = re.compile(
    r"^https://www\.kaggle\.com/models/([^/]+)/([^/]+)/([^/]+)/([^/]+)/(\d+)/?$")
_KAGGLE_SHORT = re.compile(r"^kaggle:([^/]+)/([^/]+)/([^/]+)/([^/]+)/(\d+)$")


def kaggle_download_url(handle):
    """The archive URL of a Kaggle Models handle (either URL form or ``kaggle:O/M/F/V/N``),
    under ``$KAGGLE_API_ENDPOINT`` (default https://www.kaggle.com); None for other handles."""
    m = _KAGGLE_URL.match(handle) or _KAGGLE_SHORT.match(handle)
    if not m:
        return None
    endpoint = os.environ.get("KAGGLE_API_ENDPOINT", "https://www.kaggle.com").rstrip("/")
    owner, model, framework, variation, version = m.groups()
    return f"{endpoint}/api/v1/models/{owner}/{model}/{framework}/{variation}/{version}/download"


def kaggle_credentials():
    """(username, key) of a Kaggle account, as the Kaggle API and kagglehub read them:
    KAGGLE_USERNAME and KAGGLE_KEY, else the "username" and "key" of kaggle.json in
    $KAGGLE_CONFIG_DIR (default ~/.kaggle); None when neither is set (or readable)."""
    found = _kaggle_key()
    return found[:2] if found else None


def _kaggle_key():
    # (username, key, where they were read: words for the error of a refused key) or None.
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return user, key, "KAGGLE_USERNAME and KAGGLE_KEY of the environment"
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"),
                                                                 ".kaggle")
    path = os.path.join(folder, "kaggle.json")
    try:
        found = read_json(path)
        user, key = found.get("username"), found.get("key")
    except (OSError, ValueError, AttributeError):
        return None
    return (str(user), str(key), path) if user and key else None


def _hf_token_source():
    # Where huggingface_hub reads the token it sends (huggingface_hub.get_token, 1.33.0 to
    # 2.4.0): the environment's HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the file
    # `hf auth login` writes; None when it sends none.
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name):
            return f"{name} of the environment"
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    path = getattr(constants, "HF_TOKEN_PATH", None)
    if getattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", False) or not path:
        return None
    return path if os.path.isfile(path) else None


def kaggle_authorization(url):
    """The HTTP Authorization header value ("Basic …", as the Kaggle API takes an account's
    key) of `kaggle_credentials` for a request to `url`: only over https, or to this
    machine (a loopback address): never the key in clear over a network. None without a
    key or for another URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    key = kaggle_credentials()
    if not key:
        return None
    return "Basic " + base64.b64encode(":".join(key).encode("utf-8")).decode("ascii")


#: What to do about an answer that refuses a handle (HTTP 401 or 403), by who refused it.
_REFUSED = {
    "kaggle": ("Kaggle refuses it without an account's key: set KAGGLE_USERNAME and KAGGLE_KEY "
               "(your API token, from kaggle.com/settings; or ~/.kaggle/kaggle.json), and if "
               "the model is gated accept its terms on its Kaggle page first"),
    "hf": ("the Hugging Face Hub refuses it: a gated or private repository (or one that does "
           "not exist: the Hub answers 401 for a name it does not show you); check the name, "
           "and set HF_TOKEN to a token (huggingface.co/settings/tokens) of an account that "
           "accepted the repository's terms"),
    None: ("the server refuses it without a login hubensemble does not send: download the "
           "module yourself and give its local folder or file as the handle"),
}


def _quota(kind) -> str:
    """What HTTP 402 (Payment Required) means at who answered it: the Hugging Face Hub's for
    an account (or organization) whose download allowance is used up (huggingface_hub 2.5's
    EgressLimitError, X-Error-Code EgressLimitReached), the quota or payment another server
    asks for."""
    if kind == "hf":
        where = _hf_token_source()
        if not where:
            return ("the Hugging Face Hub's download allowance for downloads without a token "
                    "(none is sent: HF_TOKEN is not set) is used up: set HF_TOKEN to a token "
                    "of an account (huggingface.co/settings/tokens), or wait until it renews")
        return ("the Hugging Face Hub's download allowance of the account of the token sent "
                f"(read from {where}), or of its organization, is used up: wait until it "
                "renews, raise it (the account's billing, huggingface.co/settings/billing), "
                "or set HF_TOKEN to a token of another account")
    host = "Kaggle" if kind == "kaggle" else "the server"
    return (f"{host} asks for payment or a quota that is used up, as its answer says: see "
            "to that account (or wait until its quota renews), or download the module "
            "yourself and give its local folder or file as the handle")


def _host_kind(handle):
    """"kaggle" (a Kaggle Models handle or URL, or one under $KAGGLE_API_ENDPOINT), "hf" (a
    Hugging Face preset) or None (any other server)."""
    handle = str(handle or "")
    if handle.startswith("hf://"):
        return "hf"
    host = urllib.parse.urlsplit(handle).hostname or ""
    if (handle.startswith("kaggle:") or kaggle_download_url(handle)
            or host == "kaggle.com" or host.endswith(".kaggle.com")):
        return "kaggle"
    return None


def _refused(kind, handle) -> str:
    """The words of a refusal (`_REFUSED`), or, when the refused request carried a key (a
    Kaggle account's key: `kaggle_authorization`, or kagglehub's for a kaggle:// preset; the
    Hub's token: `_hf_token_source`), that this key was refused and where it was read."""
    if kind == "kaggle":
        found = _kaggle_key()
        url = kaggle_download_url(handle) or str(handle)
        if found and (str(handle).startswith("kaggle://") or kaggle_authorization(url)):
            return (f"Kaggle refuses the key of the account {found[0]!r} (read from "
                    f"{found[2]}): check that key, or make a new API token at "
                    "kaggle.com/settings; and if the model is gated accept its terms on its "
                    "Kaggle page with that account first")
    if kind == "hf":
        where = _hf_token_source()
        if where:
            return ("the Hugging Face Hub refuses it with the token sent (read from "
                    f"{where}): a gated or private repository that token's account cannot "
                    "read (or one that does not exist: the Hub answers 401 for a name it does "
                    "not show you); check the name, that the token is valid (or make a new "
                    "one at huggingface.co/settings/tokens) and that its account accepted the "
                    "repository's terms")
    return _REFUSED[kind]


def status_hint(error: BaseException, handle=None, *, shown: str = "") -> str | None:
    """What to do about the HTTP status `error` got (`remote.http_status`, also through
    kagglehub's and huggingface_hub's errors), naming the status: 401/403 the credentials of
    who refused (`_refused`: KAGGLE_USERNAME/KAGGLE_KEY for Kaggle, HF_TOKEN for the Hugging
    Face Hub, or that the key sent was refused), 402 a download allowance or quota used up
    (`_quota`: the Hub's, of the account the token names), 404 the handle to check, 429 and 5xx
    (TRANSIENT_STATUSES, tried again in vain) the tries and a wait the server asked for that
    was not waited; None for another status (or none). ``shown`` is the error's text the
    words follow: when it already names the status ("HTTP Error 404: Not Found", "404
    Client Error"), the words do not name it again ("HTTP 404: " left out). The server's own
    reason (`answers.server_reason`: X-Error-Message, a JSON error, a plain-text body) ends
    the words, quoted, unless ``shown`` already holds it."""
    status = remote.http_status(error)
    kind = _host_kind(handle)
    if status in (401, 403):
        lead, said = f"HTTP {status}: ", _refused(kind, handle)
    elif status == 402:
        lead, said = "HTTP 402: ", _quota(kind)
    elif status == 404:
        lead, said = "HTTP 404: ", (
            f"nothing is at that address; check its spelling"
            f"{', its version' if kind == 'kaggle' else ''} and that it is published")
    elif status in remote.TRANSIENT_STATUSES:  # tried again while it could be
        wait, tries = remote.retry_after(error), getattr(error, "tries", 1)
        lead = f"HTTP {status}{f' (tried {tries} times)' if tries > 1 else ''}: "
        said = ("the server limits how often it is asked" if status == 429 else
                "the server is failing for now")
        if wait is not None and wait > remote.MAX_RETRY_AFTER:
            said += (f", and asks to wait {wait:g} s (longer than the "
                     f"{remote.MAX_RETRY_AFTER:g} s hubensemble waits)")
        token = " (a token, HF_TOKEN, raises the Hub's limit)" if (
            status == 429 and kind == "hf") else ""
        said = f"{said}; try again later{token}"
    else:
        return None
    if re.search(rf"(?<!\d){status}(?!\d)", shown or ""):  # said just before: not twice
        lead = f"tried {tries} times: " if status in remote.TRANSIENT_STATUSES and tries > 1 \
            else ""
    reason = server_reason(error)  # the server's own words, unless the error shows them
    if reason and reason.lower() not in (shown or "").lower():
        said += f"; the server says: {reason!r}"
    return lead + said

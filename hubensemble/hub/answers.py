"""What an HTTP answer that failed a request said, in words a refusal can keep: the error that
carries the answer (under keras-hub's FileNotFoundError or ValueError), its text past the
first line (huggingface_hub's "402 Client Error." is followed by "Egress limit reached for
url: …"), and the server's own reason (X-Error-Message, a JSON "error"/"message", a short
plain-text body). One rule for every download's words (`hosts.status_hint`, `resolvers`,
`sources`)."""

from __future__ import annotations

import json
import urllib.error

from hubensemble.errors import first_line
from hubensemble.hub.remote import _chain as error_chain  # the one walk of an error's chain

#: The most characters of a server's reason kept (a longer one is cut, "…" at its end).
MAX_REASON = 300
#: The most bytes of an error answer's body read for its reason (urllib leaves it unread).
MAX_BODY = 4096
#: Lines of an HTTP library's message that send the reader elsewhere, not a reason.
_ELSEWHERE = ("For more information check:", "For more details, see", "Please make sure",
              "If you are trying to access", "Make sure your token")


def answer_error(error: BaseException) -> BaseException | None:
    """The error in `error`'s chain (itself, then what it was raised from) that carries an
    HTTP answer: urllib's HTTPError, or requests'/httpx's (kagglehub's, huggingface_hub's)
    error with a ``response.status_code``; None for a failure without an answer."""
    for e in error_chain(error):
        if isinstance(e, urllib.error.HTTPError):
            return e
        if isinstance(getattr(getattr(e, "response", None), "status_code", None), int):
            return e
    return None


def failure_text(error: BaseException) -> str:
    """"Type: text" of `error` on one line, for a refusal: of the error that carries the HTTP
    answer when there is one (`answer_error`; keras-hub's "`config.json` doesn't exist in
    preset directory" hides a 402 or 403), its first line and, when that line only names the
    status ("402 Client Error. (Request ID: …)"), the next line that says what was refused
    ("Egress limit reached for url: …"); else `errors.first_line` of `error`."""
    found = answer_error(error)
    shown = found if found is not None else error
    head = first_line(shown)
    if found is not None:
        lines = [line.strip() for line in str(shown).splitlines()[1:]]
        further = next((line for line in lines if line and not line.startswith(_ELSEWHERE)
                        and line.lower() not in head.lower()), None)
        if further and len(head) < 80:
            head = f"{head.rstrip()} {further}"
    return f"{type(shown).__name__}: {head}"


def server_reason(error: BaseException) -> str | None:
    """The reason the server gave with the answer that failed `error`, on one line (at most
    MAX_REASON characters): its X-Error-Message header, huggingface_hub's ``server_message``,
    a JSON body's "error", "message" or "detail", or a plain-text body (not a web page),
    after its X-Error-Code ("EgressLimitReached: …", the Hugging Face Hub's); None when it
    gave none. urllib's unread body is read once (at most MAX_BODY bytes) and kept on
    the error."""
    found = answer_error(error)
    if found is None:
        return None
    response = getattr(found, "response", None)
    headers = found.headers if isinstance(found, urllib.error.HTTPError) else getattr(
        response, "headers", None)
    said = headers.get("X-Error-Message") if headers is not None else None
    said = said or getattr(found, "server_message", None)
    if not said:
        said = _body_reason(_body(found, response), (headers.get("Content-Type") or "")
                            if headers is not None else "")
    said = " ".join(str(said or "").split())
    code = (headers.get("X-Error-Code") if headers is not None else None) or ""
    if code and code.lower() not in said.lower():  # huggingface_hub's word for the refusal
        said = f"{code}: {said}" if said else code
    if not said:
        return None
    return said if len(said) <= MAX_REASON else said[:MAX_REASON - 1] + "…"


def _body(found, response) -> str:
    if isinstance(found, urllib.error.HTTPError):
        if not hasattr(found, "hubensemble_body"):
            try:
                data = found.read(MAX_BODY) if found.fp is not None else b""
            except (OSError, ValueError, AttributeError):
                data = b""
            found.hubensemble_body = data.decode("utf-8", "replace")
        return found.hubensemble_body
    try:
        return str(response.text or "")[:MAX_BODY]
    except Exception:  # noqa: BLE001 - httpx raises ResponseNotRead for a streamed body
        return ""


def _body_reason(text: str, content_type: str) -> str | None:
    # A JSON error's words, or a plain text; never a web page (a sign-in or error page).
    text = text.strip()
    if not text or "html" in content_type.lower() or text.lstrip().startswith("<"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "error_description"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, list):
                value = "; ".join(str(v) for v in value)
            if value:
                return str(value)
    return None

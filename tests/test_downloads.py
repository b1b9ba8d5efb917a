"""Downloads over a slow or flaky network, as a user on hotel Wi-Fi sees them: a local
http.server on 127.0.0.1 that answers 503 once, closes the connection early, gzips the
body, redirects in a loop or stalls half-way; nothing of urllib or TensorFlow is mocked."""

import base64
import gzip
import hashlib
import http.server
import io
import json
import logging
import os
import re
import shutil
import tarfile
import threading
import time
import urllib.error
import urllib.parse
from email.message import Message
from email.utils import formatdate

import pytest

from hubensemble.errors import ModuleLoadError
from hubensemble.hub import remote


class Server:
    """http.server on 127.0.0.1, port 0. `routes[path]` is a list of answers, one taken per
    GET or POST (the last one stays): (status, body, headers, mode); a HEAD is answered as
    the last one, without its body. mode "short" sends the body with a Content-Length 1000
    bytes longer and closes, "long" with one 1000 bytes shorter, "gzip" sends it
    gzip-encoded, "stall" sends half and waits for `resume` (a threading.Event) before the
    rest. A request through it as a proxy (an absolute URL: HTTP_PROXY) is routed by its
    path. `auth` lists each GET's or POST's Authorization header (None without). A POST of a
    JSON object with a "path" (kagglehub's request of one file of a model) is answered from
    `routes[PATH/FILE]` when there is one. A GET with a Range header (listed in `ranges`,
    None without) of an answer 200 with "Accept-Ranges: bytes" gets a 206 of that part, as
    long as its If-Range (if any) is the answer's ETag. Mode "cut" announces the body's length,
    sends its first half and closes; "huge" announces 10**15 bytes more than it sends, and a
    whole number N announces N bytes more (and closes); "unsized cut" announces no length,
    sends the first half and closes."""

    def __init__(self):
        self.routes, self.requests, self.resume, self.auth = {}, [], threading.Event(), []
        self.ranges, self.heads = [], {}  # heads[path]: the answer of a HEAD, if not the last
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    file = json.loads(body).get("path")
                except (ValueError, AttributeError):
                    file = None
                self.do_GET(file)

            def do_HEAD(self):
                path = urllib.parse.urlsplit(self.path).path
                answers = server.routes.get(path)
                status, body, headers, _ = server.heads.get(path) or (
                    answers or [(404, b"", {}, None)])[-1]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()

            def do_GET(self, file=None):
                path = urllib.parse.urlsplit(self.path).path
                server.requests.append((path, self.headers.get("Accept-Encoding")))
                server.auth.append(self.headers.get("Authorization"))
                answers = (server.routes.get(f"{path}/{file}")
                           or server.routes.get(path) or [(404, b"", {}, None)])
                status, body, headers, mode = answers.pop(0) if len(answers) > 1 else answers[0]
                if mode == "gzip":
                    body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
                asked = self.headers.get("Range")
                server.ranges.append(asked)
                if (asked and status == 200 and headers.get("Accept-Ranges") == "bytes"
                        and self.headers.get("If-Range") in (None, headers.get("ETag"))):
                    start = int(asked.split("=")[1].split("-")[0])
                    status, headers = 206, {
                        **headers, "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
                    body = body[start:]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                extra = mode if isinstance(mode, int) else {
                    "short": 1000, "long": -1000, "huge": 10 ** 15}.get(mode, 0)
                if mode != "unsized cut":
                    self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                if mode == "stall":
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    server.resume.wait(30)
                    body = body[len(body) // 2:]
                if mode in ("cut", "unsized cut"):
                    body = body[:len(body) // 2]
                self.wfile.write(body)
                self.wfile.flush()
                if mode in ("short", "cut", "huge", "unsized cut") or isinstance(mode, int):
                    self.connection.close()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path, *answers):
        padded = [(a + (b"", {}, None)[len(a) - 1:])[:4] for a in answers]
        self.routes[path] = [(status, body, headers or {}, mode)
                             for status, body, headers, mode in padded]
        return self.url + path


@pytest.fixture
def server():
    s = Server()
    yield s
    s.resume.set()
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(scope="module")
def tarball(tiny_module):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in sorted(os.listdir(tiny_module)):
            tar.add(os.path.join(tiny_module, name), arcname=name)
    return buf.getvalue()


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub"))
    monkeypatch.setattr(remote, "RETRY_WAITS", (0.0, 0.0), raising=False)  # no waits here
    return tmp_path / "hub"


def said_once(message, status):
    """Whether the error `message` names the HTTP `status` once (it named it twice: "HTTP
    Error 404: Not Found (HTTP 404: nothing is at that address …")."""
    return len(re.findall(rf"HTTP (?:Error )?{status}\b|\b{status} (?:Client|Server) Error|"
                          rf"'{status} ", str(message))) == 1


def ok(body, mode=None, headers=None):
    return (200, body, headers or {}, mode)


def test_a_503_then_success_is_tried_again(server, tarball, hub_cache, caplog):
    # A server that is busy for a moment (503) failed the module: "HTTP Error 503: Service
    # Unavailable (check the URL and your connection)", with no second try.
    from hubensemble.hub.resolvers import resolve

    url = server.add("/m.tar.gz", (503, b"", {"Retry-After": "0"}), ok(tarball))
    with caplog.at_level(logging.WARNING):
        path = resolve(url, sha256=hashlib.sha256(tarball).hexdigest())
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert [p for p, _ in server.requests] == ["/m.tar.gz"] * 2
    assert (f"downloading {url}: the server answered HTTP 503 Service Unavailable; trying "
            "again in 0 s (try 2 of 3)") in caplog.text
    # A file download (a .keras URL, ImageNet weights) is tried again the same way.
    target = hub_cache.parent / "file.bin"
    url = server.add("/file.bin", (502, b"gateway"), ok(b"x" * 5000))
    digest = remote.download(url, target, timeout=10, deadline=time.monotonic() + 60)
    assert target.read_bytes() == b"x" * 5000 and digest == hashlib.sha256(b"x" * 5000).hexdigest()


def test_a_body_shorter_than_its_content_length_is_never_kept(server, tarball, hub_cache):
    # The server said 1000 bytes more than it sent and closed the connection: the archive
    # unpacked (its end came), and the module was kept as complete.
    from hubensemble.hub.resolvers import resolve

    url = server.add("/m.tar.gz", ok(tarball, "short"))
    with pytest.raises(ModuleLoadError) as err:
        resolve(url)
    n = len(tarball)
    assert err.value.stage == "network"
    assert (f"ConnectionError: the connection closed after {n} of {n + 1000} bytes (tried 3 "
            "times: the server or the connection is failing for now; try again later"
            in str(err.value)), str(err.value)
    assert len(server.requests) == 3
    assert not [p for p in hub_cache.iterdir() if not p.name.endswith(".lock")]
    # The connection back: the same handle downloads whole.
    server.add("/m.tar.gz", ok(tarball))
    assert os.path.isfile(os.path.join(resolve(url), "saved_model.pb"))
    # A file download cut short: not kept either.
    target = hub_cache.parent / "file.bin"
    url = server.add("/file.bin", ok(b"x" * 5000, "short"))
    with pytest.raises(ConnectionError, match="closed after 5000 of 6000 bytes"):
        remote.download(url, target, timeout=10, deadline=time.monotonic() + 60)
    assert not target.exists() and not list(target.parent.glob(".tmp-*"))


def test_a_gzip_encoded_body_is_the_file_it_encodes(server, tarball, hub_cache):
    # A server that gzips what it sends (Content-Encoding: gzip, as a request without
    # Accept-Encoding allows): the module was "ReadError: invalid header (the download is not
    # a valid SavedModel tarball)". Requests now ask for the body as it is, and a gzipped one
    # is decoded; its checksum is the file's.
    from hubensemble.hub.resolvers import resolve

    url = server.add("/m.tar.gz", ok(tarball, "gzip"))
    path = resolve(url, sha256=hashlib.sha256(tarball).hexdigest())
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert server.requests == [("/m.tar.gz", "identity")]
    target = hub_cache.parent / "file.bin"
    url = server.add("/file.bin", ok(b"y" * 3000, "gzip"))
    remote.download(url, target, timeout=10, deadline=time.monotonic() + 60)
    assert target.read_bytes() == b"y" * 3000


def test_a_redirect_loop_and_a_missing_file_are_not_tried_again(server, hub_cache):
    from hubensemble.hub.resolvers import resolve

    loop = server.add("/a.tar.gz", (302, b"", {"Location": "/b.tar.gz"}))
    server.add("/b.tar.gz", (302, b"", {"Location": "/a.tar.gz"}))
    with pytest.raises(ModuleLoadError, match="the server redirects in a loop: open the URL "
                                              "in a browser"):
        resolve(loop)
    server.requests.clear()
    with pytest.raises(ModuleLoadError, match=r"HTTP Error 404: Not Found \(nothing is at that "
                                              r"address; check its spelling"):
        resolve(server.url + "/gone.tar.gz")
    assert len(server.requests) == 1


def test_a_stalled_downloads_bar_is_redrawn_with_a_falling_rate(server, tmp_path):
    # tqdm draws on update only: while no byte came, the bar stood frozen with its last
    # speed and elapsed time, for up to HUBENSEMBLE_HTTP_TIMEOUT per read.
    from tqdm import tqdm

    body = os.urandom(200_000)
    url = server.add("/big.bin", ok(body, "stall"))
    stream = io.StringIO()
    bar = tqdm(total=None, file=stream, unit="B", smoothing=0.3, mininterval=0)
    done = {}

    def fetch():
        with remote.redrawn(bar, interval=0.02):
            done["digest"] = remote.download(url, tmp_path / "big.bin", timeout=30,
                                             deadline=time.monotonic() + 60, progress=bar)

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()

    def wait_for(condition):
        end = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < end and thread.is_alive()
            time.sleep(0.01)

    wait_for(lambda: bar.n >= len(body) // 2 and bar.format_dict["rate"])
    # The half download is a temp file named by its writer (`tempnames.temp_file_for`), as
    # every atomic write's is: a ".download-XXXXXXXX" a kill left stayed for good.
    from hubensemble.fileio import writer_tag

    assert [re.sub(r"\.\w{8}\.", ".X.", p.name) for p in tmp_path.iterdir()] == [
        f".tmp-big.bin.X.{writer_tag()}"]
    rate, drawn = bar.format_dict["rate"], stream.getvalue()
    wait_for(lambda: (bar.format_dict["rate"] or 0) < rate / 10)
    assert bar.n == len(body) // 2 and len(stream.getvalue()) > len(drawn)  # redrawn, stalled
    server.resume.set()
    thread.join(30)
    bar.close()
    assert done["digest"] == hashlib.sha256(body).hexdigest()


def test_a_killed_downloads_or_copys_temp_entry_is_removed_by_the_next_one(server, tmp_path):
    """A download (a .keras URL, ImageNet weights into Keras' cache) or a copy (a gs://
    module or file into tensorflow_hub's cache) killed half-way (SIGKILL, the OOM killer)
    left its temp entry, ".download-XXXXXXXX" or ".copy-XXXXXXXX", which named no writer:
    nothing could tell it from a live download's, and it stayed for good (MBs of weights).
    Now each is named by its writer (`tempnames.temp_file_for`, `temp_dir_for`), and the next
    download or copy there removes a dead writer's; a live writer's stays."""
    import socket
    import subprocess

    from hubensemble.fileio import process_start

    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = f"{dead.pid}_1@{socket.gethostname()}"
    folder = tmp_path / "keras"
    folder.mkdir()
    left = [folder / f".tmp-w.h5.k2j9x1ab.{gone}", folder / f".tmp-m.keras.a1b2c3d4.{gone}"]
    live = folder / f".tmp-w.h5.zzzzzzzz.{os.getpid()}_{process_start(os.getpid())}" \
        f"@{socket.gethostname()}"
    for path in left + [live]:
        path.write_bytes(b"half")
    url = server.add("/w.h5", ok(b"w" * 3000))
    remote.download(url, folder / "w.h5", timeout=10, deadline=time.monotonic() + 60)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["w.h5", live.name])
    # A folder copied whole: a dead copy's folder beside it goes, the copy is complete.
    source, cache = tmp_path / "src", tmp_path / "hub"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"pb")
    (source / "variables" / "variables.index").write_bytes(b"ix")
    cache.mkdir()
    (cache / f".tmp-abc.{gone}" / "variables").mkdir(parents=True)
    assert remote.copy_tree(str(source), str(cache / "abc"), timeout=10,
                            deadline=time.monotonic() + 60) == 2
    assert sorted(p.name for p in cache.iterdir()) == ["abc"]
    assert (cache / "abc" / "variables" / "variables.index").read_bytes() == b"ix"


def test_a_download_that_stalls_says_how_far_it_got_and_the_way_on(
        server, tarball, hub_cache, monkeypatch, tmp_path):
    # It said "TimeoutError: timed out (no answer in time: …)": not that half had come.
    from hubensemble.hub import resolvers

    monkeypatch.setattr(resolvers, "HTTP_TIMEOUT", 0.3)
    url = server.add("/m.tar.gz", ok(tarball, "stall"))
    with pytest.raises(ModuleLoadError) as err:
        resolvers.resolve(url)
    n = len(tarball)
    assert err.value.stage == "network" and (
        f"TimeoutError: no byte came for 0.3 s after {n // 2} of {n} bytes (no answer in "
        "time: check your connection, or raise HUBENSEMBLE_HTTP_TIMEOUT (now 0.3 s)"
        in str(err.value)), str(err.value)
    assert len(server.requests) == 1  # a timeout already waited: not tried again
    url = server.add("/file.bin", ok(b"z" * 4000, "stall"))
    with pytest.raises(TimeoutError, match="no byte came for 0.3 s after 2000 of 4000 bytes"):
        remote.download(url, tmp_path / "file.bin", timeout=0.3,
                        deadline=time.monotonic() + 60)


def test_a_body_longer_than_its_content_length_is_named_and_tried_again(
        server, tarball, hub_cache, caplog):
    # http.client reads only the announced bytes: the module failed as "ReadError: the
    # archive's gzip data is damaged (EOFError: ...)" (the download is not a valid SavedModel
    # tarball), at the archive stage, and was not tried again.
    from hubensemble.hub.resolvers import resolve

    url = server.add("/m.tar.gz", ok(tarball, "long"), ok(tarball))
    with caplog.at_level(logging.WARNING):
        path = resolve(url, sha256=hashlib.sha256(tarball).hexdigest())
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    n = len(tarball)
    assert (f"ConnectionError: the body is longer than its Content-Length of {n - 1000} "
            "bytes") in caplog.text and len(server.requests) == 2
    server.add("/m2.tar.gz", ok(tarball, "long"))
    with pytest.raises(ModuleLoadError) as err:
        resolve(server.url + "/m2.tar.gz")
    assert err.value.stage == "network" and (
        f"the body is longer than its Content-Length of {n - 1000} bytes" in str(err.value)
        and "tried 3 times" in str(err.value)), str(err.value)
    # A file download (a .keras URL) was kept cut to the announced bytes.
    target = hub_cache.parent / "file.bin"
    url = server.add("/file.bin", ok(b"x" * 5000, "long"))
    with pytest.raises(ConnectionError, match="longer than its Content-Length of 4000 bytes"):
        remote.download(url, target, timeout=10, deadline=time.monotonic() + 60)
    assert not target.exists()
    # A gzip-encoded one too (its Content-Length is the encoded size).
    url = server.add("/gz.bin", (200, gzip.compress(os.urandom(5000)), {"Content-Encoding": "gzip"},
                                 "long"))
    with pytest.raises(ConnectionError, match="longer than its Content-Length"):
        remote.download(url, target, timeout=10, deadline=time.monotonic() + 60)


def test_a_retry_after_given_as_an_http_date_is_waited_for(server, tarball, hub_cache):
    # "Retry-After: <an HTTP date>" was taken as no header: the default wait (1 s), and a
    # date hours away was tried again at once rather than given up on.
    def answered(after):
        headers = Message()
        headers["Retry-After"] = after
        return urllib.error.HTTPError("http://h/m.tar.gz", 503, "Busy", headers, None)

    wait = remote.retry_wait(answered(formatdate(time.time() + 30, usegmt=True)), 1)
    assert 25 < wait <= 30
    assert remote.retry_wait(answered(formatdate(time.time() - 30, usegmt=True)), 1) == 0
    assert remote.retry_wait(answered(formatdate(time.time() + 3600, usegmt=True)), 1) is None
    assert remote.retry_wait(answered("soon"), 1) == remote.RETRY_WAITS[0]
    from hubensemble.hub.resolvers import resolve

    later = formatdate(time.time() + 3600, usegmt=True)
    url = server.add("/m.tar.gz", (503, b"", {"Retry-After": later}), ok(tarball))
    with pytest.raises(ModuleLoadError, match="HTTP Error 503"):
        resolve(url)
    assert len(server.requests) == 1  # an hour away: not waited for


#: The headers of a file the Hugging Face Hub answers (huggingface_hub reads the commit and
#: the ETag of its HEAD).
HF = {"X-Repo-Commit": "0" * 40, "ETag": '"e"'}
#: The kagglehub request of one file of a model version (keras-hub asks file by file).
KAGGLE_FILE = "/api/v1/models.ModelApiService/DownloadModelInstanceVersion"


@pytest.fixture
def presets(server, tmp_path, monkeypatch):
    """keras-hub's loaders asking `server`, with no account key, each into a cache of its
    own (returned: {"kaggle": folder, "hf": folder}): kagglehub through it as a proxy of its
    LOCALHOST endpoint (http://localhost), huggingface_hub with it as its endpoint (what
    HF_ENDPOINT sets when huggingface_hub is imported)."""
    pytest.importorskip("keras_hub")
    from huggingface_hub import constants

    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, server.url)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-key"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-hf-token"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"))
    monkeypatch.setattr(remote, "RETRY_WAITS", (0.0, 0.0))
    server.add(f"{KAGGLE_FILE}/model.weights.h5", ok(WEIGHTS))
    return {"kaggle": tmp_path / "kaggle", "hf": tmp_path / "hf"}


#: The first bytes of Keras' HDF5 weights file (model.weights.h5): what a preset's weights
#: hold (hub.loaders.preset_files_problem reads no further).
WEIGHTS = b"\x89HDF\r\n\x1a\n" + bytes(56)


def _hf_preset(server, repo, config_answers=()):
    for name in ("config.json", "metadata.json", "model.weights.h5"):
        # huggingface_hub keeps a body by its ETag: each file its own.
        server.add(f"/{repo}/resolve/main/{name}",
                   *(config_answers if name == "config.json" else ()),
                   ok(WEIGHTS if name.endswith(".h5") else b"{}",
                      headers={**HF, "ETag": f'"{name}"'}))


def test_a_preset_fetch_that_fails_for_a_moment_is_tried_again(server, presets, caplog):
    # kagglehub asks once: a kaggle:// preset failed at a 503 ("[network] keras-hub cannot
    # fetch the preset: ValueError: 503 Server Error … (check the handle and your
    # connection)"), and huggingface_hub asks for a file's body once on a 5xx.
    from hubensemble.hub.sources import fetch_preset

    server.add(KAGGLE_FILE, (503, b"", {"Retry-After": "0"}), ok(b"{}"))
    with caplog.at_level(logging.WARNING):
        folder = fetch_preset("kaggle://o/m/keras/v/1", deadline_seconds=60)
    assert {"config.json", "metadata.json", "model.weights.h5"} <= set(os.listdir(folder))
    assert "fetching the preset kaggle://o/m/keras/v/1: " in caplog.text
    assert "trying again in 0 s (try 2 of 3)" in caplog.text
    _hf_preset(server, "o/m", [(503, b"", {"Retry-After": "0", **HF})])
    folder = fetch_preset("hf://o/m", deadline_seconds=60)
    assert open(os.path.join(folder, "config.json")).read() == "{}"
    # A connection reset mid-file (kagglehub: ChunkedEncodingError): fetched whole again.
    server.add(KAGGLE_FILE, ok(b"x" * 5000, "short"), ok(b"{}"))
    folder = fetch_preset("kaggle://o/c/keras/v/1", deadline_seconds=60)
    assert open(os.path.join(folder, "config.json")).read() == "{}"
    # Failing for good: said with the tries, and nothing of it is taken for the file later.
    server.add(KAGGLE_FILE, *[(503, b"", {"Retry-After": "0"})] * 3, ok(b"{}"))
    _hf_preset(server, "o/n", [(502, b"", HF)] * 3)  # (a HEAD is answered 200: the last)
    for handle, cache in (("kaggle://o/n/keras/v/1", presets["kaggle"]),
                          ("hf://o/n", presets["hf"])):
        server.requests.clear()
        with pytest.raises(ModuleLoadError) as err:
            fetch_preset(handle, deadline_seconds=60)
        assert err.value.stage == "network" and (
            "(tried 3 times: the server is failing for now; try again later)" in str(err.value)
            and said_once(err.value, 502 if handle.startswith("hf") else 503)), str(err.value)
        assert len([p for p in server.requests if p[0].endswith(("DownloadModelInstanceVersion",
                                                                 "config.json"))]) == 3
        assert not [p for p in cache.rglob("*") if "o/n" in p.as_posix().replace("--", "/")
                    and (p.name in ("config.json", "config.json.complete"))]
    for handle in ("kaggle://o/n/keras/v/1", "hf://o/n"):  # back: fetched whole
        assert os.path.isfile(os.path.join(fetch_preset(handle, deadline_seconds=60),
                                           "model.weights.h5"))


def test_a_refusal_names_the_status_and_whose_key_to_set(server, tarball, hub_cache,
                                                         presets, monkeypatch):
    # Every refusal said "HTTP Error 403: Forbidden (check the URL and your connection)" (or
    # kagglehub's and huggingface_hub's own words), and a kaggle: archive was asked for
    # without the account key that KAGGLE_USERNAME and KAGGLE_KEY name.
    from hubensemble.hub.resolvers import resolve
    from hubensemble.hub.sources import fetch_preset

    def refused(fetch, handle):
        with pytest.raises(ModuleLoadError) as err:
            fetch(handle)
        assert err.value.stage == "network" and handle in str(err.value)
        return str(err.value)

    url = server.add("/m.tar.gz", (403, b"Forbidden"))
    assert ("HTTP Error 403: Forbidden (the server refuses it without a login hubensemble does "
            "not send: download the module yourself and give its local folder or file as the "
            "handle)"
            in refused(resolve, url))
    monkeypatch.setenv("KAGGLE_API_ENDPOINT", server.url)
    server.add("/api/v1/models/o/m/tensorFlow2/v/1/download", (401, b""), ok(tarball))
    said = refused(resolve, "kaggle:o/m/tensorFlow2/v/1")
    assert ("HTTP Error 401: Unauthorized (Kaggle refuses it without an account's key: set "
            "KAGGLE_USERNAME and KAGGLE_KEY (your API token, from kaggle.com/settings; or "
            "~/.kaggle/kaggle.json)"
            in said), said
    assert not [p for p in hub_cache.iterdir() if not p.name.endswith(".lock")]
    server.add(KAGGLE_FILE, (403, b""))
    said = refused(lambda h: fetch_preset(h, deadline_seconds=60), "kaggle://o/m/keras/v/1")
    assert said_once(said, 403) and "doesn't exist" not in said and (
        "(Kaggle refuses it without an account's key: set KAGGLE_USERNAME" in said), said
    server.add("/o/gated/resolve/main/config.json", (401, b"", {"X-Error-Code": "GatedRepo", **HF}))
    said = refused(lambda h: fetch_preset(h, deadline_seconds=60), "hf://o/gated")
    assert said_once(said, 401) and (
        "(the Hugging Face Hub refuses it: a gated or private repository" in said)
    assert "set HF_TOKEN to a token (huggingface.co/settings/tokens)" in said, said
    assert not list(presets["hf"].rglob("config.json"))
    # The key set: sent to Kaggle's API (not on to where it redirects), and the module comes.
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "k3y")
    server.auth.clear()
    assert os.path.isfile(os.path.join(resolve("kaggle:o/m/tensorFlow2/v/1"), "saved_model.pb"))
    assert server.auth == ["Basic " + base64.b64encode(b"someone:k3y").decode("ascii")]
    # Never in clear over a network: only over https, or to this machine.
    from hubensemble.hub.hosts import kaggle_authorization

    assert kaggle_authorization("http://mirror.example/api/v1/models/o/m/t/v/1/download") is None
    assert kaggle_authorization("https://www.kaggle.com/api/v1/x") == server.auth[0]
    # A key sent and refused: said so, with where it was read (it said to set the key).
    server.add("/api/v1/models/o/k/tensorFlow2/v/1/download", (401, b""))
    said = refused(resolve, "kaggle:o/k/tensorFlow2/v/1")
    assert ("HTTP Error 401: Unauthorized (Kaggle refuses the key of the account 'someone' (read "
            "from KAGGLE_USERNAME and KAGGLE_KEY of the environment): check that key, or make a "
            "new API token at kaggle.com/settings;" in said and "without" not in said), said
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name)
    config = os.environ["KAGGLE_CONFIG_DIR"]
    os.makedirs(config)
    with open(os.path.join(config, "kaggle.json"), "w") as f:
        json.dump({"username": "other", "key": "k"}, f)
    said = refused(lambda h: fetch_preset(h, deadline_seconds=60), "kaggle://o/m/keras/v/1")
    assert said_once(said, 403) and (
        f"Kaggle refuses the key of the account 'other' (read from "
        f"{os.path.join(config, 'kaggle.json')})") in said, said
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    said = refused(lambda h: fetch_preset(h, deadline_seconds=60), "hf://o/gated")
    assert said_once(said, 401) and (
        "(the Hugging Face Hub refuses it with the token sent (read from HF_TOKEN of the "
        "environment): a gated or private repository that token's account cannot read" in said
    ), said


def test_a_used_up_allowance_says_what_402_means_there_and_the_servers_reason(
        server, hub_cache, presets, monkeypatch):
    # huggingface_hub 2.5's EgressLimitError (HTTP 402, X-Error-Code EgressLimitReached) was
    # "keras-hub cannot fetch the preset: EgressLimitError: 402 Client Error. (check the
    # handle and your connection)": 402 had no words, and its second line and the server's
    # reason were cut (huggingface_hub 2.4 said keras-hub's "`config.json` doesn't exist").
    from hubensemble.hub.resolvers import resolve
    from hubensemble.hub.sources import fetch_preset

    def refused(fetch, handle):
        with pytest.raises(ModuleLoadError) as err:
            fetch(handle)
        said = str(err.value)
        assert err.value.stage == "network" and said_once(said, 402), said
        assert "check the handle" not in said and "check the URL" not in said, said
        return said

    url = server.add("/q.tar.gz", (402, b"Monthly download quota of 10 GB used up",
                                   {"Content-Type": "text/plain"}))
    said = refused(resolve, url)
    assert ("HTTP Error 402: Payment Required (the server asks for payment or a quota that is "
            "used up" in said and "the server says: 'Monthly download quota of 10 GB used up'"
            in said), said
    reason = "You have downloaded 1.2 TB over the last 30 days (allowance: 1 TB)"
    server.add("/o/big/resolve/main/config.json", (402, b"", {
        "X-Error-Code": "EgressLimitReached", "X-Error-Message": reason, **HF}))
    preset = lambda h: fetch_preset(h, deadline_seconds=60)  # noqa: E731
    said = refused(preset, "hf://o/big")
    assert "doesn't exist" not in said and reason in said, said
    assert ("the Hugging Face Hub's download allowance for downloads without a token (none is "
            "sent: HF_TOKEN is not set) is used up: set HF_TOKEN" in said), said
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    said = refused(preset, "hf://o/big")
    assert ("download allowance of the account of the token sent (read from HF_TOKEN of the "
            "environment), or of its organization, is used up: wait until it renews, raise it"
            in said and "EgressLimitReached" in said), said
    server.add(KAGGLE_FILE, (402, b'{"message": "Quota exceeded"}',
                             {"Content-Type": "application/json"}))
    said = refused(preset, "kaggle://o/q/keras/v/1")
    assert ("Kaggle asks for payment or a quota that is used up" in said
            and "the server says: 'Quota exceeded'" in said), said


def test_a_web_page_or_a_rate_limit_is_said_as_such_and_nothing_is_kept(server, hub_cache):
    # A 429 asking for an hour said "HTTP Error 429: Too Many Requests (check the URL and your
    # connection)". A sign-in page answered 200 is named by hub.archive: not tried again,
    # not kept.
    from hubensemble.hub.resolvers import resolve

    page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
    with pytest.raises(ModuleLoadError) as err:
        resolve(server.add("/a.tar.gz", ok(page, headers={"Content-Type": "text/html"})))
    assert err.value.stage == "archive" and (
        "not a tar archive: it holds text (it starts with '<!DOCTYPE html>" in str(err.value)
        and "such as a web page or an error message a server sent" in str(err.value))
    assert len(server.requests) == 1  # not tried again
    url = server.add("/r.tar.gz", (429, b"", {"Retry-After": "0"}),
                     (429, b"", {"Retry-After": "3600"}))
    with pytest.raises(ModuleLoadError) as err:
        resolve(url)
    assert err.value.stage == "network" and (
        "HTTP Error 429: Too Many Requests (tried 2 times: the server limits how often it is "
        "asked, and asks to wait 3600 s (longer than the 60 s hubensemble waits); try again "
        "later)" in str(err.value) and said_once(err.value, 429)), str(err.value)
    assert not [p for p in hub_cache.iterdir() if not p.name.endswith(".lock")]


def test_a_wrong_file_a_presets_loader_kept_is_dropped_and_fetched_again(server, presets):
    # A sign-in page answered 200 for a kaggle:// or hf:// preset's config.json was kept by
    # kagglehub / huggingface_hub, failed at load ("keras-hub cannot load the preset:
    # JSONDecodeError: …") and failed every later run the same way without a request, until
    # the user found the folder deep in ~/.cache/kagglehub or ~/.cache/huggingface.
    from hubensemble.hub.sources import fetch_preset, load_preset

    page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
    for handle, cache, loader in (("kaggle://o/p/keras/v/1", presets["kaggle"], "kagglehub"),
                                  ("hf://o/p", presets["hf"], "huggingface_hub")):
        server.add(KAGGLE_FILE, ok(page))
        _hf_preset(server, "o/p")
        server.add("/o/p/resolve/main/config.json", ok(page, headers={**HF, "ETag": '"page"'}))
        with pytest.raises(ModuleLoadError) as err:
            fetch_preset(handle, deadline_seconds=60)
        said = str(err.value)
        assert err.value.stage == "load" and (
            "keras-hub fetched a file that is not the preset's: config.json is not keras-hub's "
            "JSON: it holds text (it starts with '<!DOCTYPE html>" in said
            and f"; its files were removed from {loader}'s cache (" in said
            and "so the next run fetches them again" in said), said
        assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".lock"
                    and p.name != "CACHEDIR.TAG"], said
        server.add(KAGGLE_FILE, ok(b"{}"))  # the network back
        _hf_preset(server, "o/p")
        folder = fetch_preset(handle, deadline_seconds=60)  # fetched again: the file now
        assert open(os.path.join(folder, "config.json")).read() == "{}"
        # Fetched whole, but keras-hub cannot load it: not kept either.
        with pytest.raises(ModuleLoadError) as err:
            load_preset(folder, handle=handle)
        assert err.value.stage == "load" and (
            f"its files were removed from {loader}'s cache ({folder})" in str(err.value)
        ), str(err.value)
        assert not os.path.exists(folder)
    # A local folder is never removed; a folder outside the loader's cache is named.
    local = presets["kaggle"].parent / "local"
    local.mkdir()
    (local / "config.json").write_text("{}")
    with pytest.raises(ModuleLoadError) as err:
        load_preset(str(local))
    assert "removed" not in str(err.value) and local.exists()
    from hubensemble.hub.loaders import drop_preset

    said = drop_preset("kaggle://o/p/keras/v/1", str(local))
    assert said == (f"its files stay at {local} (not kagglehub's folder of a model version): "
                    "delete that folder so that the next run fetches them again")
    assert local.exists()


def test_weights_keras_has_no_hash_for_are_checked(server, tmp_path, monkeypatch):
    # keras.applications.MobileNet and MobileNetV2 ask get_file for their weights without a
    # hash: a page a server answered 200 for one was kept in Keras' cache and failed every
    # later build ("keras.applications.MobileNet cannot be built with the weights …").
    from keras.src.backend import config

    from hubensemble.hub import sources

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    (tmp_path / "keras_home").mkdir()
    request = sources.imagenet_weights_request("MobileNet", (224, 224))
    assert request.file_hash is None  # (Keras 3.15) the kind this test guards
    monkeypatch.setenv(sources.WEIGHTS_MIRROR_ENV, server.url)
    server.add(f"/{request.fname}", ok(b"<!DOCTYPE html><html>Sign in</html>"))

    def fetch():
        return sources.fetch_imagenet_weights("MobileNet", (224, 224), timeout=10,
                                              deadline=time.monotonic() + 60)

    with pytest.raises(ModuleLoadError) as err:
        fetch()
    assert err.value.stage == "load" and (
        "is not an HDF5 file: it holds text (it starts with '<!DOCTYPE html>" in
        str(err.value) and "removed it, so the next run downloads it again" in str(err.value)
    ), str(err.value)
    assert not os.path.exists(request.path)
    with open(request.path, "wb") as f:  # one someone put there: named, and left
        f.write(b"<html>")
    with pytest.raises(ModuleLoadError, match="delete it so that it is downloaded again"):
        fetch()
    os.unlink(request.path)
    server.add(f"/{request.fname}", ok(WEIGHTS))
    assert fetch() == request.path


def test_a_presets_loaders_print_only_while_progress_shows(server, presets, capsys,
                                                           monkeypatch):
    # kagglehub printed "Downloading to …/config.json..." and a progress bar per file, and
    # huggingface_hub its bars, whatever -q said. Now they follow hubensemble's progress
    # setting (off here: a bare library call), only for the fetch.
    monkeypatch.setenv("TQDM_POSITION", "-1")  # huggingface_hub's bars as on a terminal
    from huggingface_hub.utils import are_progress_bars_disabled
    from kagglehub import clients

    from hubensemble.hub.sources import fetch_preset
    from hubensemble.terminal import library_progress

    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    kaggle_log = logging.getLogger("kagglehub")  # its own stdout handler, not propagated
    level, bar = kaggle_log.level, clients.tqdm
    server.add(KAGGLE_FILE, ok(b"{}"))
    kaggle_log.addHandler(handler)
    try:
        for repo in ("o/q", "o/r"):
            _hf_preset(server, repo)
        fetch_preset("kaggle://o/q/keras/v/1", deadline_seconds=60)
        fetch_preset("hf://o/q", deadline_seconds=60)
        quiet, quiet_said = capsys.readouterr(), list(said)
        with library_progress(True):
            fetch_preset("kaggle://o/r/keras/v/1", deadline_seconds=60)
            fetch_preset("hf://o/r", deadline_seconds=60)
        shown = capsys.readouterr()
    finally:
        kaggle_log.removeHandler(handler)
    assert not quiet_said and "100%" not in quiet.err + quiet.out, (quiet_said, quiet)
    assert [s for s in said if s.startswith("Downloading to ")], said
    assert "100%" in shown.err and "config.json" in shown.err, shown.err  # hf's bar names it
    # As they were for the rest of the process.
    assert kaggle_log.level == level and clients.tqdm is bar
    assert not are_progress_bars_disabled("huggingface_hub.http_get")


def test_an_abandoned_preset_fetch_stays_quiet_to_its_end(server, presets, capsys):
    # The loaders take no timeout: a fetch past its deadline is abandoned in its thread,
    # which goes on with the preset's next files. The quieting ended with the call, so those
    # printed kagglehub's "Downloading to …/metadata.json..." and its bars after the error.
    from huggingface_hub.utils import are_progress_bars_disabled
    from kagglehub import clients

    from hubensemble.hub.sources import fetch_preset

    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    kaggle_log = logging.getLogger("kagglehub")
    level, bar = kaggle_log.level, clients.tqdm
    server.add(f"{KAGGLE_FILE}/config.json", ok(b"{}", "stall"))  # half, then server.resume
    server.add(KAGGLE_FILE, ok(b"{}"))
    before = set(threading.enumerate())
    kaggle_log.addHandler(handler)
    try:
        with pytest.raises(ModuleLoadError, match="HUBENSEMBLE_DOWNLOAD_DEADLINE"):
            fetch_preset("kaggle://o/a/keras/v/1", deadline_seconds=0.5)
        abandoned = [t for t in threading.enumerate()
                     if t not in before and t.name == "hubensemble-remote-read"]
        assert abandoned and clients.tqdm is not bar  # still fetching: still quiet
        server.resume.set()
        for thread in abandoned:
            thread.join(30)
        assert not [t for t in abandoned if t.is_alive()]
    finally:
        server.resume.set()
        kaggle_log.removeHandler(handler)
    out = capsys.readouterr()
    assert not said and "100%" not in out.err + out.out, (said, out)
    assert {"metadata.json", "model.weights.h5"} <= set(os.listdir(
        presets["kaggle"] / "models/o/a/keras/v/1"))  # the thread did fetch them
    # Put back when the last fetch ended.
    assert kaggle_log.level == level and clients.tqdm is bar
    assert not are_progress_bars_disabled("huggingface_hub.http_get")


def test_overlapping_quiet_fetches_put_the_loaders_back_when_the_last_ends():
    # Two fetches' quiet blocks in two threads end in any order (an abandoned fetch ends
    # after the next began): each put back what it saw at its start, so the first to end
    # made the other loud and the last made the loaders quiet for good.
    pytest.importorskip("kagglehub")
    import huggingface_hub.utils._http as hf_http
    from huggingface_hub.utils import are_progress_bars_disabled
    from kagglehub import clients

    from hubensemble.hub.loaders import capped_loader_waits, quiet_loaders

    kaggle_log, bar = logging.getLogger("kagglehub"), clients.tqdm
    level, factory = kaggle_log.level, hf_http._GLOBAL_CLIENT_FACTORY
    blocks = [quiet_loaders(True), capped_loader_waits(), quiet_loaders(True),
              capped_loader_waits()]
    for block in blocks:
        block.__enter__()
    try:
        for block in blocks[:2]:  # the first thread's fetch ends first
            block.__exit__(None, None, None)
        assert clients.tqdm is not bar and kaggle_log.level >= logging.WARNING
        assert are_progress_bars_disabled("huggingface_hub.http_get")
        assert hf_http._GLOBAL_CLIENT_FACTORY is not factory  # still capped
    finally:
        for block in blocks[2:]:
            block.__exit__(None, None, None)
    assert clients.tqdm is bar and kaggle_log.level == level
    assert not are_progress_bars_disabled("huggingface_hub.http_get")
    assert hf_http._GLOBAL_CLIENT_FACTORY is factory


def test_a_dropped_connection_goes_on_from_its_last_byte(server, tarball, hub_cache, tmp_path,
                                                         caplog):
    # A connection reset mid-archive started the download again from byte 0 (a 300 MB
    # archive on a link that drops once per 150 MB came whole in 40 % of fetches; 97 % going
    # on: tools/benchmarks/bench_resume.py). Now the rest is asked for with Range, where the
    # server takes ranges, and only the same file's rest is taken.
    from hubensemble.hub.resolvers import resolve

    ranges = {"Accept-Ranges": "bytes", "ETag": '"v1"'}
    url = server.add("/m.tar.gz", ok(tarball, "cut", ranges), ok(tarball, headers=ranges))
    with caplog.at_level(logging.WARNING):
        path = resolve(url, sha256=hashlib.sha256(tarball).hexdigest())
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    n = len(tarball)
    assert server.ranges == [None, f"bytes={n // 2}-"]
    assert (f"downloading {url}: the connection closed after {n // 2} of {n} bytes; asking "
            "for the rest in 0 s (1 of 2)") in caplog.text, caplog.text
    body = os.urandom(50_000)  # a file download (a .keras URL, weights) the same way
    server.ranges.clear()
    url = server.add("/f.bin", ok(body, "cut", ranges), ok(body, headers=ranges))
    digest = remote.download(url, tmp_path / "f.bin", timeout=10, deadline=time.monotonic() + 60)
    assert digest == hashlib.sha256(body).hexdigest() and server.ranges == [None, "bytes=25000-"]
    # The file changed meanwhile (another ETag: the server sends it whole) or the server
    # takes no ranges: that try ends, and the next starts from byte 0.
    changed = os.urandom(50_000)
    server.ranges.clear()
    url = server.add("/g.bin", ok(body, "cut", ranges),
                     ok(changed, headers={**ranges, "ETag": '"v2"'}))
    digest = remote.download(url, tmp_path / "g.bin", timeout=10, deadline=time.monotonic() + 60)
    assert digest == hashlib.sha256(changed).hexdigest()
    assert server.ranges == [None, "bytes=25000-", None]
    for name, headers in (("h.bin", {}), ("k.bin", {"Accept-Ranges": "bytes"})):  # no ETag:
        server.ranges.clear()  # the rest could be of a file changed meanwhile
        url = server.add(f"/{name}", ok(body, "cut", headers), ok(body, headers=headers))
        remote.download(url, tmp_path / name, timeout=10, deadline=time.monotonic() + 60)
        assert server.ranges == [None, None]


def test_a_preset_that_is_not_the_pinned_one_is_dropped_from_its_loaders_cache(server, presets):
    # A kaggle:// or hf:// preset whose model.weights.h5 is a valid file but not the one the
    # catalogue's sha256 pins failed the pin (stage "checksum") and stayed in the loader's
    # cache: every later run failed the same way without a request.
    from hubensemble.hub.locate import locate

    for handle, cache, loader in (("kaggle://o/p/keras/v/1", presets["kaggle"], "kagglehub"),
                                  ("hf://o/p", presets["hf"], "huggingface_hub")):
        server.add(KAGGLE_FILE, ok(b"{}"))
        _hf_preset(server, "o/p")
        with pytest.raises(ModuleLoadError) as err:
            locate(handle, name="m", sha256="0" * 64)
        said = str(err.value)
        assert err.value.stage == "checksum" and "the catalogue expects 000" in said and (
            f"its files were removed from {loader}'s cache (" in said), said
        assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".lock"
                    and p.name != "CACHEDIR.TAG"], said


def test_a_sharded_preset_is_fetched_checked_and_pinned_whole(server, presets, tmp_path):
    # keras-hub saves a backbone above its max_shard_size as model.weights.json (Keras'
    # index: {"weight_map": {variable path: shard or [shards]}}) beside its shards, with no
    # model.weights.h5: fetch_preset asked for model.weights.h5 alone and failed such a
    # kaggle:// or hf:// preset ("`model.weights.h5` doesn't exist in preset directory").

    from hubensemble.hub.locate import locate
    from hubensemble.hub.resolvers import resolve
    from hubensemble.hub.sources import fetch_preset

    shards = ("model_00000.weights.h5", "model_00001.weights.h5")
    index = json.dumps({"metadata": {"total_size": 128.0}, "weight_map": {
        "/layers/dense/vars": [shards[0]], "/layers/dense_1/vars": [shards[0], shards[1]],
        "/layers/dense_2/vars": shards[1]}}).encode()
    files = {"config.json": b"{}", "metadata.json": b"{}", "model.weights.json": index,
             shards[0]: WEIGHTS + b"0", shards[1]: WEIGHTS + b"1"}
    page = b"<!DOCTYPE html><html>Sign in</html>"
    missing = (404, b"", {**HF, "X-Error-Code": "EntryNotFound"})  # huggingface_hub's 404

    def serve(repo, bodies):
        server.add(f"{KAGGLE_FILE}/model.weights.h5", (404, b""))
        for name, body in bodies.items():
            server.add(f"{KAGGLE_FILE}/{name}", ok(body))
            server.add(f"/{repo}/resolve/main/{name}",
                       ok(body, headers={**HF, "ETag": f'"{repo}{name}{len(body)}"'}))
        for name in ("model.weights.h5", "image_converter.json"):
            server.add(f"/{repo}/resolve/main/{name}", missing)

    pin = hashlib.sha256(index + files[shards[0]] + files[shards[1]]).hexdigest()
    serve("o/s", files)
    for handle in ("kaggle://o/s/keras/v/1", "hf://o/s"):
        folder = locate(handle, name="m", sha256=pin).path  # the pin: the index, its shards
        assert {"model.weights.json", *shards} <= set(os.listdir(folder)), os.listdir(folder)
        assert "model.weights.h5" not in os.listdir(folder)
    with pytest.raises(ModuleLoadError) as err:
        locate("kaggle://o/s/keras/v/1", name="m", sha256="0" * 64)
    assert err.value.stage == "checksum" and (
        f"sha256 of model.weights.json and its 2 shards (cat model.weights.json {shards[0]} "
        f"{shards[1]} | sha256sum) is {pin}" in str(err.value)), str(err.value)
    # A shard that is a web page, or a shard named outside the folder: named, not kept (the
    # check reads the folder, whichever loader fetched it).
    for handle, bodies, said in (
            ("hf://o/p", {**files, shards[1]: page}, f"{shards[1]} is not an HDF5 file: "
             "it holds text (it starts with '<!DOCTYPE html>"),
            ("kaggle://o/t/keras/v/1", {**files, "model.weights.json": json.dumps(
                {"weight_map": {"/x": "../x.weights.h5"}}).encode()},
             "model.weights.json names the shard '../x.weights.h5', which is not a file name "
             "in the preset's folder")):
        serve(handle.split("//")[1][:3], bodies)
        with pytest.raises(ModuleLoadError) as err:
            fetch_preset(handle, deadline_seconds=60)
        assert err.value.stage == "load" and said in str(err.value) and (
            "so the next run fetches them again" in str(err.value)), str(err.value)
    # A local sharded preset: pinned the same way, and its key follows every shard.
    local = tmp_path / "local"
    local.mkdir()
    for name, body in files.items():
        (local / name).write_bytes(body)
    assert resolve(str(local), sha256=pin) == str(local)
    key = locate(str(local)).fingerprint
    (local / shards[1]).write_bytes(WEIGHTS + b"2")
    assert locate(str(local)).fingerprint != key
    (local / shards[1]).unlink()  # named, not an OSError of one file
    with pytest.raises(ModuleLoadError, match=f"{shards[1]}, a shard model.weights.json "
                       "names, is missing") as err:
        locate(str(local))
    assert err.value.stage == "load"


def test_a_presets_loader_waits_no_longer_than_hubensemble(server, presets, caplog):
    # huggingface_hub waits a Retry-After itself ("Rate limited. Waiting 3601.0s before
    # retry [Retry 1/5]", for a HEAD answered 503 or a file's body answered 429): an hf://
    # preset so answered waited up to 5 h, past the 60 s cap of every other download. Now
    # said at once, as an archive's is, and nothing of it is logged twice.
    import huggingface_hub.utils._http as hf_http
    from hubensemble.hub.sources import fetch_preset

    factory, hf_logger = hf_http._GLOBAL_CLIENT_FACTORY, logging.getLogger("huggingface_hub")
    handlers = list(hf_logger.handlers)
    wait = {"Retry-After": "3600", **HF}
    _hf_preset(server, "o/w")
    server.heads["/o/w/resolve/main/config.json"] = (503, b"", wait, None)
    _hf_preset(server, "o/r", [(429, b"", wait)] * 6)
    for handle, status in (("hf://o/w", 503), ("hf://o/r", 429)):
        server.requests.clear()
        with pytest.raises(ModuleLoadError) as err:
            fetch_preset(handle, deadline_seconds=3)
        assert err.value.stage == "network" and (
            f"HTTP {status} with Retry-After: 3600 (the server " in str(err.value)
            and said_once(err.value, status) and "and asks to wait 3600 s "
            "(longer than the 60 s hubensemble waits); try again later" in str(err.value)
        ), str(err.value)
        assert len([p for p in server.requests if p[0].endswith("config.json")]) <= 1
    assert hf_http._GLOBAL_CLIENT_FACTORY is factory and hf_logger.handlers == handlers


def test_huggingface_hubs_records_are_shown_once_during_a_fetch(caplog):
    # huggingface_hub's logger hands each record to a StreamHandler of its own (stderr) and
    # on to the root logger's handlers: under hubensemble's (the commands', which also write
    # RUN/log.txt) its "Retrying in 1s [Retry 1/5]." was shown twice, raw and as "WARNING
    # huggingface_hub.utils._http: …". While a preset is fetched (loaders.capped_loader_waits)
    # only the root logger's handlers show it; its own handler shows what comes after.
    import io

    pytest.importorskip("huggingface_hub")
    import huggingface_hub.utils.logging  # noqa: F401 - adds its own handler
    from hubensemble.hub.loaders import capped_loader_waits

    own = [h for h in logging.getLogger("huggingface_hub").handlers
           if isinstance(h, logging.StreamHandler)]
    assert own  # (huggingface_hub 2.4.0, 2.5.0) the handler that showed each record a second time
    raw = io.StringIO()
    streams = [h.stream for h in own]  # (not setStream: it flushes the old one, which may
    for handler in own:  # be a capture stream closed since, were it made under capsys)
        handler.stream = raw
    http_log = logging.getLogger("huggingface_hub.utils._http")
    try:
        with caplog.at_level(logging.WARNING):
            with capped_loader_waits():
                http_log.warning("Retrying in 1s [Retry 1/5].")
            http_log.warning("after the fetch")
    finally:
        for handler, stream in zip(own, streams):
            handler.stream = stream
    assert raw.getvalue() == "after the fetch\n" * len(own), raw.getvalue()
    assert [r.getMessage() for r in caplog.records if r.name == http_log.name] == [
        "Retrying in 1s [Retry 1/5].", "after the fetch"]


def test_an_hf_preset_is_fetched_by_a_huggingface_hub_without_the_internals_hub_tunes(
        server, presets, monkeypatch):
    # loaders.capped_loader_waits and quiet_loaders call huggingface_hub internals (setup.cfg
    # names the tested releases): one without them (0.36.2 has no set_client_factory; its
    # requests' sessions take no hook) failed the fetch halfway, as "keras-hub cannot fetch
    # the preset: AttributeError: module 'huggingface_hub.utils._http' has no attribute
    # 'default_client_factory' (check the handle and your connection)". Now the fetch goes
    # on, its waits not capped nor its bars made quiet, and nothing of it is left changed.
    import importlib

    import huggingface_hub.utils._http as hf_http
    from hubensemble.hub.sources import fetch_preset

    hf_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # (utils.tqdm: its class)
    factory, states = hf_http._GLOBAL_CLIENT_FACTORY, dict(hf_tqdm.progress_bar_states)
    # What the loaders call, gone (get_session and its bars still read the rest).
    monkeypatch.delattr(hf_http, "set_client_factory")
    monkeypatch.delattr(hf_tqdm, "disable_progress_bars")
    _hf_preset(server, "o/old")
    folder = fetch_preset("hf://o/old", deadline_seconds=60)
    assert sorted(os.listdir(folder)) == ["config.json", "metadata.json", "model.weights.h5"]
    assert hf_http._GLOBAL_CLIENT_FACTORY is factory and hf_tqdm.progress_bar_states == states


def test_a_handles_scheme_and_host_in_upper_case_are_one_module_and_one_download(
        server, tarball, hub_cache, tmp_path):
    """RFC 3986 (3.1, 3.2.2): a URL's scheme and host are case-insensitive, its path is not.
    `HTTPS://TFHUB.DEV/…` was refused ("scheme 'HTTPS:' is not supported"), and
    `https://TFHub.dev/…` passed but was stored as written: another cache folder (the sha1 of
    the handle), so a second download of the same module."""
    from hubensemble.catalogue import load_catalogue
    from hubensemble.hub import HubLayer, locate

    url = server.add("/Models/m.tar.gz", ok(tarball)).replace("127.0.0.1", "localhost")
    shouting = url.replace("http://localhost", "HTTP://LocalHost")
    (tmp_path / "c.yaml").write_text(
        f"modules:\n  - name: a\n    handle: {shouting}\n  - name: b\n    handle: {url}\n"
        "  - name: hub\n    handle: HTTPS://TFHub.DEV/google/bit/m-r50x1/1\n"
        "  - name: gcs\n    handle: GS://bucket/Path/m.tar.gz\n"
        "  - name: kaggle\n    handle: Kaggle:google/bit/tensorFlow2/m-r50x1/1\n")
    specs = load_catalogue(tmp_path / "c.yaml")
    assert [s.handle for s in specs] == [
        url, url, "https://tfhub.dev/google/bit/m-r50x1/1", "gs://bucket/Path/m.tar.gz",
        "kaggle:google/bit/tensorFlow2/m-r50x1/1"]  # the path keeps its case
    assert locate(shouting).path == locate(url).path
    layer = HubLayer(shouting, module_name="a")
    assert layer.get_config()["handle"] == url
    assert [p for p, _ in server.requests] == ["/Models/m.tar.gz"]  # one download


@pytest.fixture
def file_size_limit():
    """Sets this process's file size limit (RLIMIT_FSIZE, as `ulimit -f`) to the bytes given
    to the returned function, until the test ends: a write past it fails with EFBIG (Python
    ignores SIGXFSZ), as a write onto a full disk fails with ENOSPC."""
    resource = pytest.importorskip("resource")
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    yield lambda size: resource.setrlimit(resource.RLIMIT_FSIZE, (size, before[1]))
    resource.setrlimit(resource.RLIMIT_FSIZE, before)


@pytest.mark.parametrize("kind", ["archive", "keras file"])
def test_a_download_that_finds_no_room_is_the_disks_not_the_modules(
        server, tarball, hub_cache, file_size_limit, kind):
    """A fault hunt: a module whose download met a full disk was refused as "[archive] …
    (the download is not a valid SavedModel tarball)" (unpacked: TensorFlow's "File too
    large") or "[network] OSError: [Errno 28] No space left on device (check the URL and your
    connection)" (a .keras file), and rank recorded it as the module's failure. It is the
    OSError of the disk, naming the handle and the file, so the command stops with its way
    on; nothing of it is kept, and it was asked for once (no try again)."""
    import errno

    from hubensemble import hub

    body = tarball if kind == "archive" else os.urandom(200_000)
    url = server.add("/m.tar.gz" if kind == "archive" else "/m.keras", ok(body))
    file_size_limit(4096)  # every file of the module is larger (saved_model.pb: the archive's)
    with pytest.raises(OSError) as err:
        hub.resolve(url, name="m")
    file_size_limit(-1)
    assert not isinstance(err.value, ModuleLoadError) and err.value.errno == errno.EFBIG
    assert url in str(err.value) and "TFHUB_CACHE_DIR" in str(err.value)
    assert str(hub_cache) in err.value.filename, err.value.filename
    assert "network" not in str(err.value) and "tarball" not in str(err.value)
    assert len(server.requests) == 1
    left = [os.path.join(r, f) for r, _, fs in os.walk(hub_cache) for f in fs]
    assert not [f for f in left if not f.endswith(".lock")], left


def test_an_archive_member_larger_than_the_free_space_is_refused_as_the_disks(
        server, hub_cache):
    """A member whose header declares more bytes than the disk has free is refused before a
    byte of it is written, as the disk's (ENOSPC, naming the member and the cache folder): it
    was a ValueError said to be "not a valid SavedModel tarball"."""
    import errno
    import shutil

    from hubensemble import hub

    os.makedirs(hub_cache)
    free = shutil.disk_usage(hub_cache).free
    header = tarfile.TarInfo("variables/variables.data-00000-of-00001")
    header.size = free + (1 << 30)  # the data need not follow: the header is read first
    body = gzip.compress(header.tobuf(tarfile.PAX_FORMAT) + b"\0" * 4096)
    url = server.add("/big.tar.gz", ok(body))
    with pytest.raises(OSError) as err:
        hub.resolve(url)
    assert not isinstance(err.value, ModuleLoadError) and err.value.errno == errno.ENOSPC
    said = str(err.value)
    assert f"{header.size:,} bytes" in said and "variables.data-00000-of-00001" in said, said
    assert url in said and str(hub_cache) in err.value.filename
    assert not os.listdir(hub_cache) or all(n.endswith(".lock") for n in os.listdir(hub_cache))


@pytest.mark.parametrize("kind", ["archive", "keras file"])
def test_a_content_length_larger_than_the_free_space_is_refused_before_reading(
        server, tarball, hub_cache, kind):
    """A fault hunt: a server announcing a petabyte (Content-Length) was read until it
    closed, then asked twice more as a connection closed early ("after N of
    1000000000000000+N bytes … tried 3 times"); a real one would have filled the disk. It is
    refused at once as the disk's (ENOSPC, naming the handle and the figures), asked once."""
    import errno

    from hubensemble import hub

    body = tarball if kind == "archive" else b"x" * 1000
    # More than is free, less than the disk holds (above it: no module's size, test below).
    usage = shutil.disk_usage(hub_cache.parent)
    extra = (usage.free + usage.total) // 2
    url = server.add("/m.tar.gz" if kind == "archive" else "/m.keras", ok(body, extra))
    with pytest.raises(OSError) as err:
        hub.resolve(url)
    said = str(err.value)
    assert err.value.errno == errno.ENOSPC and not isinstance(err.value, ModuleLoadError)
    assert f"announces {len(body) + extra:,} bytes (Content-Length)" in said, said
    assert url in said and len(server.requests) == 1
    left = [os.path.join(r, f) for r, _, fs in os.walk(hub_cache) for f in fs]
    assert not [f for f in left if not f.endswith(".lock")], left


def test_a_preset_or_weights_fetch_that_finds_no_room_is_the_disks(
        server, presets, file_size_limit, tmp_path, monkeypatch):
    """As a module archive's (above): a kaggle:// or hf:// preset, or keras: ImageNet weights,
    whose file met a full disk was refused as "[network] keras-hub cannot fetch the preset:
    OSError: [Errno 27] File too large (check the handle and your connection)" or "cannot
    download the ImageNet weights … offline, fetch that file elsewhere". It is the disk's
    OSError, naming what was fetched and the variable that moves that cache."""
    import errno

    from keras.src.backend import config

    from hubensemble.hub import sources

    big = WEIGHTS + bytes(200_000)
    server.add(f"{KAGGLE_FILE}/model.weights.h5", ok(big))
    server.add(KAGGLE_FILE, ok(b"{}"))
    _hf_preset(server, "o/m")
    server.add("/o/m/resolve/main/model.weights.h5", ok(big, headers={**HF, "ETag": '"w"'}))
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras"))  # KERAS_HOME's
    monkeypatch.setenv(sources.WEIGHTS_MIRROR_ENV, server.url)
    request = sources.imagenet_weights_request("MobileNetV3Small", (224, 224))
    server.add(f"/{request.fname}", ok(big))
    for fetch, words in ((lambda: sources.fetch_preset("kaggle://o/m/keras/v/1",
                                                       deadline_seconds=60), "KAGGLEHUB_CACHE"),
                         (lambda: sources.fetch_preset("hf://o/m", deadline_seconds=60),
                          "HF_HOME"),
                         (lambda: sources.fetch_imagenet_weights(
                             "MobileNetV3Small", (224, 224), timeout=5,
                             deadline=time.monotonic() + 60),
                          "KERAS_HOME")):
        file_size_limit(4096)
        try:
            with pytest.raises(OSError) as err:
                fetch()
        finally:
            file_size_limit(-1)
        assert not isinstance(err.value, ModuleLoadError), err.value
        assert err.value.errno == errno.EFBIG and words in str(err.value), err.value
    for handle in ("kaggle://o/m/keras/v/1", "hf://o/m"):  # room again: fetched whole
        folder = sources.fetch_preset(handle, deadline_seconds=60)
        assert os.path.getsize(os.path.join(folder, "model.weights.h5")) == len(big), handle


def test_a_hub_cache_named_with_a_tilde_is_the_home_folders(server, tarball, hub_cache,
                                                            tmp_path, monkeypatch):
    """A fault hunt: TFHUB_CACHE_DIR="~/hub" (quoted, or from a .env file: no shell expands
    it) was taken as written by tensorflow_hub, so each command made a cache in a folder
    literally named "~" in its working folder and downloaded every module again there.
    It is the home folder's, as hubensemble's own variables are (HUBENSEMBLE_CACHE_DIR)."""
    from hubensemble import hub

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TFHUB_CACHE_DIR", "~/hub")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    url = server.add("/m.tar.gz", ok(tarball))
    path = hub.resolve(url)
    assert os.path.isabs(path) and path.startswith(str(tmp_path / "home" / "hub")), path
    assert os.listdir(work) == []


def test_a_plug_in_resolver_that_finds_no_room_says_its_own_file(tmp_path):
    """A resolver that downloads nothing (the zoo builds its modules) and meets a full disk
    raises the disk's OSError with its own file, not the words of a download into
    TFHUB_CACHE_DIR, and not as the module's failure."""
    import errno

    from hubensemble.hub import resolvers

    where = str(tmp_path / "zoo" / "m" / "saved_model.pb")

    class NoRoom:
        def is_supported(self, handle):
            return True

        def __call__(self, handle):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), where)

    resolvers.register_resolver("fullplug", NoRoom())
    try:
        with pytest.raises(OSError) as err:
            resolvers.resolve("fullplug:x/m")
    finally:
        resolvers._REGISTRY.pop("fullplug", None)
    assert err.value.errno == errno.ENOSPC and err.value.filename == where
    assert "TFHUB_CACHE_DIR" not in str(err.value) and "downloaded" not in str(err.value)


@pytest.mark.parametrize("suffix", ["tar.gz", "tar.bz2", "tar.xz", "tar"])
def test_a_gzip_body_cut_off_without_a_content_length_says_to_run_it_again(
        server, tiny_module, hub_cache, suffix):
    """A server that announces no length and closes the connection half-way through a
    .tar.gz is seen only as a gzip stream that ends early: it was said as "the download is
    not a valid SavedModel tarball", which sent the user to the module, not to a second try.
    The hint now names the connection too, and the way on, for every compression and a plain
    tar; nothing half is kept."""
    from hubensemble.hub.resolvers import resolve

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{suffix[4:]}") as tar:
        for name in sorted(os.listdir(tiny_module)):
            tar.add(os.path.join(tiny_module, name), arcname=name)
    tarball = buf.getvalue()
    url = server.add(f"/m.{suffix}", ok(tarball, "unsized cut"))
    with pytest.raises(ModuleLoadError) as err:
        resolve(url)
    assert err.value.stage == "archive", err.value
    assert str(err.value).endswith(
        "(the download is not a valid SavedModel tarball, or the connection closed early: run "
        "the same command again)"), err.value
    assert not [p for p in hub_cache.rglob("saved_model.pb")]
    # Whole, the same tarball is a module: the way on works.
    server.add(f"/m.{suffix}", ok(tarball))
    assert os.path.isfile(os.path.join(resolve(url), "saved_model.pb"))


def test_a_full_disk_while_the_batchnorm_policy_is_decided_stops_the_tune(
        server, tarball, hub_cache, file_size_limit, caplog):
    """tune's "auto" BatchNorm policy locates (downloads) each module first; a full disk
    there was caught with every OSError and logged as the module's "cannot read its
    variables to decide its BatchNorm policy (…); using train", and the tune went on. It is
    the machine's error (`fileio.machine_error`): raised, naming the handle and the file; a
    module that is only missing still gets "train"."""
    import errno

    from hubensemble.catalogue import ModuleSpec
    from hubensemble.tune.stage import module_batchnorm

    url = server.add("/m.tar.gz", ok(tarball))
    file_size_limit(4096)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(OSError) as err:
            module_batchnorm(ModuleSpec(name="m", handle=url), "auto")
    finally:
        file_size_limit(-1)
    assert not isinstance(err.value, ModuleLoadError) and err.value.errno == errno.EFBIG
    assert url in str(err.value) and str(hub_cache) in err.value.filename, err.value
    assert "using train" not in caplog.text
    missing = ModuleSpec(name="gone", handle=str(hub_cache.parent / "gone"))
    with caplog.at_level(logging.WARNING):
        assert module_batchnorm(missing, "auto") == ("train", None)
    assert "module gone: cannot read its variables" in caplog.text


@pytest.mark.parametrize("kind", ["archive", "keras file"])
def test_a_content_length_above_the_whole_disk_is_said_as_the_servers_not_the_disks(
        server, tarball, hub_cache, kind):
    """A server announcing 10**15 bytes was refused as "No space left on device … free disk
    space": no disk here holds it (above the file system's own size, f_blocks x f_frsize),
    so it is the server's or the link's, said with the handle, asked once, nothing kept."""
    from hubensemble import hub

    body = tarball if kind == "archive" else b"x" * 1000
    total = shutil.disk_usage(hub_cache.parent).total
    url = server.add("/m.tar.gz" if kind == "archive" else "/m.keras", ok(body, total + 1))
    with pytest.raises(ModuleLoadError) as err:
        hub.resolve(url)
    said = str(err.value)
    assert err.value.stage == "network" and err.value.handle == url, said
    assert (f"the server announces {len(body) + total + 1:,} bytes (Content-Length), more "
            f"than the whole file system of ") in said and f"({total:,} bytes) holds" in said
    assert "check the URL" in said and "free" not in said.replace("freeing space would "
                                                                  "not help", ""), said
    assert len(server.requests) == 1
    left = [os.path.join(r, f) for r, _, fs in os.walk(hub_cache) for f in fs]
    assert not [f for f in left if not f.endswith(".lock")], left

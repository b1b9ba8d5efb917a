"""Unsafe modules and broken downloads (a local http.server): refused with the stage named,
within HUBENSEMBLE_HTTP_TIMEOUT, while `rank` goes on with the good modules."""

from . import scenarios as s
from .conftest import survive


def test_module_reading_files_refused_unless_trusted(ws):
    survive(s.module_reading_files_refused_unless_trusted, ws)


def test_module_writing_files_refused(ws):
    survive(s.module_writing_files_refused, ws)


def test_tarball_member_escaping_refused(ws):
    survive(s.tarball_member_escaping_refused, ws)


def test_tarball_symlink_refused(ws):
    survive(s.tarball_symlink_refused, ws)


def test_wrong_sha256_refused(ws):
    survive(s.wrong_sha256_refused, ws)


def test_http_500(ws):
    survive(s.http_500, ws)


def test_http_truncated_archive(ws):
    survive(s.http_truncated_archive, ws)


def test_http_server_hangs(ws):
    survive(s.http_server_hangs, ws)

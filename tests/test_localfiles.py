"""What a file's first bytes are (hubensemble.localfiles.what_bytes_are, `text_start`): text in
each encoding file(1) tells (UTF-8 or ASCII, UTF-8/UTF-16/UTF-32 after a byte order mark,
ISO-8859) told from binary, on bytes made here with Python's own codecs."""

import codecs

import numpy as np
import pytest

from hubensemble.localfiles import text_start, what_bytes_are

PAGE = "<!DOCTYPE html>\n<html><body>Introuvable – «café»</body></html>"


@pytest.mark.parametrize("head, label", [
    (PAGE.encode("utf-8"), ""),
    (codecs.BOM_UTF8 + PAGE.encode("utf-8"), "UTF-8"),
    (codecs.BOM_UTF16_LE + PAGE.encode("utf-16-le"), "UTF-16"),
    (codecs.BOM_UTF16_BE + PAGE.encode("utf-16-be"), "UTF-16"),
    (codecs.BOM_UTF32_LE + PAGE.encode("utf-32-le"), "UTF-32"),
    (PAGE.replace("–", "-").encode("iso-8859-1"), "ISO-8859")])
def test_text_in_each_encoding_is_said_as_text_without_replacement_characters(head, label):
    cut = head[:64]  # as the callers read it: a character may be cut at the end
    said = what_bytes_are(cut)
    assert said.startswith(f"text ({label + ', ' if label else ''}it starts with "
                           "'<!DOCTYPE html>"), said  # 15 characters of UTF-32 in 64 bytes
    assert "\ufffd" not in said and "\\x00" not in said
    text, found = text_start(cut)
    assert found == label and PAGE.replace("–", "-").startswith(text.replace("–", "-"))


@pytest.mark.parametrize("head", [
    bytes(range(0x80, 0xc0)),  # invalid UTF-8, C1 controls in ISO-8859: said as text before
    codecs.BOM_UTF16_LE + bytes(range(1, 20)),  # a UTF-16 mark, then control characters
    codecs.BOM_UTF16_LE + b"\x00\xd8" * 8,  # unpaired surrogates: not UTF-16
    "<html>".encode("utf-16-le"),  # NULs without a byte order mark: file(1) says data
    b"<html>\x01\x02\x03 binary after a text-like start",
    np.random.default_rng(0).bytes(64)])
def test_binary_is_said_as_its_bytes_not_as_text(head):
    said = what_bytes_are(head)
    assert said == "bytes " + " ".join(f"{b:02x}" for b in head[:8]), said
    assert text_start(head) is None

"""Odd image files are skipped and reported or used; unusable data is one clear error line."""

from . import scenarios as s
from .conftest import survive


def test_corrupt_jpeg(ws):
    survive(s.corrupt_jpeg, ws)


def test_zero_byte_image(ws):
    survive(s.zero_byte_image, ws)


def test_one_pixel_image(ws):
    survive(s.one_pixel_image, ws)


def test_sixteen_bit_png(ws):
    survive(s.sixteen_bit_png, ws)


def test_cmyk_jpeg(ws):
    survive(s.cmyk_jpeg, ws)


def test_class_with_one_example(ws):
    survive(s.class_with_one_example, ws)


def test_one_class_only(ws):
    survive(s.one_class_only, ws)


def test_labels_out_of_range(ws):
    survive(s.labels_out_of_range, ws)

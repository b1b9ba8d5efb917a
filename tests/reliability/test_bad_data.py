"""Odd image files are skipped and reported or used; unusable data is one clear error line;
the pixels a model trains on are the pixels it serves, and no file vanishes unreported."""

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


def test_linked_folder_inside_a_class(ws):
    survive(s.linked_folder_inside_a_class, ws)


def test_rgba_queries_served_as_trained(ws):
    survive(s.rgba_queries_served_as_trained, ws)


def test_palette_bmp_decoded_as_colours(ws):
    survive(s.palette_bmp_decoded_as_colours, ws)


def test_one_bit_bmp_and_tiff_with_reasons(ws):
    survive(s.one_bit_bmp_and_tiff_with_reasons, ws)


def test_duplicates_across_splits(ws):
    survive(s.duplicates_across_splits, ws)


def test_renamed_test_class(ws):
    survive(s.renamed_test_class, ws)

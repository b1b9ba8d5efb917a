"""`catalogue validate`'s input_size warning says what its "N px" is (catalogue_sizes
.default_side): no data set is involved, and "12.2x the pixels of 64 px" named no 64 px."""

import textwrap
from types import SimpleNamespace

import pytest

from hubensemble.options import default
from hubensemble.rank import default_resolution
from hubensemble.zoo.config import validate_catalogues


@pytest.mark.parametrize("image_hw", [(28, 28), (300, 400)])
def test_the_side_said_is_ranks_resolution_without_input_size(image_hw):
    """The side the warning compares with is what rank embeds at under the default profile
    for small and large images alike (a figure of the code, not of the words)."""
    from hubensemble.catalogue_sizes import default_side

    side, _ = default_side()
    assert default_resolution(SimpleNamespace(image_size=image_hw), default("profile")) == \
        (side, side)


def test_input_size_warning_says_what_its_64_px_is(tmp_path, tiny_module):
    """A new-user check (492): "12.2x the pixels of 64 px" where validate knows no data set."""
    path = tmp_path / "cat.yaml"
    path.write_text(textwrap.dedent(f"""
        modules:
          - name: any-size
            handle: {tiny_module}
            input_size: [224, 224]
        """))
    said = []
    assert validate_catalogues([str(path)], lambda line, ok: said.append((line, ok)))
    [warning] = [line for line, ok in said if ok is None]
    assert ("12.2x the pixels of 64 px (the side every data set's images are resized to "
            "without input_size under the default --profile cpu: the BiT-HyperRule's 128 px "
            "for images under 96x96, else 480 px, capped at 64; rank and fine-tuning take "
            "that much longer)") in warning, warning

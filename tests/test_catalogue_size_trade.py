"""`catalogue validate`'s warning of an input_size on a module that takes any size says the
trade both ways (catalogue_sizes.size_warnings): a new user (stop 70) wrote native_size as
the warning told and rank ran at 64 px, its kNN 0.795 against 0.887 at 224 px."""

import textwrap

from hubensemble.zoo.config import validate_catalogues


def test_input_size_warning_on_an_any_size_module_says_cost_and_accuracy(tmp_path, tiny_module):
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
    assert "field 'input_size': [224, 224], but the module takes any size" in warning, warning
    # the cost: 224² / 64² pixels, and the side of accuracy, by the kind of figure it is
    assert "12.2x the pixels of 64 px" in warning, warning
    assert "rank's kNN at 64 px can be lower" in warning, warning
    assert "keep input_size for that accuracy" in warning, warning
    # native_size is offered as the faster way, with what it changes, not as the fix
    assert "for speed, write `native_size: [224, 224]` instead (rank and fine-tuning at the " \
           "task's resolution" in warning, warning

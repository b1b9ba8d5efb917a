"""A candidate's files changed since its writer wrote them (`candidatefiles.changed_files`),
said by one rule and one set of words wherever a stage meets them. Files only."""

import os

import numpy as np
import pytest

from hubensemble import candidate


def _write(run_dir, data: bytes):
    def save(path):
        with open(path, "wb") as f:
            f.write(data)

    probs = np.full((4, 2), 0.5, np.float32)
    candidate.write_candidate(run_dir / "candidates", {"trial": "default-0000-m", "module": "m",
                                                       "status": "ok"},
                              val_probs=probs, test_probs=probs, save_weights=save)
    return candidate.read_candidate(run_dir / "candidates", "default-0000-m")


@pytest.mark.parametrize("change", ["cut short", "same size"])
def test_a_changed_weights_file_is_said_alike_by_fit_and_by_export(tmp_path, change):
    """A weights file cut short was said by its size where fit and tune check a candidate's
    files ("3,248 bytes recorded in trial.json, 1,624 now: edited, cut short or replaced
    since": `changed_files`) and by its sha256 where export and ensemble check the weights
    ("sha256 A… recorded in trial.json, B… now: edited or replaced since":
    `weightsfile.changed_since`): one change, two accounts of it. Both say its sha256 now
    (the size is the cheap test that it changed, not the words). Fails before: "cut short"."""
    data = b"weights of the trial" * 8
    cand = _write(tmp_path, data)
    assert cand.changed == [] and cand.weights_changed() is None
    path = cand.weights_path
    path.write_bytes(data[: len(data) // 2] if change == "cut short" else data[::-1])
    cand = candidate.read_candidate(tmp_path / "candidates", "default-0000-m")
    name = path.name
    fit = cand.changed_file(name)
    export = cand.weights_changed()
    assert fit.startswith(f"{name} is not the one tune wrote (sha256 "), fit
    assert export.startswith(f"its weights file {path} is not the one tune wrote (sha256 "), export
    assert fit.removeprefix(name) == export.removeprefix(f"its weights file {path}"), (fit, export)
    assert fit.endswith(" now: edited or replaced since)"), fit


def test_a_changed_weights_file_is_named_absolute_and_escaped(tmp_path, monkeypatch):
    """`weightsfile.changed_since` named the file by os.path.abspath, unescaped: a newline in a
    folder's name broke the line kept in ensemble.json and an export's metadata. It names it
    as the project does (`escaped(absolute(…))`, a link as named). Files only. Fails before:
    the raw newline."""
    from hubensemble.weightsfile import WEIGHTS_DIGEST, changed_since

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a\nb").mkdir()
    (tmp_path / "a\nb" / "w.weights.h5").write_bytes(b"weights")
    shown = f"{tmp_path}/a\\nb/w.weights.h5"
    said = changed_since({WEIGHTS_DIGEST: "0" * 64}, "a\nb/w.weights.h5")
    assert said.startswith(f"its weights file {shown} is not the one tune wrote (sha256 "), said
    os.chmod(tmp_path / "a\nb" / "w.weights.h5", 0)
    if not os.access(tmp_path / "a\nb" / "w.weights.h5", os.R_OK):  # (root reads it anyway)
        assert changed_since({WEIGHTS_DIGEST: "0" * 64}, "a\nb/w.weights.h5") == (
            f"its weights file {shown} cannot be read")

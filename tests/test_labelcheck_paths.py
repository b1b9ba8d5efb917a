"""Labels to check names validation images by their files as it names training ones: the run
keeps RUN/labels/val_paths.json beside train_paths.json (`Run.write_labels`,
`Run.split_paths`), `rank merge` carries both, and a run written before keeps val[i]. Arrays
written by hand, as test_labelcheck's runs: no fit."""

import os
from types import SimpleNamespace

import numpy as np
from test_labelcheck import VAL_FLIPPED, ranked_run, tiny_task, tuned_pool

from hubensemble.candidate import split_record, write_candidate
from hubensemble.fileio import atomic_save_npy, atomic_write_json
from hubensemble.labelcheck import read_labels_to_check
from hubensemble.report.labels import labels_section, write_list
from hubensemble.report.render import render_markdown
from hubensemble.report.runfiles import load_run
from hubensemble.rundir import Run

NAMES = ["cat", "dog", "emu"]


def _files(root, labels, split):
    """The files a folder: load would name: ROOT/<class>/<split><i>.png."""
    return [str(root / NAMES[c] / f"{split}{i}.png") for i, c in enumerate(labels)]


def test_validation_rows_of_labels_to_check_name_their_files(tmp_path):
    """Before, the validation rows read val[i] in the report and an empty `file` in
    to_check.csv though the data was a folder of files: only the training images' files
    were kept."""
    _, y, given = tiny_task()
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, [y] * 3)  # the 3 training flips listed
    cands, y_val, given_val = tuned_pool()
    for cand in cands:
        write_candidate(tmp_path / "candidates", {
            "trial": cand.trial, "module": cand.module, "status": "ok", "has_test": False,
            "val": split_record(cand.val_probs, given_val)}, val_probs=cand.val_probs)
    root = tmp_path / "pets"
    run = Run(tmp_path)
    run.update(data={"args": {"spec": f"folder:{root}"}, "task": {
        "name": "pets", "source": f"folder:{root} (split 80/20)", "class_names": NAMES,
        "num_classes": len(NAMES)}})
    # What rank's attach_task writes for data read from files: each split's labels, files.
    train, val = _files(root, given, "train"), _files(root, given_val, "val")
    task = SimpleNamespace(train=SimpleNamespace(labels=given, paths=train),
                           val=SimpleNamespace(labels=given_val, paths=val), test=None)
    assert run.write_labels(task) == ["train", "val"]
    assert sorted(os.listdir(run.labels)) == ["train.npy", "train_paths.json", "val.npy",
                                              "val_paths.json"]
    assert run.val_paths(len(given_val)) == val and run.train_paths() == train
    assert run.foreign_content("labels") == []  # a stage's file, not the user's
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    part = section.split("**Validation labels.**")[1]
    for i, wrong in VAL_FLIPPED.items():
        assert (f"| {NAMES[wrong]}/val{i}.png | {NAMES[wrong]} | {NAMES[y_val[i]]} | 4 of 4 |"
                in part), part
    assert "val\\[" not in part and "Each image is named by its file, relative to" in part
    listed = write_list(tmp_path)
    rows = [r for r in read_labels_to_check(listed) if r["split"] == "val"]
    assert sorted((int(r["index"]), r["file"]) for r in rows) == [
        (i, val[i]) for i in sorted(VAL_FLIPPED)]
    # A run written before val_paths.json (or a list of another number of images): val[i]
    # and an empty `file`, as before; the training rows keep their files.
    for stale in ('["a.png"]', None):
        if stale is None:
            (tmp_path / "labels" / "val_paths.json").unlink()
        else:
            (tmp_path / "labels" / "val_paths.json").write_text(stale)
        part = render_markdown("t", [labels_section(load_run(tmp_path))]).split(
            "**Validation labels.**")[1]
        assert f"| val\\[{min(VAL_FLIPPED)}\\] |" in part and "validation_image(" in part
        rows = read_labels_to_check(write_list(tmp_path))
        assert {r["file"] for r in rows if r["split"] == "val"} == {""}
        assert {r["file"] for r in rows if r["split"] == "train"} <= set(train)
    run.write_labels(task)
    task.val.paths = None  # data without files: no list left behind
    run.write_labels(task, ["val"])
    assert run.val_paths() is None and not (tmp_path / "labels" / "val_paths.json").exists()
    assert run.train_paths() == train


def test_rank_merge_takes_each_splits_files_from_the_first_shard_that_kept_them(tmp_path):
    """rank merge copied train_paths.json alone: the merged run's validation rows read val[i].
    Each split's list comes from the first shard with a readable one of as many files as
    labels; none such: the merged run's older list goes."""
    shards = [Run(tmp_path / f"shard{i}") for i in range(2)]
    out = Run(tmp_path / "merged")
    y, y_val = np.arange(6) % 3, np.arange(4) % 3
    train, val = _files(tmp_path, y, "train"), _files(tmp_path, y_val, "val")
    for r in (*shards, out):
        atomic_save_npy(r.labels / "train.npy", y)
        atomic_save_npy(r.labels / "val.npy", y_val)
    atomic_write_json(shards[0].labels / "train_paths.json", train)
    atomic_write_json(shards[0].labels / "val_paths.json", val[:3])  # stale: not N
    atomic_write_json(shards[1].labels / "val_paths.json", val)
    out.take_paths(shards)
    assert out.train_paths(len(y)) == train and out.val_paths(len(y_val)) == val
    for r in shards:
        (r.labels / "val_paths.json").unlink()
    out.take_paths(shards)
    assert not (out.labels / "val_paths.json").exists() and out.train_paths() == train


def test_a_broken_validation_part_names_the_files_it_reads(tmp_path, monkeypatch):
    """The section reads RUN/labels/val.npy and the candidates' val_probs.npy too; when a
    value no check foresaw broke it, its damage sentence (report.sections._guarded) named
    ranking.json, knn.npz and labels/train.npy alone."""
    from hubensemble.report import labels as report_labels
    from hubensemble.report.sections import build_sections

    _, y, given = tiny_task()
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, [y] * 3)
    cands, _, given_val = tuned_pool()
    atomic_save_npy(tmp_path / "labels" / "val.npy", given_val)
    for cand in cands:
        write_candidate(tmp_path / "candidates", {
            "trial": cand.trial, "module": cand.module, "status": "ok", "has_test": False,
            "val": split_record(cand.val_probs, given_val)}, val_probs=cand.val_probs)

    def broken(*args, **kwargs):  # a kind of value the check does not foresee
        raise IndexError("index 7 is out of bounds for axis 1 with size 3")

    monkeypatch.setattr(report_labels, "run_validation_check", broken)
    title, sections, _ = build_sections(tmp_path)
    text = render_markdown(title, sections).split("## Labels to check")[1].split("\n## ")[0]
    assert "This section could not be drawn (IndexError: index 7 is out of bounds" in text, text
    for name in ("ranking.json", "knn.npz", "labels/train.npy", "labels/val.npy",
                 "candidates/"):
        assert str(tmp_path / name) in text, name

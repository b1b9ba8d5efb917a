"""Labels to check (hubensemble.labelcheck): the training images every ranked module's
leave-one-out kNN prediction contradicts, checked against scikit-learn's KNeighborsClassifier
(each image's nearest other image), on tiny data with known flipped labels; and the report's section
and the closing table's line built from a run folder's files."""

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from hubensemble import report
from hubensemble.fileio import atomic_save_npy, atomic_write_json
from hubensemble.labelcheck import MAX_SHARE, MIN_PROXY_SCORE, SHOWN, Suspect, suspect_labels
from hubensemble.rank import Ranking
from hubensemble.rank.knnfile import write_knn_predictions
from hubensemble.report.labels import labels_section
from hubensemble.report.render import render_markdown
from hubensemble.report.runfiles import load_run
from hubensemble.rundir import Run

C, PER_CLASS, MODULES = 3, 12, ("m0", "m1", "m2")
FLIPPED = {4: 2, 17: 0, 30: 1}  # index: the wrong label given


def tiny_task(seed=0):
    """Three modules' embeddings of 3 separated clusters of 12 images (each module its own
    random projection and noise), the true labels, and the labels with FLIPPED given."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(C), PER_CLASS)
    centres = rng.normal(scale=10.0, size=(C, 5))
    embs = [(centres[y] + rng.normal(size=(len(y), 5))) @ rng.normal(size=(5, 8))
            for _ in MODULES]
    given = y.copy()
    for i, wrong in FLIPPED.items():
        given[i] = wrong
    return embs, y, given


def sklearn_loo(x, y):
    """Leave-one-out 1-NN predictions from scikit-learn: the label of each image's nearest
    other image (its second neighbour among all; the data has no equal distances)."""
    nn = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(x)
    idx = nn.kneighbors(x, return_distance=False)
    assert (idx[:, 0] == np.arange(len(y))).all()  # each image is its own nearest
    return y[idx[:, 1]]


def test_suspects_are_the_images_every_modules_loo_knn_contradicts():
    embs, y, given = tiny_task()
    preds = np.stack([sklearn_loo(x, given) for x in embs])
    suspects = suspect_labels(preds, given)
    # The reference, computed apart: images all three predictions contradict, the mode of
    # the predictions suggested.
    expected = [i for i in range(len(y)) if (preds[:, i] != given[i]).all()]
    assert sorted(s.index for s in suspects) == expected == sorted(FLIPPED)
    for s in suspects:
        assert (s.given, s.suggested, s.votes, s.modules) == (given[s.index], y[s.index], 3, 3)
        assert s.score == 1.0


def test_suspects_are_ordered_by_agreement_and_shapes_are_checked():
    labels = np.array([0, 0, 1, 1])
    preds = np.array([[1, 1, 0, 1],
                      [2, 1, 0, 1],
                      [2, 1, 2, 0]])
    # 0: 2 votes for 2 (vs 1 for 1); 1: 3 for 1; 2: 2 for 0; 3: agreed with by two modules.
    assert suspect_labels(preds, labels) == [Suspect(1, 0, 1, 3, 3), Suspect(0, 0, 2, 2, 3),
                                             Suspect(2, 1, 0, 2, 3)]
    with pytest.raises(ValueError, match=r"predictions of shape \(3, 4\) do not match "
                                         r"labels of shape \(5,\)"):
        suspect_labels(preds, np.zeros(5, int))


def ranked_run(path, scores, given, preds, metric="knn", neighbours=None, chance=None):
    """A run folder as rank leaves it: ranking.json, knn.npz (with `neighbours`, [M, N, K],
    as rank writes it now; without, as before 2026-12-06), labels/train.npy, run.json."""
    rows = [{"name": n, "handle": f"/zoo/{n}", "status": "ok", "reason": None, "score": s,
             "dim": 8, "examples": len(given), "seconds": 0.1, "cache_hit": False,
             "stage": None, "family": "generalist", "index": i}
            for i, (n, s) in enumerate(zip(MODULES, scores))]
    Ranking(metric=metric, k=1, rows=rows, selected=list(MODULES[:2]),
            selection={"rule": "top_k", "top_k": 2}, examples=len(given),
            chance=chance).write(path)
    if metric.startswith("knn"):
        write_knn_predictions(path, dict(zip(MODULES, preds)),
                              None if neighbours is None else dict(zip(MODULES, neighbours)))
    atomic_save_npy(path / "labels" / "train.npy", given)
    Run(path).update(data={"args": {"spec": "npz:/data/toy.npz", "seed": 0},
                           "task": {"name": "toy", "class_names": ["cat", "dog", "emu"],
                                    "num_classes": C}})


def test_the_report_and_closing_table_name_the_labels_to_check(tmp_path):
    embs, y, given = tiny_task()
    preds = [sklearn_loo(x, given) for x in embs]
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, preds)
    md = report.write_report(tmp_path).markdown.read_text()
    section = md.split("## Labels to check")[1].split("\n## ")[0]
    # A knn.npz without neighbours (rank before 2026-12-06): the 1-NN rule, and it says so.
    assert "3 training images: for each, every one of the 3 ranked modules" in section
    assert "this run's knn.npz predates the neighbours" in section
    names = ["cat", "dog", "emu"]
    for i, wrong in FLIPPED.items():
        assert f"| train\\[{i}\\] | {names[wrong]} | {names[y[i]]} | 3 of 3 |" in section, section
    # Data without files: how to see train[i] of this run's own data (its --data-seed), not
    # load_task(SPEC).example_name, which gave 'train[140]' for sklearn:digits at its seed.
    assert (f"from Python `hubensemble.labelcheck.training_image({str(tmp_path)!r}, i)` gives "
            "its pixels") in section, section
    assert "example_name" not in section
    # The whole list as a file beside the labels (the table shows SHOWN at most), named by
    # the section and the closing line; a stage's file, not the user's.
    listed = tmp_path / "labels" / "to_check.csv"
    assert f"The file `{listed}` lists them too (CSV columns split, index, file, given," in section
    with open(listed, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert sorted((int(r["index"]), r["given_name"], r["suggested_name"], r["votes"],
                   r["voters"], r["file"]) for r in rows) == [
        (i, names[wrong], names[y[i]], "3", "3", "") for i, wrong in sorted(FLIPPED.items())]
    assert Run(tmp_path).foreign_content("labels") == []
    assert ("note: 3 training images' labels look wrong to the ranked modules: see the "
            f"report's \"Labels to check\" and {listed}") in report.summary_table(tmp_path)
    # No list any more (the labels fixed, ranked again): the report removes the old file,
    # and the closing line, gone too, names none.
    atomic_save_npy(tmp_path / "labels" / "train.npy", y)
    write_knn_predictions(tmp_path, dict(zip(MODULES, [sklearn_loo(x, y) for x in embs])))
    report.write_report(tmp_path)
    assert not listed.exists()
    assert "labels look wrong" not in report.summary_table(tmp_path)


def test_training_image_is_train_i_of_the_runs_own_data_at_its_seed(tmp_path):
    """The section's train[i] for data without files: the run's data loaded again as run.json
    records it (its --data-seed 3: load_task(SPEC) at the default seed orders it otherwise)."""
    from hubensemble.data import load_task
    from hubensemble.labelcheck import training_image
    from hubensemble.rundir import DataArgs

    args = DataArgs(spec="sklearn:digits", seed=3)
    task = args.load()
    Run(tmp_path).attach_task(task, args)
    image = training_image(tmp_path, 140)
    assert image.dtype == np.uint8 and image.shape == (8, 8, 3)
    assert (image == task.train.images[140]).all()
    assert not (load_task("sklearn:digits").train.images[140] == image).all()
    with pytest.raises(IndexError, match=r"has 800 training images, train\[0\] to "
                                         r"train\[799\]; got 800"):
        training_image(tmp_path, 800)
    with pytest.raises(TypeError):
        training_image(tmp_path, 1.5)
    # val[i] of a validation row of to_check.csv, the same way.
    from hubensemble.labelcheck import validation_image

    assert (validation_image(tmp_path, 7) == task.val.images[7]).all()
    with pytest.raises(IndexError, match=r"validation_image\(\): .* has 200 validation "
                                         r"images, val\[0\] to val\[199\]; got -1"):
        validation_image(tmp_path, -1)


def test_one_image_to_check_is_said_as_one(tmp_path):
    """At n = 1 the section read "1 training image: for each, none of its …" and "Each image
    is named by its file"."""
    embs, y, given = tiny_task()
    given[[17, 30]] = y[[17, 30]]  # only image 4 flipped
    near = [sklearn_neighbours(x, 5) for x in embs]
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, [sklearn_loo(x, given) for x in embs],
               neighbours=near)
    paths = [f"/data/pets/{i}.png" for i in range(len(y))]
    atomic_write_json(tmp_path / "labels" / "train_paths.json", paths)
    md = report.write_report(tmp_path).markdown.read_text()
    section = md.split("## Labels to check")[1].split("\n## ")[0]
    assert "1 training image: none of its 5 nearest training images in any of the 3" in section
    assert "It is mislabelled or hard to tell apart: look at it. It is named by its file" in (
        section), section
    for wrong in ("for each", "Each image", "Such an image", "Listed with", "them"):
        assert wrong not in section, wrong
    listed = tmp_path / "labels" / "to_check.csv"
    assert f"The file `{listed}` lists it too" in section
    assert listed.read_text(encoding="utf-8").splitlines() == [
        "\ufeffsplit,index,file,given,given_name,suggested,suggested_name,votes,voters",
        "train,4,/data/pets/4.png,2,emu,0,cat,15,15"]
    assert ("note: 1 training image's label looks wrong to the ranked modules: see the "
            f"report's \"Labels to check\" and {listed}") in report.summary_table(tmp_path)


def test_where_neighbourhoods_are_mixed_only_a_majority_on_another_label_is_listed(tmp_path):
    """dsprites_orient10's exact labels listed 22 images whose neighbours split among
    look-alike orientation classes: where the given label's mean share of the neighbours is
    below MIN_GIVEN_SHARE, an image is listed only when MAJORITY of them carry one label."""
    from hubensemble.labelcheck import MAJORITY, MIN_GIVEN_SHARE, run_label_check

    c, per, k = 4, 10, 5
    given = np.repeat(np.arange(c), per)
    by_class = [np.flatnonzero(given == j) for j in range(c)]
    near = np.empty((3, len(given), k), np.int64)
    for i, y in enumerate(given):  # 2 of 5 of its own class, 3 of the next: share 0.4
        own = [j for j in by_class[y] if j != i][:2]
        near[:, i] = own + list(by_class[(y + 1) % c][:3])
    near[:, 0] = by_class[1][:5]  # image 0 (class 0): all 15 carry label 1 - listed
    near[0, 10], near[1, 10], near[2, 10] = by_class[0][1:6], by_class[2][:5], by_class[3][:5]
    share = float((given[near] == given[None, :, None]).mean())
    assert share < MIN_GIVEN_SHARE and 5 / 15 < MAJORITY  # image 10: 5 / 5 / 5, split
    preds = [given[near[m, :, 0]] for m in range(3)]
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, preds, neighbours=list(near))
    check = run_label_check(tmp_path)
    assert [(s.index, s.suggested, s.votes) for s in check.suspects] == [(0, 1, 15)]
    assert check.mixed and check.split == 1 and check.given_share == pytest.approx(share)
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    assert ("1 training image: none of its 5 nearest training images in any of the 3 best "
            "ranked modules' embeddings (leave-one-out, as ranked) carries its given label and "
            "50% or more of them carry one other label (this run's neighbourhoods are mixed, "
            f"the given label's mean share of each image's neighbours being {share:.2f}, "
            "below 0.45") in section, section
    assert "1 more image left out so" in section
    assert "| train\\[0\\] | cat | dog | 15 of 15 |" in section
    # The majority gone too: none to check, and the section says why, not that every label
    # is carried.
    near[:, 0] = np.concatenate([by_class[1][:2], by_class[2][:2], by_class[3][:1]])  # 6/6/3
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, preds, neighbours=list(near))
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    assert ("None to check: this run's neighbourhoods are mixed" in section
            and "No neighbour of 2 training images carries their given labels, but none has "
            "50% or more of them on one other label." in section), section
    assert "labels look wrong" not in report.summary_table(tmp_path)


@pytest.mark.parametrize("case", ["weak", "metric", "agree", "many"])
def test_no_list_says_why_and_the_closing_table_says_nothing(tmp_path, case):
    embs, y, given = tiny_task()
    preds = [sklearn_loo(x, given if case != "agree" else y) for x in embs]
    if case == "many":  # 8 of 36 images (22 %) contradicted by every module
        preds = [np.where(np.arange(len(y)) % 5 == 0, (given + 1) % C, given)] * 3
    scores = [MIN_PROXY_SCORE - 0.01, 0.5, 0.4] if case == "weak" else [0.9, 0.8, 0.7]
    ranked_run(tmp_path, scores, given if case != "agree" else y, preds,
               metric="logme" if case == "metric" else "knn")
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    assert {"weak": f"No list: the best module's leave-one-out kNN accuracy is 0.5900, below "
                    f"{MIN_PROXY_SCORE}",
            "metric": "No list: the ranking's metric is logme",
            "agree": "none to check",
            "many": "contradicts the label of 8 of the 36 training images, more than "
                    f"{MAX_SHARE:.0%}"}[
        case] in section, section
    assert "train\\[" not in section
    assert "labels look wrong" not in report.summary_table(tmp_path)


def rare_class_neighbours(given, odd, k=10, modules=3):
    """[modules, N, k] neighbours: each image's k nearest are other images of its own label,
    but those of `odd` (indexes) have only images of another label (the common class 0's
    first ones, or class 1's for an image of class 0)."""
    by_class = {c: np.flatnonzero(given == c) for c in np.unique(given)}
    near = np.empty((modules, len(given), k), np.int64)
    for i, c in enumerate(given):
        own = [j for j in by_class[c] if j != i]
        other = by_class[1 if c == 0 else 0]
        pool = other if i in odd or not own else own
        near[:, i] = [pool[t % len(pool)] for t in range(k)]
    return near


def test_no_training_list_when_every_module_is_at_chance(tmp_path):
    """A new user's 95/5 binary folder (375 vs 20): every module's kNN score at or below
    ranking.json's chance (0.8903-0.9409 vs 0.9494) listed 3 of the rare class's right labels;
    at chance the neighbours are the common class's, so there is no list, and it says why."""
    given = np.repeat([0, 1], [190, 10])  # chance 0.95
    near = rare_class_neighbours(given, odd={190, 191, 192})
    preds = [given[near[m, :, 0]] for m in range(3)]
    for chance in (0.95, None):  # None: a ranking without it: from the labels
        ranked_run(tmp_path, [0.94, 0.93, 0.9], given, preds, neighbours=list(near),
                   chance=chance)
        section = render_markdown("t", [labels_section(load_run(tmp_path))])
        assert ("No list: every ranked module's leave-one-out kNN accuracy is at chance (the "
                "best 0.9400 <= 0.9500, always the most common class)") in section, section
        assert "labels look wrong" not in report.summary_table(tmp_path)


def test_a_class_of_one_image_is_never_listed_and_a_crowded_class_not_at_all():
    """An image alone in its class has no neighbour of its label (--min-per-class 1); a class
    more than MAX_CLASS_SHARE of which would be listed is not separated by the modules: both
    are left out and said once, with counts; the flipped labels elsewhere stay listed."""
    from hubensemble.labelcheck import MAX_CLASS_SHARE, check_ranking, class_limited

    embs, y, given = tiny_task()
    near = np.stack([sklearn_neighbours(x, 5) for x in embs])  # 3 classes of 12
    lone = np.concatenate([given, [3]])  # image 36: the one image of class 3
    near = np.concatenate([near, np.tile([[[0, 1, 2, 3, 5]]], (3, 1, 1))], axis=1)
    ranking = Ranking(metric="knn", k=1, rows=[
        {"name": n, "status": "ok", "score": s} for n, s in zip(MODULES, [0.9, 0.88, 0.85])],
        selected=[], chance=12 / 37)
    preds = {n: lone[near[m, :, 0]] for m, n in enumerate(MODULES)}
    check = check_ranking(ranking, preds, lone, dict(zip(MODULES, near)))
    assert sorted(s.index for s in check.suspects) == sorted(FLIPPED)
    assert (check.lone, check.crowded, check.skipped) == (1, (), None)
    assert check.left_out(["cat", "dog", "emu", "yak"]) == (
        "1 image in classes of one image not checkable (no other image carries its label)")
    # Alone, it makes no list, and that says why (not that every label is carried).
    right = np.concatenate([y, [3]])  # no label flipped
    only = check_ranking(ranking, preds, right, dict(zip(MODULES, near)))
    assert not only.suspects and only.skipped.startswith("1 image in classes of one image")
    # A class of 12 with 3 suspects (25 %: the 95/5 folder's rare class) is left out whole;
    # one of 20 with 2 (10 %) is kept.
    labels = np.repeat([0, 1], [20, 12])
    suspects = [Suspect(i, labels[i], 1 - labels[i], 9, 3, 3) for i in (0, 1, 20, 21, 22)]
    assert 2 / 20 <= MAX_CLASS_SHARE < 3 / 12
    kept, n_lone, crowded = class_limited(suspects, labels)
    assert ([s.index for s in kept], n_lone, crowded) == ([0, 1], 0, ((1, 3, 12),))
    assert "class dog not listed: 3 of its 12 images would be, more than 20% of it" in (
        dataclasses.replace(check, lone=0, crowded=crowded).left_out(["cat", "dog"]))


def test_the_report_says_what_was_left_out_under_a_list(tmp_path):
    """A list with an image left out (alone in its class): the report said nothing of it
    (`LabelCheck.left_out` reached it only when no list was left)."""
    embs, y, given = tiny_task()
    near = np.stack([sklearn_neighbours(x, 5) for x in embs])
    lone = np.concatenate([given, [3]])  # image 36: the one image of class 3
    near = np.concatenate([near, np.tile([[[0, 1, 2, 3, 5]]], (3, 1, 1))], axis=1)
    ranked_run(tmp_path, [0.9, 0.88, 0.85], lone, [lone[near[m, :, 0]] for m in range(3)],
               neighbours=list(near))
    md = report.write_report(tmp_path).markdown.read_text()
    section = md.split("## Labels to check")[1].split("\n## ")[0]
    assert "3 training images: for each, none of its 5 nearest" in section, section
    table_end = section.index("| train\\[30\\] |")
    said = section.index("Left out of the list: 1 image in classes of one image not checkable "
                         "(no other image carries its label).")
    assert said > table_end, section


def test_a_long_list_shows_the_first_and_counts_the_rest(tmp_path):
    n, flagged = 300, SHOWN + 5
    assert flagged <= MAX_SHARE * n
    given = np.arange(n) % 2  # two classes: one class alone would be at chance (1.0)
    preds = [np.where(np.arange(n) < flagged, 1 - given, given)] * 3
    ranked_run(tmp_path, [0.9, 0.8, 0.7], given, preds)
    md = render_markdown("t", [labels_section(load_run(tmp_path))])
    assert f"train\\[{SHOWN - 1}\\]" in md and f"train\\[{SHOWN}\\]" not in md
    assert f"… and 5 more: `{tmp_path / 'labels' / 'to_check.csv'}` lists them all" in md


def test_a_damaged_knn_file_is_named_and_the_closing_table_says_nothing(tmp_path):
    embs, y, given = tiny_task()
    ranked_run(tmp_path, [0.9, 0.8, 0.7], given, [sklearn_loo(x, given) for x in embs])
    report.write_report(tmp_path)
    assert (tmp_path / "labels" / "to_check.csv").exists()
    (tmp_path / "knn.npz").write_bytes(b"not a zip")
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    assert f"Not known: {tmp_path / 'knn.npz'} is unreadable" in section, section
    assert "labels look wrong" not in report.summary_table(tmp_path)
    report.write_report(tmp_path)  # no list now: the old file goes
    assert not (tmp_path / "labels" / "to_check.csv").exists()
    # A value of an unexpected kind (a score "abc"): the section says it could not be
    # drawn, and neither the report's file nor the closing table raises (both did:
    # ValueError).
    import json

    ranked_run(tmp_path, [0.9, 0.8, 0.7], given, [sklearn_loo(x, given) for x in embs])
    doc = json.loads((tmp_path / "ranking.json").read_text())
    doc["modules"][0]["score"] = "abc"
    (tmp_path / "ranking.json").write_text(json.dumps(doc))
    md = report.write_report(tmp_path).markdown.read_text()
    assert "the report cannot show 'Labels to check'" in md or (
        "could not convert string to float: 'abc'" in md), md
    assert not (tmp_path / "labels" / "to_check.csv").exists()
    assert "labels look wrong" not in report.summary_table(tmp_path)


def sklearn_neighbours(x, k):
    """Each image's k nearest other images from scikit-learn, nearest first (the data has no
    equal distances, so no tie rule is involved)."""
    idx = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(
        x, return_distance=False)
    assert (idx[:, 0] == np.arange(len(x))).all()
    return idx[:, 1:]


def test_neighbour_suspects_are_the_images_no_neighbour_of_the_best_modules_agrees_with():
    from hubensemble.labelcheck import neighbour_suspects

    embs, y, given = tiny_task()
    near = np.stack([sklearn_neighbours(x, 5) for x in embs])  # [3, 36, 5]
    suspects = neighbour_suspects(near, given)
    # The reference, computed apart: images none of whose 15 neighbours carries the label.
    expected = [i for i in range(len(y)) if not (given[near[:, i]] == given[i]).any()]
    assert sorted(s.index for s in suspects) == expected == sorted(FLIPPED)
    for s in suspects:
        assert (s.given, s.suggested, s.votes, s.modules, s.neighbours) == (
            given[s.index], y[s.index], 15, 3, 5)
        assert s.score == 1.0
    # Ordered by the suggested label's votes, then index; a tie of votes goes to the smaller.
    labels = np.array([0, 0, 1, 1, 2])
    near = np.array([[[2, 4], [2, 3], [4, 1], [0, 2], [0, 1]]])  # one module, K = 2
    assert neighbour_suspects(near, labels) == [
        Suspect(1, 0, 1, 2, 1, 2), Suspect(4, 2, 0, 2, 1, 2), Suspect(0, 0, 1, 1, 1, 2),
        Suspect(2, 1, 0, 1, 1, 2)]  # 3 is its own label's neighbour (2); 0 and 2 ties
    with pytest.raises(ValueError, match=r"neighbours of shape \(1, 5, 2\) do not match "
                                         r"labels of shape \(4,\)"):
        neighbour_suspects(near, labels[:4])


def test_the_report_lists_by_neighbours_when_knn_npz_holds_them(tmp_path):
    embs, y, given = tiny_task()
    preds = [sklearn_loo(x, given) for x in embs]
    near = [sklearn_neighbours(x, 5) for x in embs]
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, preds, neighbours=near)
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    assert ("3 training images: for each, none of its 5 nearest training images in any of "
            "the 3 best ranked modules' embeddings") in section, section
    assert "predates" not in section
    names = ["cat", "dog", "emu"]
    for i, wrong in FLIPPED.items():
        assert f"| train\\[{i}\\] | {names[wrong]} | {names[y[i]]} | 15 of 15 |" in section
    assert "neighbours suggesting it" in section
    assert "note: 3 training images' labels look wrong" in report.summary_table(tmp_path)


def test_knn_npz_keeps_neighbours_only_for_every_module_and_old_files_have_none(tmp_path):
    from hubensemble.rank.knnfile import NEIGHBOURS, load_knn_neighbours, loo_neighbours

    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    # With groups, an image's own duplicate group is left out, as rank's predictions leave it.
    groups = np.arange(40)
    groups[[3, 7, 9]] = 3
    got = loo_neighbours(x, metric="euclidean", groups=groups)
    assert got.dtype == np.int32 and got.shape == (40, NEIGHBOURS)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    d[groups[:, None] == groups[None, :]] = np.inf
    np.testing.assert_array_equal(got, np.argsort(d, axis=1, kind="stable")[:, :NEIGHBOURS])
    assert loo_neighbours(x[:NEIGHBOURS], metric="euclidean") is None  # too few others
    preds = {"a": np.zeros(40, int), "b": np.ones(40, int)}
    write_knn_predictions(tmp_path, preds, {"a": got, "b": got[::-1]})
    back = load_knn_neighbours(tmp_path, ["b"])
    assert list(back) == ["b"]
    np.testing.assert_array_equal(back["b"], got[::-1])
    write_knn_predictions(tmp_path, preds, {"a": got})  # one module without: none kept
    assert load_knn_neighbours(tmp_path) == {}
    write_knn_predictions(tmp_path, preds)  # as rank wrote it before
    assert load_knn_neighbours(tmp_path) == {} and len(rank_predictions(tmp_path)) == 2


def rank_predictions(path):
    from hubensemble.rank.knnfile import load_knn_predictions

    return load_knn_predictions(path)


def test_a_folder_runs_list_names_each_image_by_its_file(tmp_path):
    from types import SimpleNamespace

    embs, y, given = tiny_task()
    preds = [sklearn_loo(x, given) for x in embs]
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, preds,
               neighbours=[sklearn_neighbours(x, 5) for x in embs])
    root = tmp_path / "pets"
    paths = [str(root / ["cat", "dog", "emu"][c] / f"img{i}.png") for i, c in enumerate(y)]
    run = Run(tmp_path)
    run.update(data={"args": {"spec": f"folder:{root}"}, "task": {
        "name": "pets", "source": f"folder:{root} (split 80/20)",
        "class_names": ["cat", "dog", "emu"], "num_classes": C}})
    # What rank's attach_task writes for data read from files: the labels and their files.
    task = SimpleNamespace(train=SimpleNamespace(labels=given, paths=paths), val=None,
                           test=None)
    assert run.write_labels(task) == ["train"] and run.train_paths() == paths
    assert run.foreign_content("labels") == []  # a stage's file, not the user's
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    for i in FLIPPED:
        assert f"| {['cat', 'dog', 'emu'][y[i]]}/img{i}.png | " in section, section
    assert "train\\[" not in section and "named by its file, relative to" in section
    # Paths of another number of images (a stale file): train[i] again.
    (tmp_path / "labels" / "train_paths.json").write_text('["a.png"]')
    assert "| train\\[4\\] |" in render_markdown("t", [labels_section(load_run(tmp_path))])
    task.train.paths = None  # data without files: no file left behind
    run.write_labels(task)
    assert run.train_paths() is None and not (tmp_path / "labels" / "train_paths.json").exists()


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rank_predictions_from_the_kept_neighbours_are_loo_knn_predicts(metric):
    """rank computes the 10 neighbours once and its k-NN predictions from them: they must be
    proxies.loo_knn_predict's, ties (small integer coordinates, copied rows) and duplicate
    groups included."""
    from hubensemble.proxies import loo_knn_predict
    from hubensemble.rank.knnfile import loo_neighbours, neighbour_votes

    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(120, 4)).astype(np.float32)
    x[60:70] = x[:10]  # copies
    y = rng.integers(0, 4, 120)
    groups = np.arange(120)
    groups[60:70] = groups[:10]
    for g in (None, groups):
        near = loo_neighbours(x, metric=metric, groups=g)
        for k in (1, 2, 3, 5, 10):
            np.testing.assert_array_equal(
                neighbour_votes(near, y, k, block_rows=7),
                loo_knn_predict(x, y, k=k, metric=metric, groups=g), err_msg=f"k={k}")


def test_the_csv_files_cells_are_text_to_a_spreadsheet_and_read_back_as_named(tmp_path):
    """A class folder or image file named "=HYPERLINK(…)" (or starting with +, -, @, a tab
    or a carriage return) was written into RUN/labels/to_check.csv as it is: a spreadsheet
    program opening the list ran it as a formula (OWASP "CSV Injection"). Both CSV files
    (to_check.csv, ranking.csv) now write such a text cell with "'" before it (shown as text),
    numbers as they are (a score of -0.25), and `csvcells.read_cell` gives the name back."""
    from hubensemble.csvcells import BOM, FORMULA_STARTS, read_cell
    from hubensemble.labelcheck import LabelCheck, write_labels_to_check

    names = ['=HYPERLINK("http://x","y")', "+cat", "-1", "@dog", "\tx", "'quoted", "emu"]
    paths = ["=a.jpg", "@b.png", "ok.jpg"]
    check = LabelCheck([Suspect(index=i, given=i, suggested=i + 1, votes=3, modules=3)
                        for i in range(3)] + [Suspect(index=0, given=5, suggested=6, votes=1,
                                                      modules=1)], modules=3)
    path = write_labels_to_check(tmp_path, check, names, paths)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    cells = [v for row in rows for v in row.values()]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
    assert [(read_cell(r["file"]), read_cell(r["given_name"]), read_cell(r["suggested_name"]))
            for r in rows] == [(paths[0], names[0], names[1]), (paths[1], names[1], names[2]),
                               (paths[2], names[2], names[3]), (paths[0], names[5], names[6])]
    assert rows[2]["given_name"] == "'-1" and rows[2]["index"] == "2"  # ints as written
    assert rows[3]["given_name"] == "''quoted" and rows[3]["suggested_name"] == "emu"
    ranking = Ranking(metric="logme", k=1, selected=["-m"], rows=[
        {"name": "-m", "handle": "@h/x", "status": "ok", "reason": None, "score": -0.25},
        {"name": "m2", "handle": "=cmd|'/c calc'!A1", "status": "failed", "reason": "+oops",
         "score": None}])
    text = ranking.to_csv()  # the file's text: its byte-order mark first (csvcells.BOM)
    listed = list(csv.DictReader(text.removeprefix(BOM).splitlines()))
    assert [(r["name"], r["handle"], r["reason"], r["score"]) for r in listed] == [
        ("'-m", "'@h/x", "", "-0.25"), ("m2", "'=cmd|'/c calc'!A1", "'+oops", "")]
    assert read_cell(listed[1]["handle"]) == "=cmd|'/c calc'!A1"


def test_the_csv_files_start_with_a_byte_order_mark_and_read_back_names_in_any_script(
        tmp_path):
    """RUN/labels/to_check.csv and RUN/ranking.csv were UTF-8 without a byte-order mark:
    Excel on Windows opens such a CSV in the locale's code page, and "café/猫.png" showed as
    "cafÃ©/çŒ«.png". Both now start with the mark (`csvcells.csv_text`, their one writer;
    EF BB BF in the file), and `csvcells.read_rows` (encoding "utf-8-sig") gives back every
    name, with the header's first column named as it is; a file written before, without the
    mark, reads the same."""
    from hubensemble.csvcells import read_rows
    from hubensemble.labelcheck import CSV_COLUMNS, LabelCheck, write_labels_to_check

    names = ["café", "猫", "=Ωmega", "ice, snow"]
    paths = ["/data/café/猫 1.png", "/data/Ωmega/=x.png"]
    check = LabelCheck([Suspect(index=1, given=2, suggested=3, votes=2, modules=3),
                        Suspect(index=0, given=0, suggested=1, votes=1, modules=3)], modules=3)
    path = write_labels_to_check(tmp_path, check, names, paths)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfsplit,index,file,") and "猫".encode() in data
    rows = read_rows(path)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["index"], r["file"], r["given_name"], r["suggested_name"]) for r in rows] == [
        ("1", paths[1], names[2], names[3]), ("0", paths[0], names[0], names[1])]
    path.write_bytes(data[3:])  # as written before the mark
    assert read_rows(path) == rows
    ranking = Ranking(metric="logme", k=1, selected=["m"], rows=[
        {"name": "m", "handle": "/models/café-猫", "status": "ok", "reason": None,
         "score": 0.5}])
    ranking.write(tmp_path)
    assert (tmp_path / "ranking.csv").read_bytes().startswith(b"\xef\xbb\xbfname,handle,")
    assert read_rows(tmp_path / "ranking.csv")[0]["handle"] == "/models/café-猫"


# --- validation labels: the candidates' own validation probabilities --------------------------

VAL_FLIPPED = {5: 0, 22: 2, 47: 0}  # validation index: the wrong label given


def tuned_pool(n=80, c=C, seed=0):
    """Candidates (`candidate.Candidate`, val_probs set) of 5 modules on n validation images
    of c = 3 classes, the true labels and the labels with VAL_FLIPPED given: modules a-d
    confident on the true label (d wrong on images 10-13, alone), a second, worse candidate
    of a, module e at chance (uniform); image 60 (true 0) the given label unlikely to all,
    their votes split 2 / 2; image 70 (true 1) unlikely to three of the four only."""
    from hubensemble.candidate import Candidate

    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    given = y.copy()
    for i, wrong in VAL_FLIPPED.items():
        given[i] = wrong

    def table(sharp, split_to=None, keep70=False):
        logits = rng.normal(scale=0.3, size=(n, c))
        logits[np.arange(n), y] += sharp
        if split_to is not None:  # image 60: another label than its own (0)
            logits[60] = 0.0
            logits[60, split_to] = sharp
        if keep70:
            logits[70] = 0.0  # uniform: 1 / 3 for its label
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    tables = {"a": table(9.0, 1), "b": table(8.5, 2), "c": table(8.0, 2),
              "d": table(8.2, 1, keep70=True)}
    tables["d"][10:14] = np.roll(tables["d"][10:14], 1, axis=1)  # d's own errors
    worse_a = table(9.0, 1)
    worse_a[20:40] = np.roll(worse_a[20:40], 1, axis=1)  # wrong on a quarter of the images
    uniform = np.full((n, c), 1 / c, np.float32)
    cands = [Candidate(f"default-{j:04d}-{m}", Path("."), {"module": m, "status": "ok"},
                       val_probs=p)
             for j, (m, p) in enumerate([*tables.items(), ("a", worse_a), ("e", uniform)])]
    return cands, y, given


def test_validation_suspects_are_the_images_every_best_candidate_finds_unlikely():
    """Validation labels were never checked, though they pick the ensemble. The best
    candidate of each module (lowest validation cross-entropy, none at chance) votes; an
    image whose given label every voter gives below LOW_PROBABILITY, most of them predicting
    one other label, is listed. Checked against a count made apart, with loops."""
    from collections import Counter

    from hubensemble.labelcheck import (LOW_PROBABILITY, check_validation,
                                        probability_suspects, validation_voters)

    cands, y, given = tuned_pool()
    trials, probs = validation_voters(cands, given)
    # a's sharper candidate, not its worse one; e (at chance) not at all; by cross-entropy.
    assert sorted(trials) == ["default-0000-a", "default-0001-b", "default-0002-c",
                              "default-0003-d"]
    ces = [-np.mean(np.log(np.maximum(p[np.arange(len(given)), given], 1e-7))) for p in probs]
    assert ces == sorted(ces)
    expected = []
    for i in range(len(given)):
        low = [p[i, given[i]] < LOW_PROBABILITY for p in probs]
        (label, votes), = Counter(int(np.argmax(p[i])) for p in probs).most_common(1)
        if all(low) and votes > len(probs) / 2:
            expected.append((i, int(given[i]), label, votes))
    assert sorted(expected) == [(i, w, int(y[i]), 4) for i, w in sorted(VAL_FLIPPED.items())]
    check = check_validation(cands, given)
    assert not check.skipped and check.labels_of == "val" and check.modules == 4
    assert sorted((s.index, s.given, s.suggested, s.votes) for s in check.suspects) == expected
    assert all(s.modules == 4 and s.neighbours == 1 for s in check.suspects)
    # On the true labels: nothing (60's votes split, 70 is likely to one voter, d's errors
    # are its own).
    assert check_validation(cands, y).suspects == []
    with pytest.raises(ValueError, match=r"probabilities of shape \(4, 80, 3\) do not match "
                                         r"labels of shape \(79,\)"):
        probability_suspects(probs, given[:79])


@pytest.mark.parametrize("case", ["few", "weak", "many"])
def test_validation_labels_get_no_list_when_the_evidence_is_weak(case):
    from hubensemble.labelcheck import (LOW_PROBABILITY, MAX_SHARE, MIN_VAL_ACCURACY,
                                        check_validation)

    cands, y, given = tuned_pool()
    if case == "few":  # two modules above chance
        cands = [c for c in cands if c.module in ("a", "b", "e")]
    if case == "weak":  # the labels mostly wrong: no candidate reaches MIN_VAL_ACCURACY
        given = np.where(np.arange(len(y)) % 2 == 0, (y + 1) % C, y)
    if case == "many":  # 12 of 80 (15 %) flipped, one class into the next (d agrees on 2)
        given = np.where(np.arange(len(y)) < 12, (y + 1) % C, y)
    check = check_validation(cands, given)
    assert check.suspects == [] and check.labels_of == "val"
    assert {"few": "2 modules have a candidate above chance on validation; at least 3",
            "weak": f"validation accuracy is 0.5125, below {MIN_VAL_ACCURACY}",
            "many": f"below {LOW_PROBABILITY} (most predicting one other) for 10 of the 80 "
                    "validation images, more than "
                    f"{MAX_SHARE:.0%}"}[case] in check.skipped, check.skipped


def test_the_report_file_and_closing_line_name_the_validation_labels_to_check(tmp_path):
    """The validation suspects go where users look: the section (after the training ones),
    RUN/labels/to_check.csv (its `split` column "val") and fit's closing line."""
    from hubensemble.candidate import split_record, write_candidate
    from hubensemble.labelcheck import read_labels_to_check
    from hubensemble.report.labels import summary_line, write_list

    _, y, given = tiny_task()
    ranked_run(tmp_path, [0.9, 0.88, 0.85], given, [y] * 3)  # the 3 flips contradicted
    cands, y_val, given_val = tuned_pool()
    atomic_save_npy(tmp_path / "labels" / "val.npy", given_val)
    for cand in cands:
        write_candidate(tmp_path / "candidates", {
            "trial": cand.trial, "module": cand.module, "status": "ok", "has_test": False,
            "val": split_record(cand.val_probs, given_val)}, val_probs=cand.val_probs)
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    names = ["cat", "dog", "emu"]
    assert "3 training images: for each" in section  # the training part first, as before
    assert ("**Validation labels.** 3 validation images: for each, the best candidate of each "
            "of the 4 modules of the lowest validation cross-entropy (`default-000") in section
    assert "`default-0004-a`" not in section and "`default-0005-e`" not in section
    for i, wrong in VAL_FLIPPED.items():
        assert (f"| val\\[{i}\\] | {names[wrong]} | {names[y_val[i]]} | 4 of 4 |"
                in section), section
    assert ("from Python `hubensemble.labelcheck.validation_image("
            f"{str(tmp_path)!r}, i)` gives its pixels") in section
    listed = write_list(tmp_path)  # what write_report writes
    assert listed == tmp_path / "labels" / "to_check.csv"
    rows = read_labels_to_check(listed)
    assert [r["split"] for r in rows] == ["train"] * 3 + ["val"] * 3  # training ones first
    assert sorted((int(r["index"]), r["given_name"], r["suggested_name"], r["votes"],
                   r["voters"], r["file"]) for r in rows[3:]) == [
        (i, names[VAL_FLIPPED[i]], names[y_val[i]], "4", "4", "") for i in sorted(VAL_FLIPPED)]
    assert sorted(int(r["index"]) for r in rows[:3]) == sorted(FLIPPED)
    assert ("note: 3 training images' labels look wrong to the ranked modules and 3 "
            "validation images' to the tuned candidates: see the report's \"Labels to "
            f"check\" and {listed}") == summary_line(tmp_path)
    # The training labels fixed: the file and the line keep the validation ones alone.
    atomic_save_npy(tmp_path / "labels" / "train.npy", y)
    write_knn_predictions(tmp_path, dict.fromkeys(MODULES, y))
    write_list(tmp_path)
    assert [r["split"] for r in read_labels_to_check(listed)] == ["val"] * 3
    assert summary_line(tmp_path).startswith(
        "note: 3 validation images' labels look wrong to the tuned candidates: see the report's")
    # One training label wrong: the verb is said again where its number differs.
    one = y.copy()
    one[0] = (y[0] + 1) % 3
    atomic_save_npy(tmp_path / "labels" / "train.npy", one)
    write_list(tmp_path)
    assert summary_line(tmp_path).startswith(
        "note: 1 training image's label looks wrong to the ranked modules and 3 validation "
        "images' labels look wrong to the tuned candidates: see"), summary_line(tmp_path)
    atomic_save_npy(tmp_path / "labels" / "train.npy", y)
    write_list(tmp_path)
    # And the validation ones fixed too: no file, no line.
    atomic_save_npy(tmp_path / "labels" / "val.npy", y_val)
    assert write_list(tmp_path) is None and not listed.exists()
    assert summary_line(tmp_path) is None
    section = render_markdown("t", [labels_section(load_run(tmp_path))])
    assert "**Validation labels.** None to check: the best candidate of each of the 4" in section


def test_a_list_written_before_the_split_column_still_reads(tmp_path):
    """RUN/labels/to_check.csv of a run reported before 2026-12-06 has no `split` column: its
    rows are training images, and `read_labels_to_check` says so; a file that is no such
    list is named."""
    from hubensemble.labelcheck import read_labels_to_check

    path = tmp_path / "to_check.csv"
    path.write_text("\ufeffindex,file,given,given_name,suggested,suggested_name,votes,voters\n"
                    "4,,2,'=emu,0,cat,15,15\n", encoding="utf-8")
    assert read_labels_to_check(path) == [
        {"index": "4", "file": "", "given": "2", "given_name": "=emu", "suggested": "0",
         "suggested_name": "cat", "votes": "15", "voters": "15", "split": "train"}]
    path.write_text("split,index\ntest,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"to_check.csv, line 2: not a list of labels to "
                                         r"check .*got 'test'"):
        read_labels_to_check(path)

"""The report's "Per-class accuracy on test" section: for each class, its test examples, the
ensemble's and the best single member's accuracy on them (recall), and the class the
ensemble most often mistook it for, from the same test probabilities as the section "Best
single member vs ensemble on test" (`sections._test_panels`: the members' test_probs.npy
averaged with ensemble.json's weights, and the best single member's)."""

from __future__ import annotations

import numpy as np

from hubensemble.report.render import Section, Table


def confusion(probs, labels, num_classes: int) -> np.ndarray:
    """int64 [C, C] confusion matrix of probabilities [N, C] (argmax; ties to the lower
    index, as `metrics.accuracy`) against labels int [N] in [0, C): row = true class,
    column = predicted class (scikit-learn's `confusion_matrix` layout)."""
    pred = np.asarray(probs).argmax(axis=1)
    labels = np.asarray(labels).astype(np.int64)
    out = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(out, (labels, pred), 1)
    return out


def perclass_section(files, panels) -> Section:
    """The section from `panels` [(title, test probabilities [N, C], labels [N])] (the
    ensemble first, then the best single member, as `sections._test_panels` gives them); a
    sentence instead when there are none. A class without a test example shows "–"."""
    sec = Section("Per-class accuracy on test")
    if not panels:
        return sec.add("No test probabilities to break down (see \"Best single member vs "
                       "ensemble on test\").")
    num_classes = panels[0][1].shape[1]
    names = list(files.task.get("class_names") or [])
    if len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    matrices = [confusion(p, y, num_classes) for _, p, y in panels]
    counts = matrices[0].sum(axis=1)
    rows = []
    for c in range(num_classes):
        accs = ["–" if not counts[c] else f"{m[c, c] / counts[c]:.4f}" for m in matrices]
        wrong = matrices[0][c].copy()
        wrong[c] = 0
        mistaken = (f"{names[int(wrong.argmax())]} ({int(wrong.max())})" if wrong.max()
                    else "–")
        rows.append([names[c], int(counts[c]), *accs, mistaken])
    first = panels[0][0]
    sec.add("Accuracy on each class's test examples (the share of them predicted as that "
            f"class); the last column is the class the {first} most often predicted instead, "
            "with how many of them.")
    return sec.add(Table(["class", "test examples", *(f"{t} accuracy" for t, _, _ in panels),
                          f"most frequent mistake ({first})"], rows))

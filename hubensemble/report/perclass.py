"""The report's "Per-class accuracy on test" section: for each class, its test examples, the
ensemble's and the best single member's accuracy on them (recall), and the class the
ensemble most often mistook it for, from the same test probabilities as the section "Best
single member vs ensemble on test" (`sections._test_panels`: the members' test_probs.npy
averaged with ensemble.json's weights, and the best single member's).

With more than PERCLASS_SHOWN classes the section leads with the PERCLASS_SHOWN classes the
ensemble does worst on (worst first) and keeps the full table, in class order, collapsed in
report.html; with unbalanced test classes (`data.coverage.unbalanced`) it gives each model's
balanced accuracy (`metrics.balanced_accuracy`), the mean of the accuracy column."""

from __future__ import annotations

import numpy as np

from hubensemble.data.coverage import unbalanced
from hubensemble.metrics import balanced_accuracy
from hubensemble.report.render import Details, Inline, Name, Section, Table

#: Classes beyond which the per-class section leads with the worst this many (a 210-class
#: table in class order hides the classes that fail); the full table follows, collapsed.
PERCLASS_SHOWN = 10


def confusion(probs, labels, num_classes: int) -> np.ndarray:
    """int64 [C, C] confusion matrix of probabilities [N, C] (argmax; ties to the lower
    index, as `metrics.accuracy`) against labels int [N] in [0, C): row = true class,
    column = predicted class (scikit-learn's `confusion_matrix` layout)."""
    pred = np.asarray(probs).argmax(axis=1)
    labels = np.asarray(labels).astype(np.int64)
    out = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(out, (labels, pred), 1)
    return out


def worst_classes(matrix, shown: int = PERCLASS_SHOWN) -> list[int]:
    """The class indexes of the `shown` lowest accuracies (recall) of confusion matrix int
    [C, C] (`confusion`), worst first; equal accuracies by more test examples first (more
    evidence), then class order. A class without a test example is not ranked."""
    counts = matrix.sum(axis=1)
    have = [c for c in range(len(counts)) if counts[c]]
    return sorted(have, key=lambda c: (matrix[c, c] / counts[c], -counts[c], c))[:shown]


def perclass_section(files, panels) -> Section:
    """The section from `panels` [(title, test probabilities [N, C], labels [N])] (the
    ensemble first, then the best single member, as `sections._test_panels` gives them); a
    sentence instead when there are none. A class without a test example shows "–". More
    than PERCLASS_SHOWN classes: the worst ones first (`worst_classes`), then every class
    in a Details block (the lead table holds only classes with a mistake: none, a sentence
    saying so); unbalanced test classes: a sentence with the balanced accuracies."""
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
        mistaken = (Inline(Name(str(names[int(wrong.argmax())])), f" ({int(wrong.max())})")
                    if wrong.max() else "–")
        rows.append([Name(str(names[c])), int(counts[c]), *accs, mistaken])
    first = panels[0][0]
    sec.add("Accuracy on each class's test examples (the share of them predicted as that "
            f"class); the last column is the class the {first} most often predicted instead, "
            "with how many of them.")
    if unbalanced(panels[0][2]):
        sec.add(f"The test classes are unbalanced (from {counts[counts > 0].min()} to "
                f"{counts.max()} examples): balanced accuracy, the mean of a model's accuracy "
                "column below with each class counted once, is " + ", ".join(
                    f"{balanced_accuracy(p, y):.4f} for the {t}" for t, p, y in panels)
                + "; accuracy counts each example once, so the large classes decide it.")
    headers = ["class", "test examples", *(f"{t} accuracy" for t, _, _ in panels),
               f"most frequent mistake ({first})"]
    if num_classes <= PERCLASS_SHOWN:
        return sec.add(Table(headers, rows))
    # Only classes with a mistake lead: ten rows of 1.0000 under "does worst on" (a 100-class
    # run the ensemble got all right) said nothing true.
    worst = [c for c in worst_classes(matrices[0])
             if matrices[0][c, c] < matrices[0][c].sum()]
    if not worst:
        sec.add(f"The {first} predicts every test example of all {num_classes} classes right "
                "(accuracy 1.0000 each).")
    elif len(worst) < PERCLASS_SHOWN:
        rest = int((counts > 0).sum()) - len(worst)
        sec.add(f"The {len(worst)} of the {num_classes} classes the {first} gets a test "
                f"example of wrong, worst first (the other {rest}: every one right):",
                Table(headers, [rows[c] for c in worst]))
    else:
        sec.add(f"The {len(worst)} of the {num_classes} classes the {first} does worst on, "
                "worst first:", Table(headers, [rows[c] for c in worst]))
    return sec.add(Details(f"All {num_classes} classes, in class order",
                           [Table(headers, rows)]))

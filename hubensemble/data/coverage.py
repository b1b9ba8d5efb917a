"""Class coverage of a split: which classes it has examples of, and the one sentence that
says so. One rule for the task summary, the run's coverage record (ensemble.json's
"coverage"), the log and the report (issue 13). NumPy only, no TensorFlow."""

import numpy as np

from hubensemble.text import names_shown

#: What each split's metrics are called in the sentences of `coverage_note`.
_SPLIT_WORDS = {"train": ("training", "the kNN ranking and fine-tuning"),
                "val": ("validation", "validation metrics and the ensemble selection"),
                "test": ("test", "test metrics")}


#: The way on after a task summary's notes of classes without val or test examples when
#: how its splits were made is not known (`coverage_fix`; `splits.split_counts` keeps 2 in
#: training, then gives val, then test one).
COVERAGE_FIX = ("to cover a class, give it examples there: a split carved off train reaches "
                "each class of 4 images or more (a class of 3 reaches val only, as training keeps "
                "2), so add images to it; or give the split its own (a val/ or test/ class "
                "folder, an npz's x_val / x_test)")
#: Where a split of its own is given, by the data spec's scheme and the split.
_OWN = {("folder", "val"): "a val/CLASS/ folder", ("folder", "test"): "a test/CLASS/ folder",
        ("npz", "val"): "the npz's x_val / y_val", ("npz", "test"): "the npz's x_test / y_test"}


def coverage_fix(splits, carved, scheme=None) -> str:
    """The way on after the notes of classes without examples in `splits` (some of "val",
    "test"), by how each was made: `carved` the splits the loader carved off train
    (`Task.carved`; None when not known: COVERAGE_FIX, both ways), `scheme` the data spec's
    ("folder", "npz"; else None). A carved split reaches each class of 4 training images or
    more, so the class needs images in train (or a split of its own); a split the data gives
    (an npz's x_test, a test/ folder) needs images of the class in it. It told an npz whose
    x_test lacked a class that a split carved off train reaches each class of 4 images (a
    new user's check): an npz's test split is never carved."""
    if carved is None:
        return COVERAGE_FIX
    cut = [s for s in splits if s in carved]
    given = [s for s in splits if s not in carved]
    ways = []
    if cut:
        was = f"{' and '.join(cut)} {'was' if len(cut) == 1 else 'were'}"
        own = ", ".join(_OWN.get((scheme, s), f"the data's {s} split") for s in cut)
        ways.append(f"{was} carved off train, which reaches each class of 4 images or more (a "
                    f"class of 3 reaches val only, as training keeps 2), so add images of it "
                    f"to train; or give {'it its' if len(cut) == 1 else 'them their'} own "
                    f"({own})")
    for split in given:
        own = _OWN.get((scheme, split), f"the data's {split} split")
        ways.append(f"{split} is the data's own, so add images of it to {own}")
    return "to cover a class, give it examples there: " + "; ".join(ways)


def split_coverage(class_names, labels):
    """Which classes a split has examples of: {"classes": C, "covered": K (0..C),
    "missing": [names of the classes with no example, in class order]}.

    `class_names`: the task's C names (index = label); `labels`: int [N] in [0, C). A class
    with no validation example cannot be told apart from the others by the ensemble
    selection; with no test example, the test metrics say nothing about it (issue 13).
    """
    y = np.asarray(labels).reshape(-1)
    present = set(np.unique(y).tolist()) if y.size else set()
    missing = [str(n) for i, n in enumerate(class_names) if i not in present]
    return {"classes": len(class_names), "covered": len(class_names) - len(missing),
            "missing": missing}


def coverage_note(coverage, split):
    """The sentence for a split whose labels miss some classes, e.g. "test metrics cover 2 of
    4 classes; no test example of: c, d", or None when every class is covered or the split
    has no record. `coverage`: {split: split_coverage(...)} (`Run.coverage`, ensemble.json's
    "coverage")."""
    entry = (coverage or {}).get(split)
    if not entry or not entry.get("missing"):
        return None
    word, what = _SPLIT_WORDS[split]
    names = entry["missing"]
    more = f", … ({len(names)} in all)" if len(names) > 20 else ""
    shown = ", ".join(names_shown(names)[:20]) + more
    return (f"{what} cover {entry['covered']} of {entry['classes']} classes; no {word} "
            f"example of: {shown}")


#: A class with fewer examples than this in a split (but some) is named by `few_note`: one
#: image then moves its accuracy there by 1/n, 0.25 (25 percentage points) or more, and the
#: Wilson 95% interval of a recall of 4/4 is [0.51, 1] (Wilson, JASA 1927); the figures that
#: split gives of the class mean little.
FEW_EXAMPLES = 5
#: `few_note` names at most this many classes; more are counted (a note of 100 names on
#: every VTAB-1k run of 100 classes would bury the rest of the log).
FEW_LISTED = 10


def few_note(class_names, labels, split, what=None):
    """The sentence for a split holding some, but fewer than FEW_EXAMPLES, examples of a class,
    e.g. "validation metrics and the ensemble selection rest on fewer than 5 validation
    examples of 2 classes: 'eos' 1, 'baso' 3; one image moves such a class's accuracy by
    0.333 (33.3 percentage points) or more, so read its figures as rough (give it more
    images)", or None: the step in the accuracy's own unit, a fraction in [0, 1] as every
    accuracy prints, then in percentage points (`step_words`).

    `class_names`: the task's C names (index = label); `labels`: int [N] in [0, C); `split`:
    "val" or "test" (the words of `coverage_note`; `what`, e.g. "these metrics", replaces
    what they rest on, the stages that split feeds). A class with no example there is left
    out: `coverage_note` names it. The classes are listed fewest first (then in class order);
    more than FEW_LISTED are counted, after the 5 fewest; a label beyond `class_names` (a run
    that records none) by its number.
    """
    y = np.asarray(labels, np.int64).reshape(-1)
    counts = np.bincount(y, minlength=len(class_names)) if y.size else np.zeros(0, np.int64)
    few = [c for c in np.argsort(counts, kind="stable").tolist()
           if 0 < counts[c] < FEW_EXAMPLES]
    if not few:
        return None
    word, feeds = _SPLIT_WORDS.get(split, (split, f"{split} metrics"))
    what = what or feeds
    names = [str(class_names[c]) if c < len(class_names) else str(c) for c in few]
    # Many such classes (a VTAB-1k task of 100 classes has 2 validation images each) are
    # counted, not listed: the fewest 5 and how many of the task's classes they are.
    listed = few if len(few) <= FEW_LISTED else few[:5]
    shown = ", ".join(f"{n!r} {counts[c]}" for n, c in zip(names, listed)) + (
        f", … ({len(few)} of the {len(counts)} classes)" if len(listed) < len(few) else "")
    step = step_words(int(max(counts[c] for c in few)))
    return (f"{what} rest on fewer than {FEW_EXAMPLES} {word} examples of {len(few)} "
            f"class{'es' if len(few) > 1 else ''}: {shown}; one image moves such a class's "
            f"accuracy by {step} or more, so read its figures as rough (give it more "
            "images)")


def step_words(n: int) -> str:
    """What one image of `n` (int >= 1) moves an accuracy by, in the accuracy's own unit (a
    fraction in [0, 1], as accuracies print: 0.8897) and then in percentage points, 3
    significant digits each: "0.000575 (0.0575 percentage points)" for 1739, "0.01 (1
    percentage point)" for 100, "1 (100 percentage points)" for 1. "0.0575 points" beside
    accuracies of 0.8897 read as a step of 0.0575 in that unit, 100 times the real one.
    ZeroDivisionError for 0."""
    pct = f"{100 / n:.3g}"
    return f"{1 / n:.3g} ({pct} percentage point{'' if pct == '1' else 's'})"


def scored_note(labels, split):
    """The sentence for a summary of data a command scores one split of (`Task.summary`'s
    `scored`: evaluate), e.g. "the test split alone is scored: accuracy, NLL and ECE on its 1
    example; one image moves the accuracy by 1 (100 percentage points), so read them as rough
    (score more images)".

    `labels`: the split's int labels [N] (N >= 0); `split`: "train", "val" or "test" (another
    name is said as it is). The step is 1/N of accuracy, said as `step_words` says it (its
    unit, then percentage points); "rough" when N is under FEW_EXAMPLES, the rule of
    `few_note` (a Wilson 95% interval of 4/4 is [0.51, 1])."""
    n = int(np.asarray(labels).size)
    word = _SPLIT_WORDS.get(split, (split,))[0]
    text = (f"the {word} split alone is scored: accuracy, NLL and ECE on its {n} "
            f"example{'' if n == 1 else 's'}")
    if n:
        text += f"; one image moves the accuracy by {step_words(n)}"
    if n < FEW_EXAMPLES:
        text += ", so read them as rough (score more images)"
    return text


def majority_note(class_names, labels, split):
    """The sentence for a split so dominated by one class that accuracy alone misleads, e.g.
    "95 of the 100 test examples (95%) are of class 'ok': predicting it for every image
    scores accuracy 0.950; read the accuracy against that", or None.

    Said when the largest class's share exceeds halfway from a balanced split (1/C) to one
    class alone (1): more than 3/4 of 2 classes, 0.55 of 10. The paper's selection minimises
    cross-entropy, not accuracy, so nothing is chosen by it; the numbers shown are what a
    reader compares (a 95/5 split: 0.95 for a model that never predicts the 5). `class_names`:
    the task's C names (index = label); `labels`: int [N] in [0, C); `split`: "val" or
    "test" (the words of `coverage_note`).
    """
    y = np.asarray(labels).reshape(-1)
    if not y.size or len(class_names) < 2:
        return None
    counts = np.bincount(y, minlength=len(class_names))
    top = int(np.argmax(counts))
    share = counts[top] / y.size
    if share <= (1 + 1 / len(class_names)) / 2:
        return None
    return (f"{counts[top]} of the {y.size} {_SPLIT_WORDS[split][0]} examples ({share:.0%}) "
            f"are of class {str(class_names[top])!r}: predicting it for every image scores "
            f"accuracy {share:.3f}; read the accuracy against that")


#: Classes are unbalanced, for the report's balanced accuracy, when the largest class present
#: in a split has at least this many times the examples of the smallest (50/33/17 is; 20/15/15
#: is not: its balanced accuracy stays near the accuracy).
UNBALANCED_RATIO = 1.5


def unbalanced(labels) -> bool:
    """Whether the classes present in `labels` (int [N] in [0, C)) are unbalanced enough that
    accuracy and balanced accuracy (`metrics.balanced_accuracy`) can tell different stories:
    the largest class has at least UNBALANCED_RATIO times the examples of the smallest. A
    class no label holds is not counted (`coverage_note` names it); False for no labels."""
    counts = np.bincount(np.asarray(labels, np.int64).reshape(-1))
    counts = counts[counts > 0]
    return bool(counts.size > 1 and counts.max() >= UNBALANCED_RATIO * counts.min())


def balanced_line(split: str, figures) -> str:
    """The line that gives balanced accuracies (`metrics.balanced_accuracy`) when the
    `split`'s classes are `unbalanced`: "balanced accuracy (the test classes are unbalanced;
    the mean of the per-class accuracies, each class counted once): ensemble 0.6429, best
    single 0.6250". `figures`: (who, value in [0, 1]) pairs, in order, each to 4 decimals;
    `split`: "train", "val" or "test" (another name is said as it is). The one wording of the
    closing table (`report.write.summary_table`) and evaluate's table."""
    word = _SPLIT_WORDS.get(split, (split,))[0]
    return (f"balanced accuracy (the {word} classes are unbalanced; the mean of the per-class "
            "accuracies, each class counted once): "
            + ", ".join(f"{who} {value:.4f}" for who, value in figures))

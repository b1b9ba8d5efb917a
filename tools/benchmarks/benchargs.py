"""Command-line helpers shared by the benchmark scripts: a bad argument is a one-line usage
error (exit 2) before any work, never a traceback minutes in nor a silent default.

    from benchargs import description, integer, names   # a sibling of the scripts

* `description(__doc__)`: the docstring's whole first paragraph for `--help` (its first line
  alone stopped mid-sentence);
* `integer(minimum, maximum=None)`: hubensemble's argparse type, "must be an integer >= 1,
  got '0'";
* `names(choices, what)`: a comma-separated list of names, each one of `choices`.

No TensorFlow is imported here: `--help` and a refused argument answer at once.
"""

import argparse

from hubensemble.arguments import integer  # noqa: F401 - re-exported for the scripts


def description(doc: str) -> str:
    """The first paragraph of a script's docstring, on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def names(choices, what: str = "names"):
    """An argparse type: 'a,b' -> ['a', 'b'], each one of `choices` (at least one, no
    repeats), else "must be comma-separated <what> from a, b, got 'x'"."""
    choices = tuple(choices)

    def convert(text):
        items = [t.strip() for t in str(text).split(",")]
        if not all(items) or any(t not in choices for t in items) or len(set(items)) < len(
                items):
            raise argparse.ArgumentTypeError(
                f"must be comma-separated {what} from {', '.join(choices)} (each once), got "
                f"{text!r}")
        return items

    convert.__name__ = what
    return convert

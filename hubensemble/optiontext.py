"""The text parsers of options whose command-line text is not a plain int/float/str (the
options table, `hubensemble.options`, names them as types): each turns the text into the
value the stage function takes, raising ValueError with what to write instead. No imports
beyond the standard library: the command line's --help reads them.
"""

from __future__ import annotations


def parse_shard(text: str) -> tuple[int, int] | str:
    """'I/N' -> (I, N) with 0 <= I < N: rank only the modules whose catalogue index % N == I;
    'auto' stays 'auto' (the CLI reads I and N from a cluster array job's environment:
    rank.shard_from_environment)."""
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        i, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ValueError(f"{text!r}: write I/N, e.g. 0/4, or auto in a Kubernetes Indexed "
                         "Job / Slurm job array") from None
    if not 0 <= i < n:
        raise ValueError(f"{text!r}: I/N needs 0 <= I < N, e.g. 0/4 ... 3/4")
    return i, n


def parse_split_override(text: str) -> tuple[str, str]:
    """'NAME=SPEC' -> (NAME, SPEC) with NAME train, val or test (a tfds split override)."""
    name, sep, value = str(text).partition("=")
    if not sep or name not in ("train", "val", "test"):
        raise ValueError(f"{text!r}: write NAME=SPEC with NAME train, val or test, e.g. "
                         "test=test[:2000] or val=none")
    return name, value


def parse_int_list(text: str) -> tuple[int, ...]:
    """'1,2,3' -> (1, 2, 3): a comma-separated list of integers."""
    try:
        values = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise ValueError(f"{text!r}: write integers separated by commas, e.g. 1,2,3") from None
    return values

"""Which choice a refused value most likely means ("(did you mean quick?)"): one rule for
every refusal of a choice, the options' and argparse's (`options` re-exports it)."""

from __future__ import annotations

from hubensemble.text import closest_name


#: Words a user means as a choice they do not spell like: the closeness rule would take
#: --strategy gpu for cpu (one letter), the opposite of what a GPU's user wants.
MEANT = {"gpu": "mirrored", "gpus": "mirrored"}


def meant(value, names, *, sep: str | None = None) -> str:
    """" (did you mean X?)" for a refused `value` that most likely mistypes X of `names` (str),
    by the rule of every "did you mean" (`text.closest_name`, git's): a slip of a letter or
    two (dmeo, quik, knn-cosin, cpus) or a difference of case alone (Demo, QUICK: refused, as
    a choice is matched exactly, and said, where the refusal named no value); "" when none is
    that close or `value` is no str. `sep`: `value` joins names by it (a --sweep's A+B), each
    part mistyped one of `names` replaced (defualt+probe -> default+probe). A word of `MEANT`
    names its choice where that is one of `names` (gpu: mirrored). The refusals of
    a choice: the options' (`check`, argparse's type), argparse's choices
    (`arguments.Parser`), a data spec's scheme."""
    if not isinstance(value, str):
        return ""
    parts = value.split(sep) if sep else [value]
    fixed = [p if p in names else MEANT.get(p.lower()) if MEANT.get(p.lower()) in names
             else closest_name(p, names) for p in parts]
    if None in fixed or fixed == parts:
        return ""
    return f" (did you mean {(sep or '').join(fixed)}?)"

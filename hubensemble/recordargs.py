"""A public record made in Python (`ModuleSpec`, `Task`) refused for a required field left
out, in words naming each such field and what it takes, with a whole example: Python's own
"__init__() missing 2 required positional arguments: 'name' and 'handle'" said neither. A
leaf of the import graph (nothing of hubensemble); TensorFlow-free."""

from __future__ import annotations

import functools
import inspect


def requires(example: str, **expects: str):
    """Class decorator: the class's ``__init__`` refuses a call that leaves out a required
    field (one without a default) with TypeError "CLASS() needs FIELD (WHAT IT TAKES) and
    …; e.g. EXAMPLE", `expects` giving {field: what it takes} for each required field.
    Placed below `errors.checks_keywords` (whose check of a mistyped keyword, "did you mean
    name?", comes first) and above ``@dataclass``; ``inspect.signature`` of the class stays
    the dataclass's. Other misuse (too many positional arguments) is left to Python."""

    def decorate(cls):
        init = cls.__init__
        params = list(inspect.signature(init).parameters.values())[1:]
        positional = [p.name for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p.name for p in params if p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        unworded = sorted(set(required) - set(expects))
        if unworded:  # a field added to the record without its words: said at import
            raise TypeError(f"requires() of {cls.__name__} has no words for {unworded}")

        @functools.wraps(init)
        def init_checked(self, *args, **kwargs):
            given = set(positional[:len(args)]) | set(kwargs)
            missing = [n for n in required if n not in given]
            if missing:
                listed = [f"{n} ({expects[n]})" for n in missing]
                said = listed[0] if len(listed) == 1 else (
                    ", ".join(listed[:-1]) + " and " + listed[-1])
                raise TypeError(f"{cls.__name__}() needs {said}; e.g. {example}")
            init(self, *args, **kwargs)

        cls.__init__ = init_checked
        return cls

    return decorate

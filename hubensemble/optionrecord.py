"""The record of one option (`Option`): its value's type and constraints, its command-line
settings, the stages that take it and those it invalidates, and its allowed values in words.

The table of every option (`options.OPTIONS`) is made of these records; everything derived
from the table (argparse arguments, FitOptions, the stage functions' defaults, validation)
reads them through `options` (TensorFlow-free).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


def _finite(value: numbers.Real) -> bool:
    """Whether a real number is a finite float's: not inf, nan or beyond the largest float,
    as the command line's 1e400 (float() reads it as inf) or Python's 10**400 (float()
    cannot hold it: OverflowError), refused by a float option in every range."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


#: The words of the one rule of a limit, a rate or a proportion (a float option with an
#: exclusive minimum of 0: `Option.allowed` says it so; the inference budget's `cost.Limits`,
#: the zoo's `TrainSpec` lr): one wording, where "a finite number > 0" said it too.
POSITIVE_FINITE = "a number > 0 and finite"


def positive_finite(value) -> bool:
    """Whether `value` fits `POSITIVE_FINITE`: a real number (not a bool; numpy's too) > 0
    that a float holds finite (`_finite`: inf, nan and 10**400 are not), as `Option.fits`
    holds a float option of minimum 0, exclusive."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return _finite(value) and value > 0


@dataclass(frozen=True)
class Option:
    """One option: its value's type and constraints, where it goes and what it invalidates.

    `name` is the argparse destination and the FitOptions / DataArgs field (or the stage
    keyword, unless `keyword` says otherwise). `type` is int, float, str, bool, a parser of
    command-line text (`parse_shard`, ...), or object (any value: not checked here).
    `commands` lists the sub-commands whose parsers take it; `used_by` the stage functions
    (FUNCTIONS) that take it as a keyword; `invalidates` the stages whose results depend on it
    (() = a run-time choice: how fast, where, how noisy, never what). `variants` overrides
    argparse settings (flags, default, help, ...) for one command, e.g. the `ensemble`
    command's `--budget` for fit's `--ensemble-budget`.
    """

    name: str
    type: Callable
    default: Any
    help: str
    group: str | None
    commands: tuple[str, ...]
    used_by: tuple[str, ...] = ()
    invalidates: tuple[str, ...] = ()
    record: str | None = None  # "fit" (a FitOptions field) or "data" (a DataArgs field)
    keyword: str | None = None  # the stage functions' keyword when it is not `name`
    flags: tuple[str, ...] = ()  # default: "--" + name with dashes
    metavar: str | None = None
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    action: str | None = None  # store_true, store_false, boolean (--x/--no-x), append
    nargs: str | None = None
    const: Any = None
    default_text: str | None = None  # shown instead of the default (e.g. for None)
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Checks a value beyond type and choices (ValueError); its docstring says what is allowed.
    validator: Callable[[Any], Any] | None = None
    # Options with the same `exclusive` name are alternatives: a command line gives at most
    # one of them (an argparse mutually exclusive group), e.g. the selection rules.
    exclusive: str | None = None
    # Options of which a command line that gives this one must give one too: it only applies
    # with them (--max-k with --threshold or --greedy); argparse refuses it alone (a default
    # never counts). Not checked from Python, where the others' defaults simply ignore it.
    needs: tuple[str, ...] = ()
    # False for an option added after runs were fitted without it: at its default it is left
    # out of the stage keys (`FitOptions.for_stage`), so a run fitted before it existed keeps
    # its keys and is reused; a value given keys the stages as any option does. (Every option
    # added before 0.3.0's --train-batch-size keyed the stages at once, and its arrival had
    # every earlier run refused as "written by an older hubensemble".)
    keyed_at_default: bool = True

    @property
    def kw(self) -> str:
        """The keyword of the stage functions (and of DataArgs for data options)."""
        return self.keyword or self.name

    @property
    def cli_flags(self) -> tuple[str, ...]:
        """The command-line flags (`flags`, or "--" + name with dashes)."""
        return self.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def nullable(self) -> bool:
        """None is allowed (and means "decide from the data / the other options")."""
        return self.default is None

    def allowed(self, *, none: bool = True) -> str:
        """The allowed values in words, e.g. 'an integer >= 1', 'a number > 0 and finite' (a
        float's range open on a side says finite: `fits` refuses inf and nan) or 'one of
        paper, cpu, quick' (with "(or None)" for a nullable option unless `none` is False, as
        on the CLI)."""
        if self.choices is not None:
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.validator is not None:
            text = (self.validator.__doc__ or "a valid value").splitlines()[0]
        elif self.type is bool:
            text = "true or false"
        elif self.type in (int, float):
            text = "an integer" if self.type is int else "a number"
            lo, hi = (v if v is None else f"{v:{'d' if self.type is int else 'g'}}"
                      for v in (self.minimum, self.maximum))  # not 4.29497e+09
            if lo is not None and hi is not None:
                text += (f" in {'(' if self.exclusive_minimum else '['}{lo}, {hi}"
                         f"{')' if self.exclusive_maximum else ']'}")
            elif lo is not None:
                text += f" {'>' if self.exclusive_minimum else '>='} {lo}"
            elif hi is not None:
                text += f" {'<' if self.exclusive_maximum else '<='} {hi}"
            if self.type is float and (lo is None or hi is None):  # a closed range says it
                # inf and nan are no number to the user either (--max-gflops inf is refused,
                # not "no limit"): "a number > 0 and finite", or "a finite number"
                text = text + " and finite" if lo is not None or hi is not None else (
                    "a finite number")
        elif self.type is str:
            text = "a string"
        else:
            text = (self.type.__doc__ or "a value").splitlines()[0]
        if self.nargs in ("+", "*"):  # "+": at least one (modules=[] tuned every module)
            article, _, rest = text.partition(" ")
            text = (f"a {'non-empty ' if self.nargs == '+' else ''}list of "
                    + (f"{rest}s" if article in ("a", "an") else text))
        return text + (" (or None)" if self.nullable and none else "")

    def fits(self, value) -> bool:
        """Whether `value` is of this option's type and inside its range (`minimum`,
        `maximum`), for an option of type bool, int or float (False for any other type:
        the caller checks text, choices and validators). A bool is no int or float here
        (True is not 1); numpy's ints and floats are (numbers.Integral, numbers.Real). A
        float must be finite (`_finite`): inf, nan and 10**400 fit no range."""
        if self.type is bool:
            return isinstance(value, bool)
        if self.type not in (int, float) or isinstance(value, bool) or not isinstance(
                value, numbers.Integral if self.type is int else numbers.Real):
            return False
        if self.type is float and not _finite(value):
            return False
        lo, hi = self.minimum, self.maximum
        return ((lo is None or (value > lo if self.exclusive_minimum else value >= lo))
                and (hi is None or (value < hi if self.exclusive_maximum else value <= hi)))

    def show_default(self, command: str | None = None) -> str | None:
        """The default as `--help` shows it, or None when there is nothing worth showing."""
        settings = self.settings(command)
        if settings.get("default_text") is not None:
            return settings["default_text"]
        default = settings["default"]
        # A flag's default is its absence; an optional-value flag (--corruptions [NAMES]) too.
        if (settings["action"] in ("store_true", "store_false") or settings["nargs"] == "?"
                or default is None):
            return None
        if isinstance(default, (tuple, list)):
            return ",".join(map(str, default))
        return str(default)

    def settings(self, command: str | None = None) -> dict:
        """argparse-facing settings of this option, with `command`'s variant applied."""
        base = {"flags": self.cli_flags, "default": self.default, "help": self.help,
                "metavar": self.metavar, "action": self.action, "nargs": self.nargs,
                "const": self.const, "default_text": self.default_text}
        base.update(self.variants.get(command, {}))
        return base

"""The error of an option's value or of flags that do not go together (`OptionError`), and
`options._check_one`'s refusal of a value (`ChoiceError`), in a module of its own so that
those options.py imports (sweeps) raise it without an import cycle."""

from __future__ import annotations

from hubensemble.errors import HubensembleError


class OptionError(HubensembleError, ValueError):
    """An option's value is outside its type, choices or range (the message names the option,
    its flag and what is allowed), an option name is unknown, or options that do not go
    together were given (--tpu without --strategy tpu, a --budget its --sweep cannot hold, a
    --shard that holds no module). The command line says it in argparse's shape (its usage
    line, "hubensemble CMD: error: …", exit 2: `arguments.is_usage_error`) wherever it is
    raised, before the stage or in it; re-exported as `options.OptionError`."""


class ChoiceError(ValueError):
    """`_check_one`'s refusal: ValueError "must be …"; `hint` is `meant`'s " (did you mean
    X?)" or "", for the caller to put after the value it names ("…, got 'quik' (did you mean
    quick?)")."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint

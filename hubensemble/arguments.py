"""argparse arguments from the options table (hubensemble.options): flag, metavar, choices,
help with "(default: …)", and values checked by the same rules as `options.check`; and the
parser class (`Parser`) whose sub-commands refuse what they do not take themselves."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Iterable

from hubensemble.errors import HubensembleError
from hubensemble.options import (BY_NAME, EMPTY_PATH, EMPTY_SPEC, EMPTY_VALUE, GROUPS,
                                 NEEDS_VALUE, PATH_METAVARS, SPEC_METAVAR, OptionError,
                                 _check_one, meant, misapplied, options_for)
from hubensemble.optionrecord import Option
from hubensemble.text import closest_name, shell_word
from hubensemble.winpaths import refusal_advice

#: Metavars of the arguments that may be local paths besides options.PATH_METAVARS, refused
#: like them when written as Windows paths (catalogue add's HANDLE: a .keras file, a
#: SavedModel folder; its --weights: a weights file. URLs, keras:NAME and imagenet hold no
#: backslash and no drive).
WINDOWS_CHECKED = frozenset({"HANDLE", "WEIGHTS"})

#: Flags a user types for what a command does under other flags (a new-user check: `tune
#: --chief` said only "unrecognized arguments: --chief", `tune --worker` "(zoo build takes
#: --workers, tune does not)", `tune --lr 0.01` "(catalogue add takes --layer, tune does
#: not)"): flag typed -> (what it asks for, how it is reached, the command and the flags that
#: do it; tunerN: tuner0, tuner1, …; SWEEP: a sweep's name), with where the docs say it.
_DISTRIBUTED = "docs/tune.md 'Distributed sweeps'"
_TRAINING = ("learning rates and training steps", "are a sweep's, scaled by a profile:",
             "tune", "--sweep SWEEP --profile paper|cpu|quick", "docs/tune.md 'Sweeps', 'Profiles'")
INTENT_FLAGS = {
    "--chief": ("a distributed sweep's chief", "takes", "tune",
                "--tuner-id chief --oracle HOST:PORT", _DISTRIBUTED),
    "--master": ("a distributed sweep's chief", "takes", "tune",
                 "--tuner-id chief --oracle HOST:PORT", _DISTRIBUTED),
    "--worker": ("each worker of a distributed sweep", "takes", "tune",
                 "--tuner-id tunerN --oracle HOST:PORT", _DISTRIBUTED),
    "--workers": ("each of a distributed sweep's worker processes", "takes", "tune",
                  "--tuner-id tunerN --oracle HOST:PORT", _DISTRIBUTED),
    **dict.fromkeys(("--lr", "--learning-rate", "--steps", "--epochs", "--step", "--epoch",
                     "--num-steps", "--num-epochs"), _TRAINING),
}


#: The spellings of a learning rate and of a training length as other tools' flags write
#: them, in `_flag_form` (lower case, no - or _): Keras' learning_rate, PyTorch scripts'
#: --lr and --base-lr, --lr_rate, --num-epochs, --train-steps, --max-iters (a new-user check:
#: `--learningrate` and `--lr_rate` fell through to no note at all); each with the suffix of
#: a command's own flag for it (distill's --distill-lr, --distill-steps), or None. An epoch
#: count is a training length too: `distill --epochs 3` was sent to tune's sweeps, where
#: distill's own length is --distill-steps (a new user's check).
_INTENT_FORMS = {
    **{p + w: "lr" for p in ("", "base", "init", "initial", "max", "peak")
       for w in ("lr", "learningrate", "learnrate", "lrrate")},
    **{p + w: "steps"
       for p in ("", "num", "n", "max", "total", "train", "training")
       for w in ("steps", "step", "epochs", "epoch", "iterations", "iters")},
}


def _flag_form(flag: str) -> str:
    """`flag` as typed, evened out for the intent look-up: "=value", the dashes and
    underscores dropped, lower case (--Learning_Rate=0.1, --learning-rate -> learningrate)."""
    return flag.split("=", 1)[0].lower().replace("-", "").replace("_", "")


def _intent(flag: str, known=()) -> tuple | None:
    """(INTENT_FLAGS' entry, the suffix of a command's own flag for it or None) for `flag`
    as typed in any case and with any - or _ (--LR, Keras' --learning_rate, --lr_rate,
    --learningrate, --Epochs: an exact look-up let them fall through to a flag they merely
    look like, "--LR: catalogue add takes --layer", or to nothing), also mistyped, when
    that is the nearest of these spellings and the command's `known` flags by git's rule
    (`text.closest_name`: --stpes, --epcohs, --stepps, --learnign-rate); a typed word of
    under 5 letters only as such (--eps, --stem, --rate are no --steps, --step, --lr-rate).
    None for any other flag."""
    form = _flag_form(flag)
    entries = {_flag_form(k): (v, None) for k, v in INTENT_FLAGS.items()}
    entries.update((f, (_TRAINING, suffix)) for f, suffix in _INTENT_FORMS.items())
    if form not in entries and len(form) >= 5:
        own = {_flag_form(k) for k in known}
        nearest = closest_name(form, [*(e for e in entries if len(e) >= 5), *own])
        form = nearest if nearest not in own else form
    if form not in entries:
        return None
    entry, suffix = entries[form]
    return entry, suffix or (form if _flag_form(flag) == form else None)


#: The namespace attribute where every option notes that it was given (a set of names);
#: `Parser` checks `Option.needs` with it and hands it on as `given_options`.
_GIVEN = "_given_options"


#: Option dests that name an export folder: fit's --export (where it writes one), predict's
#: and evaluate's --model (the one they read): one meaning to `Parser._twin`.
_MEANS = {"export": "EXPORT", "model": "EXPORT"}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-commands, at any depth (`rank merge`, `zoo build`), refuse
    what they do not recognise themselves, as git and pip do: their usage line and prog in
    the error, exit 2 (argparse leaves it to the top parser, whose usage names no command).
    Every parser also refuses an option given without one of the options it applies with
    (`Option.needs`: "argument --max-k: only applies with --threshold or --greedy"), or with
    another at a value it does not apply with (`options.NEEDS_VALUE`: "argument --k: only
    applies with --metric knn or knn-cosine, not --metric logme")."""

    #: True for the parsers `add_subparsers` makes (a command's unrecognised arguments).
    subcommand = False

    def __init__(self, *args, root: "Parser | None" = None, **kwargs):
        # Flags are taken whole: argparse took a prefix of one as the flag (`--max-member 3`
        # as --max-members, `fit --top 3` as --top-k) without a word, while a command line
        # that failed otherwise called the same prefix unrecognized ("the following
        # arguments are required: --out; unrecognized arguments: --catalogu x"); a flag
        # added later would have made a working prefix ambiguous. A prefix is refused as a
        # mistyped flag is, with the flag it most likely means (`_unrecognized`).
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        #: The top parser (`hubensemble`), whose sub-commands' flags name the command that
        #: takes a flag this one does not (`predict --corruptions`: evaluate's).
        self.root = root or self
        for name in (None, "store"):  # the default action: argparse's, repeatable with "+"
            self.register("action", name, _Store)

    def add_subparsers(self, **kwargs):
        """argparse's, with sub-command parsers that refuse their unrecognised arguments."""
        kwargs.setdefault("parser_class", lambda **kw: _Subcommand(root=self.root, **kw))
        return super().add_subparsers(**kwargs)

    def parse_known_args(self, args=None, namespace=None):
        """argparse's; a sub-command's parser refuses what is left over (naming the closest
        flag of a mistyped one), and every parser an option given without what it needs
        (usage errors, exit 2); file and folder values (options.PATH_METAVARS) are
        `~`-expanded, as the shell does not expand `--out=~/run` (a tilde after "=") and open()
        never does, and an empty one, or an empty data spec (options.SPEC_METAVAR), is a
        usage error naming its flag (`--run ""` ran the stage on the working folder,
        `--data-dir ""` read the default folder, without a word), as is one written as
        Windows writes paths on Linux or macOS, or a HANDLE so written
        (`winpaths.windows_refusal`: `--out 'runs\\w'` made a folder named "runs\\w",
        `--catalogue 'C:\\cat.yaml'` looked for that name in the working folder)."""
        # argparse reads sys.argv[1:] for None: so does `error` (the command line as typed,
        # where `hubensemble --top-k 3 fit` said "invalid choice: '3'").
        self._seen = list(args) if args is not None else sys.argv[1:]
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.subcommand:
            self.error(self._unrecognized(extras))
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            path = action.metavar in PATH_METAVARS
            # Any other text argument outside the table (catalogue add's HANDLE, --layer, …;
            # the table's are its options' types): "" names nothing either.
            text = action.type is None and action.choices is None and action.nargs != 0
            spec = action.metavar == SPEC_METAVAR
            if (path or spec or text) and value is not None:
                if "" in (value if isinstance(value, list) else [value]):
                    why = EMPTY_SPEC if spec else EMPTY_PATH if path else EMPTY_VALUE
                    self.error(f"argument {'/'.join(action.option_strings) or action.metavar}"
                               f": {why}, got ''")
            if path and value is not None:
                setattr(namespace, action.dest, [os.path.expanduser(v) for v in value]
                        if isinstance(value, list) else os.path.expanduser(value))
            if (path or action.metavar in WINDOWS_CHECKED) and value is not None:
                for v in value if isinstance(value, list) else [value]:
                    advice = refusal_advice(v)  # C:\…, \\server\share, runs\w: not a path here
                    if advice:
                        self.error(f"argument {'/'.join(action.option_strings) or action.metavar}"
                                   f": {shell_word(v)} {advice}")
        vars(namespace).pop(_TYPED, None)  # (`_refuse_repeat`'s, of this command line)
        given = vars(namespace).pop(_GIVEN, set())
        # Which options the command line gave (a default never counts), for a command whose
        # default depends on it: `rank merge` keeps the shards' own selection without a flag.
        namespace.given_options = getattr(namespace, "given_options", set()) | given
        flags = {a.dest: a.option_strings[0] for a in self._actions if a.option_strings}
        for name in sorted(given):
            needs = BY_NAME[name].needs
            if needs and not given.intersection(needs):
                self.error(f"argument {flags[name]}: only applies with "
                           f"{' or '.join(flags[n] for n in needs)}; add "
                           f"{'one of them' if len(needs) > 1 else 'it'} or leave "
                           f"{flags[name]} out")
        for name, other in misapplied(vars(namespace), given & set(flags)):
            if other in flags:  # (the option table's rule, as Python's: options.misapplied)
                self.error(f"argument {flags[name]}: only applies with {flags[other]} "
                           f"{' or '.join(NEEDS_VALUE[name][1])}, not {flags[other]} "
                           f"{getattr(namespace, other)}; leave {flags[name]} out")
        return namespace, extras

    def parse_args(self, args=None, namespace=None):
        """argparse's, with what is left over refused as `_unrecognized` says it (the closest
        flag; a sub-command's flag typed before the command: "goes after the command")."""
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(self._unrecognized(extras))
        return namespace

    def error(self, message):
        """argparse's, with the mistyped flags of the command line said: a sub-command choice
        that is really a mistyped flag's value (`rank --topk 3`: "argument merge: invalid
        choice: '3'") or a stray word after the flags (an unquoted path with a space), not
        close to a sub-command's name (`zoo bild` stays "not a zoo command"), is reported as
        unrecognised, and a missing required flag's error also names the unrecognised flags
        (`tune --rn R`), each with the closest known flag."""
        seen = getattr(self, "_seen", None) or []
        extras = [a for i, a in enumerate(seen) if self._unknown_flag(a) or (
            i and self._unknown_flag(seen[i - 1]) and "=" not in seen[i - 1]
            and not a.startswith("-"))]  # an unknown flag and its value
        bad = self.__dict__.pop("_bad_command", None)  # `_check_value`'s refusal
        if bad is not None:
            choices = [c for a in self._actions if isinstance(a, argparse._SubParsersAction)
                       for c in a.choices]
            # git's rule, as `_check_value` names the command it meant (text.closest_name):
            # difflib's ratio >= 0.6 missed a case: `rank -q MERGE a` was "unrecognized".
            stray = [a for a in seen[1:] if a == bad and not closest_name(a, choices)]
            if stray:  # neither first on the line nor a mistyped sub-command (zoo bild)
                message = self._unrecognized(extras + [a for a in stray[:1] if a not in extras])
        elif message.startswith("the following arguments are required") and extras:
            message += "; " + self._unrecognized(extras)
        from hubensemble.doccites import with_way_to_read  # a cited doc: how to read it

        super().error(with_way_to_read(message))

    def _check_value(self, action, value):
        """argparse's, but a word that is none of a command's sub-commands is refused as git
        refuses one ("'bogus' is not a zoo command"; "did you mean build?" when one is close,
        `text.closest_name`; then the sub-commands): argparse named the metavar ("argument
        build: invalid choice: 'bogus'", a "build" the user never typed). argparse's
        _SubParsersAction and _check_value are private, but the same since Python 3.2 (and
        in 3.14); test_cli's sub-command tests fail at once if they change."""
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            self._bad_command = value
            hint = meant(value, list(action.choices))
            raise argparse.ArgumentError(None, f"{value!r} is not a {self.command} command"
                                               f"{hint}; choose from: {', '.join(action.choices)}")
        if action.choices is not None and value not in action.choices:
            # A flag's choices (zoo build --preset): the mistyped one said, as the options'
            # (options.meant), where argparse said "invalid choice: 'dmeo' (choose from
            # 'demo', 'quick')", and 'Demo' alike, without a word of case.
            names = [str(c) for c in action.choices]
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}"
                                                 f"{meant(value, names)}; choose from: "
                                                 f"{', '.join(names)}")
        super()._check_value(action, value)

    def _unknown_flag(self, arg) -> bool:
        """Whether `arg` looks like a flag (--name, -name; not a negative number) that this
        parser does not take."""
        return (isinstance(arg, str) and len(arg) > 1 and arg[0] == "-"
                and (arg[1] == "-" and len(arg) > 2 or arg[1].isalpha())
                and arg.split("=", 1)[0] not in self._option_string_actions)

    def _unrecognized(self, extras) -> str:
        """"unrecognized arguments: …", with the closest known flag of each mistyped one
        (`text.closest_name`, git's "did you mean": --metirc, --topk, --Top_K -> ...), and of
        a flag another command takes (`commands_taking`), which commands take it and this
        command's nearest flag if it has one (`predict --top-k`: "did you mean --top?; demo,
        fit, rank, rank merge take --top-k, predict does not"), with or without "=value"."""
        known = [f for f in self._option_string_actions if f.startswith("--")]
        flags = [a.split("=", 1)[0] for a in extras if self._unknown_flag(a)]
        values = {a.split("=", 1)[0]: a.split("=", 1)[1] if "=" in a else (
            extras[i + 1] if i + 1 < len(extras) and not self._unknown_flag(extras[i + 1])
            else None) for i, a in enumerate(extras) if self._unknown_flag(a)}
        hints, notes = {}, []
        for f in flags:
            intent, suffix = _intent(f, known) or (None, None)
            # This command's own flag of that name (distill --lr, --learning_rate:
            # --distill-lr) comes first.
            own = [k for k in known if suffix and k.endswith("-" + suffix)]
            if own:
                hints[f] = own[0]
                # Said when it is not a count or a rate but a multiple (distill's, of the
                # best candidate's): `--distill-steps 500` for "500 steps" asked for 500
                # times the candidate's (a new user's check).
                words = self._option_string_actions[own[0]].help or ""
                note = f"{own[0]} is {words.split(' (default')[0]}"
                if "multiple" in words and note not in notes:
                    notes.append(note)
                continue
            if intent:  # what it asks for, before any flag it merely looks like
                if self._intent_words(intent) not in notes:  # once for --lr --steps
                    notes.append(self._intent_words(intent))
                others = [(c, g) for c, g in self.commands_taking(f) if g == f]
                if others:  # another command takes it as typed (zoo build --workers)
                    names = [c for c, _ in others]
                    notes.append(f"{', '.join(names)} take{'s' if len(names) == 1 else ''} "
                                 f"{f}, {self.command} does not")
                continue
            # A prefix (argparse's abbreviation, refused: `__init__`) means the flags it
            # begins (--cat: --catalogue, not git's nearest --data; --vers: both).
            begun = sorted(k for k in known if k.startswith(f) and len(f) > 2)
            # Another command's flag as typed for what this one takes under another flag
            # (fit --corruptions: not "did you mean --no-corruptions?" alone, `_twin`);
            # else, when none of this command's flags is near, the flag it mistypes.
            others = [(c, g) for c, g in self.commands_taking(f) if g == f.split("=", 1)[0]
                      ] if self is not self.root else []
            twin = self._twin(others[0][1], values.get(f)) if others else None
            meant = None if twin and not begun else (
                " or ".join(begun) if begun else closest_name(f, known))
            others = [] if meant else others or self.commands_taking(f)
            twin = twin or (self._twin(others[0][1], values.get(f))
                            if others and self is not self.root else None)
            if others:
                meant = None if twin else _near_flag(others[0][1], known)
                names = [c for c, _ in others]
                notes.append(f"{', '.join(names)} take{'s' if len(names) == 1 else ''} "
                             f"{others[0][1]}, {self.command} does not" if self is not self.root
                             else f"{others[0][1]} goes after the command: "
                                  f"{', '.join(names)} take{'s' if len(names) == 1 else ''} it")
            if twin:
                notes.append(twin)
            if meant:
                hints[f] = meant
        hint = ", ".join(k + (f" for {f}" if len(flags) > 1 else "") for f, k in hints.items())
        hint = "; ".join(([f"did you mean {hint}?"] if hints else []) + notes)
        hint = f" ({hint})" if hint else ""
        # As the shell takes them back: `--run run a/export` read as three words.
        return "unrecognized arguments: " + " ".join(map(shell_word, extras)) + hint

    def _intent_words(self, intent) -> str:
        """The way to what an INTENT_FLAGS flag asks for: its flags alone when this parser
        takes them all ("a distributed sweep's chief takes --tuner-id chief --oracle
        HOST:PORT; see docs/tune.md …"; fit --lr: --sweep, --profile), else with its command
        (`hubensemble tune …`)."""
        what, verb, command, flags, docs = intent
        # The flags alone where this command takes them all (fit: --sweep, --profile).
        own = all(w in self._option_string_actions for w in flags.split() if w[:2] == "--")
        way = flags if own else f"hubensemble {command} {flags}"
        return f"{what} {verb} `{way}`; see {docs}"

    @property
    def command(self) -> str:
        """The command this parser reads, as typed after the top parser's name (`rank merge`)."""
        return self.prog.removeprefix(self.root.prog + " ") if self is not self.root else self.prog

    def _commands(self) -> list["Parser"]:
        """The parsers of every command of the top parser but this one (`rank merge` too)."""
        parsers, seen = [], set()
        todo = [self.root]
        while todo:
            p = todo.pop()
            for a in p._actions:
                if isinstance(a, argparse._SubParsersAction):
                    for child in a.choices.values():
                        if id(child) not in seen:
                            seen.add(id(child))
                            parsers.append(child)
                            todo.append(child)
        return [p for p in parsers if p is not self and isinstance(p, Parser)]

    def _twin(self, flag: str, value: str | None = None) -> str | None:
        """"ensemble's own flag for this is --budget" when this command takes what `flag`
        means to the other commands that take it under another flag: one option of the
        table with a flag per command (`Option.variants`: fit's --ensemble-budget is
        ensemble's --budget, fit's --no-corruptions evaluate's --corruptions), or the run
        folder (metavar RUN: fit's --out is tune's --run, and back); the commands are named
        when only some of those taking `flag` mean it (--out: not export's, evaluate's); an
        export folder (fit's --export is predict's --model). A run folder where this command
        takes an export (`evaluate --run R`, `value` R): "evaluate takes the run's export:
        --model R/export", and back (`report --model R/export`: "--run R"); they said which
        commands take the flag, naming none of this one's. None when this command has no
        such flag."""
        def meaning(action):
            return "RUN" if action.metavar == "RUN" else _MEANS.get(action.dest, action.dest)

        taking = {p.command: meaning(p._option_string_actions[flag]) for p in self._commands()
                  if flag in p._option_string_actions}
        for action in self._actions:
            own = [f for f in action.option_strings if f.startswith("--")][:1]
            if action.dest == "export":  # fit writes there: not a folder read (fit --model)
                continue
            if not own or flag in action.option_strings or meaning(action) not in taking.values():
                continue
            own = own[0]
            meant = sorted(c for c, m in taking.items() if m == meaning(action))
            what = ("this" if len(meant) == len(taking)
                    else f"{', '.join(meant)}'s {flag}")
            return f"{self.command}'s own flag for {what} is {own}"
        return self._run_or_export(set(taking.values()), value)

    def _run_or_export(self, meanings: set, value: str | None) -> str | None:
        """`_twin`'s words for a run folder given where this command takes an export folder
        (`meanings` {"RUN"}, `value` the folder typed) or an export where it takes a run."""
        from hubensemble.formats import EXPORT_DIR

        want = {"RUN": "EXPORT", "EXPORT": "RUN"}.get(next(iter(meanings))) if len(
            meanings) == 1 else None
        # The folders it reads (fit's --out and --export are folders it writes).
        own = {"EXPORT": "--model", "RUN": "--run"}.get(want)
        if own not in self._option_string_actions:
            return None
        if want == "EXPORT":
            folder = os.path.join(value, EXPORT_DIR) if value else f"RUN/{EXPORT_DIR}"
            return f"{self.command} takes the run's export: {own} {shell_word(folder)}"
        head, tail = os.path.split(value.rstrip("/")) if value else ("", "")
        run = shell_word(head or ".") if tail == EXPORT_DIR else "RUN"
        return f"{self.command} takes the export's run: {own} {run}"

    def commands_taking(self, flag: str) -> list[tuple[str, str]]:
        """[(command, its flag)] of the other commands of the top parser (`rank merge` as
        such) that take `flag` or, when none does, the flag it most likely mistypes
        (`text.closest_name`); sorted by command; [] when none is close."""
        flags = {p.command: [f for f in p._option_string_actions if f.startswith("--")]
                 for p in self._commands()}
        name = flag.split("=", 1)[0]
        taken = sorted((c, name) for c, fs in flags.items() if name in fs)
        if taken:
            return taken
        meant = closest_name(name, {f for fs in flags.values() for f in fs})
        return sorted((c, meant) for c, fs in flags.items() if meant in fs) if meant else []


def _near_flag(flag: str, known) -> str | None:
    """The flag of `known` nearest another command's `flag` (`--top-k` -> predict's `--top`),
    looser than `text.closest_name` (difflib ratio >= 0.7) as the flag is no typo: None when
    none is that near."""
    import difflib

    def norm(name):
        return name.lstrip("-").lower()

    by = {norm(k): k for k in known}
    near = difflib.get_close_matches(norm(flag), by, 1, 0.7)
    return by[near[0]] if near else None


class _Subcommand(Parser):
    """The parser of a sub-command (made by `Parser.add_subparsers`)."""

    subcommand = True


#: The namespace attribute where `_refuse_repeat` keeps each flag's first value as typed
#: ({dest: (flag, value)}); `Parser.parse_known_args` drops it.
_TYPED = "_typed_values"


def _refuse_repeat(action, namespace, value, option_string) -> None:
    """Refuses (argparse.ArgumentError: exit 2 with the command's usage line) a flag that
    sets one value given again with another: `--budget 4 --budget 6` kept 6 without a word,
    and `--flip --no-flip` the last. Both values are named. The same value twice is taken
    (nothing is lost); flags of several values (`_Store`, nargs "+") add up and append
    flags (--split) repeat, as their help says; positionals are argparse's."""
    if option_string is None:
        return
    typed = getattr(namespace, _TYPED, None)
    if typed is None:
        typed = {}
        setattr(namespace, _TYPED, typed)
    if action.dest in typed and typed[action.dest][1] != value:
        def word(flag, v):  # --flip: the flag says it; --seed 3, --data 'a b'
            if action.nargs == 0:
                return flag
            return " ".join([flag, *map(shell_word, map(str, v if isinstance(v, list) else [v]))])

        flag, before = typed[action.dest]
        raise argparse.ArgumentError(
            action, f"given twice, as {word(flag, before)} and then {word(option_string, value)}"
                    "; give it once, with the value meant")
    typed.setdefault(action.dest, (option_string, value))


class _Store(argparse._StoreAction):  # private, as _noting's registry: test_cli checks both
    """argparse's store, except that a flag of several values (nargs "+") given again adds
    to its list: `--modules a --modules b` is [a, b], where argparse kept [b] without a word;
    and that a flag of one value given again with another is refused (`_refuse_repeat`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        if (self.nargs == "+" and option_string and isinstance(current, list)
                and current is not self.default):  # given before, not the default list
            values = [*current, *values]
        elif self.nargs != "+":
            _refuse_repeat(self, namespace, values, option_string)
        super().__call__(parser, namespace, values, option_string)


def _noting(container, action) -> type:
    """argparse's class for `action` (a name, a class or None = store) that also notes in the
    namespace that its option was given, for `Parser`'s check of `Option.needs` (a default
    never counts: argparse calls an action only for a flag on the command line)."""
    # argparse's name -> class registry is private, but the same since Python 2.7 (and in
    # 3.14); test_cli's --max-k tests fail at once if it changes.
    base = container._registry_get("action", action or "store", action)

    class Noting(base):
        def __call__(self, parser, namespace, values, option_string=None):
            if self.nargs == 0:  # --flip --no-flip (a store is `_Store`'s): `_refuse_repeat`
                alone = argparse.Namespace()
                super().__call__(parser, alone, values, option_string)
                _refuse_repeat(self, namespace, getattr(alone, self.dest, None), option_string)
            super().__call__(parser, namespace, values, option_string)
            setattr(namespace, _GIVEN, getattr(namespace, _GIVEN, set()) | {self.dest})

    return Noting


def _argparse_type(o: Option, command: str | None = None) -> Callable[[str], Any]:
    """Text -> value for argparse (of `command`'s variant of `o`), raising ArgumentTypeError
    with the allowed values, so `--budget 0` reads "argument --budget: must be an integer
    >= 1, got '0'"."""

    def convert(text):
        try:
            value = o.type(text)
        except ValueError as e:
            if o.type in (int, float):
                raise argparse.ArgumentTypeError(
                    f"must be {o.allowed(none=False)}, got {text!r}") from None
            raise argparse.ArgumentTypeError(str(e)) from None
        try:
            _check_one(o, value, cli=True, command=command)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{e}, got {text!r}{getattr(e, 'hint', '')}"
                                             ) from None
        return value

    convert.__name__ = o.name  # argparse names the type in some of its messages
    return convert


def integer(minimum: int, maximum: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse type for a flag outside the options table: text -> int in [minimum,
    maximum], else "argument --workers: must be an integer >= 1, got '0'" + `why`."""

    def convert(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text!r}{why}")
        return value

    convert.__name__ = "integer"
    return convert


def zoo_seed(text: str) -> int:
    """The argparse type of `zoo build --seed`: an integer whose seeds derived for the build
    (`zoo.config.build_seeds`) all fit numpy's range, for every preset."""
    from hubensemble.zoo.config import max_seed

    return integer(0, max_seed(), " (a build trains with seeds S, S + 1, ... and about 1000 "
                                  "times each; numpy takes at most 2**32 - 1)")(text)


def help_text(o: Option, command: str | None = None) -> str:
    """The option's help with "(default: ...)", %-escaped for argparse.

    A plain default is shown through argparse's %(default)s, so a command that changes it
    with set_defaults (the demo's --top-k) shows its own.
    """
    s = o.settings(command)
    text = s["help"].replace("%", "%%")
    shown = o.show_default(command)
    if shown is None:
        return text
    if s["default_text"] is None and not isinstance(s["default"], (tuple, list)):
        return text + " (default: %(default)s)"
    return text + f" (default: {shown.replace('%', '%%')})"


def add_argument(container, o: Option, command: str) -> None:
    """Adds option `o` as `command`'s parser argument to `container` (parser or group)."""
    s = o.settings(command)
    kwargs: dict[str, Any] = {"dest": o.name, "default": s["default"],
                              "help": help_text(o, command)}
    action = s["action"]
    if action in ("store_true", "store_false"):
        kwargs["action"] = action
    elif action == "boolean":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        if action == "append":
            kwargs["action"] = "append"
        if o.type is not object:
            kwargs["type"] = _argparse_type(o, command)
        if o.choices is not None:
            kwargs["choices"] = o.choices
        if s["metavar"] is not None and o.choices is None:
            kwargs["metavar"] = s["metavar"]
        if s["nargs"] is not None:
            kwargs["nargs"] = s["nargs"]
        if s["nargs"] == "?":
            kwargs["const"] = s["const"]
    # Every option notes that it was given: `needs`, and `rank merge`'s default selection
    # (only noting those with `needs` left `--top-k` unnoted, so merge ignored it).
    kwargs["action"] = _noting(container, kwargs.get("action"))
    container.add_argument(*s["flags"], **kwargs)


def add_group(parser: argparse.ArgumentParser, command: str, group: str, container=None):
    """Adds the options of `group` that `command` takes to `container` (default: a new argument
    group of `parser` titled GROUPS[group]); returns the container."""
    rows = [o for o in options_for(command=command) if o.group == group]
    if container is None:
        container = parser.add_argument_group(GROUPS[group])
    _add_rows(container, rows, command)
    return container


def _add_rows(container, rows: Iterable[Option], command: str) -> None:
    """Adds `rows` to `container`, those sharing an `exclusive` name into one mutually
    exclusive group ("argument --threshold: not allowed with argument --top-k")."""
    exclusive: dict[str, Any] = {}
    for o in rows:
        target = container
        if o.exclusive is not None:
            if o.exclusive not in exclusive:
                exclusive[o.exclusive] = container.add_mutually_exclusive_group()
            target = exclusive[o.exclusive]
        add_argument(target, o, command)


def add_arguments(parser: argparse.ArgumentParser, command: str, groups: Iterable[str] = (),
                  *, skip: Iterable[str] = ()) -> None:
    """Adds every option of `command` to `parser`, except those of the groups in `skip`: the
    options of `groups` in argument groups titled GROUPS[group] (in that order), the others
    directly on the parser."""
    groups, skip = list(groups), set(skip)
    _add_rows(parser, [o for o in options_for(command=command)
                       if o.group not in groups and o.group not in skip], command)
    for g in groups:
        if g not in skip and any(o.group == g for o in options_for(command=command)):
            add_group(parser, command, g)


def one_of_usage(parser: argparse.ArgumentParser, *dests: str) -> None:
    """Sets `parser.usage` to argparse's own, with the options `dests` shown together as one
    that is needed, ``(--run RUN | --add-warmup MODEL)``, where each showed as optional
    (``[--run RUN]``); parsing is unchanged (the command's own check refuses neither or
    both in its words, which argparse's "one of the arguments … is required" would replace).
    Call it after every argument is added."""
    # argparse's _MutuallyExclusiveGroup and _get_formatter are private, but the same since
    # Python 3.2 (and in 3.14); test_cli's usage test fails at once if they change.
    chosen = [a for a in parser._actions if a.dest in dests]
    rest = [a for a in parser._actions if a.dest not in dests]
    at = parser._actions.index(chosen[0])
    group = argparse._MutuallyExclusiveGroup(parser, required=True)
    group._group_actions.extend(chosen)
    formatter = parser._get_formatter()
    formatter.add_usage(None, rest[:at] + chosen + rest[at:], [group])  # "usage: " wraps it
    parser.usage = formatter.format_help().strip().split(" ", 1)[1].replace("%", "%%")


def command_parser(root: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The parser of the command `args` (a parsed namespace of `root`) ran: `export`'s, `rank
    merge`'s, `zoo build`'s, found down from `root` through the sub-command each level's
    dest names; `root` itself when `args` names none."""
    parser = root
    while True:  # argparse's _SubParsersAction: private, as in Parser._check_value
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if not subs or name not in subs[0].choices:
            return parser
        parser = subs[0].choices[name]


def is_usage_error(exc: BaseException, *, checks: bool = False) -> bool:
    """Whether `exc` refuses the command line itself, as argparse's errors do (exit 2 with
    the command's usage line): an OptionError (a flag's value, a combination of flags:
    `export` without --run, --train-batch-size without --retrain-full) anywhere; with
    `checks` (the command's checks before its work: preflight.check_inputs, its parser's
    `check`), also a plain HubensembleError, which those raise for --modules a catalogue
    lacks (flags that do not go together, --tpu without --strategy tpu, a --budget its
    --sweep cannot hold, a --shard that holds no module, raise OptionError: in the stage
    too). Not its subclasses: a run folder (RunError), the data (DataError) or a catalogue
    file (CatalogueError) refused is no usage error."""
    return isinstance(exc, OptionError) or checks and type(exc) is HubensembleError

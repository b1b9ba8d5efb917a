"""How much memory this process may use (the machine's, or its container's cgroup limit).

Linux's OOM killer ends a process that outgrows its machine or its cgroup with SIGKILL: no
Python handler runs, and the user sees the shell's "Killed" (exit 137) and nothing else. What
a stage needs is measured (docs/reliability.md, "Small machines"); this module reads what
the process has, files only (no TensorFlow, no psutil), so the check runs before TensorFlow
loads (`preflight.check_inputs`), and says a stage's need against it (`stage_memory_note`)
for every command and stage function (`say_memory`), and refuses a need well above a limit
that ends the process (`refusal`); what the process has and the refusal are
`memoryroom`'s, the measured rules `memoryrules`'. How the last command on a run ended when
it was killed is `killed.killed_before`'s (said as a run's lock is taken: `rundir.Run.lock`).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os

from hubensemble.killed import killed_before, say_killed  # noqa: F401 (Run.lock's, tests')
from hubensemble.memoryroom import (  # noqa: F401 (callers' and tests' names)
    AS_RESERVED, CGROUP, GIB, PROC, REFUSE_FACTOR, MemoryRefused, Note, Room, _ADDRESS_WORDS,
    _more, address_limit, arenas_saved, arenas_way, cgroup_limits, gib, meminfo, refusal, room)
from hubensemble.memoryrules import (  # noqa: F401 (callers' and tests' names)
    _PROFILE_SIDE, _PROFILE_TRAINING, EMBED_BASE_FIXED, EMBED_BASE_SMALL, EMBED_PER_PIXEL,
    EVALUATE_PER_MEMBER_PIXEL, EXPORT_EXTRA, EXPORT_PER_MEMBER_PIXEL, TRAIN_BASE_FIXED,
    TRAIN_PER_PIXEL, embedding_need, fitting_batch, fitting_train_batch, ran_out,
    training_need)
from hubensemble.fileio import json_object
from hubensemble.inputsize import MAX_INPUT_SIDE, checked_input_size
from hubensemble.sizemeant import meant_size
from hubensemble.text import counted


def training_out_of_memory(batch: int, input_size, profile="cpu") -> str:
    """The way on for fine-tuning that ran out of memory in batches of `batch` images of a
    module of `input_size` ((height, width) or None) under `profile` (a Profile, or its
    name): "pass --train-batch-size N (…), " with N the largest power of two whose
    `training_need` fits this process's room (`room`, MemAvailable when less:
    `fitting_train_batch`), else a quarter of the batch (half of 2 or 3) when the room
    cannot be read or the rule says `batch` fits (it is a lower bound for heavy modules);
    then "free memory or use a machine with more". distill says the same of its student
    (`distill._out_of_memory`)."""
    here, fits = room(), 0
    name = getattr(profile, "name", profile) or "cpu"
    if here is not None:
        limit = min(here.limit, here.available or here.limit)
        fits = fitting_train_batch(limit, [input_size], name,
                                   side=getattr(profile, "resolution_cap", None))
        fits = 1 << (fits.bit_length() - 1) if fits else 0
    if not 0 < fits < batch:
        fits = batch // 4 or batch // 2
    need = training_need([input_size], name, batch=fits or batch,
                         side=getattr(profile, "resolution_cap", None))[0]
    more = _more(here, "free memory or use a machine with more", need=need)
    if not fits:
        return f"{more} (docs/reliability.md \"Small machines\")"
    return (f"pass --train-batch-size {fits} (about {gib(need)} by the rule; the learning rate "
            f"scales with it), {more} (docs/reliability.md \"Small machines\")")


class _Batched:
    """A profile's name, training batch and resolution cap, for `training_need`: a named
    profile at --train-batch-size `batch` (None: its own batch)."""

    def __init__(self, name: str, batch: int | None = None, side: int | None = None):
        self.name, self.batch_size, self.resolution_cap = name, batch, side


def _run_profile(command: str, run_dir):
    """The Profile run `run_dir` was tuned or ranked with, as tune reads it
    (`runprofile.run_profile`: its last tune's record, checked field by field, else rank's,
    else cpu): one reader. A damaged record: tune's RunError, raised (its stage refuses the
    same, after TensorFlow had loaded; a note read the batch "x" as none and said nothing);
    None for export and distill, which read it for this note alone."""
    from hubensemble.errors import RunError
    from hubensemble.rundir import Run
    from hubensemble.runprofile import run_profile

    try:
        return run_profile(Run(os.fspath(run_dir)))[0]
    except RunError:
        if command == "tune":
            raise
        return None


def _ranking(run_dir) -> dict:
    from hubensemble.fileio import read_json

    try:
        ranking = read_json(os.path.join(os.fspath(run_dir), "ranking.json"))
    except (OSError, ValueError):
        return {}
    return ranking if isinstance(ranking, dict) else {}


def measured_factor(record) -> float:
    """How many times the rules' bytes per pixel (EMBED_PER_PIXEL, measured on MobileNet V1)
    a module's embedding took as rank measured it (`record`: its ranking.json row's "memory",
    `memoryroom.PeakMeter.record`): the bytes its peak rose above what the process held
    before it (or above EMBED_BASE_FIXED, the rule's base, when it held less), per pixel of
    each image of its batch, over EMBED_PER_PIXEL; at least 1.0 (a measurement raises the rule,
    never lowers it), 1.0 for a record missing or malformed. VGG16 at 224 px
    (tools/benchmarks/bench_memory.py) took 1.73 GiB at batch 32: 2.3x; MobileNet V1 1.0.
    Memory freed by an earlier module and reused counts not: an underestimate, never an
    overestimate (a later stage is not refused on another module's peak)."""
    try:
        held, peak = int(record["held_bytes"]), int(record["peak_bytes"])
        per_image = int(record["batch_size"]) * int(record["pixels"])
    except (TypeError, KeyError, ValueError):
        return 1.0
    if per_image <= 0:
        return 1.0
    return max(1.0, (peak - max(held, EMBED_BASE_FIXED)) / per_image / EMBED_PER_PIXEL)


def measured_factors(run_dir, names=None) -> tuple[float, str] | None:
    """(factor, module) of the module of `names` (all when None) whose `measured_factor` is
    the largest in `run_dir`'s ranking.json, when above 1.0; None when none is (no record,
    or every measured module within the rule). Modules rank took from its embedding cache
    were not measured."""
    best = None
    for row in _ranking(run_dir).get("modules") or []:
        if isinstance(row, dict) and (names is None or row.get("name") in names):
            factor = measured_factor(row.get("memory"))
            if factor > 1.0 and (best is None or factor > best[0]):
                best = (factor, str(row.get("name")))
    return best


#: The (command, folder) whose memory note the command line said (`preflight.check_inputs`):
#: the stage function it calls says it no second time (`say_memory`).
_MEMORY_SAID: set = set()


def memory_note(specs, batch_size: int, modules=None, profile: str = "cpu", *,
                tunes: bool = False, room=None, train_batch: int | None = None,
                measured=None, images: int | None = None, sweep=None) -> str | None:
    """Words when rank's embedding of catalogue entries `specs` (those named in `modules`,
    else all) in batches of `batch_size` images (`embedding_need`), or with `tunes`
    (fit, demo) tune's fine-tuning of them under `profile` at its training batch, or
    `train_batch` (--train-batch-size) when given (`training_need`), and
    export's reload check after it (`EXPORT_EXTRA`), would
    need more memory than this process may use (`room`, a Room; None:
    `room()`: the machine's MemAvailable or its cgroup's limit, whichever is less).
    Both rules are measured (docs/reliability.md "Small machines"). Names the --batch-size
    and the --train-batch-size that fit (`fitting_batch`, `fitting_train_batch`: powers of
    two). None when both fit or the room cannot be read. Linux's OOM killer
    ends a process that outgrows it with SIGKILL: the user saw "Killed" and nothing else.
    `measured`: (factor, module) of the heaviest of them an earlier rank measured
    (`measured_factors`), which both rules count, or None. `images`: the training images
    rank embeds, when known (at most: `dataargs.listed_counts`' sum, or a loaded task's),
    which no batch of it exceeds, so the rule counts batches of min(batch_size, images):
    --batch-size 65536 on 20 images was said to need 720 GiB, and refused under a cgroup
    limit (the tune rule's batch is the profile's whatever the data: its batches repeat
    images). `sweep` (fit's --sweep; None: the default): a probe part is counted as an
    embedding at each module's own size (`memoryparts.sweep_parts`), not as fine-tuning;
    one without an input or native size at the least side a probe embeds at, said."""
    from hubensemble.memoryparts import sweep_parts, with_unknown_sides

    chosen = [s for s in specs if not modules or s.name in modules] or list(specs)
    sizes = [getattr(s, "input_size", None) for s in chosen]
    parts, unknown = sweep_parts(sweep or "default", "tune+export", sizes, [
        (s.name, s.input_size, getattr(s, "native_size", None)) for s in chosen],
        _Batched(profile, train_batch)) if tunes else ([], [])
    note = _note(room, [("rank embeds", sizes, _at_most(batch_size, images), profile)]
                 + parts, measured)
    return with_unknown_sides(note, unknown)


def _at_most(batch_size: int, images: int | None):
    """`batch_size`, or (images, batch_size) when `images` (>= 1) is fewer: the batch rank's
    embedding fills at most (the training images), and the --batch-size given, for `_note`'s
    rule and words."""
    if images is None or not 0 < int(images) < int(batch_size):
        return batch_size
    return int(images), int(batch_size)


def _note(room, parts, measured=None) -> str | None:
    """`memory_note`'s and `stage_memory_note`'s words for `parts`, each (what, module input
    sizes, batch, profile): what is "rank embeds" or "evaluate runs the export on"
    (inference in batches of --batch-size `batch`: names the one that fits), "tune" (the
    profile's training batch, or a Profile's: names the --train-batch-size that fits),
    "tune+export" (that, then export's reload
    check), "export" (rebuilding the members and the reload check: a lower bound),
    "export --retrain-full" or "distill" (the student trained as tune trains, beside the
    teacher export, counted as export's reload check: `EXPORT_EXTRA`; a lower bound).
    `measured`: (factor, module) of the heaviest module rank measured (`measured_factors`),
    which the training and export rules count, or None."""
    factor, heavy = measured or (1.0, None)
    room = globals()["room"]() if room is None else room  # (the keyword hides the function)
    if room is None:
        return None
    limit, whose = room.limit, room.words()
    if room.available is not None and room.available < limit:  # others use the machine too
        whose = f"{gib(room.available)} available now (MemAvailable) of {whose}"
        limit = room.available  # (no `ulimit -v` room then: `Room.none_left` is not its)
        room = dataclasses.replace(room, source="MemAvailable", cap=None)
    said, ratio = [], 0.0  # (the largest need over room.limit of what does not fit)
    most = 0.0  # the largest need that does not fit (bytes), for the room's way on
    for what, sizes, batch, profile, *named in parts:
        prof = profile if not isinstance(profile, str) else None  # a Profile: its own batch
        name = getattr(profile, "name", profile) or "cpu"
        if what in ("rank embeds", "evaluate runs the export on", "tune's probes embed"):
            # evaluate runs every member on each batch (serve_members): `sizes`, one a member
            more = EVALUATE_PER_MEMBER_PIXEL * max(len(sizes) - 1, 0) if what.startswith(
                "evaluate") else 0

            # a heavier module rank measured: its bytes per pixel above the rule's (`factor`)
            more += EMBED_PER_PIXEL * (factor - 1)

            def inference(b):
                need, pixels = embedding_need(b, sizes, name)
                return need + more * b * pixels, pixels

            batch, given = batch if isinstance(batch, tuple) else (batch, batch)
            flag, whose_batch = "--batch-size", "--batch-size"
            if what.startswith("tune"):  # a probe embeds in the profile's training batch
                named_batch = _PROFILE_TRAINING.get(name, _PROFILE_TRAINING["cpu"])[0]
                batch = given = getattr(prof, "batch_size", None) or named_batch
                flag = "--train-batch-size"
                whose_batch = flag if batch != named_batch else f"--profile {name}'s"
            need, pixels = inference(batch)
            if need <= limit:
                continue
            ratio, most = max(ratio, need / max(room.limit, 1)), max(most, need)
            fits = fitting_batch(limit, sizes, name, per_pixel_extra=more)
            fits = 1 << (fits.bit_length() - 1) if fits else 0  # a power of two: 64, not 82
            side = int(round(pixels ** 0.5))
            with_arenas = ""  # no batch fits, but one does with MALLOC_ARENA_MAX=2: say it
            if not fits and arenas_saved(room):
                fits2 = _power_of_two(fitting_batch(limit + arenas_saved(room), sizes, name,
                                                    per_pixel_extra=more))
                if 0 < fits2 < batch:
                    with_arenas = (f" and {flag} {fits2} (about "
                                   f"{gib(inference(fits2)[0])})")
            runs = what  # evaluate: its members named, each run on every batch
            if what.startswith("evaluate") and len(sizes) > 1:
                runs = (f"evaluate runs the export's {len(sizes)} members"
                        f"{_of_modules(named)}, each on every batch, on")
            said.append(
                f"{runs} images of {side}x{side} px in batches of {batch} ("
                + (whose_batch if batch == given else
                   f"its {batch} training images, fewer than --batch-size {given}") + "), "
                f"which needs about {gib(need)}" + _own_way(
                    fits and f"pass {flag} {fits} (about {gib(inference(fits)[0])})",
                    with_arenas and arenas_way(room, with_arenas)))
            continue
        if what == "export":  # the members rebuilt, run on the check images, reloaded
            need = _export_need(sizes, name, factor)
            if need > limit:
                ratio, most = max(ratio, need / max(room.limit, 1)), max(most, need)
                said.append(f"export rebuilds the {counted(len(sizes), 'member')}"
                            f"{_of_modules(named)}, "
                            "loads the SavedModel it wrote back beside them and times it at "
                            f"batch 64, at least about {gib(need)}" + _own_way(
                                _fewer_members(limit, sizes, name, *named[1:],
                                               factor=factor).rstrip(", ")))
            continue
        train, tbatch, pixels = training_need(
            sizes, name, batch=getattr(prof, "batch_size", None),
            side=getattr(prof, "resolution_cap", None), factor=factor)
        extra = EXPORT_EXTRA if what != "tune" else 0.0
        if what == "export --retrain-full":  # then the export of its members, as "export"
            extra += members_extra(sizes, name) * factor
        if train + extra <= limit:
            continue
        ratio = max(ratio, (train + extra) / max(room.limit, 1))
        most = max(most, train + extra)
        side = int(round(pixels ** 0.5))
        who = {"export --retrain-full": "export --retrain-full retrains the members",
               "distill": "distill trains the student"}.get(what, "tune fine-tunes the modules")
        after = ("" if not extra else " beside the teacher export it loads and runs"
                 if what == "distill" else
                 " and export then loads the ensemble it wrote back beside it")
        own = getattr(prof, "batch_size", None) not in (None, _PROFILE_TRAINING.get(
            name, (None,))[0])  # --train-batch-size, or a run's record of it
        cap = getattr(prof, "resolution_cap", None)
        fits = fitting_train_batch(limit, sizes, name, side=cap, extra=extra, factor=factor)
        fits = 1 << (fits.bit_length() - 1) if fits else 0  # a power of two: 16, not 23
        lower = ""
        if 0 < fits < tbatch:  # (export --retrain-full takes --train-batch-size too)
            fit_need = training_need(sizes, name, batch=fits, side=cap,
                                     factor=factor)[0] + extra
            lower = (f"pass --train-batch-size {fits} (about {gib(fit_need)}; the learning "
                     "rate scales with it)")
        with_arenas = ""  # none fits, but one does with MALLOC_ARENA_MAX=2: say it
        if not fits and arenas_saved(room):
            fits2 = _power_of_two(fitting_train_batch(limit + arenas_saved(room), sizes, name,
                                                      side=cap, extra=extra, factor=factor))
            if 0 < fits2 < tbatch:
                fit_need = training_need(sizes, name, batch=fits2, side=cap,
                                         factor=factor)[0] + extra
                with_arenas = f" and --train-batch-size {fits2} (about {gib(fit_need)})"
        whose_batch = "--train-batch-size" if own else f"--profile {name}'s"
        said.append(
            f"{who} at {side}x{side} px in batches of {tbatch} ({whose_batch})"
            f"{after}, {'at least ' if what == 'distill' else ''}about {gib(train + extra)}"
            f"{' in all' if extra else ''}" + _own_way(
                lower, with_arenas and arenas_way(room, with_arenas),
                "" if what.startswith("export") else "name a --student of a smaller input size"
                if what == "distill" else
                # (only where some module is smaller: a catalogue of one was told it too)
                "leave out the modules of the largest input size (--modules)"
                if len({tuple(z) if z else None for z in sizes}) > 1 else "")
            + (" (its members are the ensemble's)" if lower and what.startswith("export")
               else ""))
    if not said:
        return None
    # The room and its way on once, then each stage's need and its own way (a line each):
    # it was one line of over 1,000 characters that said the room's way on for every stage.
    more = _more(room, "free memory, or use a machine with more", need=most)
    own = any(": " in line.split(" GiB", 1)[-1] for line in said)  # a stage's own way on
    head = (f"{whose}" if room.none_left() else
            f"this process may use {whose}, less than it needs")
    return Note(f"{head}. The way on: {more}"
                + ("; or, for each stage:" if own else ". It needs:")
                + "".join(f"\n  {line}" for line in said)
                + ("\n(measured with MobileNet V1; heavier modules need more). " if heavy is None
                   else f"\n(measured with MobileNet V1, and counting {heavy}'s {factor:.1f}x "
                   "its bytes per pixel, as rank measured it). ")
                + f"{_more(room, ends=True)}; docs/reliability.md \"Small machines\"", ratio,
                room.hard, room.source.startswith(_ADDRESS_WORDS), room)


def _own_way(*ways) -> str:
    """": WAY, or WAY" of a stage's own ways on (the batch or members that fit, the modules
    to leave out; empty ones dropped), or "" when it has none."""
    ways = [w for w in ways if w]
    return ": " + ", or ".join(ways) if ways else ""


def _power_of_two(n: int) -> int:
    """The largest power of two <= `n` (0 for 0): a batch of 64, not 82."""
    return 1 << (n.bit_length() - 1) if n > 0 else 0


def _export_need(sizes, profile: str, factor: float = 1.0) -> float:
    """Bytes export needs for members of input `sizes`: its check batch (32, as
    export.CHECK_BATCH), the reload check (EXPORT_EXTRA) and each member after the first
    (`members_extra`), the per-pixel terms times `factor` (`measured_factor`)."""
    need, pixels = embedding_need(32, sizes, profile)
    return (need + EMBED_PER_PIXEL * (factor - 1) * 32 * pixels + EXPORT_EXTRA
            + members_extra(sizes, profile) * factor)


def _of_modules(named) -> str:
    """' (of MODULE x2, …)': the modules of an export's members, `named` ([] or [the
    members' module names, one per member]), most members first; '' when none is known."""
    names = [n for n in (named[0] if named else None) or [] if isinstance(n, str)]
    if not names:
        return ""
    counts = collections.Counter(names).most_common()
    return " (of " + ", ".join(n if c == 1 else f"{n} x{c}" for n, c in counts) + ")"


def _fewer_members(limit: float, sizes, profile: str, run_dir=None, *,
                   factor: float = 1.0) -> str:
    """The way on for an export of too many members (each adds EXPORT_PER_MEMBER_PIXEL per
    input pixel): the most members, of the first `sizes` (the ensemble's greedy order), whose
    export fits in `limit` bytes, as a --max-members for fit or ensemble (`run_dir`'s
    command, absolute and shell-quoted as text.shell gives it; RUN when None); '' when even
    one does not fit."""
    from hubensemble.text import shell

    run = shell(run_dir) if run_dir is not None else "RUN"
    fits = max((k for k in range(1, len(sizes))
                if _export_need(sizes[:k], profile, factor) <= limit), default=0)
    if not fits:
        return ""
    return (f"keep at most {counted(fits, 'member')} (--max-members {fits}: "
            f"`hubensemble ensemble --run {run} --max-members {fits}` then export again, or "
            f"fit with it; about {gib(_export_need(sizes[:fits], profile, factor))}), ")


def members_extra(sizes, profile: str = "cpu") -> float:
    """Bytes the members beyond the first add to export's peak (EXPORT_PER_MEMBER_PIXEL x
    the largest member's input pixels, `_PROFILE_SIDE` for one without an input size, per
    member after the first), for `sizes`, one (height, width) or None per member."""
    side = _PROFILE_SIDE.get(profile, 64)
    pixels = max((int(s[0]) * int(s[1]) if s else side * side for s in sizes), default=0)
    return EXPORT_PER_MEMBER_PIXEL * pixels * max(len(sizes) - 1, 0)


def recorded_size(value) -> tuple[int, int] | None:
    """The (height, width) ints a recorded "input_size" or "native_size" `value` (run.json's
    module, an export metadata's member) counts as in the memory rules: a pair of ints in
    [1, MAX_INPUT_SIDE] (`inputsize.checked_input_size`'s rule) as it is; one edited by hand
    into an int n or "HxW" as the catalogue reads it (`sizemeant.meant_size`: (n, n), (H,
    W)); anything else None, a size unknown (counted at the profile's side, as a module
    without one). `tuple(224)` raised TypeError, taken for a damaged file: the note was
    dropped without a word."""
    try:
        return checked_input_size(value, who="a recorded", none_means="unknown")
    except (TypeError, ValueError):
        return meant_size(value, MAX_INPUT_SIDE)


def _member_sizes(meta, names) -> list:
    """The input sizes of run.json's (`meta`) modules, one per name in `names` (an
    ensemble's members' modules, repeated when members share one): what export rebuilds
    and times. An entry edited into no object is a module of unknown size (None), a
    "modules" record edited into no object none at all: the stage refuses either."""
    modules = json_object(meta.get("modules"))  # a hand edit into no object: none
    return [recorded_size(modules[n].get("input_size")) if isinstance(modules[n], dict)
            else None for n in names if n in modules]


def _module_sizes(meta, names=None) -> list:
    """The input sizes ((height, width) or None) of run.json's (`meta`) modules named in
    `names` (else all): what tune trains and export rebuilds (`_member_sizes`' reading)."""
    modules = json_object(meta.get("modules"))  # a hand edit into no object: none
    chosen = [m for n, m in modules.items() if not names or n in names] or list(
        modules.values())
    return [recorded_size(m.get("input_size")) if isinstance(m, dict) else None
            for m in chosen]


def held_bytes(task) -> int:
    """The bytes of the decoded images `task` (a data.Task) holds in memory: every present
    split's images (a stacked array's, or each image's of a list), counted once when splits
    share one array (a folder's splits are runs of one: `splits._partition_in_place`)."""
    seen, total = set(), 0
    for name in task.present_splits():
        images = task.split(name).images
        arrays = [images] if hasattr(images, "nbytes") else list(images)
        for a in arrays:
            base = a.base if getattr(a, "base", None) is not None else a
            key = (id(base), a.__array_interface__["data"][0], a.nbytes)
            if key not in seen:
                seen.add(key)
                total += int(a.nbytes)
    return total


def data_note(task, specs, batch_size: int, profile: str = "cpu", *,
              room=None) -> str | None:
    """Words when rank's embedding of `specs` (`embedding_need`, at `batch_size`) fits in
    what this process may use (`room`: a Room, None: `room()`; its limit, the machine's
    memory or its cgroup's) but not beside the images `task` holds (`held_bytes`): the
    preflight note (`memory_note`) runs before the data is read and cannot count them, and
    a folder of photos holds 4.2 MB a photo (docs/data.md "Memory of a split"). None when
    both fit, when the embedding alone does not (`memory_note` said that), or when the room
    cannot be read."""
    room = globals()["room"]() if room is None else room  # (the keyword hides the function)
    if room is None:
        return None
    # No batch holds more than the training images rank embeds (`memory_note`'s `images`)
    batch = _at_most(batch_size, len(task.train) if task.train is not None else None)
    need = embedding_need(batch if isinstance(batch, int) else batch[0],
                          [getattr(s, "input_size", None) for s in specs],
                          getattr(profile, "name", profile) or "cpu")[0]
    held = held_bytes(task)
    if need > room.limit or need + held <= room.limit:
        return None
    count = sum(len(task.split(s)) for s in task.present_splits())
    # The room and its way on once, then a short line for each way of the data's own, as the
    # refusal says them (`_note`): it was one line of some 600 characters.
    more = _more(room, "free memory, or use a machine with more", need=need + held)
    return (f"the data's {counted(count, 'image')} {'takes' if count == 1 else 'take'} "
            f"{gib(held)} in memory as decoded, and rank's embedding needs about {gib(need)} "
            f"beside them: about {gib(need + held)} in all, more than this process may use, "
            f"{room.words()}. The way on: {more}; or, for the data:"
            "\n  use fewer images, or smaller ones: a folder's are held as decoded, shrunk to "
            "1024 px on their shorter side at most"
            f"\n  resize them towards the modules' input size ({_largest_side(specs, profile)})"
            f"\n{_more(room, ends=True)}; docs/reliability.md \"Small machines\"")


def _largest_side(specs, profile) -> str:
    """"224x224 px, the largest": the largest input size among `specs` (their catalogue
    input_size; `_PROFILE_SIDE`'s for `profile` where an entry has none), as rank embeds."""
    side = _PROFILE_SIDE.get(getattr(profile, "name", profile) or "cpu", 64)
    sizes = [tuple(getattr(s, "input_size", None) or (side, side)) for s in specs] or [
        (side, side)]
    height, width = max(sizes, key=lambda hw: int(hw[0]) * int(hw[1]))
    return f"{int(height)}x{int(width)} px{', the largest' if len(set(sizes)) > 1 else ''}"


def stage_memory_note(command: str, run_dir, values, *, room=None) -> str | None:
    """`memory_note`'s words for a stage of its own on `run_dir` (`values`: its keywords,
    from the command line's namespace or the stage function's bound arguments): rank and
    fit/demo from their catalogue entries (`values["specs"]`, --batch-size, --modules,
    --profile); tune from run.json's modules (--modules, else the ranking's selected ones)
    at --profile, else the run's (`runprofile.run_profile`), in batches of
    --train-batch-size when given (fit's too); export from its ensemble's
    members (with --retrain-full, as tune trains, at its --train-batch-size when given);
    distill from its --student's input size (else the largest of the modules it may pick:
    the ensemble's members, any of the run's with --max-gflops) at --train-batch-size, else
    the run's tuned batch (its candidates'), as tune trains, plus the teacher export beside
    it (`EXPORT_EXTRA`, fit's measured reload check: a lower bound); evaluate (`run_dir`:
    the export folder) from its members' input sizes and --batch-size. Each counts the
    heaviest of its modules an earlier rank measured (ranking.json's rows' "memory",
    `measured_factors`: the run's; rank's and fit's --out when it holds a ranking already;
    evaluate's, the run its export's metadata names), the rule alone where none was: rank
    and evaluate used the rule alone, 2.3x short for VGG16. None for other
    commands, when the need fits, or when a file it reads is missing or damaged (the stage
    says that); but tune's RunError for a damaged profile record (`_run_profile`)."""
    command = {"demo": "fit"}.get(command, command)
    try:
        if command in ("rank", "fit"):
            if not values.get("specs") or not values.get("batch_size"):
                return None
            names = values.get("modules") or [s.name for s in values["specs"]]
            return memory_note(values["specs"], values["batch_size"], values.get("modules"),
                               getattr(values.get("profile"), "name", values.get("profile"))
                               or "cpu", tunes=command == "fit", room=room,
                               train_batch=values.get("train_batch_size"),
                               measured=run_dir and measured_factors(run_dir, names),
                               images=values.get("train_images"), sweep=values.get("sweep"))
        if command == "evaluate":
            from hubensemble.formats import exported_run, read_export_metadata

            record = read_export_metadata(run_dir, strict=False)
            members = record.get("members") if isinstance(record.get("members"), list) else []
            sizes = [recorded_size(m.get("input_size")) for m in members if isinstance(m, dict)]
            if not sizes:  # no export of hubensemble's (its refusal), or no members listed
                return None
            names = [m.get("module") for m in members if isinstance(m, dict)]
            # The run that wrote it: its ranking. Its one reader: a "run" edited into a string
            # raised AttributeError here, and the note was lost.
            run = exported_run(record)
            return _note(room, [("evaluate runs the export on", sizes,
                                 values.get("batch_size") or 64, "cpu", names)],
                         run and measured_factors(run, names) or None)
        if command not in ("tune", "export", "distill") or run_dir is None:
            return None
        from hubensemble.fileio import read_json

        meta = read_json(os.path.join(os.fspath(run_dir), "run.json"))
        if not meta.get("modules"):
            return None
        profile = values.get("profile") or _run_profile(command, run_dir)
        if profile is None:
            return None
        if values.get("train_batch_size"):  # --train-batch-size replaces any batch (tune's;
            # export's with --retrain-full, which refuses it alone)
            profile = _Batched(getattr(profile, "name", profile), values["train_batch_size"],
                               getattr(profile, "resolution_cap", None))
        if command == "tune":
            names = values.get("modules") or _ranking(run_dir).get("selected")
            return _note(room, _tune_parts(meta, names, profile, values.get("sweep")),
                         measured_factors(run_dir, names or None))
        members = read_json(os.path.join(os.fspath(run_dir), "ensemble.json")).get(
            "members") or []
        names = [m.get("module") for m in members if isinstance(m, dict)]
        if command == "distill":
            # --student, else the one it picks: a member (the cheapest), or with --max-gflops
            # any module of the run; its costs are not read here, so the largest of them
            # (training_need takes the largest input size).
            student = values.get("student")
            names = ([student] if student else None if values.get("max_gflops") else names)
            return _note(room, [("distill", _module_sizes(meta, names), None, profile)],
                         measured_factors(run_dir, names or None))
        return _note(room, [("export --retrain-full" if values.get("retrain_full")
                             else "export", _member_sizes(meta, names)
                             or _module_sizes(meta, names), None, profile, names, run_dir)],
                     measured_factors(run_dir, names or None))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # the stage's to say
        return None


def _tune_parts(meta, names, profile, sweep) -> list:
    """`_note`'s parts of a tune of run.json's (`meta`) modules `names` (None: all) under
    `profile` by sweep `sweep` (None: the run's last, its "call_sweep"): "tune" (fine-tuning,
    `training_need`) for any part but probe, and a probe part embedding each module at its
    own size (`memoryparts.sweep_parts`; the task's image size as run.json records it). A
    record hand-edited into no object reads as none (`runspecs.readable_entries`)."""
    from hubensemble.memoryparts import sweep_parts
    from hubensemble.runspecs import readable_entries

    sweep = sweep or json_object(meta.get("tune")).get("call_sweep") or "default"
    modules = readable_entries(meta.get("modules"))
    image = json_object(json_object(meta.get("data")).get("task")).get("image_size")
    chosen = [m for n, m in modules.items() if not names or n in names] or list(modules.values())
    entries = [(None, recorded_size(m.get("input_size")), recorded_size(m.get("native_size")))
               for m in chosen]
    return sweep_parts(sweep, "tune", _module_sizes(meta, names), entries, profile,
                       image or (224, 224))[0]


def memory_key(command: str, folder) -> tuple[str, str]:
    """(command, the folder's real path) of a memory note: demo's is fit's (the demo calls
    fit)."""
    return {"demo": "fit"}.get(command, command), os.path.realpath(folder) if folder else ""


def say_memory(command: str, run_dir, values) -> None:
    """Logs `stage_memory_note` as a WARNING, for a stage function called from Python
    (`runwriter.writes_run`, `evaluate.evaluate_model`), unless the command line said it
    for this command and folder already (`check_inputs`), or a fit of this process holds
    the run (its own note covered the stages)."""
    key = memory_key(command, run_dir)
    if key in _MEMORY_SAID:
        _MEMORY_SAID.discard(key)
        return
    note = stage_memory_note(command, run_dir, values)
    if note:
        logging.getLogger(__name__).warning("%s", note)

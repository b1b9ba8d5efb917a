"""What a zoo is: training specs, configurations and presets, the build plan, catalogue entries."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass
from typing import Callable

from hubensemble.errors import HubensembleError
from hubensemble.optionrecord import POSITIVE_FINITE, positive_finite
from hubensemble.text import closest_names, did_you_mean, value_shown
from hubensemble.zoo.arch import ARCHITECTURES, arch_label, count_params
from hubensemble.zoo.upstream import UpstreamData

# Bump whenever a preset, the architecture, the training recipe or the upstream data change:
# the cache folder carries it, so a changed recipe builds a new zoo instead of reusing one.
RECIPE_VERSION = 1
LICENSE = "Apache-2.0"
#: The optimizers a TrainSpec may name (`zoo.train.Trainer` builds them).
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainSpec:
    """How one kind of model trains: linear warm-up over the first 10 % of the steps, then
    cosine decay to zero, with Adam (default: fastest to useful features in a few hundred
    steps on a CPU) or SGD with Nesterov momentum 0.9 (BiT's upstream optimiser).
    `examples`, `steps` and `batch_size` are integers >= 1, `lr` a number > 0 and finite
    (an int or a float: `optionrecord.positive_finite`, the options table's rule and words)
    and `optimizer` "adam" or "sgd" (OPTIMIZERS); anything else raises ValueError as the
    spec is made (`unknown_optimizer` its words for an optimizer)."""

    examples: int       # upstream examples drawn (generalists of one size share theirs)
    steps: int
    lr: float
    batch_size: int = 128
    optimizer: str = "adam"

    def __post_init__(self):
        # Checked here, not first in a build's worker process (after the upstream data was
        # drawn, the pool started, and other modules trained): ValueError at construction.
        for field in ("examples", "steps", "batch_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainSpec {field} must be an integer >= 1, got {value!r}")
        # lr=inf was told "a number > 0", and 10**400 (no float holds it) was taken.
        if not isinstance(self.lr, (int, float)) or not positive_finite(self.lr):
            raise ValueError(f"TrainSpec lr must be {POSITIVE_FINITE}, got "
                             f"{value_shown(self.lr)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(unknown_optimizer(self.optimizer))

    def to_json(self):
        """The fields as a JSON-able dict (zoo.json)."""
        return dataclasses.asdict(self)


def unknown_optimizer(name) -> str:
    """The refusal of an optimizer `name` not in OPTIMIZERS, with a guess of the one meant:
    "unknown optimizer 'Adam' (did you mean adam?); use 'adam' or 'sgd'"."""
    return (f"unknown optimizer {name!r}{did_you_mean(name, OPTIMIZERS)}; use "
            + " or ".join(repr(o) for o in OPTIMIZERS))


@dataclass(frozen=True)
class ZooConfig:
    """What to build. ``generalists`` maps an architecture name to its seeds; ``experts`` maps
    an architecture to the sub-trees that get an expert (None: every sub-tree), each fine-tuned
    from that architecture's first generalist."""

    name: str
    generalists: dict[str, tuple[int, ...]]
    experts: dict[str, tuple[str, ...] | None]
    generalist_train: dict[str, TrainSpec]
    expert_train: dict[str, TrainSpec]
    seed: int = 0
    data_seed: int = 1234
    upstream: UpstreamData | None = None  # None: the procedural glyphs
    license: str = LICENSE

    def upstream_data(self) -> UpstreamData:
        """The upstream data: ``upstream``, or the procedural glyphs when it is None."""
        return self.upstream if self.upstream is not None else UpstreamData.glyphs()

    def to_json(self):
        """The configuration as a JSON-able dict (zoo.json), naming the upstream data."""
        up = self.upstream
        return {"name": self.name, "recipe_version": RECIPE_VERSION,
                "generalists": {k: list(v) for k, v in self.generalists.items()},
                "experts": {k: (list(v) if v is not None else None)
                            for k, v in self.experts.items()},
                "generalist_train": {k: v.to_json() for k, v in self.generalist_train.items()},
                "expert_train": {k: v.to_json() for k, v in self.expert_train.items()},
                "seed": self.seed, "data_seed": self.data_seed,
                "upstream": up.name if up is not None else _glyphs_name(),
                "license": self.license}


# The fields of a recorded configuration in the order a difference is reported: what a user
# changes by hand (preset, recipe, seed) first, the long training tables last.
_RECIPE_FIELDS = ("name", "recipe_version", "seed", "data_seed", "upstream", "generalists",
                  "experts", "generalist_train", "expert_train", "license")


def recipe_difference(recorded, config: ZooConfig) -> str | None:
    """What differs between the configuration a finished zoo records (``zoo.json``'s
    "config", `ZooConfig.to_json`) and ``config``, e.g. "seed (0 there, 3 now),
    generalists"; None when they are equal: building ``config`` again would train the same
    recipe. This is the one test of "is this zoo current": `build_zoo` leaves a current zoo
    as it is and `ensure_zoo` reuses a current cached one.

    Every recorded field counts: preset or config name, RECIPE_VERSION (which covers the
    architectures and the training code), seeds, sub-trees, training specs, data seed,
    license, and the upstream data by its name only (arrays or a sampler are not compared:
    give changed data a new name). Pure; never raises: a record that is not a mapping is
    reported as such.
    """
    if not isinstance(recorded, dict):
        return "zoo.json records no configuration"
    # Through JSON, as zoo.json holds it: tuples become lists, so equal configs compare equal.
    wanted = json.loads(json.dumps(config.to_json()))
    fields = list(_RECIPE_FIELDS) + sorted((set(wanted) | set(recorded)) - set(_RECIPE_FIELDS))
    out = []
    for field in fields:
        there, now = recorded.get(field), wanted.get(field)
        if there != now:
            scalar = all(v is None or isinstance(v, (str, int, float)) for v in (there, now))
            out.append(f"{field} ({there!r} there, {now!r} now)" if scalar else field)
    return ", ".join(out) or None


def recorded_label(recorded) -> str:
    """A recorded configuration in a few words: "'quick' zoo (seed 0, recipe 1)"."""
    if not isinstance(recorded, dict):
        return "zoo"
    return (f"{recorded.get('name', '?')!r} zoo (seed {recorded.get('seed', '?')}, "
            f"recipe {recorded.get('recipe_version', '?')})")


def _glyphs_name():
    from hubensemble.zoo.glyphs import UPSTREAM_NAME

    return UPSTREAM_NAME


def _demo_config(seed=0):
    # About 3.5 minutes on the 2-core build machine (docs/zoo.md, tools/benchmarks/bench_zoo.py).
    return ZooConfig(
        name="demo",
        generalists={"r8x2": (seed, seed + 1, seed + 2), "r6x1": (seed,)},
        experts={"r8x2": None, "r6x1": ("digits", "shapes", "textures")},
        generalist_train={"r8x2": TrainSpec(examples=48_000, steps=500, lr=0.003),
                          "r6x1": TrainSpec(examples=48_000, steps=350, lr=0.003)},
        expert_train={"r8x2": TrainSpec(examples=4_000, steps=30, lr=0.001),
                      "r6x1": TrainSpec(examples=4_000, steps=30, lr=0.001)},
        seed=seed)


def _quick_config(seed=0):
    return ZooConfig(
        name="quick",
        generalists={"r6x1": (seed, seed + 1)},
        experts={"r6x1": ("digits", "shapes")},
        generalist_train={"r6x1": TrainSpec(examples=4_000, steps=30, lr=0.003, batch_size=64)},
        expert_train={"r6x1": TrainSpec(examples=1_000, steps=10, lr=0.001, batch_size=64)},
        seed=seed)


PRESETS: dict[str, Callable[[int], ZooConfig]] = {"demo": _demo_config, "quick": _quick_config}


def preset(name: str, seed: int = 0) -> ZooConfig:
    """The ZooConfig of a named preset (``demo``: the offline demo pool; ``quick``: tests)."""
    if name not in PRESETS:
        raise HubensembleError(f"unknown zoo preset {name!r}{did_you_mean(name, PRESETS)}; "
                               f"presets: {', '.join(PRESETS)}")
    return PRESETS[name](seed)


def preset_module_names(name: str) -> list[str]:
    """The module names of preset zoo `name`, in build order: the NAMEs a ``zoo:PRESET/NAME``
    handle may use (no TensorFlow, nothing built). Raises HubensembleError for an unknown
    preset, listing the presets."""
    from hubensemble.zoo import glyphs

    return [p.name for p in plan(preset(name), glyphs.hierarchy())]


def zoo_handle_problem(handle: str) -> str | None:
    """What is wrong with a well-formed ``zoo:PRESET/NAME`` handle — an unknown preset, or a
    NAME its preset does not build (with the closest name) — as "problem; fix", else None.
    `catalogue validate` reports it with the entry's file:line; rank fails such a module
    with the same names (`module_path`) before any zoo is built."""
    preset_name, _, name = handle[len("zoo:"):].partition("/")
    if preset_name not in PRESETS:
        close = closest_names(preset_name, PRESETS)  # git's rule, as for a module's NAME
        guess = (" (did you mean " + " or ".join(f"zoo:{c}/{name}" for c in close) + "?)"
                 if close else "")
        return f"{handle!r} names no zoo preset{guess}; write one of {', '.join(PRESETS)}"
    names = preset_module_names(preset_name)
    if name in names:
        return None
    close = closest_names(name, names)  # git's rule, ties all said (text.closest_names)
    fix = ("did you mean " + " or ".join(f"zoo:{preset_name}/{c}" for c in close) + "?"
           if close else
           f"the {preset_name} zoo has {', '.join(names)}")
    return f"the {preset_name} zoo has no module {name!r}; {fix}"


def validate_catalogue(path) -> list:
    """The ModuleSpecs of one catalogue file (`catalogue.load_catalogue`), with every
    ``zoo:PRESET/NAME`` handle checked against its preset without building it
    (`zoo_handle_problem`: the presets, or the closest name). CatalogueError lists every
    problem at once, by line: the catalogue's own, each zoo problem as "FILE:LINE: module
    'NAME': problem; fix", each input_size a local module cannot take
    (`catalogue_sizes.size_problems`) and each signature, output_key or layer it lacks
    (`catalogue_calls.call_problems`) (`catalogue validate`). Here, not in catalogue: the zoo reads
    catalogues."""
    from hubensemble.catalogue import raise_problems

    specs, problems, _, _ = _checked(path)
    if problems:
        raise_problems(problems)
    return specs


def _checked(path) -> tuple[list, list[str], str, list]:
    """(the ModuleSpecs of the entries of catalogue file `path` that parsed, its problem
    lines "FILE:LINE: …" in line order, FILE as they name it, the entries with problems
    whose handle parsed: `parse_catalogue_text`'s `partial`) for `validate_catalogue`;
    HubensembleError for a file that cannot be read."""
    from hubensemble.catalogue import parse_catalogue_text, read_catalogue_file
    from hubensemble.catalogue_calls import call_problems
    from hubensemble.catalogue_sizes import size_problems
    from hubensemble.handlewarnings import field_source

    text, label, folder = read_catalogue_file(path)
    partial: list = []
    specs, problems = parse_catalogue_text(text, label, folder, partial=partial)
    # Every entry's handle is checked, so every problem is listed at once, by line: those of
    # the entries with other problems too (a bad family hid a bad zoo: handle until fixed).
    partial = [e for e in partial if isinstance(e.handle, str)]
    entries = specs + partial
    # A problem of one field names that field's line (handlewarnings.field_source, dde1802's rule):
    # the entry's `- name:` line was named, where the field may sit lines below it.
    problems += [f"{field_source(s, 'handle')}: module {s.name!r}: {problem}" for s in entries
                 if s.handle.startswith("zoo:") and (problem := zoo_handle_problem(s.handle))]
    # an input_size its local module cannot take; a signature, output_key, layer it lacks
    problems += size_problems(entries) + call_problems(entries)
    return specs, sorted(problems, key=lambda problem: _line_of(problem, label)), label, partial


def _line_of(text, label) -> int:
    """The LINE of a problem or warning "[warning: ]LABEL:LINE: …" of the file `label` names
    (0 without one): after the label, whose own text may hold colons and digits."""
    text = text.removeprefix("warning: ")
    head = text[len(label) + 1:].split(":", 1)[0] if text.startswith(label + ":") else ""
    return int(head) if head.isdigit() else 0


def _count(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless `n` is 1: "1 module", "2 modules"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def validate_catalogues(paths, emit: Callable[[str, bool], object]) -> bool:
    """`catalogue validate`: each file in turn (`validate_catalogue`), then, when several are
    valid, those together (`load_catalogues`: names unique across them; a file with its own
    errors does not hide a clash between the others: every problem is reported at once).
    `emit(line, ok)` gets each line of the report as it is found: "FILE: ok (N modules)" (FILE
    the absolute path, as its problem lines name it; "FILE: ok (2 modules, 1 warning)" after
    that file's warnings, which come first: a reader stopped at "ok") and the set's verdict
    (likewise) with ok True; a file's problem lines (CatalogueError's) and the set's with ok
    False; a note per local handle missing or holding no module (`local_handle_warnings`), per
    entry whose handle names a classification module
    (`classifierhandles.classifier_handle_warnings`) and per entry that loads the same module
    as an earlier one, in the file or across the files (`samemodule.same_module_warnings`), and
    per local entry whose sha256 another entry pins under another handle though its own files
    hash to something else (`catalogue_pins.copied_pin_warnings`), and per entry whose
    input_size fixes a local SavedModel that takes any size (`catalogue_sizes.size_warnings`),
    each a warning, not a failure, with ok None. A file's warnings come with its errors, all in line
    order (they came only once its errors were fixed: a new-user check); an entry with an error
    is checked as far as it parsed (its zoo: handle, a local handle's folder), not for a module
    listed twice; so is an entry whose name repeats an earlier one's. A name an entry of an
    earlier file has is said ("FILE:LINE: field 'name': … is already defined at FILE:LINE; …",
    ok False) even when either file has errors (`_names_across`; two valid files' by the set's
    check). Returns True when every file and the set are valid."""
    from hubensemble.catalogue import load_catalogues, local_handle_warnings
    from hubensemble.catalogue_pins import copied_pin_warnings, pin_disowned
    from hubensemble.catalogue_sizes import size_warnings
    from hubensemble.classifierhandles import classifier_handle_warnings
    from hubensemble.samemodule import same_module_warnings

    good, named, clashes, compared = [], {}, [], set()
    for path in paths:
        try:
            specs, problems, label, partial = _checked(path)
        except HubensembleError as e:  # a file that cannot be read
            emit(str(e), False)
            continue
        if label not in compared:  # the same file given twice is compared once
            compared.add(label)
            clashes += _names_across(named, label, specs + partial, bool(problems))
        skips = local_handle_warnings(specs + partial)
        notes = [(note, None) for note in skips
                 + same_module_warnings(specs, disowned=pin_disowned)
                 + copied_pin_warnings(specs)
                 + classifier_handle_warnings(specs + partial)
                 + size_warnings(specs + partial)]
        if problems:
            for line, ok in sorted([(p, False) for p in problems] + notes,
                                   key=lambda said: _line_of(said[0], label)):
                emit(line, ok)
            continue
        good.append(path)
        for note, ok in notes:  # before the verdict: a reader stops at "ok"
            emit(note, ok)
        # By its absolute path, as its problem and warning lines name it (`label`): a
        # relative name here beside absolute ones above read as another file.
        # Not "ok" when rank would skip an entry here: validate exits 1 then
        # (`commands.skipped_entries_status`), and "ok" above exit 1 read as a contradiction.
        verdict = f"valid; rank would skip {len(skips)} here" if skips else "ok"
        emit(f"{label}: {verdict} ({_count(len(specs), 'module')}"
             f"{', ' + _count(len(notes), 'warning') if notes else ''})", True)
    for line in clashes:  # a file with errors hid them until fixed (new-user check)
        emit(line, False)
    if len(good) > 1:
        what = (f"the {len(good)} catalogues together" if len(good) == len(paths) else
                f"the {len(good)} valid catalogues together")
        try:
            together = load_catalogues(good)
        except HubensembleError as e:
            emit(f"{what} are not valid:\n{e}", False)
            return False
        notes = (same_module_warnings(together, across_files=True, disowned=pin_disowned)
                 + copied_pin_warnings(together, across_files=True))
        for note in notes:
            emit(note, None)
        emit(f"{what}: ok" + (f" ({_count(len(notes), 'warning')})" if notes else ""), True)
    return len(good) == len(paths) and not clashes


def _names_across(named: dict, label: str, entries, bad: bool) -> list[str]:
    """The problem lines of `entries` (one file's, `label`'s, parsed or partial) whose name an
    entry of an earlier file already has, where either file has errors (`bad`; two valid
    files' clashes are `load_catalogues`'s, said with the set); `named` {name: (source, file,
    its file bad)} of the files before, updated. A name repeated in one file is its own
    problem (`catalogue._parse_root`)."""
    from hubensemble.handlewarnings import field_source

    lines = []
    for entry in sorted(entries, key=lambda e: _line_of(e.source, label)):
        if not isinstance(entry.name, str):
            continue
        # By the `name:` lines, as `load_catalogues` names the set's clashes and every
        # problem of a field names its line (the entries' `- …:` lines were named).
        where = field_source(entry, "name")
        if entry.name not in named:
            named[entry.name] = where, label, bad
        elif named[entry.name][1] != label and (bad or named[entry.name][2]):
            lines.append(f"{where}: field 'name': {entry.name!r} is already defined at "
                         f"{named[entry.name][0]}; rename one of them or leave one catalogue "
                         f"out")
    return lines


@dataclass(frozen=True)
class ModelPlan:
    """One module of a zoo: what it is and how it is made."""

    name: str
    family: str            # generalist | expert
    arch: str
    seed: int
    subtree: str | None = None
    parent: str | None = None  # the generalist an expert is fine-tuned from


def plan(config: ZooConfig, hierarchy: dict[str, list[str]] | None = None) -> list[ModelPlan]:
    """The modules of a zoo, in build order (each architecture's generalists, then its
    experts). ``hierarchy`` is only needed when some ``experts`` entry is None (all).

    Raises HubensembleError, saying what to add, for an unknown architecture, one without
    seeds or training spec, experts without a generalist to start from, an unknown sub-tree
    or duplicate module names. Paper appendix A.1: generalists differ by seed only; each
    expert is its architecture's first generalist fine-tuned on one sub-tree.
    """
    out = []
    for arch, seeds in config.generalists.items():
        if arch not in ARCHITECTURES:
            raise HubensembleError(f"unknown architecture {arch!r}"
                                   f"{did_you_mean(arch, ARCHITECTURES)}; known: "
                                   f"{', '.join(ARCHITECTURES)} (add an ArchSpec to "
                                   "zoo.ARCHITECTURES for another)")
        if not seeds:
            raise HubensembleError(f"architecture {arch} needs at least one generalist seed")
        if arch not in config.generalist_train:
            raise HubensembleError(f"no generalist_train entry for {arch}; add "
                                   f"generalist_train={{'{arch}': TrainSpec(...)}}")
        for s in seeds:
            out.append(ModelPlan(f"{arch}-generalist-{s}", "generalist", arch, s))
    for arch, subtrees in config.experts.items():
        if arch not in config.generalists:
            raise HubensembleError(f"experts of {arch} need a generalist of {arch} to start "
                                   f"from; add {arch} to generalists")
        if arch not in config.expert_train:
            raise HubensembleError(f"no expert_train entry for {arch}; add "
                                   f"expert_train={{'{arch}': TrainSpec(...)}}")
        if subtrees is None:
            if hierarchy is None:
                raise HubensembleError("plan() needs the hierarchy when experts are 'all'")
            subtrees = tuple(hierarchy)
        elif hierarchy is not None:
            unknown = [s for s in subtrees if s not in hierarchy]
            if unknown:
                said = ", ".join(repr(s) + did_you_mean(s, hierarchy) for s in unknown)
                trees = "sub-tree" if len(unknown) == 1 else "sub-trees"
                raise HubensembleError(f"unknown {trees} {said}; the hierarchy has "
                                       f"{', '.join(hierarchy)}")
        parent_seed = config.generalists[arch][0]
        for sub in subtrees:
            out.append(ModelPlan(f"{arch}-expert-{sub}", "expert", arch, parent_seed, sub,
                                 parent=f"{arch}-generalist-{parent_seed}"))
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise HubensembleError(f"duplicate module names in the zoo plan: {names}")
    return out


#: numpy's seed range, so keras.utils.set_random_seed's: the seeds a build hands to it.
MAX_SEED = 2**32 - 1


def subtree_index(hierarchy, subtree: str | None) -> int:
    """0 for a generalist (no sub-tree), else 1 + the sub-tree's place in the hierarchy."""
    return 0 if subtree is None else list(hierarchy).index(subtree) + 1


def train_seed(p: ModelPlan, hierarchy) -> int:
    """The seed module `p` trains with (data order, dropout): its own seed * 1000 + its
    `subtree_index` + 1, so a generalist and its experts never share one."""
    return p.seed * 1000 + subtree_index(hierarchy, p.subtree) + 1


def build_seeds(config: ZooConfig, hierarchy=None) -> list[int]:
    """Every seed a build of `config` hands to keras.utils.set_random_seed: each module's
    own seed (its initial weights) and its `train_seed`, in plan order."""
    hierarchy = config.upstream_data().hierarchy if hierarchy is None else hierarchy
    return [s for p in plan(config, hierarchy) for s in (p.seed, train_seed(p, hierarchy))]


def seed_problem(config: ZooConfig, hierarchy=None) -> str | None:
    """What is wrong with the seeds of `config` (one outside numpy's [0, 2**32 - 1], which
    stopped a build after minutes of training), else None."""
    bad = [s for s in build_seeds(config, hierarchy) if not 0 <= s <= MAX_SEED]
    if not bad:
        return None
    return (f"zoo {config.name!r} with seed {config.seed} would train with seed {bad[0]}, "
            f"outside numpy's 0 ... {MAX_SEED} (each module trains with its seed * 1000 + a "
            "few); choose a smaller seed")


def max_seed(name: str | None = None) -> int:
    """The largest seed of preset `name` (None: of every preset) whose `build_seeds` all fit
    numpy's range: its generalists take S, S + 1, ... and each module trains with about 1000
    times its own."""
    if name is None:
        return min(max_seed(n) for n in PRESETS)
    hierarchy = preset(name).upstream_data().hierarchy
    lo, hi = 0, MAX_SEED  # build_seeds grow with S: the largest S without a problem
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if seed_problem(preset(name, mid), hierarchy) is None else (lo, mid - 1)
    return lo


# --------------------------------------------------------------------------- catalogue


def _spec(p: ModelPlan, upstream: str, handle: str, *, input_size, sha256=None, params=None,
          license=LICENSE):
    from hubensemble.catalogue import ModuleSpec

    arch = ARCHITECTURES[p.arch]
    tags = ["zoo", p.family, p.arch] + ([p.subtree] if p.subtree else [])
    # input_size is the size the module was trained at: the graph takes any size, but its
    # features are tuned to that scale, so HubLayer should resize inputs to it.
    return ModuleSpec(name=p.name, handle=handle, sha256=sha256, input_size=input_size,
                      value_range="0,1", output_dim=arch.output_dim, family=p.family,
                      architecture=arch_label(arch), upstream=upstream,
                      subtree=p.subtree, params=params, license=license, tags=tuple(tags),
                      seed=p.seed)


def demo_catalogue_specs():
    """The entries of catalogue/demo.yaml: every demo module as ``zoo:demo/NAME``.

    No sha256: training is not bit-reproducible across machines, so the modules a user's
    cache holds differ in their last bits from the ones built here.
    """
    from hubensemble.zoo import glyphs

    config = preset("demo")
    size = (glyphs.IMAGE_SIZE, glyphs.IMAGE_SIZE)
    return [_spec(p, glyphs.UPSTREAM_NAME, f"zoo:demo/{p.name}", input_size=size,
                  params=count_params(ARCHITECTURES[p.arch]), license=config.license)
            for p in plan(config, glyphs.hierarchy())]


DEMO_HEADER = (
    "The offline demo zoo: small ResNet-v2 (GroupNorm + weight standardisation) modules\n"
    "pre-trained on procedural glyphs, shapes and textures (hubensemble.zoo.glyphs, glyphs-v1):\n"
    "generalists (several seeds, two widths) and experts (a generalist fine-tuned on one\n"
    "sub-tree of the label hierarchy). Each handle zoo:demo/NAME is built into the user cache\n"
    "($XDG_CACHE_HOME/hubensemble/zoo/) on first use, in a few minutes on a CPU.\n"
    "Generated by hubensemble.zoo.write_demo_catalogue(); do not edit by hand.")


def write_demo_catalogue(path) -> None:
    """Writes catalogue/demo.yaml from demo_catalogue_specs()."""
    from hubensemble.catalogue_writer import write_catalogue

    write_catalogue(path, demo_catalogue_specs(), header_comment=DEMO_HEADER)


# ------------------------------------------------------------ where presets are cached


def zoo_root() -> pathlib.Path:
    """Where preset zoos are cached: $HUBENSEMBLE_ZOO_DIR, else
    $XDG_CACHE_HOME/hubensemble/zoo (default ~/.cache/hubensemble/zoo), `~` expanded."""
    from hubensemble.environment import path_from_environment, user_cache_dir

    return pathlib.Path(path_from_environment("HUBENSEMBLE_ZOO_DIR")
                        or user_cache_dir("hubensemble", "zoo"))


def zoo_folder_hint(out_dir, preset_name: str) -> str:
    """How to give the zoo at `out_dir` a folder that can be written, naming what chose it:
    HUBENSEMBLE_ZOO_DIR (or the default cache) for `zoo_dir(preset_name)` (where `zoo build`
    without --out and zoo:PRESET/NAME handles build), else --out (a refusal said "choose
    another --out folder" to a user who had given none)."""
    from hubensemble.environment import path_from_environment

    if pathlib.Path(out_dir).absolute() != zoo_dir(preset_name).absolute():
        return "choose another --out folder for the zoo"
    if path_from_environment("HUBENSEMBLE_ZOO_DIR"):
        return ("HUBENSEMBLE_ZOO_DIR names the preset zoos' cache folder: set it to a folder you "
                "can write, or unset it (or give `zoo build` --out DIR)")
    return ("it is the preset zoos' cache folder: set HUBENSEMBLE_ZOO_DIR to a folder you can "
            "write (or give `zoo build` --out DIR)")


def zoo_dir(preset_name: str) -> pathlib.Path:
    """The cache folder of a preset's zoo, ``zoo_root()/PRESET-r<RECIPE_VERSION>``: the recipe
    version in the name makes a changed recipe build a new zoo instead of reusing one."""
    return zoo_root() / f"{preset_name}-r{RECIPE_VERSION}"

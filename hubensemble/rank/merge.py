"""Merging the rankings of shards (`run_rank(shard=(i, n))`, `hubensemble rank merge`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os

import numpy as np

from hubensemble import options
from hubensemble.errors import HubensembleError, ModuleLoadError, RunError
from hubensemble.fileio import atomic_write_bytes, check_dir_target
from hubensemble.samemodule import duplicate_reason, same_files_as
from hubensemble.rank.pool import (DESCRIPTIVE_FIELDS, check_pool_profile, check_tuned_modules,
                                   warn_unselected_pool)
from hubensemble.rank.knnfile import (check_knn_predictions, load_knn_neighbours,
                                      load_knn_predictions, write_knn_predictions)
from hubensemble.runprofile import profile_of_record, rank_changes
from hubensemble.runspecs import catalogue_entries, module_specs
from hubensemble.rank.record import not_ranked_warning
from hubensemble.rank.ranking import (KNN_METRICS, Ranking, raise_if_none_ok, _rank_section,
                                      _sort_rows, load_ranking, repeated, rule_text, select,
                                      selection_rule)
from hubensemble.runwriter import writes_run
from hubensemble.sweepwords import selection_command
from hubensemble.lockwords import command_words, option_word
from hubensemble.pixelkeys import read_pixel_keys
from hubensemble.text import absolute, counted, escaped, names_listed, relative_hint

log = logging.getLogger(__name__)

_MERGE = options.defaults_for("merge")
#: What to do when a shard's own files are missing or damaged.
_AGAIN = "copy the whole folder that `rank --shard` wrote, or rank that shard again"


@writes_run("rank merge", "out_dir", create=True)
def merge_rankings(shard_dirs, out_dir, *, top_k=_MERGE["top_k"],
                   threshold=_MERGE["threshold"], max_k=_MERGE["max_k"],
                   greedy=_MERGE["greedy"]) -> Ranking:
    """Combines the ranking.json of shard runs (`run_rank(shard=(i, n))`) into `out_dir`.

    Refuses (RunError, HubensembleError; DataError) what `check_shards` refuses: shards that
    are not one complete set of the same ranking, a shard's damaged files, no ok module in any
    shard, an `out_dir` inside the image folder the shards record as their data, a file, a
    folder of the user's, a run on other data, or a run whose
    candidates were tuned from a module the merged list drops or changes (a run holding
    candidates otherwise gets a warning: they stay in its pool). Copies the kNN predictions,
    recomputes the selection over all modules and writes ranking.json/.csv and run.json as
    `run_rank` does.

    The selection: `top_k` (int), `threshold` (float, with `max_k`) or `greedy` (with
    `max_k`), as in `run_rank`; with `top_k` and `threshold` None and `greedy` falsy (the
    defaults, as `rank merge` without a rule), the rule the shards were ranked with
    (RunError when they differ). `max_k` None: 15. OptionError
    for a value the command line refuses (`options.check_keywords`); TypeError for
    `shard_dirs` that are not a list of folder paths or an `out_dir` that is none
    (`stageargs`: one path alone was read as a list of its characters).
    """
    from hubensemble import stageargs

    shard_dirs = stageargs.folders("merge_rankings", "shard_dirs", shard_dirs)
    out_dir = stageargs.folder("merge_rankings", "out_dir", out_dir)
    # The options table's rules, as the command line's; top_k and max_k may be None here.
    options.check_keywords("merge", dict(top_k=top_k, threshold=threshold, max_k=max_k,
                                         greedy=greedy), own=("top_k", "max_k"))
    from hubensemble.rundir import Run

    checked = _checked(shard_dirs, out_dir, "out_dir")
    parts = checked.parts
    first_dir, first = parts[0]
    # Absolute, as every path a run records: the run is read from any working directory.
    merged_from = [absolute(d) for d in shard_dirs]
    selection = _selection(parts, first.metric, top_k=top_k, threshold=threshold,
                           max_k=max_k, greedy=greedy)
    if checked.held:  # as run_rank says it: the pool keeps them
        # The run's own sweep and options (`selection_command`: a plain `tune` resumed a probe
        # sweep's recorded budget and modules), and fit's own ranking, which a next fit puts back.
        refit = (f" (the next {option_word('`fit`', 'hubensemble.fit()')} ranks again with its own "
                 "options, in place of this ranking)" if "fit" in Run(out_dir).meta() else "")
        log.warning("%s holds %s from an earlier tune; %s in the pool that the ensemble "
                    "selects from, and %s adds trials for the modules this ranking selects%s",
                    escaped(out_dir), counted(checked.held, "candidate"),
                    "it stays" if checked.held == 1 else "they stay",
                    selection_command(out_dir), refit)
    out_run = Run(out_dir)
    rows = _same_files_across_shards([row for _, r in parts for row in r.rows],
                                     checked.modules)
    ok = {row["name"] for row in rows if row["status"] == "ok"}
    predictions, neighbours = {}, {}
    for d, r in parts:
        if r.metric in KNN_METRICS:
            names = [row["name"] for row in r.ok_rows if row["name"] in ok]
            predictions.update(load_knn_predictions(d, names))
            neighbours.update(load_knn_neighbours(d, names))  # none from older shards

    labels = None
    if selection["rule"] == "greedy":
        labels = Run(first_dir).labels_of("train")
    ranking = dataclasses.replace(first, rows=_sort_rows(rows), selected=[],
                                  selection=selection, shard=None, merged_from=merged_from)
    ranking.selected = select(ranking.rows, selection, predictions=predictions, labels=labels)
    write_knn_predictions(out_dir, {r["name"]: predictions[r["name"]]
                                    for r in ranking.ok_rows if r["name"] in predictions},
                          neighbours)
    ranking.write(out_dir)
    # The data record and labels travel with the ranking, so later stages run from out_dir.
    for split in _label_splits(checked.data):
        src = Run(first_dir).labels / f"{split}.npy"
        atomic_write_bytes(out_run.labels / f"{split}.npy", src.read_bytes())
    # The report's names of the training and validation images: the first shard's readable
    # list of as many files as labels (the first shard's alone left none when it had lost its
    # copy while another shard kept one, as the keys below); none: an older list goes too.
    out_run.take_paths([Run(d) for d in shard_dirs])
    # Every shard loaded the same data (fingerprint), so any shard's keys file is the run's:
    # the first readable one of that data (the first shard's alone left none when it had lost
    # its copy while another shard kept one).
    fingerprint = (checked.data.get("task") or {}).get("fingerprint")
    for d in shard_dirs:
        keys_path = Run(d).pixel_keys_path
        with contextlib.suppress(RunError):
            keys = read_pixel_keys(keys_path)
            if keys is not None and keys.fingerprint == fingerprint:
                atomic_write_bytes(out_run.pixel_keys_path, keys_path.read_bytes())
                break
    out_run.update(data=checked.data, modules=checked.modules,
                   rank=_rank_section(ranking, merged_from=merged_from))
    if checked.held:
        warn_unselected_pool(out_dir, ranking.selected, "rank merge")
    from hubensemble.refresh import refresh_report

    refresh_report(out_dir, "the merged ranking")
    return ranking


def _same_files_across_shards(rows, modules) -> list:
    """`rows` (every shard's) with each ok row whose module has the same files read the same
    way as an ok row of an earlier entry (catalogue order) made a duplicate, as rank makes it
    within a run or shard (`samemodule.same_files_as` on the fingerprints the rows record: stage
    "duplicate", `samemodule.duplicate_reason`), so that the later one is neither selected nor
    tuned; `modules`: the shards' run.json entries. rank compares the files of one shard only:
    a copy of a folder, or a tfhub.dev URL and its Kaggle name, in two shards were both
    ranked and could both be tuned. So with the embeddings (`rank.twins.same_embeddings_as`
    on the signature a row records, `row_signature`; rows written before it was recorded
    are compared by their files only): a module's .keras copy and its SavedModel in two
    shards were both ranked."""
    from hubensemble.catalogue import ModuleSpec

    from hubensemble.rank.twins import same_embeddings_as, trains

    ranked, signed, out = [], [], []
    for row in sorted(rows, key=lambda r: r.get("index") or 0):
        spec = modules.get(row["name"])
        if row["status"] == "ok" and row.get("fingerprint") and spec is not None:
            spec = ModuleSpec.from_json(spec)
            sig = row.get("signature")  # rows ranked before it was recorded: files only
            # Other files, one module (m.keras and its SavedModel): equal embeddings, as rank
            # compares them (`rank.twins`), its pins not compared (each was checked).
            twin = same_files_as(spec, row["fingerprint"], ranked)
            if twin is None and sig:
                twin = same_embeddings_as(spec, sig, row["dim"], signed, trains,
                                          images=row.get("examples"))
            if twin:
                # As rank's duplicate row: no signature (it is kept for ok rows only).
                row = {**{k: v for k, v in row.items() if k != "signature"},
                       "status": "failed", "score": None, "stage": "duplicate",
                       "reason": str(ModuleLoadError(duplicate_reason(*twin),
                                                     module=spec.name, handle=spec.handle,
                                                     stage="duplicate"))}
                log.warning("%s", not_ranked_warning(row, escaped(row["name"])))
            else:
                ranked.append((spec, row["fingerprint"]))
                if sig:
                    signed.append((spec, row["dim"], sig))
        out.append(row)
    return out


@dataclasses.dataclass
class _Checked:
    """What `_checked` found and the merge reads: the shards' (folder, Ranking), the data
    record, the modules' catalogue entries, and how many candidates `out_dir` holds."""

    parts: list
    data: dict | None
    modules: dict
    held: int


def check_shards(shard_dirs, out_dir=None, *, flag="--out") -> list[tuple[str, Ranking]]:
    """[(folder, its Ranking)] of `shard_dirs` (paths) when they are one complete set of
    shards of the same ranking that can be merged into `out_dir` (a path, or None to check
    the shards alone); RunError (HubensembleError for no folders) naming the folder(s) and
    file otherwise:

    * a shard folder missing, not a folder, not ranked, or a whole ranking (ranked without
      --shard); shards of other data, metric, k, profile, split or catalogue (entries
      differing in a field that changes what a module computes: all but DESCRIPTIVE_FIELDS,
      named with the module), a shard missing or given twice, a module in two shards;
    * a shard's run.json without its data record, or its catalogue entries ("modules")
      damaged by a hand edit (`runspecs.module_specs`), its labels/<split>.npy missing or
      unreadable, its knn.npz (kNN metrics, a shard with ok modules) missing, damaged or
      lacking a module ranked there (`check_knn_predictions`);
    * no ok module in any shard ("no module could be ranked", every reason listed);
    * `out_dir` one of the shards; inside the image folder (a folder: spec) the shards record
      as their data (DataError, `data.specs.check_outside_data`: the merged run records that
      data, and a folder in it would be read as a class), checked before the shards are read;
    * `out_dir` a file, a folder of the user's (`Run.check_folder_is_ours`,
      `flag` names it), a run on other data, or a run whose candidates were tuned from a
      module the merged list drops or changes (`check_tuned_modules`) or with another
      profile than the shards were ranked with (`check_pool_profile`).

    Reads JSON, the labels and the knn.npz headers only (no TensorFlow): `rank merge` checks
    before it loads TensorFlow or creates --out.
    """
    return _checked(shard_dirs, out_dir, flag).parts


def _checked(shard_dirs, out_dir, flag):
    """check_shards, also returning what the merge reads: the data record, the modules'
    entries and how many candidates `out_dir` holds."""
    from hubensemble.rundir import Run

    shard_dirs = [str(d) for d in shard_dirs]
    if not shard_dirs:
        raise HubensembleError("give the shard run folders to merge")
    if out_dir is not None and os.path.realpath(out_dir) in map(os.path.realpath, shard_dirs):
        # A new-user check: `rank merge S0 S1 --out S0` replaced shard S0 with the merge.
        raise RunError(f"{flag} {out_dir} is one of the shards to merge; merging into it "
                       f"would replace that shard's ranking: pass a new {flag} folder")
    if out_dir is not None:  # before the shards are read: never a run made inside the data
        from hubensemble.data.specs import check_outside_data
        from hubensemble.recordedspec import recorded_spec

        # The merged run records the shards' data, which a folder inside it would join.
        spec = next(filter(None, map(recorded_spec, shard_dirs)), None)
        check_outside_data(spec, {flag: out_dir}, whose=f"the shards' data, {spec}")
    for d in shard_dirs:  # load_ranking's hint is for a run to rank, not a shard to find
        if not os.path.isdir(d):
            what = ("is not a folder" if os.path.exists(d) else
                    f"does not exist{relative_hint(d)}")
            made = command_words("rank", flags="--shard I/N --out FOLDER",
                                 keywords="shard=(I, N), out_dir=FOLDER")
            raise RunError(f"{d} {what}; pass the run folders that {made} wrote, all N of them")
    parts = [(d, load_ranking(d)) for d in shard_dirs]
    whole = [d for d, r in parts if not r.shard]
    if whole:  # nothing to merge ("shard 0/1 given twice" for two, a copy for one, before)
        shard = option_word("--shard I/N", "shard=(I, N)")
        raise RunError(f"{names_listed(whole)}: a whole ranking, not a shard (ranked without "
                       f"{shard}); merge the folders of "
                       f"{command_words('rank', flags='--shard I/N', keywords='shard=(I, N)')}, "
                       "or rank again to select again (its embeddings are cached)")
    _check_catalogue_entries(parts)
    for field in ("metric", "k", "data_fingerprint", "profile", "split", "catalogue"):
        values = {}
        for d, r in parts:
            value = getattr(r, field)
            if field == "catalogue":  # its entries were compared above, by module
                value = {key: value.get(key) for key in ("size", "fingerprint")}
            values.setdefault(json.dumps(value, sort_keys=True), []).append(d)
        if len(values) > 1:
            listed = "; ".join(f"{json.loads(v)!r} in {names_listed(ds)}"
                               for v, ds in values.items())
            raise RunError(f"cannot merge shards with a different {field}: {listed}; rank "
                           "every shard with the same " + option_word(
                               "--data, --catalogue, --metric, --k and --profile",
                               "task, specs, metric, k and profile (run_rank's arguments)"))
    _check_profile_definitions(parts)
    _check_shard_set(parts)
    rows = [row for _, r in parts for row in r.rows]
    dupes = repeated(r["name"] for r in rows)
    if dupes:
        raise RunError(f"modules {dupes[:5]} appear in more than one shard of "
                       f"{names_listed(shard_dirs)}; were they ranked with different "
                       f"{option_word('--shard', 'shard')}?")

    data, modules = None, {}
    for d, r in parts:
        shard = Run(d)
        meta = shard.meta()
        section = shard.data_section("args", "task", meta=meta)  # refused by key if damaged
        if not section:
            raise RunError(f"{shard.meta_path} records no data; {_AGAIN}")
        data = data or section
        # the merged run.json's entries, which tune and export read: a shard's edited by hand
        # was merged as it was ("modules": [] as none, a string a ValueError traceback)
        entries = catalogue_entries(shard, meta.get("modules"))
        module_specs(shard, entries)  # each entry read as tune and export read it
        modules.update(entries)
        _check_labels(d, section)
        if r.metric in KNN_METRICS:
            check_knn_predictions(d, [row["name"] for row in r.ok_rows], r.examples)
    # A shard whose modules all failed writes its ranking; the rule applies to the whole.
    raise_if_none_ok(rows, again="rank the shards again ("
                     + command_words("rank", flags="--shard I/N", keywords="shard=(I, N)")
                     + "), then merge")

    held = 0
    if out_dir is not None:
        out_run = Run(out_dir)
        out_run.check_folder_is_ours(flag)  # as run_rank: a folder of the user's is no run
        check_dir_target(out_dir, f"pass another {flag}")
        recorded = out_run.data_section("task")
        if recorded and (recorded["task"].get("fingerprint")
                         != data["task"]["fingerprint"]):
            from hubensemble.datachange import DataRecord, compare, other_data

            change = compare(DataRecord.of_run(out_run, recorded),
                             DataRecord.of_run(Run(parts[0][0]), data))
            raise RunError(other_data(
                out_dir, change, "the shards",
                new_folder=f"merge into a new {flag} folder",
                go_on="merge shards ranked with the data options it recorded", restore=False))
        held = check_tuned_modules(out_dir, modules)
        first = parts[0][1]  # by its recorded definition when it has one (not today's)
        check_pool_profile(out_dir, profile_of_record(first.profile_definition)
                           or first.profile, "rank merge")
    return _Checked(parts=parts, data=data, modules=modules, held=held)


def _check_profile_definitions(parts):
    """RunError when shards ranked at one profile's name recorded definitions that rank
    otherwise (`runprofile.rank_changes`: another resolution_cap, a built-in profile
    redefined between their versions); shards of an older hubensemble (no definition) are
    compared by name only."""
    have = [(d, p) for d, r in parts if (p := profile_of_record(r.profile_definition))]
    for d, prof in have[1:]:
        changed = rank_changes(have[0][1], prof)
        if changed:
            raise RunError(f"cannot merge shards ranked at profile {prof.name!r} as different "
                           f"versions define it, {have[0][0]} and {d}: {', '.join(changed)}; "
                           "rank every shard with one hubensemble version")


def _check_catalogue_entries(parts):
    """RunError naming the modules (and fields) whose entries differ between the shards'
    catalogues; shards ranked before ranking.json recorded "entries" are not compared.
    A module whose digests differ is compared by its entry as the shard that ranked it
    recorded it (run.json's "modules", `_ranked_entries`), read as each shard's version
    would have digested it (`_entry_digests`): a field a version did not know is at its
    default, and an `output_dim` equal to the width the shard measured is none
    (`rank.pool.computed_fields`, the rule of fit's resume and of a new ranking over tuned
    candidates). Shards of two versions and one real edit named every module as changed
    (each digest differs), and an `output_dim:` equal to the measured width in one shard's
    catalogue was refused. A module without a readable record is compared by its digests;
    the per-field digests (`reuse.field_changes`) name the fields."""
    from hubensemble.rank.reuse import field_changes

    have = [(d, r.catalogue) for d, r in parts if r.catalogue.get("entries") is not None]
    records = _ranked_entries(parts) if len(have) > 1 else {}
    for d, cat in have[1:]:
        base_dir, base = have[0]
        a, b = base["entries"], cat["entries"]
        only = sorted(set(a) ^ set(b))
        differ = [n for n in a if n in b and a[n] != b[n]]
        alike = {n: _same_entry(records.get(n), (base, cat), n) for n in differ}
        changed = sorted(n for n in differ if not alike[n])
        # Per-field digests over the whole catalogue: exact when only entries changed, but
        # for an output_dim equal to the width that another shard left out.
        fields = None if only or not changed or list(a) != list(b) else field_changes(base, cat)
        if fields and "width" in alike.values():
            fields = [f for f in fields if f != "output_dim"] or None
        if not only and (not changed or fields == []):
            continue
        problems = [f"{n} is in the catalogue of {base_dir if n in a else d} only"
                    for n in only[:5]]
        if changed:
            problems.append(f"the entry of {names_listed(changed[:5])}"
                            f"{' …' if len(changed) > 5 else ''} differs"
                            + (f" ({', '.join(fields)})" if fields else ""))
        raise RunError(f"cannot merge shards ranked with different catalogues, {base_dir} "
                       f"and {d}: {'; '.join(problems)}; the merged ranking would equal "
                       "neither catalogue's. Rank every shard with the same --catalogue (only "
                       f"the descriptive fields {', '.join(sorted(DESCRIPTIVE_FIELDS))} may "
                       "differ)")


def _ranked_entries(parts) -> dict:
    """{module name: (its catalogue entry as run.json's "modules" of the shard that ranked it
    records it, the width that shard measured: its ok row's "dim", else None)}; a module
    whose shard's record is unreadable or lacks it is left out (compared by its digests).
    Reads run.json only: a damaged record is refused later, by `_checked`."""
    from hubensemble.rundir import Run
    from hubensemble.runspecs import readable_entries

    out = {}
    for d, r in parts:
        try:
            entries = readable_entries(Run(d).meta().get("modules"))
        except RunError:
            continue
        for row in r.rows:
            name = row.get("name") if isinstance(row, dict) else None
            if name in entries:
                dim = row.get("dim")
                width = dim if row.get("status") == "ok" and type(dim) is int else None
                out[name] = (entries[name], width)
    return out


def _same_entry(record, catalogues, name):
    """Whether every one of ranking.json's "catalogue" records `catalogues` holds, for module
    `name`, a digest of its entry `record` ((entry, measured width), `_ranked_entries`;
    None: False) as that record's version wrote it (`_entry_digests`): "width" when only an
    output_dim read at the measured width makes them alike, else True or False."""
    if record is None:
        return False
    entry, width = record
    plain = all(c["entries"][name] in _entry_digests(entry, None, c.get("fields"))
                for c in catalogues)
    if plain:
        return True
    if width is not None and all(c["entries"][name] in _entry_digests(entry, width,
                                                                      c.get("fields"))
                                 for c in catalogues):
        return "width"
    return False


def _entry_digests(entry, width, known) -> set:
    """The digests (`rank.ranking.catalogue_record`'s "entries" rule) that a catalogue
    entry computing as `entry` (run.json's record of a `ModuleSpec.to_json()`) may have in a
    ranking.json whose per-field digests are `known` (their keys: the fields its version
    wrote; None, a record without them: every field now): a field the record lacks is at
    its ModuleSpec default (`rank.pool.entry_defaults`), and one that version did not know
    must be at its default. With `width` (the measured one), also with an `output_dim` of
    None or of `width`, as `rank.pool.computed_fields` reads them alike."""
    from hubensemble.rank.pool import entry_defaults
    from hubensemble.rank.ranking import _digest

    defaults = entry_defaults()
    full = {f: v for f, v in {**defaults, **entry}.items() if f not in DESCRIPTIVE_FIELDS}
    variants = [full]
    if width is not None and full.get("output_dim") in (None, width):
        variants = [dict(full, output_dim=None), dict(full, output_dim=width)]
    fields = set(known) if isinstance(known, dict) else set(full)
    out = set()
    for v in variants:
        if any(f not in fields and f != "name" and x != defaults.get(f) for f, x in v.items()):
            continue  # a value that version could not write
        out.add(_digest({f: x for f, x in v.items() if f in fields or f == "name"}))
    return out


def _label_splits(data):
    """The splits whose labels a run on `data` (run.json's record) holds."""
    from hubensemble.rundir import LABEL_SPLITS

    sizes = (data.get("task") or {}).get("sizes") or {}
    return [s for s in LABEL_SPLITS if sizes.get(s) is not None]


def _check_labels(shard_dir, data):
    """RunError naming RUN/labels/<split>.npy of a shard when a split its data record has is
    missing, unreadable or of another size: the merge copies them (it left none, before)."""
    from hubensemble.rundir import Run

    sizes = data["task"].get("sizes") or {}
    for split in _label_splits(data):
        path = Run(shard_dir).labels / f"{split}.npy"
        named = escaped(absolute(path))  # on one line, from any working folder
        if not path.is_file():
            raise RunError(f"{named} is missing (the {split} labels of the data its run.json "
                           f"records); {_AGAIN}")
        try:
            shape = np.load(path, allow_pickle=False).shape
        except (OSError, ValueError, EOFError) as e:
            raise RunError(f"{named} is unreadable ({type(e).__name__}: {e}); "
                           f"{_AGAIN}") from None
        if shape != (sizes[split],):
            raise RunError(f"{named} holds labels of shape {shape}, not the {sizes[split]} "
                           f"{split} examples its run.json records; {_AGAIN}")


def _selection(parts, metric, *, top_k, threshold, max_k, greedy):
    """The merged ranking's selection rule: the one given, else the shards' own."""
    recorded = {}
    for d, r in parts:
        recorded.setdefault(json.dumps(r.selection, sort_keys=True), []).append(d)
    if top_k is not None or threshold is not None or greedy:
        rule = selection_rule(metric=metric, top_k=_MERGE["top_k"] if top_k is None else top_k,
                              threshold=threshold, greedy=bool(greedy),
                              max_k=_MERGE["max_k"] if max_k is None else max_k)
        theirs = json.loads(next(iter(recorded)))
        if len(recorded) == 1 and theirs and theirs != rule:
            # Said: the merged selection then differs from every shard's own.
            log.warning("the shards were ranked with the selection %s; this merge selects "
                        "with %s (give the shards' rule to keep it)", rule_text(theirs),
                        rule_text(rule))
        return rule
    if len(recorded) > 1:
        listed = "; ".join(f"{rule_text(json.loads(v), empty='none recorded')} in "
                           f"{names_listed(ds)}" for v, ds in recorded.items())
        raise RunError(f"the shards were ranked with different selections ({listed}); pass "
                       + ", ".join(option_word(f, k) for f, k in (
                           ("--top-k", "top_k"), ("--threshold", "threshold")))
                       + f" or {option_word('--greedy', 'greedy=True')} to choose the merged "
                       "one")
    rule = json.loads(next(iter(recorded)))
    return rule or selection_rule(metric=metric)  # shards that recorded none: the default


def _check_shard_set(parts):
    counts = {(r.shard or (0, 1))[1] for _, r in parts}
    if len(counts) > 1:
        # Each folder with its shard, quoted together when a folder holds a comma.
        listed = names_listed(f"{d} ({_shard_text(r.shard)})" for d, r in parts)
        raise RunError(f"the shards were cut into different counts: {listed}; rank every "
                       "shard with the same --shard I/N")
    n = counts.pop()
    seen = {}
    for d, r in parts:
        i = (r.shard or (0, 1))[0]
        if i in seen:
            raise RunError(f"shard {i}/{n} given twice: {seen[i]} and {d}")
        seen[i] = d
    missing = [i for i in range(n) if i not in seen]
    if missing:
        gone = ", ".join(f"{i}/{n}" for i in missing)
        raise RunError(f"{'shard' if len(missing) == 1 else 'shards'} {gone} "
                       f"{'is' if len(missing) == 1 else 'are'} missing: got "
                       f"{names_listed(f'{d} ({i}/{n})' for i, d in sorted(seen.items()))}; "
                       "rank the missing shards and merge them all")


def _shard_text(shard):
    return f"{shard[0]}/{shard[1]}" if shard else "unsharded"

"""The run directory: the files through which the stages hand work to each other."""

import contextlib
import logging
import os
from pathlib import Path

from hubensemble import formats, runlog
from hubensemble.errors import DataError, RunError, first_line
from hubensemble.fileio import (atomic_write_json, file_lock, is_temp,
                                json_kind, lock_is_held, lock_owner, make_dirs, missing_folders,
                                owned_here, owned_lock, owner_words, read_json,
                                remove_stale_temp_files_below, remove_unused)
from hubensemble.killed import say_killed
from hubensemble.formats import versions  # noqa: F401 - re-exported for older callers
from hubensemble.dataargs import DataArgs, function_name  # noqa: F401 - re-exported
from hubensemble.data.coverage import split_coverage
from hubensemble.pixelkeys import write_pixel_keys
from hubensemble.rerun import data_part
from hubensemble.runexports import RunExports
from hubensemble.runlabels import LABEL_SPLITS, PATHS_FILES, RunLabels
from hubensemble.runranking import RunRanking
from hubensemble.lockwords import (FIT_INPUTS, command_words, locked_advice,
                                   on_command_line, option_word, run_words,
                                   unwritable_advice)
from hubensemble.sweeplock import check_no_sweep, member_lock, member_lock_path, member_taken
from hubensemble.terminal import root_last_resort
from hubensemble.text import absolute, as_reached, escaped, names_listed, relative_hint, time_stamp

log = logging.getLogger(__name__)

#: What a folder without run.json or ranking.json may hold and still become a run (rank,
#: fit, demo, merge): what a failed or interrupted command leaves before run.json.
UNSTARTED_ENTRIES = frozenset({formats.LOG_FILE, formats.RUN_FILE + ".lock", formats.KNN_FILE})
#: What a command leaves in a run folder before any result: a folder it created that holds
#: nothing else when it ends (refused, say) is removed (`Run.log_file`).
UNUSED_ENTRIES = frozenset({formats.LOG_FILE, formats.RUN_FILE + ".lock", formats.FIT_LOCK})
#: {lock file's real path: time.time() this process last entered `Run.lock` on it}: where
#: the holding stage's own work starts (`Run.work_started`).
_ENTERED: dict[str, float] = {}


@contextlib.contextmanager
def _entered(lock):
    """Records, while the block runs, the moment it began as `lock`'s entry
    (`Run.work_started`); the outer entry's again after it (a nested holding ends)."""
    import time

    key = os.path.realpath(lock)
    outer = _ENTERED.get(key)
    _ENTERED[key] = time.time()
    try:
        yield
    finally:
        if outer is None:
            _ENTERED.pop(key, None)
        else:
            _ENTERED[key] = outer


class Run(RunLabels, RunExports, RunRanking):
    """A run directory. Every file in it is written atomically; `run.json` is updated under
    a lock so stages running in several processes never lose each other's sections."""

    def __init__(self, path):
        self.path = Path(as_reached(path))  # "link/.." as the kernel reads it (text.as_reached)

    # Paths, in one place (names from hubensemble.formats) so no stage spells them differently.
    meta_path = property(lambda self: self.path / formats.RUN_FILE)
    ranking_json = property(lambda self: self.path / formats.RANKING_JSON)
    ranking_csv = property(lambda self: self.path / formats.RANKING_CSV)
    candidates = property(lambda self: self.path / formats.CANDIDATES_DIR)
    tuner = property(lambda self: self.path / formats.TUNER_DIR)
    ensemble_json = property(lambda self: self.path / formats.ENSEMBLE_FILE)
    export = property(lambda self: self.path / formats.EXPORT_DIR)
    labels = property(lambda self: self.path / formats.LABELS_DIR)
    pixel_keys_path = property(lambda self: self.labels / formats.PIXEL_KEYS_FILE)
    log = property(lambda self: self.path / formats.LOG_FILE)
    report_md = property(lambda self: self.path / formats.REPORT_MD)
    report_html = property(lambda self: self.path / formats.REPORT_HTML)
    robustness_json = property(lambda self: self.path / formats.ROBUSTNESS_FILE)
    cost_json = property(lambda self: self.path / formats.COST_FILE)
    distill = property(lambda self: self.path / formats.DISTILL_DIR)
    distill_json = property(lambda self: self.path / formats.DISTILL_FILE)
    tflite = property(lambda self: self.path / formats.TFLITE_DIR)  # export --format tflite

    def exists(self):
        """True when run.json exists."""
        return self.meta_path.exists()

    def started(self) -> bool:
        """True when run.json or ranking.json is a file here: what makes a folder a run (a
        folder of the user's is not, whatever else it holds: `check_folder_is_ours`)."""
        return self.meta_path.is_file() or self.ranking_json.is_file()

    def meta(self):
        """run.json's contents ({} before the first write). For reading only: to change it,
        use `update` or `modify`, which re-read it under the lock. RunError naming the file
        when it is not a JSON object (every stage reads it: one line, not a traceback)."""
        if not self.meta_path.exists():
            return {}
        if not self.meta_path.is_file():  # read_json's IsADirectoryError was a traceback
            raise RunError(f"{escaped(absolute(self.meta_path))} is a folder, not a run's "
                           f"run.json; {escaped(absolute(self.path))} holds no run: pass a new "
                           "or empty folder")
        try:
            meta = read_json(self.meta_path)
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
            meta = e
        if not isinstance(meta, dict):
            why = f"{type(meta).__name__}: {meta}" if isinstance(meta, Exception) else (
                f"a JSON {type(meta).__name__}, not an object")
            from hubensemble.rerun import start_again

            # Written whole, atomically: a half file is never hubensemble's.
            raise RunError(f"{escaped(absolute(self.meta_path))} is unreadable ({why}); "
                           "something other than "
                           "hubensemble changed it: restore it from a copy, or start the run "
                           f"again in a new folder, or {start_again(self.path, {})}")
        return meta

    def data_section(self, *keys, meta=None) -> dict:
        """run.json's (or `meta`'s) "data" section, {"args": DataArgs JSON, "task": its Task
        record}, checked to be an object whose `keys` are each an object; {} when it records
        no data. RunError naming the file and the missing or wrong key, and what to do, when
        it is damaged (hand-made or edited: something other than hubensemble wrote it):
        `task` on a "data" without "args" was a KeyError traceback."""
        meta = self.meta() if meta is None else meta
        data = meta.get("data")
        if data is None or data == {}:
            return {}
        fault = (f" is {json_kind(data)}, expected an object" if not isinstance(data, dict) else
                 next((f" has no \"{k}\"" if k not in data else
                       f"'s \"{k}\" is {json_kind(data[k])}, expected an object"
                       for k in keys if not isinstance(data.get(k), dict)), None))
        if fault:
            from hubensemble.rerun import start_again

            again = start_again(self.path, {k: v for k, v in meta.items() if k != "data"})
            raise RunError(f"{escaped(absolute(self.meta_path))} is damaged: its \"data\" "
                           f"section{fault} "
                           "(something other than hubensemble changed it); restore it from a "
                           f"copy, or start the run again with its data: {again}")
        return data

    data_part = staticmethod(data_part)  # the lenient data_section (rerun: its words use it)

    def update(self, **sections):
        """Sets top-level sections of run.json (read-modify-write under the run's lock);
        returns the new contents."""
        return self.modify(lambda meta: meta.update(sections))

    def modify(self, change):
        """Applies `change(meta)` (it edits the dict in place) to run.json under the run's
        lock and writes the result atomically; returns the new contents.

        The one way to change run.json: stages in several processes (tune workers, rank
        shards, fit) never lose each other's sections, because the read, the change and the
        write happen while the lock is held. The lock is a kernel lock (``filelock``), so a
        killed holder releases it.
        """
        self.make_folder()
        with file_lock(str(self.meta_path) + ".lock"):
            meta = self.meta()
            change(meta)
            meta.setdefault("created", time_stamp())
            meta["versions"] = versions()
            atomic_write_json(self.meta_path, meta)
        return meta

    def skipped_list_for(self, task, *, restart=False):
        """Where this run will list all of `task`'s skipped files (`formats.skipped_list`: the
        clause for the data summary), or None when run.json already records other data
        (another fingerprint) and `attach_task` will refuse `task` without `restart`: the
        summary printed before that refusal pointed at a run.json that kept the old list.
        A run.json that cannot be read gives None too (the stage then says why)."""
        try:
            recorded = self.data_section("task").get("task") or {}
        except RunError:
            return None
        if recorded and recorded.get("fingerprint") != task.fingerprint and not restart:
            return None
        return formats.skipped_list(self.path)

    def new_task(self, task, *, restart=False) -> bool:
        """Whether `task` is new to this run (`restart`, or run.json records no data of its
        fingerprint, or cannot be read): what is said once per run is said then."""
        try:
            recorded = self.data_section("task").get("task") or {}
        except RunError:
            return True
        return bool(restart) or recorded.get("fingerprint") != task.fingerprint

    def attach_task(self, task, data_args, *, restart=False, command="rank"):
        """Records the task of this run (run.json "data", RUN/labels/<split>.npy int64 [N]);
        RunError when the run holds a different task, unless `restart`, with advice for the
        user of `command` ("rank" or "fit"). The same task (fingerprint) given in Python
        (not `data_args.reloadable`) keeps the recorded arguments that load it again."""
        def refuse_other_data(meta):
            recorded = None if restart else self.data_section("task", meta=meta)
            if recorded and recorded["task"].get("fingerprint") != task.fingerprint:
                from hubensemble.datachange import DataRecord, compare, other_data
                from hubensemble.rerun import start_again

                change = compare(DataRecord.of_run(self, recorded),
                                 DataRecord.of_task(task, data_args))
                raise RunError(other_data(  # a spec is named once: "x … than x" said nothing
                    self.path, change, None if change.other_source
                    else f"{data_args.spec} as loaded now",
                    again=start_again(self.path, meta, command, args=data_args.to_json()),
                    command=command))

        refuse_other_data(self.meta())  # before the labels are written

        def record(meta):
            refuse_other_data(meta)  # again under the lock: another process may have won

            # What it replaces may be damaged ("data" without "args"): read leniently.
            args, kept, was = data_args.to_json(), data_part(meta, "args"), data_part(meta, "task")
            if (not data_args.reloadable and kept.get("reloadable", True) and kept.get("spec")
                    and was.get("fingerprint") == task.fingerprint):
                args = kept  # the same data given in Python: how to load it again stays
            meta["data"] = {"args": args, "task": task.to_json()}

        # run.json first: labels/ in a folder without it is never a run's
        # (check_folder_is_ours), even after an interruption between the two.
        self.modify(record)
        self.write_labels(task)
        write_pixel_keys(self.pixel_keys_path, task)

    def class_names(self):
        """The class names run.json records for the task (index = label), or None."""
        names = (self.data_section("task").get("task") or {}).get("class_names")
        return [str(n) for n in names] if names else None

    def coverage(self, class_names=None):
        """{split: split_coverage(...)} for each split with a RUN/labels/<split>.npy, with the
        class names of run.json (or `class_names`; without either, the labels' numbers up to
        the largest label). RunError when a labels file is unreadable, naming the tune command
        that writes it again: the run's sweep with its recorded options
        (`sweepwords.sweep_command`)."""
        from hubensemble.lockwords import call_verb
        from hubensemble.sweepwords import sweep_command

        labels = {}
        for split in LABEL_SPLITS:
            try:
                y = self.labels_of(split)
            except (OSError, ValueError) as e:
                raise RunError(f"{escaped(absolute(self.labels / f'{split}.npy'))} is "
                               f"unreadable ({e}); "
                               f"{call_verb()} {sweep_command(self.path)} to write it again")
            if y is not None:
                labels[split] = y
        names = class_names or self.class_names()
        if names is None:
            top = max((int(y.max()) for y in labels.values() if len(y)), default=-1)
            names = [str(i) for i in range(top + 1)]
        return {split: split_coverage(names, y) for split, y in labels.items()}

    def check_folder_is_ours(self, flag: str = "--out", *, creating: bool = True) -> None:
        """Raises RunError when the folder holds entries no stage wrote, naming the first
        five; a folder of the user's (their images, say) would get a run's files mixed into
        it, a stage would overwrite their labels/train.npy or report.md, and `fit --restart`
        would delete them. Files only.

        A started run (run.json or ranking.json) may hold anything at its top level, but its
        labels/ and candidates/ only what stages write there (`foreign_content`). Without
        either file, nothing says the folder's entries are a run's: when `creating` (rank,
        fit, demo and merge, which write labels/ and run.json there) the folder may hold only
        what an interrupted or failed command leaves before run.json (log.txt, its lock,
        knn.npz; temp entries of atomic writes; hidden entries such as .gitkeep); else (a
        stage reading a copied pool: candidates/ and labels/ without run.json) labels/ and
        candidates/ holding only what stages write, and other entries named in
        formats.RUN_ENTRIES. `flag` names the folder's option in the message.
        """
        if not self.path.is_dir():
            return
        names = sorted(os.listdir(self.path))
        started = self.started()
        if started or not creating:
            foreign = [f for name in names for f in self.foreign_content(name)]
            allowed = None if started else formats.RUN_ENTRIES
        else:
            foreign, allowed = [], UNSTARTED_ENTRIES
        if allowed is not None:  # hidden entries (.gitkeep, .DS_Store): no stage writes one
            foreign += [name for name in names if name not in allowed
                        and not is_temp(name) and not name.startswith(".")]
        if not foreign:
            return
        # Quoted when one holds a comma: "notes, v2.txt" read as two files (text.names_listed).
        listed = names_listed(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                              if len(foreign) > 5 else "")
        if started:
            raise RunError(f"{escaped(absolute(self.path))} is a run but holds files or folders "
                           f"that no hubensemble stage wrote ({listed}); move them out, or pass "
                           f"another {flag} folder, so that the run's files never mix with yours")
        if formats.is_export(self.path):  # rank --out RUN/export: name the run it is of
            from hubensemble.exportrun import export_not_out
            raise RunError(export_not_out(self.path, flag))
        raise RunError(f"{escaped(absolute(self.path))} holds files or folders ({listed}) and "
                       f"no run (no run.json, no ranking.json); pass a new or empty {flag} "
                       "folder, so that the run's files never mix with yours")

    def make_folder(self, command: str | None = None) -> None:
        """Creates the run folder (and its parents) if needed for `command` (its way on,
        `lockwords.unwritable_advice`; None: not known). Raises HubensembleError naming the
        file in the way, or the OS's reason (a read-only file system, permission, full
        disk)."""
        make_dirs(self.path, unwritable_advice(command, self.path))

    @contextlib.contextmanager
    def lock(self, command: str, member: str | None = None, record: dict | None = None):
        """The run folder's lock, RUN/.fit.lock (formats.FIT_LOCK: fit took it first), held
        while the block runs by `command` ("fit", "rank", "export", …), which it records
        beside it (`fileio.owned_lock`): every command that writes into the folder takes it,
        so a second one is refused at once, naming the first (`check_unlocked`), where two
        `rank --out RUN` both ended well and ranking.json kept the last. The command line
        takes it before TensorFlow loads (`log_file`'s `lock`), fit and report again
        inside: a nested use in the process that holds it is a no-op. Creates the folder.
        RunError when another process holds it, or a chief/worker sweep's process holds its
        own (`sweeplock.check_no_sweep`). With `member` (a sweep's tune: "chief",
        "tuner0", …) the block holds that process's sweep lock instead,
        RUN/.sweep-<member>.lock with `record` (`sweeplock.member_lock`): other processes of
        the sweep go on, a writer holding the run's lock or one with the same tuner id
        refuses it. Taking it removes the temp files of killed writers in the folder, its
        folders and the tuner's (`fileio.remove_stale_temp_files_below`: .tmp-run.json.*.
        PID_START@HOST, labels/.tmp-val.npy.*.PID_START@HOST and the like).
        Before taking a lock this process does not hold, says how the last
        command holding it ended when it was killed (`killed.say_killed`: its record stayed);
        the one place, for every command and stage function that writes a run."""
        self.make_folder(command)
        mine = member_lock_path(self.path, member) if member else self.path / formats.FIT_LOCK
        if not owned_here(mine):  # before this command's record replaces the killed one's
            say_killed(self.path, mine)
        if member:
            with member_lock(self.path, member, {"command": command, **(record or {})},
                             lambda: self.check_unlocked(command, member=member)), \
                    _entered(mine):
                yield
            return
        fresh = not owned_here(self.path / formats.FIT_LOCK)
        with owned_lock(self.path / formats.FIT_LOCK, {"command": command},
                        lambda owner: self._locked(owner, command)):
            if fresh:  # after taking it: of a sweep process and this, one sees the other
                check_no_sweep(self.path, command)
                # a killed command's half-written files, in RUN/ and its folders
                remove_stale_temp_files_below(self.path, deeper=(formats.TUNER_DIR,))
            with _entered(mine):
                yield

    def work_started(self, member: str | None = None) -> float | None:
        """When (time.time(), seconds since the epoch) the innermost `lock` this process
        holds on the run (with `member`: that sweep lock) was entered: where the stage
        function holding it began its own work. The command line takes the lock before
        TensorFlow loads (6-13 s) and the stage function enters it again, so this is the
        stage's start, not the command's (`refresh.record_stage_time`). None when this
        process holds none."""
        mine = member_lock_path(self.path, member) if member else self.path / formats.FIT_LOCK
        return _ENTERED.get(os.path.realpath(mine))

    def fit_log(self):
        """`log_file` holding the run's lock for a fit: what a fit holds for its whole run."""
        return self.log_file(lock="fit")

    def check_unlocked(self, command: str | None = None, member: str | None = None) -> None:
        """RunError, with the way on for `command` (the one refused; None: unknown), when
        another process holds the run's lock now, or (a sweep process, `member`: its tuner
        id) its own tuner id's sweep lock, or (any other) a chief/worker sweep's process its
        sweep lock (`sweeplock`): the command line asks before TensorFlow loads
        (`preflight.check_run`), for every command on a run folder (a fit --restart would
        clear a running command's folder). Creates nothing."""
        lock = self.path / formats.FIT_LOCK
        if owned_here(lock):
            return
        if lock.exists() and lock_is_held(lock):  # (taking it would make the folder)
            raise self._locked(lock_owner(lock), command)
        if member is None:
            check_no_sweep(self.path, command)
            return
        mine = member_lock_path(self.path, member)
        if not owned_here(mine) and mine.exists() and lock_is_held(mine):
            raise member_taken(self.path, member, lock_owner(mine))

    def fit_here(self) -> bool:
        """Whether this process's fit (or demo) holds the run's lock (`lock`): a stage
        function then runs as that fit's stage, and speaks of it so (rank's note on the pool
        it goes on with)."""
        held = owned_here(self.path / formats.FIT_LOCK) or {}
        return held.get("command") in ("fit", "demo")

    def _locked(self, owner, command: str | None = None) -> RunError:
        """Another process holds the run's lock: which command (`owner`, its record), and
        the way on for the refused `command` (`locked_advice`)."""
        lock = escaped(absolute(self.path / formats.FIT_LOCK))
        who = f"another {owner['command']}" if (owner or {}).get("command") else (
            "another hubensemble command")
        said = owner_words(owner)
        return RunError(f"{who} is running on {escaped(absolute(self.path))} "
                        f"({said + '; ' if said else ''}it holds {lock}); "
                        + locked_advice(command, self.path))

    @contextlib.contextmanager
    def log_file(self, *, create=True, lock: str | None = None, member: str | None = None,
                 record: dict | None = None):
        """While the block runs, the `hubensemble` loggers (INFO and up) also write to
        RUN/log.txt (appended), and command `lock` (when given) holds the run's lock
        (`lock`; with `member` and `record`, a sweep process's lock instead) inside. Nested
        uses for the same run add one handler only. Without `create`, only a folder that
        holds a stage's results (`holds_results`) gets a log: a mistyped --run stays a plain
        error, neither a new folder nor a log.txt in, e.g., an export folder. A folder it
        created (and its parents) is removed again when the block fails (raises, or logs an
        ERROR: the command line's refusal) leaving nothing in it but UNUSED_ENTRIES
        (`fileio.remove_unused`): a refused command leaves no run folder. In a folder that
        was there without a run's file (empty, or a .gitkeep), such a block removes the
        UNUSED_ENTRIES it created and nothing else (`_remove_created`): a refused
        `fit --out r` in the user's new `mkdir r` left log.txt and .fit.lock there. A caller who
        configured no logging (a script, a notebook) still sees the block's warnings on
        stderr, as Python shows them (`terminal.LastResort`)."""
        logger = logging.getLogger("hubensemble")
        target = absolute(self.log)
        attached = any(isinstance(h, logging.FileHandler)  # the run named by a link too
                       and os.path.realpath(h.baseFilename) == os.path.realpath(target)
                       for h in logger.handlers)
        ours = create or self.holds_results()
        held = (self.lock(lock, member, record) if lock and ours
                else contextlib.nullcontext())
        if attached or not ours:
            with held:
                yield
            return
        self.check_folder_is_ours(option_word("--out", "out") if create
                                  else option_word("--run", "run_dir"), creating=create)
        made = missing_folders(self.path)  # what make_folder creates now
        had = None if made or not self.path.is_dir() else set(os.listdir(self.path))
        if had and had & (formats.RUN_ENTRIES | UNSTARTED_ENTRIES):
            had = None  # a run's (or an earlier command's) files: its log.txt says why too
        self.make_folder(lock)
        handler = runlog.attach(target)
        # A root without handler gets Python's last resort for the block (`LastResort`):
        # warnings reach stderr as without the run's log, and absl's basicConfig() is not
        # called (a NullHandler here silenced every warning of a fit from Python).
        failed = True
        try:
            # The last resort first: a killed command's words, said as `held` is taken,
            # reach a notebook's stderr too. held: released before a refused command's
            # files are removed below.
            with root_last_resort(), held:
                yield
            failed = False
        except (Exception, KeyboardInterrupt) as e:  # from Python; a command line logs its own
            if not on_command_line():
                log.info("stopped (%s)%s", type(e).__name__, f": {first_line(e)}" if str(e) else "")
            raise
        finally:
            runlog.detach(handler)
            if (made or had is not None) and (failed or handler.failed):
                with contextlib.suppress(RunError):  # another command holds it: not ours
                    self.check_unlocked()
                    if made:
                        remove_unused(made, UNUSED_ENTRIES)
                    else:
                        self._remove_created(had)
        # The block ended well, but its log is incomplete: said, unless the command's own
        # stop line said it already (terminal.stopped).
        if handler.error is not None and not handler.error_said:
            raise handler.error

    def _remove_created(self, had: set[str]) -> None:
        """Removes what a refused command created in this folder, which held the entries
        `had` before (none of a run's), when that is UNUSED_ENTRIES and temp files only;
        anything else new keeps them all. Never what was there before, nor the folder."""
        with contextlib.suppress(OSError):
            new = set(os.listdir(self.path)) - had
            if all(n in UNUSED_ENTRIES or is_temp(n) for n in new):
                for name in new:
                    os.remove(self.path / name)

    def task(self, task=None):
        """The run's task: the one given (checked against the record) or loaded again. For
        a later stage: its RunError on changed data names commands of `rerun.start_again`
        (none of them discards a run: tune --restart starts one sweep over)."""
        meta = self.meta()
        recorded = self.data_section("args", "task", meta=meta) or None
        if recorded is None:
            if task is not None:
                return task
            what = ("is missing" if not self.meta_path.exists()
                    else "records no data (its \"data\" section)")
            raise RunError(f"{escaped(absolute(self.meta_path))} {what}; "
                           f"{self.rank_command()} (or "
                           f"{command_words('fit')}) writes it")
        from hubensemble.data.specs import is_relative_spec

        spec = str(recorded["args"].get("spec"))
        # A run recorded before paths were made absolute holds the path as it was typed:
        # relative to the folder that run started in, which this process need not share.
        relative = is_relative_spec(spec)
        where = (f"; run.json records {spec}, a path relative to the folder the run started "
                 f"in, and this process reads it from {os.getcwd()}" if relative else "")
        if task is None:
            args = DataArgs.from_json(recorded["args"])
            if not args.reloadable:
                raise RunError("this run's data was given in Python (an in-memory task or a "
                               "label function that cannot be imported again), so it cannot "
                               "be loaded from run.json; run the stage from Python with task=…")
            try:
                task = args.load()
            except DataError as e:
                from hubensemble.rerun import moved_data_way

                way = "" if relative else moved_data_way(self.path, meta, spec)
                raise DataError(f"{e} (the data recorded in {escaped(absolute(self.meta_path))}"
                                f"{where})"
                                + (f"; {way}" if way else "")) from None
        if task.fingerprint != recorded["task"].get("fingerprint"):
            from hubensemble.datachange import DataRecord, compare
            from hubensemble.rerun import start_again

            change = compare(DataRecord.of_run(self, recorded), DataRecord.of_task(task))
            # Restoring the files would not help when this version decodes them otherwise.
            fix = ("run it from that folder" if relative else
                   ("" if change.redecoded else "restore the data, or ")
                   + start_again(self.path, meta))
            raise RunError(f"the data of {escaped(absolute(self.path))} ({spec}) is not what the "
                           f"run started on ({change.text()}{where}); {fix}")
        return task

    def holds_results(self) -> bool:
        """Whether this folder holds what a stage wrote: run.json, ranking.json, or a sweep's
        candidates/ copied without them (trial folders only, `foreign_content`). A labels/
        alone is no stage's result to read, and may be the user's."""
        if not self.path.is_dir():
            return False
        if self.started():
            return True
        return (self.candidates.is_dir() and bool(os.listdir(self.candidates))
                and not self.foreign_content(formats.CANDIDATES_DIR))

    def foreign_content(self, name: str) -> list[str]:
        """What the run folder's entry `name` holds that no stage writes there, as
        "labels/classes.csv": in labels/, anything but <split>.npy, pixel_keys.npz,
        train_paths.json, val_paths.json and to_check.csv; in
        candidates/, files, and folders that are not trial folders
        (`candidate.is_trial_folder`; a trial being written is a temp entry; a Finder's
        .DS_Store is nobody's); in an older version's knn/, anything but .npy files. [] for
        the other entries, whose names alone are the run's (formats.RUN_ENTRIES). `--restart`
        deletes those entries, and a stage writes into them: a user's folder named labels/
        keeps its files (their class list, say)."""
        folder = self.path / name
        if name not in (formats.LABELS_DIR, formats.CANDIDATES_DIR,
                        formats.LEGACY_KNN_DIR) or not folder.is_dir():
            return []
        from hubensemble.candidate import is_trial_folder

        ours = ({f"{split}.npy" for split in LABEL_SPLITS}
                | {formats.PIXEL_KEYS_FILE, formats.LABELS_TO_CHECK_CSV, *PATHS_FILES.values()})
        foreign = []
        for entry in sorted(os.listdir(folder)):
            if is_temp(entry) or entry == ".DS_Store" or (
                    entry in ours and name == formats.LABELS_DIR) or (
                    name == formats.CANDIDATES_DIR and is_trial_folder(folder / entry)) or (
                    name == formats.LEGACY_KNN_DIR and entry.endswith(".npy")):
                continue
            foreign.append(f"{name}/{entry}")
        return foreign

    def require_started(self):
        """Raises RunError when this folder holds no run at all (missing, not a folder, or
        with neither run.json nor ranking.json), naming `fit` as what to run, or "another fit
        is running" when a fit that has not yet written run.json holds its lock; naming the
        run an export was made from when the folder is one (`exportrun.export_not_run`); a later
        stage's own "file X is missing" would point at the stage before it, which fails in
        turn."""
        if not self.path.is_dir():
            what = ("is not a folder" if self.path.exists() else
                    f"does not exist{relative_hint(self.path)}")
            raise RunError(f"{self.path} {what}; pass a run directory made by "
                           f"{command_words('fit')} or {command_words('rank')}")
        if not self.meta_path.exists() and not self.ranking_json.exists():
            self.check_unlocked()  # a fit starting on it: not yet a run, and not another
            what = (f"{escaped(absolute(self.path))} is not a hubensemble run (no run.json, no "
                    "ranking.json)")
            from hubensemble.exportrun import export_not_run

            exported = export_not_run(self.path)  # RUN/export: its run named
            if exported:
                raise RunError(exported)
            if any(self.path.iterdir()):  # e.g. another run's sub-folder
                made = [command_words(c, flags="--out RUN", keywords=f"{k}=RUN")
                        for c, k in (("fit", "out"), ("rank", "out_dir"))]
                raise RunError(f"{what}; pass the folder that {made[0]} or {made[1]} made")
            raise RunError(f"{what}; {run_words('fit', self.path, **FIT_INPUTS)} first (or "
                           f"{command_words('rank')}, then {command_words('tune')})")

    def require(self, path, what_to_run):
        """`path` when it exists, else RunError saying to run `what_to_run` first."""
        if not Path(path).exists():
            raise RunError(f"{escaped(absolute(path))} is missing; run `{what_to_run}` first")
        return path


def lock_command(args) -> str | None:
    """The command a parsed command line (argparse namespace) records as the holder of its
    run folder's lock (`Run.log_file`'s `lock`): "rank merge" for a merge, else its command
    ("tune" for a process of a chief/worker sweep too, which holds its own lock instead:
    `lock_member`)."""
    return " ".join(filter(None, (args.command, getattr(args, "rank_command", None))))


def lock_member(args) -> tuple[str | None, dict | None]:
    """(tuner id, record) of a parsed `tune` command line taking part in a chief/worker
    sweep (--tuner-id, --oracle or $KERASTUNER_*: `sweeplock.sweep_member`), which holds its
    sweep lock (`Run.lock`'s `member`, `record`), not the run's; (None, None) otherwise.
    Without --sweep (tune's default, None) the record names the sweep, --budget and --modules
    the stage resumes (`sweepwords.resumed_call`: the run's recorded ones, else default),
    which a worker's plan before TensorFlow and the words of a running sweep read."""
    from hubensemble.sweeplock import member_record, sweep_member
    from hubensemble.sweepwords import resumed_call

    if args.command != "tune":
        return None, None
    member = sweep_member(getattr(args, "tuner_id", None), getattr(args, "oracle", None))
    if member is None:
        return None, None
    plan = {key: getattr(args, key, None) for key in ("budget", "seed", "profile", "modules")}
    sweep = getattr(args, "sweep", None)
    if sweep is None:
        sweep, plan["budget"], plan["modules"], _ = resumed_call(args.run, plan["budget"],
                                                                 plan["modules"])
    return member, member_record(sweep, getattr(args, "oracle", None), plan)


def is_run(path):
    """True when `path` holds a run.json."""
    return os.path.exists(os.path.join(path, "run.json"))

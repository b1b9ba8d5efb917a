"""Probe candidates against fine-tuned candidates of the same real modules, in one run.

One task, one seed: rank the catalogue's modules (cpu profile), keep the --top-k best, then
tune ``default+probe`` into one candidate pool: the default lr x steps grid fine-tuned under
the cpu profile (steps capped by --max-steps to keep a CPU row short; the BatchNorm policy
"auto" decides per module) and the probe sweep (frozen module at its own resolution, four
L2 strengths). Prints one line per candidate (kind, lr, steps, BatchNorm policy, seconds,
validation / test accuracy, status and reason), the mean seconds per candidate of each kind
and their ratio (measured in the same run), and the greedy ensemble of the mixed pool.

    python tools/benchmarks/bench_backbones.py --catalogue /work/real/mods/real_modules.yaml \
        --modules mobilenet-v1-100-224-imagenet --task npz:../shared/data/signdigits10.npz \
        [--top-k 1] [--max-steps 50] [--out DIR] [--json FILE]

--finetune "lr=0.00625,steps=40,head_init=probe,batchnorm=inference" (repeatable) replaces the
default grid by these fine-tuning candidates (batch and momentum of the cpu profile; keys are
HParams fields, lr and steps required, and resize_factor; each checked by HParams' own rules
before any work), one trial each, so one configuration can be measured at a time. With --out
the run folder is reused: rank is skipped when it has run and a candidate that is complete is
not trained again, so configurations measured one after the other share one pool (a run that
recorded other data than --task and --seed is refused).

--interpolate 0,0.25,0.5,0.75,1 (each in [0, 1], once) also prints, for every ok LP-FT
candidate (head_init "probe", weights kept), validation cross-entropy / accuracy and test
accuracy along the straight line in weight space from its start (the frozen module with the
probe head of the recorded L2 strength) to its fine-tuned weights, theta(a) = theta_0 + a
(theta_1 - theta_0): WiSE-FT (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models").
Whether any point of the path beats its start says whether the fine-tuning moved towards
anything better than the probe.

The data spec, the catalogues (their local handles must exist here), --modules, the counts and
the paths are checked before TensorFlow loads: a bad one is a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchargs import command_logging, file_target, folder_target, integer, number, refuse

from hubensemble.options import SEED_MAX


def capped_cpu_profile(max_steps: int):
    """The cpu profile with its step range capped at `max_steps` (min_steps lowered to fit)."""
    from hubensemble.hyperrule import get_profile

    cpu = get_profile("cpu")
    return dataclasses.replace(cpu, name=f"cpu-max{max_steps}", max_steps=int(max_steps),
                               min_steps=min(cpu.min_steps, int(max_steps)),
                               description=cpu.description + f"; steps capped at {max_steps}")


#: --finetune's keys: HParams' fields (augmentation through resize_factor) and their types.
_INT_KEYS = ("steps", "batch_size", "seed")
_FLOAT_KEYS = ("lr", "weight_decay", "dropout", "momentum", "mixup_alpha", "clipnorm",
               "resize_factor")
_TEXT_KEYS = ("kind", "batchnorm", "head_init")


def parse_config(text: str) -> dict:
    """--finetune's argparse type: 'lr=0.00625,steps=40,head_init=probe' -> {"lr": 0.00625,
    "steps": 40, ...} (resize_factor=F: a random crop of a resize to F x the crop, as
    augmentation). Checked as the trial will be: every key once and known, values of its
    type, lr and steps given, and the HParams they make with the cpu profile's batch and
    momentum valid (`HParams`' own rules, its words); else ArgumentTypeError."""
    from hubensemble.errors import HubensembleError
    from hubensemble.hyperrule import AugConfig, HParams, get_profile

    known = _INT_KEYS + _FLOAT_KEYS + _TEXT_KEYS
    out = {}
    for part in text.split(","):
        key, eq, value = (t.strip() for t in part.partition("="))
        if not eq or key not in known or key in out or not value:
            why = (f"unknown key {key!r}" if eq and key not in known else
                   f"{key} given twice" if key in out else f"{part.strip()!r} is not KEY=VALUE")
            raise argparse.ArgumentTypeError(f"must be KEY=VALUE,... with keys from "
                                             f"{', '.join(known)} (each once): {why}, got "
                                             f"{text!r}")
        try:
            out[key] = (int(value) if key in _INT_KEYS else
                        float(value) if key in _FLOAT_KEYS else value)
        except ValueError:
            kind = "an integer" if key in _INT_KEYS else "a number"
            raise argparse.ArgumentTypeError(f"{key} must be {kind}, got {value!r} in "
                                             f"{text!r}") from None
    missing = [k for k in ("lr", "steps") if k not in out]
    if missing:
        raise argparse.ArgumentTypeError(f"needs {' and '.join(missing)} (no default for a "
                                         f"fine-tuning candidate), got {text!r}")
    cpu = get_profile("cpu")
    try:
        if "resize_factor" in out:
            out["augmentation"] = AugConfig(crop="random", resize_factor=out.pop("resize_factor"))
        HParams(**{"batch_size": cpu.batch_size, "momentum": cpu.momentum, **out})
    except HubensembleError as e:
        raise argparse.ArgumentTypeError(f"{e}, got {text!r}") from None
    return out


def mixing_coefficients(text: str) -> list[float]:
    """--interpolate's argparse type: '0,0.5,1' -> [0.0, 0.5, 1.0], each once, finite and in
    [0, 1]: the points of the segment from the start (0) to the fine-tuned weights (1) that
    the docstring's WiSE-FT path evaluates (outside it the weights are extrapolated, which
    this benchmark does not claim to measure)."""
    items = [t.strip() for t in text.split(",")]
    try:
        values = [number(minimum=0.0, maximum=1.0)(t) for t in items]
    except argparse.ArgumentTypeError:
        values = None
    if values is None or len(set(values)) < len(values):
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in [0, 1] (each "
                                         f"once; 0 the start, 1 the fine-tuned weights), got "
                                         f"{text!r}")
    return values


def run_configs(out: Path, specs, task, configs, *, seed: int, cache: str) -> None:
    """Trains each --finetune configuration (`parse_config`'s dicts) on each selected module
    (one candidate each, through `run_entry`, the tune trials' code path); complete candidates
    are kept."""
    from hubensemble.fileio import read_json
    from hubensemble.hyperrule import HParams, get_profile
    from hubensemble.rundir import Run
    from hubensemble.tune.plans import PlanEntry, trial_seed
    from hubensemble.tune.train import finished_candidate, run_entry

    cpu = get_profile("cpu")
    by_name = {s.name: s for s in specs}
    selected = read_json(out / "ranking.json")["selected"]
    run = Run(out)
    for i, config in enumerate(configs):
        cfg = {"batch_size": cpu.batch_size, "momentum": cpu.momentum,
               "seed": trial_seed(seed, i), **config}
        hp = HParams(**cfg)
        tag = (f"lr{hp.lr:g}-s{hp.steps}-{hp.batchnorm[:3]}-{hp.head_init}"
               f"{'-wd%g' % hp.weight_decay if hp.weight_decay else ''}"
               f"{'-rf%g' % hp.augmentation.resize_factor if hp.augmentation else ''}"
               f"{'-m%g' % hp.momentum if hp.momentum != cpu.momentum else ''}"
               f"{'-clip%g' % hp.clipnorm if hp.clipnorm else ''}")
        for module in selected:
            trial = f"ft-{tag}-{module}"
            if finished_candidate(run.candidates, trial) is not None:
                continue
            run_entry(PlanEntry(i, trial, module, hp), by_name[module], task, run,
                      profile=cpu, cache_dir=cache)


def weight_path(spec, task, cand, alphas, *, profile, cache: str) -> list[dict]:
    """[{alpha, val_ce, val_acc, test_acc}] of theta_0 + alpha (theta_1 - theta_0) for the ok
    LP-FT candidate `cand` (see --interpolate); float weights are interpolated, others (step
    counters) taken from theta_1. BatchNorm's moving statistics are weights like any other
    (unchanged by training under the "inference" policy)."""
    import keras

    from hubensemble import metrics
    from hubensemble.hyperrule import HParams
    from hubensemble.tune.inputs import predict_probs
    from hubensemble.tune.model import build_classifier
    from hubensemble.tune.train import init_head

    hp = HParams.from_json(cand.hparams)
    keras.backend.clear_session()
    model = build_classifier(spec, task.num_classes, dropout=hp.dropout,
                             weight_decay=hp.weight_decay, batchnorm=hp.batchnorm)
    init_head(model, spec, task, hp, profile=profile, head_l2=cand.record["head_l2"],
              cache_dir=cache)
    start = [np.array(w) for w in model.get_weights()]
    model.load_weights(str(cand.weights_path))
    end = [np.array(w) for w in model.get_weights()]
    out = []
    for a in alphas:
        model.set_weights([w0 + a * (w1 - w0) if np.issubdtype(w0.dtype, np.floating) else w1
                           for w0, w1 in zip(start, end)])
        row = {"alpha": a}
        for split in ("val", "test"):
            probs = predict_probs(model, task, split, spec=spec, profile=profile,
                                  batch_size=hp.batch_size)
            labels = getattr(task, split).labels
            row[f"{split}_ce"] = metrics.nll(probs, labels)
            row[f"{split}_acc"] = float((probs.argmax(1) == labels).mean())
        out.append(row)
    return out


def check_reused(p, run, data_args) -> None:
    """A usage error when --out's run (reused: its rank is skipped) records other data than
    --task and --seed, or a run.json that cannot be read: tune refused it only after
    TensorFlow and the data had loaded (`Run.attach_task`'s check, made here on the record)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.rundir import DataArgs

    try:
        recorded = ((run.meta().get("data") or {}).get("args")) or {}
        if recorded:  # read as a stage reads it (paths and old fractions as it loads them)
            recorded = DataArgs.from_json(recorded).to_json()
    except HubensembleError as e:
        p.error(f"argument --out: {e}")
    now = data_args.to_json()
    differ = [f"{k} {v!r} -> {now[k]!r}" for k, v in recorded.items()
              if k in now and now[k] != v]
    if differ:
        p.error(f"argument --out: {run.path} holds a run on other data than --task and --seed "
                f"({', '.join(differ)}); use another --out, or the recorded data")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalogue", nargs="+", required=True, metavar="FILE")
    p.add_argument("--modules", nargs="+", default=None, metavar="NAME",
                   help="catalogue entries to rank (default: all)")
    p.add_argument("--task", required=True, help="a --data spec, e.g. npz:PATH")
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    p.add_argument("--top-k", type=integer(1), default=1)
    p.add_argument("--max-steps", type=integer(1), default=50)
    p.add_argument("--out", default=None, metavar="DIR", type=folder_target,
                   help="run folder (default: a temp folder)")
    p.add_argument("--json", default=None, metavar="FILE", type=file_target)
    p.add_argument("--finetune", action="append", default=None, metavar="KEY=VALUE,...",
                   type=parse_config,
                   help="a fine-tuning candidate instead of the default grid (repeatable)")
    p.add_argument("--interpolate", default=None, metavar="A,A,...", type=mixing_coefficients,
                   help="WiSE-FT mixing coefficients in [0, 1] to evaluate for each LP-FT "
                        "candidate")
    args = p.parse_args(argv)
    # The data spec, the catalogues and the modules are checked before TensorFlow loads (the
    # same refusals the work makes, minutes later, as tracebacks).
    from hubensemble.catalogue import load_catalogues, local_handle_warnings
    from hubensemble.data.specs import check_spec
    from hubensemble.preflight import check_modules
    from hubensemble.rundir import DataArgs, Run

    refuse(p, "--task", check_spec, args.task)
    specs = refuse(p, "--catalogue", load_catalogues, args.catalogue)
    if args.modules:
        names = refuse(p, "--modules", check_modules, args.modules,
                       [{"name": s.name} for s in specs], source="catalogue")
        specs = [s for s in specs if s.name in names]
    # rank skips a module whose local handle is missing (a catalogue written for another
    # machine); here the benchmark runs, so it would only leave a row out, or fail at the end
    # of rank when no module is left.
    missing = local_handle_warnings(specs)
    if missing:
        p.error("argument --catalogue: " + "; ".join(m.removeprefix("warning: ").split(
            "; rank will")[0] for m in missing) + "; fix the handles or leave the modules out "
            "with --modules")
    data_args = DataArgs(spec=args.task, seed=args.seed)
    if args.out is not None:
        check_reused(p, Run(Path(args.out) / "run"), data_args)

    from hubensemble.candidate import scan
    from hubensemble.ensemble import run_ensemble
    from hubensemble.rank import run_rank
    from hubensemble.tune import run_tune

    task = data_args.load()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-backbones-")) / "run"
    cache = str(out.parent / "cache")
    profile = capped_cpu_profile(args.max_steps)
    t0 = time.perf_counter()
    if not (out / "ranking.json").exists():
        run_rank(out, specs, task, top_k=args.top_k, profile="cpu", cache_dir=cache,
                 data_args=data_args, progress=False)
    rank_seconds = time.perf_counter() - t0
    times = {}
    for sweep in ("probe",) if args.finetune else ("default", "probe"):
        t0 = time.perf_counter()
        run_tune(out, sweep=sweep, profile=profile, seed=args.seed, task=task, progress=False,
                 cache_dir=cache)
        times[sweep] = time.perf_counter() - t0
    if args.finetune:
        t0 = time.perf_counter()
        run_configs(out, specs, task, args.finetune, seed=args.seed, cache=cache)
        times["finetune"] = time.perf_counter() - t0
    cands = scan(Run(out).candidates)[0]
    rows = []
    print(f"bench_backbones {time.strftime('%Y-%m-%d')}: {args.task}, modules "
          f"{[s.name for s in specs]}, top-k {args.top_k}, profile {profile.name}; rank "
          f"{rank_seconds:.0f} s")
    print(f"{'trial':<44} {'kind':<8} {'lr':>8} {'steps':>5} {'bn':<9} {'size':>4} "
          f"{'sec':>7} {'val':>6} {'test':>6}  status")
    for c in cands:
        r, h = c.record, c.hparams
        row = {"trial": c.trial, "kind": h.get("kind", "finetune"), "lr": h["lr"],
               "steps": h["steps"], "l2": h["weight_decay"],
               "batchnorm": r.get("batchnorm") or h.get("batchnorm"),
               "eval_size": r.get("eval_size"), "seconds": r.get("seconds"),
               "val_acc": (r.get("val") or {}).get("accuracy"),
               "test_acc": (r.get("test") or {}).get("accuracy"),
               "status": r.get("status"), "reason": r.get("reason")}
        rows.append(row)

        def f(v):
            return "-" if v is None else f"{v:.4f}"
        print(f"{row['trial']:<44} {row['kind']:<8} {row['lr']:>8.5f} {row['steps']:>5} "
              f"{str(row['batchnorm']):<9} {str(row['eval_size']):>4} "
              f"{(row['seconds'] or 0):>7.1f} {f(row['val_acc']):>6} {f(row['test_acc']):>6}  "
              f"{row['status']}{': ' + row['reason'] if row['reason'] else ''}")
    per = {k: [r["seconds"] for r in rows if r["kind"] == k and r["seconds"]]
           for k in ("finetune", "probe")}
    mean = {k: float(np.mean(v)) if v else None for k, v in per.items()}
    summary = {"rank_seconds": rank_seconds, "sweep_seconds": times,
               "seconds_per_candidate": mean}
    if mean["finetune"] and mean["probe"]:
        summary["probe_over_finetune"] = mean["probe"] / mean["finetune"]
    ens = run_ensemble(out)
    summary["ensemble"] = {"members": [m["trial"] for m in ens["members"]],
                           "test": (ens.get("test") or {})}
    print(f"seconds per candidate: fine-tune {mean['finetune']}, probe {mean['probe']}; "
          f"probe / fine-tune {summary.get('probe_over_finetune')}; sweep wall {times}")
    print(f"mixed-pool ensemble: {summary['ensemble']['members']}; test "
          f"{json.dumps(summary['ensemble']['test'])}")
    if args.interpolate:
        alphas = args.interpolate
        by_name = {s.name: s for s in specs}
        summary["interpolation"] = {}
        for c in cands:
            if (c.status != "ok" or c.hparams.get("head_init") != "probe"
                    or c.weights_path is None):
                continue
            path = weight_path(by_name[c.module], task, c, alphas, profile=profile,
                               cache=cache)
            summary["interpolation"][c.trial] = path
            print(f"{c.trial}: theta_0 + a (theta_1 - theta_0), a = val CE / val acc / test acc")
            for r in path:
                print(f"  a {r['alpha']:<5g} {r['val_ce']:.4f} / {r['val_acc']:.4f} / "
                      f"{r['test_acc']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1,
                                              default=str))
    return 0


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())

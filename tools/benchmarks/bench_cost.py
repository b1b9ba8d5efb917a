"""Issue 17's targets on one run: distillation, a budget of the 3 cheapest candidates, TFLite
latency.

    python tools/benchmarks/bench_cost.py [--run RUN] [--work DIR] [--skip-distill]
                                          [--skip-tflite] [--distill-init best|member|module]

RUN is a run with ensemble.json (`hubensemble demo --out RUN` makes one; with --skip-tflite
and without --skip-distill also its export, distill's teacher, which step 2's export is
otherwise); without --run the demo is fitted into WORK/demo first. RUN is copied to WORK/run
(deleted first) and only the copy is changed; a RUN that is not such a run, or is WORK/run,
and a WORK that is a file are refused before any work. WORK defaults to a new temporary
folder, named on the first line (pass it as --work to measure the same demo again). Prints:

1. budget: G = the summed GFLOPs of the 3 cheapest candidates (`hubensemble cost`); the
   test accuracy of `ensemble --max-gflops G` against the best single candidate that fits G
   (chosen on validation, as ensemble.json's best_single_in_budget). Target: ensemble >=
   single. The unbudgeted ensemble.json is restored afterwards.
2. TFLite: `export --format tflite` (unquantised): max |dp| against the SavedModel and the
   latency of both at batch 1 and 64, measured one after the other in the same process
   (medians; `export.tflite.write_tflite`). Target: TFLite / SavedModel at batch 1 <= 1.
3. distill: `distill` with its defaults (the cheapest member's module): the share of the
   ensemble's test-accuracy gain over the best single member the student keeps, and the
   ensemble's GFLOPs over the student's. Target: >= 50 %. The gap is also printed in test
   images with McNemar's paired z (best single vs ensemble on the same images); below
   z = 1.96 the ensemble's gain is not significant and the target is called undecidable.

Timings depend on the machine and its load; run it niced on a quiet machine for figures.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchargs import command_logging, description, folder_target, refuse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def fit_demo(out):
    """`hubensemble demo --out OUT -q` in a subprocess (the zoo is built once and cached)."""
    cmd = [sys.executable, "-m", "hubensemble", "demo", "--out", str(out), "-q"]
    subprocess.run(cmd, check=True)


def budget_target(run_dir):
    """(G, ensemble test accuracy, best single in budget {trial, accuracy}, members)."""
    from hubensemble.cost import read_run_costs
    from hubensemble.cost.stage import run_cost
    from hubensemble.ensemble import load_candidates, read_ensemble, run_ensemble

    run_cost(run_dir, progress=False)
    costs = read_run_costs(run_dir).costs
    cands, _ = load_candidates(run_dir)
    gflops = sorted(costs[c.trial].gflops for c in cands if c.trial in costs)
    budget = float(sum(gflops[:3]))
    path = os.path.join(run_dir, "ensemble.json")
    with open(path, "rb") as f:
        saved = f.read()
    try:
        run_ensemble(run_dir, max_gflops=budget)
        data = read_ensemble(run_dir)
    finally:
        with open(path, "wb") as f:
            f.write(saved)
    test = data.get("test") or {}
    return (budget, test["ensemble"]["accuracy"], test.get("best_single_in_budget"),
            data["members"], data["cost"]["ensemble"]["gflops"])


def check_source(parser, run, work, *, needs_export):
    """Refuses (usage error) a --run that the measurements cannot use, before any work and
    before TensorFlow loads, in the words of the stages that would refuse it minutes in: no
    run, a damaged run.json or no ensemble.json (`preflight.check_run`, as `export`), no
    usable candidate (as `cost`), and with `needs_export` no export of this ensemble
    (distill's teacher check, which `run_distill` makes before its data loads). Also a RUN
    at or inside WORK/run, or holding it: WORK/run is deleted before RUN is copied there
    (`work` None: a new temporary folder, which cannot be)."""
    from hubensemble.distill import _teacher_export  # the one owner of the teacher rule
    from hubensemble.ensemble import read_ensemble
    from hubensemble.preflight import check_run
    from hubensemble.rundir import Run

    copy = os.path.realpath(os.path.join(work, "run")) if work is not None else None
    real = os.path.realpath(run)
    if copy is not None and os.path.commonpath([copy, real]) in (copy, real):
        parser.error(f"argument --run: {run} is, holds or lies in WORK/run ({copy}), which "
                     "this script deletes before copying RUN there; give another --work")
    refuse(parser, "--run", check_run, run, "export")
    refuse(parser, "--run", check_run, run, "cost")
    if needs_export:
        r = Run(run)
        refuse(parser, "--run", lambda: _teacher_export(r, r.meta(), read_ensemble(run)))


def main(argv=None):
    """Runs the three measurements and prints them with their targets."""
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--run", metavar="RUN",
                        help="a run with ensemble.json (and its export with --skip-tflite: "
                             "distill's teacher; default: fit the demo into WORK/demo)")
    parser.add_argument("--work", metavar="DIR", default=None, type=folder_target,
                        help="working folder; WORK/run is replaced by a copy of RUN "
                             "(default: a new temporary folder, printed first)")
    parser.add_argument("--skip-distill", action="store_true")
    parser.add_argument("--skip-tflite", action="store_true")
    parser.add_argument("--distill-init", choices=("best", "member", "module"),
                        help="where the student starts (default: distill's default)")
    args = parser.parse_args(argv)
    if args.run is not None:
        # Step 2's export becomes distill's teacher; without it distill takes RUN's own.
        check_source(parser, os.path.expanduser(args.run), args.work,
                     needs_export=args.skip_tflite and not args.skip_distill)
    if args.work is None:  # not the working folder: a checkout's, run as documented
        args.work = tempfile.mkdtemp(prefix="bench-cost-")

    os.makedirs(args.work, exist_ok=True)
    print(f"work folder: {os.path.abspath(args.work)}", flush=True)
    source = args.run
    if source is None:
        source = os.path.join(args.work, "demo")
        if not os.path.isfile(os.path.join(source, "ensemble.json")):
            t = time.time()
            fit_demo(source)
            print(f"demo fitted in {time.time() - t:.0f} s")
    run_dir = os.path.abspath(os.path.join(args.work, "run"))
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(source, run_dir)
    figures = {"run": os.path.abspath(source)}

    budget, acc, single, members, spent = budget_target(run_dir)
    ok = single is not None and acc >= single["accuracy"]
    print(f"1. budget = 3 cheapest candidates = {budget:.4f} GFLOPs: ensemble of "
          f"{len(members)} ({spent:.4f} GFLOPs) test accuracy {acc:.4f} vs best single in "
          f"budget ({single['trial'] if single else '-'}) "
          f"{single['accuracy'] if single else float('nan'):.4f}  "
          f"[target ensemble >= single: {'met' if ok else 'NOT met'}]")
    figures["budget"] = {"gflops": budget, "ensemble_accuracy": acc, "members": len(members),
                         "ensemble_gflops": spent, "best_single_in_budget": single}

    from hubensemble.rundir import Run

    task = Run(run_dir).task()
    if not args.skip_tflite:
        from hubensemble.export import export_ensemble

        out = os.path.join(run_dir, "bench-export")
        result = export_ensemble(run_dir, out, task=task, progress=False,
                                 export_format="tflite")
        lat = result.tflite["latency_ms"]
        ratio1 = lat["tflite"]["1"] / lat["savedmodel"]["1"]
        ratio64 = lat["tflite"]["64"] / lat["savedmodel"]["64"]
        print(f"2. TFLite ({result.tflite['runtime']}): max |dp| vs SavedModel "
              f"{result.tflite['max_abs_diff']:.2e} on {result.tflite['images']} val images; "
              f"{result.tflite['size_bytes'] / 1e6:.2f} MB; batch 1: TFLite "
              f"{lat['tflite']['1']:.2f} ms vs SavedModel {lat['savedmodel']['1']:.2f} ms "
              f"(ratio {ratio1:.2f}); batch 64: {lat['tflite']['64']:.1f} vs "
              f"{lat['savedmodel']['64']:.1f} ms (ratio {ratio64:.2f})  "
              f"[target ratio at batch 1 <= 1: {'met' if ratio1 <= 1 else 'NOT met'}]")
        figures["tflite"] = {**result.tflite, "ratio_batch1": ratio1, "ratio_batch64": ratio64}

    if not args.skip_distill:
        from hubensemble.distill import Z_SIGNIFICANT, format_distill, run_distill

        t = time.time()
        extra = {"init": args.distill_init} if args.distill_init else {}
        result = run_distill(run_dir, task=task, progress=False, **extra)
        gap = result.gap_closed
        print(f"3. distill ({time.time() - t:.0f} s):")
        print("   " + format_distill(result).replace("\n", "\n   "))
        if result.gap is not None and not result.gap["significant"]:
            verdict = ("undecidable: the ensemble's gain is not significant (McNemar z < "
                       f"{Z_SIGNIFICANT}), so a share of it is noise")
        elif result.gap is None and gap is not None:
            verdict = f"undecidable: {result.gap_note}"
        else:
            verdict = "met" if gap is not None and gap >= 0.5 else "NOT met"
        print(f"   [target gap closed >= 50 %: {verdict}]")
        figures["distill"] = {**result.to_json(), "verdict": verdict}

    with open(os.path.join(args.work, "bench_cost.json"), "w") as f:
        json.dump(figures, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())

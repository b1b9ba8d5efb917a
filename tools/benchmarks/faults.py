"""Fault injection: runs tests/reliability's scenarios and prints survived / lost per scenario.

    python tools/benchmarks/faults.py                 # every scenario
    python tools/benchmarks/faults.py --list          # their names
    python tools/benchmarks/faults.py http-500 kill-fit-during-tune
    python tools/benchmarks/faults.py --data-path   # the data-path scenarios only

Each scenario runs the real `hubensemble` command on real files (tiny SavedModels, a local
HTTP server, SIGKILL at an observed moment): in a process of its own where the process is
checked, through cli.main in this one for the data-path scenarios; the pytest suite in
tests/reliability/ calls the very same functions. The last line is the total, e.g.
`faults: 14 tried, 14 survived, 0 lost`; the exit code is 1 when any scenario was lost.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from benchargs import folder_target, number  # noqa: E402
from reliability import scenarios  # noqa: E402


def _quiet_tensorflow():
    # The scenarios build modules and load exports in this process: keep TensorFlow's C++
    # start-up lines (CUDA probes, oneDNN) out of the table, as the CLI does.
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_logical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the scenario names")
    parser.add_argument("--data-path", action="store_true",
                        help="run the data-path scenarios only (odd files, links, decode "
                             "policy across training and serving, duplicates, class names)")
    parser.add_argument("--keep", metavar="DIR", type=folder_target,
                        help="work in DIR and keep it (default: a temp folder, removed "
                             "afterwards)")
    parser.add_argument("--http-timeout", type=number(above=0), default=2.0,
                        help="HUBENSEMBLE_HTTP_TIMEOUT for the scenarios' commands (s)")
    args = parser.parse_args(argv)
    known = [fn.scenario_name for fn in scenarios.SCENARIOS]
    if args.list:
        print("\n".join(known))
        return 0
    if args.data_path:
        args.names = list(args.names) + [n for n in scenarios.DATA_PATH_SCENARIOS
                                         if n not in args.names]
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown {'scenario' if len(unknown) == 1 else 'scenarios'} "
                     f"{', '.join(unknown)}; --list shows them")

    def echo(result):
        name, survived, detail, seconds = result
        state = "survived" if survived else "lost"
        print(f"{name:<46} {state:<8} {seconds:6.1f} s  {detail}", flush=True)

    _quiet_tensorflow()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hubensemble-faults-") as tmp:
        ws = scenarios.Workspace(args.keep or tmp, http_timeout=args.http_timeout)
        results = scenarios.run_all(ws, args.names or None, echo=echo)
    lost = sum(1 for r in results if not r[1])
    print(f"({time.monotonic() - start:.0f} s on {os.cpu_count()} CPU cores)")
    print(f"faults: {len(results)} tried, {len(results) - lost} survived, {lost} lost")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())

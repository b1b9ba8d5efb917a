"""Runs `hubensemble.tune.run_tune` in its own process, for the kill and distributed tests."""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--sweep", default="seeds")
    p.add_argument("--budget", type=int)
    p.add_argument("--modules", nargs="*")
    p.add_argument("--strategy", default="cpu")
    p.add_argument("--profile", default="quick", help="a profile name or a Profile as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tuner-id")
    p.add_argument("--oracle")
    p.add_argument("--keep-weights", default="all")
    args = p.parse_args(argv)

    from hubensemble import tune
    from hubensemble.hyperrule import Profile

    profile = args.profile
    if profile.startswith("{"):
        profile = Profile(**json.loads(profile))
    summary = tune.run_tune(args.run, sweep=args.sweep, budget=args.budget,
                            modules=args.modules or None, strategy=args.strategy,
                            profile=profile, seed=args.seed, keep_weights=args.keep_weights,
                            tuner_id=args.tuner_id, oracle_address=args.oracle,
                            progress=False)
    print("SUMMARY " + json.dumps(summary.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

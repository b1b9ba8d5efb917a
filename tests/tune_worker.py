"""Runs `hubensemble.tune.run_tune` in its own process, for the kill/distributed/mirrored tests."""

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
    p.add_argument("--logical-cpus", type=int, default=0)
    args = p.parse_args(argv)

    import tensorflow as tf

    if args.logical_cpus:
        # Before anything initialises TF's devices: split the CPU into logical devices.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

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

"""The fault-injection suite: tools/benchmarks/faults.py imports its scenarios from here."""

#!/usr/bin/env python3
"""Prints the Slab-vs-System table of `cargo bench -p gpm-bench --bench slab`.

Reads <target>/criterion/slab_<workload>/<gpm-slab|gpm-system|tokio>/new/estimates.json and
prints per workload the three medians, System/Slab (above 1: the slab is faster) and
tokio/Slab.
Usage: summarize_slab.py [TARGET_DIR]   (default: target)
"""
import os
import sys

# The criterion readers of the tokio-vs-gpm table, from this script's folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import fmt, median_ns, print_header, target_dir  # noqa: E402

WORKLOADS = ["spawn_many_local", "chained_spawn", "spawn_many_remote_idle", "yield_many"]
RUNTIMES = ["gpm-slab", "gpm-system", "tokio"]


def main():
    root = target_dir()
    print_header(["workload", "gpm Slab", "gpm System", "tokio", "System/Slab", "tokio/Slab"])
    found = 0
    for workload in WORKLOADS:
        slab, system, tokio = (median_ns(root, f"slab_{workload}", r) for r in RUNTIMES)
        if None in (slab, system, tokio):
            print(f"| {workload} | (not run) | | | | |")
            continue
        found += 1
        print(f"| {workload} | {fmt(slab)} | {fmt(system)} | {fmt(tokio)} "
              f"| {system / slab:.2f} | {tokio / slab:.2f} |")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())

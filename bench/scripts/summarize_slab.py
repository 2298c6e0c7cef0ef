#!/usr/bin/env python3
"""Prints the Slab-vs-System table of `cargo bench -p gpm-bench --bench slab`.

Reads <target>/criterion/slab_<workload>/<gpm-slab|gpm-system|tokio>/new/estimates.json and
prints per workload the three medians, System/Slab (above 1: the slab is faster) and
tokio/Slab.
Usage: summarize_slab.py [TARGET_DIR]   (default: target)
"""
import json
import os
import sys

WORKLOADS = ["spawn_many_local", "chained_spawn", "spawn_many_remote_idle", "yield_many"]
RUNTIMES = ["gpm-slab", "gpm-system", "tokio"]


def median_ns(root, workload, runtime):
    path = os.path.join(root, "criterion", f"slab_{workload}", runtime, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt(ns):
    return f"{ns / 1e6:.3f} ms" if ns >= 1e6 else f"{ns / 1e3:.1f} us"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "target"
    print("| workload | gpm Slab | gpm System | tokio | System/Slab | tokio/Slab |")
    print("|---|---:|---:|---:|---:|---:|")
    found = 0
    for workload in WORKLOADS:
        slab, system, tokio = (median_ns(root, workload, r) for r in RUNTIMES)
        if None in (slab, system, tokio):
            print(f"| {workload} | (not run) | | | | |")
            continue
        found += 1
        print(f"| {workload} | {fmt(slab)} | {fmt(system)} | {fmt(tokio)} "
              f"| {system / slab:.2f} | {tokio / slab:.2f} |")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())

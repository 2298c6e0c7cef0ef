#!/usr/bin/env python3
"""Prints the tokio-vs-gpm table from criterion's estimates.

Reads <target>/criterion/<group>/<tokio|gpm>/new/estimates.json and prints, per group, the
median of each runtime and the ratio tokio/gpm (above 1: gpm is faster).
Usage: summarize.py [TARGET_DIR]   (default: target)
"""
import json
import os
import sys

GROUPS = [
    "spawn_many_local",
    "spawn_many_remote_idle",
    "spawn_many_remote_busy1",
    "spawn_many_remote_busy2",
    "ping_pong",
    "yield_many",
    "chained_spawn",
]


def median_ns(root, group, runtime):
    path = os.path.join(root, "criterion", group, runtime, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns / 1e3:.1f} us"


def target_dir():
    """The target folder: the first argument, or `target`."""
    return sys.argv[1] if len(sys.argv) > 1 else "target"


def print_header(columns):
    """The header of a markdown table: the first column left-aligned, the numbers right."""
    print("| " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * (len(columns) - 1))


def main():
    root = target_dir()
    print_header(["workload", "tokio median", "gpm median", "tokio/gpm"])
    missing = 0
    for group in GROUPS:
        tokio, gpm = median_ns(root, group, "tokio"), median_ns(root, group, "gpm")
        if tokio is None or gpm is None:
            missing += 1
            print(f"| {group} | (not run) | (not run) | |")
            continue
        print(f"| {group} | {fmt(tokio)} | {fmt(gpm)} | {tokio / gpm:.2f} |")
    return 1 if missing == len(GROUPS) else 0


if __name__ == "__main__":
    sys.exit(main())

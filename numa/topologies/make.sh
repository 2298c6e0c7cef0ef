#!/bin/sh
# Regenerates the XML test topologies from synthetic descriptions of real
# machines plus their NUMA distance matrices. Needs hwloc's command-line tools
# (Debian: apt-get install hwloc). Run from this directory: ./make.sh
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Dual-socket Intel Xeon Gold 6130 (Skylake-SP): 2 x 16 cores x 2 threads,
# one 22 MiB L3 and one 96 GiB NUMA node per socket. Linux numbering: PUs
# 0-15 socket 0, 16-31 socket 1, 32-63 their SMT siblings.
lstopo-no-graphics -i "pack:2 [numa(memory=96GiB)] l3:1(size=22MiB) l2:16(size=1MiB) l1d:1(size=32KiB) core:1 pu:2(indexes=2*32:1*2)" \
    --of xml "$tmp/xeon.xml"
hwloc-annotate "$tmp/xeon.xml" "$tmp/xeon-model.xml" -- Package:all -- info CPUModel "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz"
hwloc-annotate "$tmp/xeon-model.xml" xeon-2s-2n.xml -- none -- distances xeon-2s-2n.dist

# Single-socket AMD EPYC 7502P (Rome) in NPS4 mode: 4 NUMA nodes (quadrants)
# of 32 GiB, each with 2 CCXs (16 MiB L3, 4 cores x 2 threads): 8 L3 domains.
lstopo-no-graphics -i "pack:1 group:4 [numa(memory=32GiB)] l3:2(size=16MiB) l2:4(size=512KiB) l1d:1(size=32KiB) core:1 pu:2(indexes=2*32:1*2)" \
    --of xml "$tmp/epyc.xml"
hwloc-annotate "$tmp/epyc.xml" "$tmp/epyc-model.xml" -- Package:all -- info CPUModel "AMD EPYC 7502P 32-Core Processor"
hwloc-annotate "$tmp/epyc-model.xml" epyc-1s-4n-8l3.xml -- none -- distances epyc-1s-4n-8l3.dist

#!/usr/bin/env python3
"""Per-kernel time table from Nsight Compute's raw CSV (ncu --csv --page raw --metrics
gpu__time_duration.sum): kernels grouped by name, the largest total first, with each one's share
of all kernel time. scripts/gpu_check.sh uses it for the training step's breakdown.

usage: ncu_kernel_table.py NCU_CSV [STEPS] [TOP]"""
import collections
import csv
import sys


def short_name(name):
    # "void kiln::cuda::attention_forward_kernel<64, ...>(...)" -> "attention_forward_kernel<64, ...>"
    name = name.split("(")[0].replace("void ", "")
    return name.split("::")[-1][:70]


def main():
    path = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    with open(path, newline="") as f:
        lines = [line for line in f if line.startswith('"')]
    rows = list(csv.DictReader(lines))
    totals = collections.defaultdict(float)
    counts = collections.Counter()
    for row in rows:
        value = row.get("gpu__time_duration.sum", "").replace(",", "")
        try:
            nanoseconds = float(value)
        except ValueError:
            continue  # the units row
        name = short_name(row.get("Kernel Name", "?"))
        totals[name] += nanoseconds
        counts[name] += 1
    everything = sum(totals.values())
    if not everything:
        print("no kernel times in", path)
        return 1
    print(f"{'kernel':72} {'launches':>8} {'ms/step':>8} {'share':>6}")
    for name, total in sorted(totals.items(), key=lambda item: -item[1])[:top]:
        print(f"{name:72} {counts[name] // steps:8d} {total / 1e6 / steps:8.3f} {100 * total / everything:5.1f}%")
    print(f"{'all kernels':72} {sum(counts.values()) // steps:8d} {everything / 1e6 / steps:8.3f} 100.0%")
    return 0


if __name__ == "__main__":
    sys.exit(main())

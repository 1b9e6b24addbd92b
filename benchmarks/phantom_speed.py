"""Phantom generation speed: 20 subjects x 3 slices x 50 frames at 128x128, written as a dataset.

Run: ``python benchmarks/phantom_speed.py [--subjects 20 --slices 3 --size 128 --frames 50]``.
Writes benchmarks/results/phantom_speed.json and .md. Two timings: simulation alone (all cases in
memory, nothing written) and the full ``generate_phantom`` call (simulation + NIfTI gzip writing in
a background thread + datalist), which is what the CLI does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nibabel
import numpy as np

from hdl_monai.data.phantom import generate_phantom, sample_subject, simulate_case

RESULTS = Path(__file__).resolve().parent / "results"


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n_cases = args.subjects * args.slices

    start = time.perf_counter()
    for s in range(args.subjects):
        for p in sample_subject(np.random.default_rng([args.seed, s]), slices=args.slices, size=args.size, frames=args.frames):
            simulate_case(p)
    simulate_s = time.perf_counter() - start

    tmp = Path(tempfile.mkdtemp(prefix="phantom_speed_"))
    try:
        start = time.perf_counter()
        dataset = generate_phantom(
            tmp / "phantom", subjects=args.subjects, slices=args.slices, size=args.size, frames=args.frames,
            seed=args.seed, progress=sys.stderr.isatty(),
        )
        total_s = time.perf_counter() - start
        size_mb = _dir_size(dataset) / 1e6
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "benchmark": "phantom_speed",
        "subjects": args.subjects,
        "slices": args.slices,
        "cases": n_cases,
        "size": args.size,
        "frames": args.frames,
        "simulate_only_s": round(simulate_s, 2),
        "generate_phantom_total_s": round(total_s, 2),
        "per_case_total_ms": round(1000 * total_s / n_cases, 1),
        "dataset_size_mb": round(size_mb, 1),
        "target_s": 60.0,
        "meets_target": total_s < 60.0,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "nibabel": nibabel.__version__,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phantom_speed.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    m = result["machine"]
    md = [
        "# Phantom generation speed",
        "",
        f"{n_cases} cases ({args.subjects} subjects x {args.slices} slices), {args.size}x{args.size} px, "
        f"{args.frames} frames; `python benchmarks/phantom_speed.py`.",
        "",
        "| step | seconds | per case (ms) |",
        "|---|---:|---:|",
        f"| simulate only (in memory) | {simulate_s:.1f} | {1000 * simulate_s / n_cases:.0f} |",
        f"| generate_phantom (simulate + write, CLI path) | {total_s:.1f} | {1000 * total_s / n_cases:.0f} |",
        "",
        f"Dataset on disk: {size_mb:.0f} MB. Target: under 60 s in total -> {'met' if total_s < 60 else 'NOT met'}.",
        "",
        f"Machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}, numpy {m['numpy']}, "
        f"nibabel {m['nibabel']}.",
        "",
    ]
    (args.out / "phantom_speed.md").write_text("\n".join(md), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

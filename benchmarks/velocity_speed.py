"""Speed of velocity assessment on phantom cases (issue target: 100 cases x 50 frames x 128^2 in < 30 s).

Generates a phantom dataset (subjects x slices cases) in a temporary folder, then times

- ``load``: reading the cases from disk (``load_case``, NIfTI decompression included);
- ``analysis``: :func:`hdl_monai.velocity.assess_case` on the in-memory cases (phase -> velocity,
  LV centre, cylindrical transform, curves, end systole, indices, aliasing check);
- ``assess_path (no plots)``: the ``hdl-monai velocity DATASET`` edge: load + analysis + JSON/CSV
  per case + Table II summary;
- ``assess_path (with plots)``: the same plus one curve PNG per case and the box plots, i.e.
  exactly ``hdl-monai velocity DATASET --out OUT``.

Writes benchmarks/results/velocity_speed.json and .md. Usage::

    python benchmarks/velocity_speed.py [--subjects 25 --slices 4 --size 128 --frames 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = 30.0


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run(subjects: int, slices: int, size: int, frames: int, seed: int, workdir: Path) -> dict:
    from hdl_monai.data.case import load_case
    from hdl_monai.data.datalist import case_dirs
    from hdl_monai.data.phantom import generate_phantom
    from hdl_monai.velocity import assess_case
    from hdl_monai.velocity.report import assess_path

    dataset, t_generate = _timed(
        lambda: generate_phantom(workdir / "phantom", subjects=subjects, slices=slices, size=size, frames=frames,
                                 seed=seed, progress=False, writers=1)
    )
    dirs = case_dirs(dataset)
    cases, t_load = _timed(lambda: [load_case(d) for d in dirs])
    results, t_analysis = _timed(lambda: [assess_case(c) for c in cases])
    _, t_report_noplots = _timed(lambda: assess_path(dataset, workdir / "out_noplots", plots=False, progress=False))
    _, t_report = _timed(lambda: assess_path(dataset, workdir / "out", plots=True, progress=False))
    n = len(cases)
    psv = np.array([[r.indices[d]["psv_mm_s"] for d in ("radial", "circumferential", "longitudinal")] for r in results])
    timings = {
        "load_s": t_load,
        "analysis_s": t_analysis,
        "assess_path_no_plots_s": t_report_noplots,
        "assess_path_with_plots_s": t_report,
    }
    return {
        "benchmark": "velocity_speed",
        "cases": n,
        "frames": frames,
        "size": size,
        "phantom_generation_s": t_generate,
        "timings_s": timings,
        "per_case_ms": {k.replace("_s", "_ms"): 1000 * v / n for k, v in timings.items()},
        "target_s": TARGET_S,
        "meets_target": {k: v < TARGET_S for k, v in timings.items() if k != "load_s"},
        "sanity_mean_psv_mm_s": dict(zip(("radial", "circumferential", "longitudinal"), psv.mean(axis=0).round(2).tolist())),
        "machine": {
            "cpus": os.cpu_count(),
            "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def markdown(result: dict) -> str:
    n, T, size = result["cases"], result["frames"], result["size"]
    lines = [
        "# Velocity assessment speed",
        "",
        f"{n} phantom cases, {T} frames, {size}x{size} pixels; {result['machine']['cpus']} CPU(s) "
        f"({result['machine']['affinity_cpus']} usable), Python {result['machine']['python']}, {result['date']}.",
        f"Target: all {n} cases in under {result['target_s']:.0f} s. Phantom generation (not timed against the target): "
        f"{result['phantom_generation_s']:.1f} s.",
        "",
        "| step | total (s) | per case (ms) | under target |",
        "|---|---|---|---|",
    ]
    names = {
        "load_s": "load cases (NIfTI read)",
        "analysis_s": "analysis in memory (assess_case)",
        "assess_path_no_plots_s": "hdl-monai velocity DATASET, no plots (load + analysis + JSON/CSV + summary)",
        "assess_path_with_plots_s": "hdl-monai velocity DATASET (with per-case PNGs and box plots)",
    }
    for key, label in names.items():
        total = result["timings_s"][key]
        ok = result["meets_target"].get(key)
        lines.append(f"| {label} | {total:.2f} | {1000 * total / n:.1f} | {'-' if ok is None else ('yes' if ok else 'NO')} |")
    lines += ["", "Reproduce: `python benchmarks/velocity_speed.py`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=25)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for velocity_speed.json/.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="velocity_speed_") as tmp:
        result = run(args.subjects, args.slices, args.size, args.frames, args.seed, Path(tmp))
    from hdl_monai.data.atomic import atomic_write_json, atomic_write_text

    args.results.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.results / "velocity_speed.json", result)
    atomic_write_text(args.results / "velocity_speed.md", markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()

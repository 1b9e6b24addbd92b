"""Run every benchmark of hdl-monai and gather their results into one JSON + Markdown summary.

    python benchmarks/run_all.py                      # speed benchmarks of all modules
    python benchmarks/run_all.py --quality DATASET    # also interpolation quality on DATASET's test split
    python benchmarks/run_all.py --sunnybrook         # also interpolation quality on real cine (Sunnybrook)

Each speed script writes its own ``benchmarks/results/<name>.json/.md``; this script runs them one after
the other (they time things, so nothing else should share the machine), then writes
``benchmarks/results/summary.json`` and ``summary.md`` with each script's headline numbers, the machine,
and whether a GPU was used (the scripts use CUDA when torch sees it). ``--quality`` adds
``hdl-monai evaluate-interpolation`` (hdl with the shipped model, linear, optical flow; K = 1..6).
``--sunnybrook`` adds ``interpolation_sunnybrook.py`` (real cine, K = 1..3, shipped model as it is and
fine-tuned leave-one-patient-out; about 15 minutes on 2 cores), which needs ../shared/data/sunnybrook.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SPEED = ("phantom_speed", "velocity_speed", "interpolation_speed", "phase_speed")
QUALITY = ("interpolation_sunnybrook",)
SHIPPED_INTERPOLATION = HERE.parent / "bundle" / "hdl_temporal_interpolation" / "models" / "model.pt"


def _run(cmd: list[str]) -> tuple[int, float]:
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    code = subprocess.call(cmd)
    return code, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SPEED, help="run only these speed benchmarks")
    parser.add_argument("--quality", type=Path, help="a dataset for the interpolation quality benchmark")
    parser.add_argument("--sunnybrook", action="store_true", help="also run the real-cine (Sunnybrook) benchmark")
    args = parser.parse_args()
    import torch

    summary = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "benchmarks": {},
    }
    failed = []
    for name in list(args.only or SPEED) + (list(QUALITY) if args.sunnybrook else []):
        code, seconds = _run([sys.executable, str(HERE / f"{name}.py")])
        result_file = RESULTS / f"{name}.json"
        entry = {"exit_code": code, "wall_s": round(seconds, 1), "results": str(result_file.relative_to(HERE.parent))}
        if code == 0 and result_file.is_file():
            entry["data"] = json.loads(result_file.read_text())
        else:
            failed.append(name)
        summary["benchmarks"][name] = entry
    if args.quality:
        out = RESULTS / "interpolation_quality"
        code, seconds = _run([
            sys.executable, "-m", "hdl_monai.cli", "evaluate-interpolation", str(args.quality), "--out", str(out),
            "--methods", "hdl,linear,optical_flow", "--model", str(SHIPPED_INTERPOLATION),
        ])  # fmt: skip
        summary["benchmarks"]["interpolation_quality"] = {"exit_code": code, "wall_s": round(seconds, 1),
                                                          "results": str(out.relative_to(HERE.parent))}
        failed += [] if code == 0 else ["interpolation_quality"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# hdl-monai benchmarks",
        "",
        f"Machine: {summary['machine']['platform']}, {summary['machine']['cpus']} CPUs, Python "
        f"{summary['machine']['python']}, torch {summary['machine']['torch']}, GPU: {summary['machine']['gpu'] or 'none'}.",
        "",
        "| benchmark | exit | wall (s) | details |",
        "|---|---|---|---|",
    ]
    for name, entry in summary["benchmarks"].items():
        md = Path(entry["results"]).with_suffix(".md").name if name != "interpolation_quality" else "interpolation_quality/"
        lines.append(f"| {name} | {entry['exit_code']} | {entry['wall_s']} | [{md}]({md}) |")
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print((RESULTS / "summary.md").read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

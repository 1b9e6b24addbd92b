"""How well temporal phase unwrapping undoes aliasing, on phantom cases recorded at too low a venc.

Each phantom case's phase is first turned into velocity at its own venc (no tissue aliasing there:
the phantom's myocardium stays below venc), then encoded again at ``scale x venc`` and wrapped into
0..4096, so every velocity beyond the lower venc aliases while noise and partial volume stay as they
were. The assessment (``assess_case``, default settings: the myocardium without its 1-pixel border)
then runs on the aliased case as it is and after ``unwrap_temporal`` with each neighbourhood radius
(``--borders``; ``unwrap=True`` uses 2), and each is compared with the assessment of the original case
(the answer unwrapping should give back):

- ``values wrong``: myocardium values (pixel x frame x direction) the curves use that differ from the
  original's velocity by more than 1 cm/s, as a share of all of them;
- ``curve error``: the largest difference between the aliased case's curves and the original's, in
  mm/s, over frames and directions; the table gives the worst case and the median over cases;
- ``cases exact``: cases whose three curves are within 1 mm/s of the original's on every frame.

Writes NAME.json and .md under ``--out`` (NAME: ``--name``, default velocity_unwrapping). Usage::

    python benchmarks/velocity_unwrapping.py [--dataset DIR] [--subjects 6 --slices 2 --frames 50] [--scales 1,0.6,0.4] [--borders 0,1,2]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
PREVIOUS = "previous (frame 0, own history)"


def aliased_copy(case, scale: float):
    """The case with its phase re-encoded at ``scale`` x venc and wrapped into 0..4096."""
    from hdl_monai.velocity.assessment import case_velocities
    from hdl_monai.velocity.conversion import velocity_to_phase

    velocity = case_velocities(case)
    low = copy.copy(case)
    low.venc_cm_s = {d: scale * v for d, v in case.venc_cm_s.items()}
    low.phase = {d: np.mod(velocity_to_phase(velocity[d], low.venc_cm_s[d]), 4096.0).astype(np.float32)
                 for d in velocity}
    return low, velocity


def score_case(case, scale: float, borders: list[int]) -> dict[str, dict[str, float]]:
    from hdl_monai.velocity import assess_case, unwrap_temporal
    from hdl_monai.velocity.assessment import case_velocities
    from hdl_monai.velocity.curves import core_myocardium

    reference = assess_case(case)
    low, velocity = aliased_copy(case, scale)
    myo = case.label == 1
    used = core_myocardium(case.label, reference.exclude_border_px)
    scores = {}
    for method in methods(borders):
        unwrapped = copy.copy(low)
        if method == PREVIOUS:
            unwrapped.phase = {d: previous_unwrap(p, myo) for d, p in low.phase.items()}
        elif method != "none":
            border = int(method.rsplit(" ", 1)[1])
            unwrapped.phase = {d: unwrap_temporal(p, myo, border=border) for d, p in low.phase.items()}
        result = assess_case(unwrapped)
        measured = case_velocities(unwrapped)
        wrong = sum(int((np.abs(measured[d] - velocity[d]) > 1.0)[used].sum()) for d in velocity)
        error = max(float(np.max(np.abs(result.curves_mm_s[k] - reference.curves_mm_s[k]))) for k in reference.curves_mm_s)
        scores[method] = {"values_wrong": wrong, "values": 3 * int(used.sum()), "curve_error_mm_s": error}
    return scores


def methods(borders: list[int]) -> list[str]:
    """"none", the unwrapping before this benchmark, then "unwrapped, border B" for each radius B."""
    return ["none", PREVIOUS] + [f"unwrapped, border {b}" for b in borders]


def previous_unwrap(phase: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The unwrapping hdl-monai had until this benchmark was written, for comparison: from frame 0, each
    pixel's own previous value, the offset carried while the pixel stays in the mask grown by 1 pixel."""
    from scipy import ndimage

    region = ndimage.binary_dilation(mask, structure=np.ones((3, 3, 1), bool))
    out = np.asarray(phase, np.float32).copy()
    offset = np.zeros(phase.shape[:2], np.float32)
    for t in range(1, phase.shape[-1]):
        offset = offset - np.round((phase[:, :, t] - phase[:, :, t - 1]) / 4096.0) * 4096.0
        offset = np.where(region[:, :, t] & region[:, :, t - 1], offset, 0.0).astype(np.float32)
        out[:, :, t] += np.where(mask[:, :, t], offset, 0.0).astype(np.float32)
    return out


def summarise(per_case: list[dict], scales: list[float], borders: list[int]) -> dict:
    summary = {}
    for scale in scales:
        key = f"{scale:g}"
        rows = {}
        for method in methods(borders):
            entries = [c["scores"][key][method] for c in per_case]
            errors = np.array([e["curve_error_mm_s"] for e in entries])
            rows[method] = {
                "values_wrong_share": sum(e["values_wrong"] for e in entries) / max(sum(e["values"] for e in entries), 1),
                "curve_error_max_mm_s": float(errors.max()),
                "curve_error_median_mm_s": float(np.median(errors)),
                "cases_exact": int((errors <= 1.0).sum()),
            }
        summary[key] = rows
    return summary


def markdown(payload: dict) -> str:
    lines = [
        "# Temporal phase unwrapping on phantom cases recorded at too low a venc",
        "",
        f"{payload['cases']} phantom cases ({payload['data']}); the phase re-encoded at scale x venc and wrapped, then "
        "assessed as it is and after `unwrap_temporal` (border = neighbourhood radius; `unwrap=True` uses 2) against the original case's assessment (the myocardium "
        "without its 1-pixel border, as the curves use it). See the script's docstring for the measures.",
        "",
        "| venc scale | method | values wrong | curve error, worst case (mm/s) | curve error, median case (mm/s) | cases exact |",
        "|---|---|---|---|---|---|",
    ]
    for scale, rows in payload["summary"].items():
        for method, r in rows.items():
            lines.append(f"| {scale} | {method} | {100 * r['values_wrong_share']:.3f} % | {r['curve_error_max_mm_s']:.1f} | "
                         f"{r['curve_error_median_mm_s']:.1f} | {r['cases_exact']} of {payload['cases']} |")
    lines += ["", f"{payload['seconds']:.0f} s on {payload['machine']}.", "",
              f"Reproduce: `{payload['command']}`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", help="a phantom dataset folder (default: generate one)")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--slices", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scales", default="1,0.6,0.4", help="venc scales, comma-separated")
    parser.add_argument("--borders", default="0,1,2", help="unwrap_temporal neighbourhood radii to compare (2 is the default)")
    parser.add_argument("--name", default="velocity_unwrapping", help="output file stem")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    from hdl_monai.data.case import load_case
    from hdl_monai.data.datalist import case_dirs
    from hdl_monai.data.phantom import generate_phantom

    scales = [float(s) for s in str(args.scales).split(",")]
    borders = [int(b) for b in str(args.borders).split(",")]
    if any(not 0 < s <= 1 for s in scales):
        parser.error(f"--scales must lie in (0, 1], got {args.scales}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.dataset:
            dataset, data = Path(args.dataset), args.dataset
        else:
            dataset = generate_phantom(Path(tmp) / "phantom", subjects=args.subjects, slices=args.slices, size=args.size,
                                       frames=args.frames, seed=args.seed, progress=False, writers=1)
            data = (f"hdl-monai phantom --subjects {args.subjects} --slices {args.slices} --size {args.size} "
                    f"--frames {args.frames} --seed {args.seed}")
        per_case = []
        for path in case_dirs(dataset):
            case = load_case(path)
            per_case.append({"case": case.case_id, "scores": {f"{s:g}": score_case(case, s, borders) for s in scales}})
            print(f"{case.case_id}: done", file=sys.stderr, flush=True)
    payload = {
        "data": data, "cases": len(per_case), "scales": scales, "borders": borders, "summary": summarise(per_case, scales, borders),
        "per_case": per_case, "seconds": time.perf_counter() - start,
        "machine": f"{platform.machine()} / {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "command": " ".join(["python benchmarks/velocity_unwrapping.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from hdl_monai.data.atomic import atomic_write_text

    atomic_write_text(out / f"{args.name}.json", json.dumps(payload, indent=1))
    atomic_write_text(out / f"{args.name}.md", markdown(payload))
    print(markdown(payload))
    return payload


if __name__ == "__main__":
    main()

"""How much of the velocity curve survives down-sampling by K, whatever the networks do with the kept frames.

A K > 0 twin sees the magnitude only at every (K+1)-th frame. Between two kept frames the tissue's
displacement is known (in the best case, exactly); how it moved in between is not. This script takes the
phantom's ground-truth global velocity curves (radial, circumferential, longitudinal; the ``velocity``
series, :func:`hdl_monai.velocity.assess_case`) and rebuilds them from the exact displacements between kept
frames only, in three ways:

- ``gap mean``: the mean velocity over each gap, held over the gap's frames. This is what perfect motion
  estimation gives when the frames in between move at constant speed (linear or flow interpolation), the
  best case of the twin's current interpolation;
- ``hermite``: per gap, a cubic whose end speeds are the means of the adjoining gaps' mean velocities (the
  twin's cubic timing, :func:`hdl_monai.baselines.hermite_timing`; four kept frames around each gap);
- ``cubic``: a periodic cubic spline through the positions at all kept frames, differentiated;
- ``learned``: the positions at every frame predicted from the kept ones by the interpolation model's timing
  prior (:class:`hdl_monai.baselines.timing_prior.TimingPrior`, learned from Horn-Schunck paths of the
  training split's magnitude, no ground truth; ``--prior``), then a periodic spline through all frames,
  differentiated. This is what the twin's "learned" timing can at best reach.

and reports the Pearson r of each against the truth, pooled over every curve of every case and direction
(the paper's single number: 0.92 at K = 3 and 0.48 at K = 6 for HDL on its data), per direction, and the
early-diastolic peak (PDV) kept. A method that uses only the kept frames and smooth motion cannot beat
these numbers by much; beating them needs a prior on the waveform's shape (something a network can learn
from training data). The measured r of the shipped twin is read from phase_quality_phantom.json when present.

    python benchmarks/phase_sampling_bound.py --dataset data/phantom20 [--split test] [--k 1,2,3,4,5,6] \
        [--name phase_sampling_bound]

Writes benchmarks/results/NAME.json and NAME.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from hdl_monai.baselines.timing_prior import TimingPrior, periodic_positions
from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.data.case import load_case
from hdl_monai.data.loading import datalist_items
from hdl_monai.transforms.array import kept_frames
from hdl_monai.velocity.agreement import pearson_r
from hdl_monai.velocity.assessment import assess_case

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED_PRIOR = Path(__file__).resolve().parents[1] / "bundle" / "hdl_temporal_interpolation" / "models" / "timing_prior.json"
DIRECTIONS = ("radial", "circumferential", "longitudinal")
PAPER_R = {3: 0.92, 6: 0.48}


def rebuild(curve: np.ndarray, K: int, prior: TimingPrior | None = None) -> dict[str, np.ndarray]:
    """The curve (one value per frame, one cycle) rebuilt from the displacements between kept frames (and with
    ``prior``, the "learned" rebuild too)."""
    T = curve.size
    # position at frame boundaries t = 0..T (trapezoid rule, cyclic): displacement from t to t+1
    steps = (curve + np.roll(curve, -1)) / 2.0
    position = np.concatenate([[0.0], np.cumsum(steps)])
    nodes = kept_frames(T, K) + [T]
    known = position[nodes] - position[T] * np.asarray(nodes, float) / T  # remove the cycle's net drift
    known[-1] = known[0]  # one cycle: exactly periodic (the drift removal leaves rounding error)
    gap_mean = np.empty(T)
    for a, b, pa, pb in zip(nodes[:-1], nodes[1:], known[:-1], known[1:]):
        gap_mean[a:b] = (pb - pa) / (b - a)
    cubic = CubicSpline(np.asarray(nodes, float), known, bc_type="periodic")(np.arange(T), 1)
    # local cubic Hermite per gap: end slopes = mean of the two neighbouring gaps' mean velocities
    n = len(nodes) - 1
    means = [(known[i + 1] - known[i]) / (nodes[i + 1] - nodes[i]) for i in range(n)]
    hermite = np.empty(T)
    for i in range(n):
        a, b, g = nodes[i], nodes[i + 1], nodes[i + 1] - nodes[i]
        u0, u1 = (means[i - 1] + means[i]) / 2, (means[i] + means[(i + 1) % n]) / 2
        tau = (np.arange(a, b) - a) / g
        # derivative of the Hermite cubic through (0, 0), (1, D) with slopes u0 g, u1 g, per frame
        D = known[i + 1] - known[i]
        dh = (6 * tau**2 - 6 * tau) * (-D) + (3 * tau**2 - 4 * tau + 1) * u0 * g + (3 * tau**2 - 2 * tau) * u1 * g
        hermite[a:b] = dh / g
    out = {"gap mean": gap_mean, "cubic": cubic, "hermite": hermite}
    if prior is not None:
        kept = kept_frames(T, K)
        periodic, drift = periodic_positions(steps)  # every frame's position, net drift out
        track = prior.weights(T, kept) @ periodic[kept]
        out["learned"] = CubicSpline(np.arange(T + 1.0), np.append(track, track[0]), bc_type="periodic")(np.arange(T), 1) + drift
    return out


def peak_ratio(rebuilt: np.ndarray, truth: np.ndarray) -> float:
    """Largest |value| kept, relative to the truth's (1 = the peak survives)."""
    return float(np.abs(rebuilt).max() / np.abs(truth).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="a phantom dataset (cases with velocity)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", default="1,2,3,4,5,6")
    parser.add_argument("--measured", type=Path, default=RESULTS / "phase_quality_phantom.json",
                        help="evaluate-phase JSON whose pooled r vs ground truth is shown beside the bounds")
    parser.add_argument("--prior", type=Path, default=SHIPPED_PRIOR, help="timing prior for the learned column")
    parser.add_argument("--name", default="phase_sampling_bound", help="output file stem")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    prior = TimingPrior.load(args.prior)
    items = datalist_items(args.dataset, args.split)
    truths = []
    for item in items:
        case = load_case(item["case"])
        if len(case.velocity) != 3:
            raise SystemExit(f"{case.path}: no ground-truth velocity (this benchmark needs a phantom)")
        curves = assess_case(case, source="velocity").curves_mm_s
        truths.append({d: np.asarray(curves[d], float) for d in DIRECTIONS})
    measured = {}
    record = json.loads(args.measured.read_text()) if args.measured.is_file() else {}
    if record.get("split", args.split) == args.split and Path(record.get("dataset", args.dataset)).name == args.dataset.name:
        for K, row in record.get("pearson_r_truth", {}).items():
            value = row.get("proposed", {}).get("pooled", {}).get("all")
            if value is not None:
                measured[int(K)] = float(value)
    results: dict[str, dict] = {}
    for K in ks:
        pooled = {"gap mean": ([], []), "cubic": ([], []), "hermite": ([], []), "learned": ([], [])}
        per_dir = {m: {d: ([], []) for d in DIRECTIONS} for m in pooled}
        peaks = {m: {d: [] for d in DIRECTIONS} for m in pooled}
        for truth in truths:
            for d in DIRECTIONS:
                for method, curve in rebuild(truth[d], K, prior).items():
                    for store in (pooled[method], per_dir[method][d]):
                        store[0].append(curve)
                        store[1].append(truth[d])
                    peaks[method][d].append(peak_ratio(curve, truth[d]))
        results[str(K)] = {
            method: {
                "r_pooled": float(pearson_r(np.concatenate(pooled[method][0]), np.concatenate(pooled[method][1]))),
                "r": {d: float(pearson_r(np.concatenate(a), np.concatenate(b))) for d, (a, b) in per_dir[method].items()},
                "peak_kept": {d: float(np.mean(v)) for d, v in peaks[method].items()},
            }
            for method in pooled
        }
    payload = {"dataset": str(args.dataset), "split": args.split, "cases": len(truths), "K": ks, "prior": str(args.prior),
               "results": results, "measured_twin_r_pooled": measured, "paper_r_pooled": PAPER_R}
    atomic_write_json(args.out / f"{args.name}.json", payload, overwrite=True)
    lines = ["# What down-sampling by K leaves of the velocity curves", "",
             f"Dataset `{args.dataset}`, split `{args.split}`, {len(truths)} cases: the ground-truth global curves rebuilt "
             "from the exact displacements between kept frames (every (K+1)-th) only. *Gap mean*: the gap's mean velocity "
             "held over it (constant speed between kept frames, the best case of linear timing); *Hermite*: a cubic per gap "
             "whose end speeds are the means of the two adjoining gaps' mean velocities (the twin's cubic timing, "
             "`hdl_monai.baselines.hermite_timing`); *spline*: a periodic cubic spline through all kept positions; "
             f"*learned*: every frame's position predicted from the kept ones by the timing prior `{args.prior.name}` "
             "(learned from the training split's Horn-Schunck paths, no ground truth; the twin's learned timing). "
             "r = Pearson r against the truth, pooled over every curve of every case and direction (the paper's number) "
             "and per direction (radial / circumferential / longitudinal); peak = largest |radial velocity| kept, as a "
             "fraction of the truth's, mean over cases. Measured twin = the shipped twin's pooled r vs ground truth "
             f"(`{args.measured.name}`).", "",
             "| K | r gap mean | r Hermite | r spline | r learned | r learned (rad / circ / long) | radial peak kept: gap mean / Hermite / spline / learned | measured twin | paper |",
             "|---|---|---|---|---|---|---|---|---|"]
    for K in ks:
        v = results[str(K)]
        g, h, c, le = v["gap mean"], v["hermite"], v["cubic"], v["learned"]
        per = " / ".join(f"{le['r'][d]:.3f}" for d in DIRECTIONS)
        peaks = " / ".join(f"{m['peak_kept']['radial']:.2f}" for m in (g, h, c, le))
        twin = f"{measured[K]:.3f}" if K in measured else "-"
        paper = f"{PAPER_R[K]:.2f}" if K in PAPER_R else "-"
        lines.append(f"| {K} | {g['r_pooled']:.3f} | {h['r_pooled']:.3f} | {c['r_pooled']:.3f} | {le['r_pooled']:.3f} | {per} | {peaks} | {twin} | {paper} |")
    lines += ["", "Produced by `python benchmarks/phase_sampling_bound.py` (no network involved; seconds on a CPU).", ""]
    atomic_write_text(args.out / f"{args.name}.md", "\n".join(lines), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Interpolation quality in the paper's terms (Table III, Fig. 10): MSE, MSEW1, MSEW2, PSNR, SSIM, Dice.

Metrics are computed on the interpolated frames only (the kept frames are copies), on magnitude
normalised to [-1, 1] with the *reference* series' scale (99.5th percentile, see
``hdl_monai.transforms``), so the data range is 2. w1 is the padded LV region of the reference label,
w2 its foreground (normalised magnitude > -0.95), both 1 inside and 0.1 outside; MSEW is the mean of
w * error^2 over all pixels. Dice compares the LV myocardium (label 1). A case's value is the mean
over its interpolated frames; tables give the mean (std) over cases.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.data.case import Case, load_case
from hdl_monai.data.datalist import case_dirs
from hdl_monai.interpolation import NETWORK_METHODS, interpolate_case
from hdl_monai.metrics import dice, mse, msew, psnr, ssim
from hdl_monai.transforms.array import (
    foreground_mask,
    interpolation_plan,
    magnitude_scale,
    myocardium_region,
    normalize_magnitude,
)

__all__ = ["METRICS", "interpolation_metrics", "evaluate_interpolation", "markdown_table"]

METRICS = ("mse", "msew1", "msew2", "psnr", "ssim", "dice")


def interpolation_metrics(reference: Case, rebuilt: Case, K: int, margin: int = 5) -> dict[str, float]:
    """Mean of each metric over the frames of ``reference`` that interpolation by K rebuilt."""
    frames = [step.target for step in interpolation_plan(reference.frames, K)]
    scale = magnitude_scale(reference.magnitude)
    ref = normalize_magnitude(reference.magnitude, scale)[..., frames]
    out = normalize_magnitude(rebuilt.magnitude, scale)[..., frames]
    w1 = np.where(myocardium_region(reference.label[..., frames], margin=margin), 1.0, 0.1)
    w2 = np.where(foreground_mask(ref) > 0, 1.0, 0.1)

    def batch(a: np.ndarray) -> np.ndarray:  # (X, Y, F) -> (F, 1, X, Y)
        return np.moveaxis(a, -1, 0)[:, None].astype(np.float32)

    values = {
        "mse": mse(batch(out), batch(ref)),
        "msew1": msew(batch(out), batch(ref), batch(w1)),
        "msew2": msew(batch(out), batch(ref), batch(w2)),
        "psnr": psnr(batch(out), batch(ref)),
        "ssim": ssim(batch(out), batch(ref)),
        "dice": dice(batch(rebuilt.label[..., frames] == 1), batch(reference.label[..., frames] == 1)),
    }
    return {name: float(np.mean(np.asarray(v))) for name, v in values.items()}


def markdown_table(results: dict[str, dict[str, dict[str, dict[str, float]]]]) -> str:
    """Table III layout: one row per (K, method), mean (std) over cases per metric.

    MSE and MSEW2 are shown x100 and MSEW1 x10, as in the paper.
    """
    factors = {"mse": 100, "msew1": 10, "msew2": 100, "psnr": 1, "ssim": 1, "dice": 1}
    head = ["K", "method", "MSE x100", "MSEW1 x10", "MSEW2 x100", "PSNR (dB)", "SSIM", "Dice"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for K in sorted(results, key=int):
        for method, stats in results[K].items():
            cells = [
                f"{stats[m]['mean'] * factors[m]:.3f} ({stats[m]['std'] * factors[m]:.3f})" for m in METRICS
            ]
            lines.append(f"| {K} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(results, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(results, key=int)
    methods = list(results[ks[0]])
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), constrained_layout=True)
    titles = {"mse": "MSE", "msew1": "MSEW1", "msew2": "MSEW2", "psnr": "PSNR (dB)", "ssim": "SSIM", "dice": "Dice (LV myocardium)"}
    for ax, metric in zip(axes.flat, METRICS):
        for method in methods:
            mean = np.array([results[K][method][metric]["mean"] for K in ks])
            std = np.array([results[K][method][metric]["std"] for K in ks])
            ax.errorbar([int(k) for k in ks], mean, yerr=std, marker="o", capsize=3, label=method)
        ax.set_title(titles[metric])
        ax.set_xlabel("K (frames dropped between kept frames)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle("Interpolation quality vs down-sampling factor K (mean ± std over test cases)")
    path = out / "metrics_vs_k.png"
    tmp = out / ".metrics_vs_k.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def evaluate_interpolation(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    ks: Sequence[int] = (1, 2, 3, 4, 5, 6),
    methods: Iterable[str] = ("linear", "optical_flow"),
    split: str = "test",
    progress: bool = True,
    models: dict[str, str | os.PathLike] | None = None,
    device: str = "cpu",
    timing: str | None = None,
) -> dict:
    """Every method at every K over a dataset split; writes interpolation_metrics.json, .md and a figure.

    ``models`` maps the network methods ("hdl", "r2unet", "gan") to their model.pt; each is loaded once and
    must serve its method (a GAN-trained model is refused as "hdl" and the other way round). ``timing``:
    where a hybrid network's flow guess places the in-between frames (None = the default of
    :func:`~hdl_monai.engines.interpolation.resolve_timing`: "learned" for a model with a timing prior at the
    cases' frame count); the timings used are recorded per method in the JSON.
    Returns the results: {K: {method: {metric: {"mean", "std", "values"}}}}.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    methods = list(methods)
    loaded = {}
    for method, path in (models or {}).items():
        from hdl_monai.engines.interpolation import check_model_method, load_interpolation_model

        loaded[method] = load_interpolation_model(path, device)
        check_model_method(loaded[method], method)
    missing = [m for m in methods if m in NETWORK_METHODS and m not in loaded]
    if missing:
        raise ValueError(f"methods {missing} need a model file (models={{method: model.pt}})")
    cases = [load_case(d, skip=("phase", "velocity")) for d in case_dirs(dataset, [split])]
    if not cases:
        raise ValueError(f"{dataset}: no cases in the '{split}' split")
    results: dict[str, dict[str, dict[str, dict]]] = {}
    jobs = [(int(K), m, c) for K in ks for m in methods for c in cases]
    per: dict[tuple[int, str], list[dict[str, float]]] = {}
    used: dict[str, set[str]] = {}
    for K, method, case in tqdm(jobs, desc="evaluate interpolation", disable=not progress):
        rebuilt = interpolate_case(case, K, method, model=loaded.get(method), device=device, timing=timing)
        per.setdefault((K, method), []).append(interpolation_metrics(case, rebuilt, K))
        if "timing" in rebuilt.extra["interpolation"]:
            used.setdefault(method, set()).add(rebuilt.extra["interpolation"]["timing"])
    for (K, method), rows in per.items():
        stats = {}
        for metric in METRICS:
            vals = np.array([r[metric] for r in rows])
            stats[metric] = {"mean": float(vals.mean()), "std": float(vals.std()), "values": vals.tolist()}
        results.setdefault(str(K), {})[method] = stats
    payload = {
        "dataset": str(dataset),
        "split": split,
        "cases": [c.case_id for c in cases],
        "models": {m: str(p) for m, p in (models or {}).items()},
        "timing": {method: " + ".join(sorted(names)) for method, names in used.items()},
        "conventions": "normalised magnitude [-1, 1] (reference scale), interpolated frames only, "
        "MSEW = mean(w * err^2) over pixels, Dice on LV myocardium (label 1)",
        "results": results,
    }
    atomic_write_json(out / "interpolation_metrics.json", payload)
    atomic_write_text(out / "interpolation_metrics.md", markdown_table(results))
    _plot(results, out)
    return results


"""Phase-synthesis quality in the paper's terms: Table I (image metrics), Table II (velocity indices and
curve correlation), Fig. 7 (example phase and error maps), Fig. 8 (index box plots), Fig. 9 (curves).

For every test case and every K, the magnitude input is the real series (K = 0) or the series rebuilt by
the HDL interpolation network from every (K+1)-th frame (K > 0), exactly as the digital twin makes it
(:func:`hdl_monai.pipeline.build_twin`); phase is synthesised from it by the proposed model
(foreground-background scheme) and, when given, by a baseline model that paints the whole ROI (scheme
``"pix2pix"``, the paper's vanilla pix2pix, or ``"vanilla"``, the split-only ablation), with the same seed.

Table I compares synthetic with real phase on the normalised scale ``p / 2048 - 1`` ([-1, 1], data range
2) over every frame and the three directions (channels): MSE; MSEW1 and MSEW2 = ``mean(w * err^2)`` over
all pixels with w1 = the padded LV region of the *real* labels (labels 1 and 2, holes filled, dilated by
``margin`` = 5 px) and w2 = the foreground of the *real* magnitude (normalised with its 99.5th percentile,
> -0.95), each 1 inside and 0.1 outside (as in Table III, ``hdl_monai.evaluate``); PSNR (dB, data range 2)
and SSIM (window 11). Two columns beyond the paper's: the MSE over the real foreground pixels only and
over the myocardium (label 1) only, where the generator paints and velocity is measured; the full-image
MSE and PSNR of the foreground-background scheme include its background noise, which an independent draw
makes about twice the noise variance (a vanilla model predicting the background's mean pays it once).
A case's value is the mean over its frames; the table gives mean (std) over cases
(population std, as Table III), with MSE x100, MSEW1 x10 and MSEW2 x100 as in the paper.

The error budget splits the full-image squared error into disjoint regions (:data:`REGIONS`: air, other
foreground, LV myocardium, LV and RV blood pool), pooled over cases, and sets the air beside its floor
(:func:`background_floor`), so a full-image MSE gap can be traced to where it arises; beside the methods it
scores the zero-phase output (:func:`zero_phase`: no generator, zero velocity everywhere), which shows
where a method's guesses cost more than they gain.

Table II: velocity indices (``hdl_monai.velocity``) of the real phase (real labels) and of each synthetic
twin (the twin's labels: real for K = 0, interpolated frames predicted for K > 0), mean (std) over cases
(sample std, as the velocity summaries). The Pearson r of each twin's global curves against the real ones
is given pooled (every curve of every case and direction concatenated: the paper's single number, 0.99 /
0.92 / 0.48 for K = 0 / 3 / 6), pooled per direction, and as mean (std) of the per-case r. Where the cases
carry ground-truth velocity (phantoms), the same r against the ground-truth curves is added, for the real
phase too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hdl_monai.data.atomic import OverwriteError, atomic_directory, atomic_write_json, atomic_write_text
from hdl_monai.data.case import DIRECTIONS, PHASE_ZERO, Case, CaseError, load_case
from hdl_monai.data.datalist import case_dirs
from hdl_monai.metrics import mse, msew, psnr, ssim
from hdl_monai.transforms.array import (
    FOREGROUND_THRESHOLD,
    foreground_mask,
    magnitude_scale,
    myocardium_region,
    normalize_magnitude,
    normalize_phase,
    weight_map,
)
from hdl_monai.velocity.agreement import pearson_r
from hdl_monai.velocity.assessment import VelocityAssessment, assess_case
from hdl_monai.velocity.curves import DEFAULT_EXCLUDE_BORDER_PX
from hdl_monai.velocity.cylindrical import CYLINDRICAL
from hdl_monai.velocity.errors import VelocityError
from hdl_monai.velocity.summary import markdown_table, mean_std, summarise_indices, table_rows

__all__ = [
    "METRICS",
    "METHODS",
    "FACTORS",
    "HEADERS",
    "PAPER_PEARSON_R",
    "REGIONS",
    "GROSS_ERROR",
    "STILL_PHASE",
    "phase_metrics",
    "region_masks",
    "region_errors",
    "background_floor",
    "zero_phase",
    "curve_correlation",
    "case_evaluation",
    "table1_markdown",
    "error_budget",
    "artefact_warnings",
    "ARTEFACT_GROSS_SHARE",
    "budget_markdown",
    "plot_error_budget",
    "evaluate_phase",
]

logger = logging.getLogger(__name__)

METRICS = ("mse", "msew1", "msew2", "psnr", "ssim", "mse_foreground", "mse_myocardium")
METHODS = ("proposed", "vanilla")
FACTORS = {"mse": 100, "msew1": 10, "msew2": 100, "psnr": 1, "ssim": 1, "mse_foreground": 100, "mse_myocardium": 100}
"""Display factors of Table I (the paper's layout)."""
HEADERS = {"mse": "MSE x100", "msew1": "MSEW1 x10", "msew2": "MSEW2 x100", "psnr": "PSNR (dB)", "ssim": "SSIM",
           "mse_foreground": "MSE foreground x100", "mse_myocardium": "MSE myocardium x100"}
"""Column headers of Table I (with the factors of :data:`FACTORS`)."""
REGIONS = ("background", "other_foreground", "lv_myocardium", "lv_blood_pool", "rv_blood_pool")
"""Disjoint regions of the error budget, from the *real* case: labels 1-3 by its labels; the rest split by its
magnitude's foreground (background = unlabelled air; other foreground = static tissue, unlabelled vessels and
any other label)."""
GROSS_ERROR = 0.5
"""A synthetic phase value off by more than this on the normalised scale (a quarter of the phase range, half
of venc) where the real value is still (:data:`STILL_PHASE`) is a gross error in the budget: motion painted
where there is none, such as a line a generator paints along a crop edge, rather than a blur. Flowing blood
is left out by the still condition; in uniform-noise air such errors are expected."""
STILL_PHASE = 0.1
"""A real phase value under this (absolute, normalised; a tenth of venc) counts as still for :data:`GROSS_ERROR`."""
ARTEFACT_GROSS_SHARE = 0.001
"""Share of a tissue region's still values with gross errors above which :func:`artefact_warnings` warns. On
the from-scratch paper-background models it separates the one generator that paints a line along its crop
edge (0.80 % of the other foreground) from the five that do not (0.001-0.04 %)."""
ARTEFACT_REGIONS = ("other_foreground", "lv_myocardium")
"""Tissue regions :func:`artefact_warnings` checks (the blood pools flow; air is noise)."""
PAPER_PEARSON_R = {0: 0.99, 3: 0.92, 6: 0.48}
"""Pearson r of the velocity curves, synthetic vs real, reported by the paper (section IV-E)."""
_ALL = "all"


def _normalised_phases(reference: Case, phase: Mapping[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Real and synthetic phase x, y, z on the normalised scale, (X, Y, T) each; a CaseError when a direction
    is missing on either side or the shapes differ."""
    missing = [d for d in DIRECTIONS if d not in reference.phase or d not in phase]
    if missing:
        raise CaseError(f"{reference.name}: phase {missing} missing on the real or the synthetic side")
    real = [normalize_phase(np.asarray(reference.phase[d], np.float32)) for d in DIRECTIONS]
    fake = [normalize_phase(np.asarray(phase[d], np.float32)) for d in DIRECTIONS]
    bad = [f"{d} {f.shape} vs {r.shape}" for d, r, f in zip(DIRECTIONS, real, fake) if f.shape != r.shape]
    if bad:
        raise CaseError(f"{reference.name}: synthetic phase shape differs from the real (X, Y, T): {', '.join(bad)}")
    return real, fake


def _normalised_magnitude(reference: Case) -> np.ndarray:
    """The real magnitude normalised as the foreground scheme sees it (99.5th percentile scale)."""
    return normalize_magnitude(reference.magnitude, magnitude_scale(reference.magnitude))


def phase_metrics(
    reference: Case, phase: Mapping[str, np.ndarray], margin: int = 5, threshold: float = FOREGROUND_THRESHOLD
) -> dict[str, float]:
    """Table I metrics of synthetic ``phase`` against ``reference.phase`` (module docstring), one case.

    Args:
        reference: the real case: phase x/y/z (0..4096), magnitude and labels on every frame (w1, w2).
        phase: synthetic {"x", "y", "z"} -> (X, Y, T) phase in scanner units.
        margin: dilation of the LV region for w1, pixels.
        threshold: foreground threshold of the normalised magnitude for w2.

    Returns:
        {"mse", "msew1", "msew2", "psnr", "ssim", "mse_foreground", "mse_myocardium"}: means over frames
        (PSNR is inf for identical images); the last two are the squared error averaged over the foreground
        / myocardium pixels of each frame (and the three directions).
    """
    if reference.label is None:
        raise CaseError(f"{reference.name}: no label.nii.gz; MSEW1 needs the LV region on every frame")

    def batch(channels: Sequence[np.ndarray]) -> np.ndarray:  # C x (X, Y, T) -> (T, C, X, Y)
        return np.moveaxis(np.stack([np.asarray(c, dtype=np.float32) for c in channels]), -1, 0)

    real_phase, fake_phase = _normalised_phases(reference, phase)
    real, fake = batch(real_phase), batch(fake_phase)
    m = _normalised_magnitude(reference)
    w1 = batch([weight_map(myocardium_region(reference.label, margin=margin))])
    w2 = batch([weight_map(foreground_mask(m, threshold))])
    def region_mse(region: np.ndarray) -> np.ndarray:  # (T, 1, X, Y) 0/1 -> per-frame MSE inside it
        inside = np.broadcast_to(region, real.shape)
        count = np.maximum(inside.sum(axis=(1, 2, 3)), 1)
        return (inside * (fake - real) ** 2).sum(axis=(1, 2, 3)) / count

    values = {
        "mse_foreground": region_mse(batch([foreground_mask(m, threshold)])),
        "mse_myocardium": region_mse(batch([reference.label == 1])),
        "mse": mse(fake, real),
        "msew1": msew(fake, real, w1),
        "msew2": msew(fake, real, w2),
        "psnr": psnr(fake, real),
        "ssim": ssim(fake, real),
    }
    return {name: float(np.mean(np.asarray(v))) for name, v in values.items()}


def _background(reference: Case, threshold: float) -> np.ndarray:
    """(X, Y, T) bool: the real case's air (label 0 and normalised magnitude <= ``threshold``)."""
    m = _normalised_magnitude(reference)
    unlabelled = np.ones(m.shape, bool) if reference.label is None else reference.label == 0
    return unlabelled & (np.asarray(foreground_mask(m, threshold)) == 0)


def region_masks(reference: Case, threshold: float = FOREGROUND_THRESHOLD) -> dict[str, np.ndarray]:
    """The disjoint (X, Y, T) bool masks of :data:`REGIONS` in the real, labelled case."""
    background = _background(reference, threshold)
    return {
        "background": background,
        "other_foreground": ~background & ~np.isin(reference.label, (1, 2, 3)),
        "lv_myocardium": reference.label == 1,
        "lv_blood_pool": reference.label == 2,
        "rv_blood_pool": reference.label == 3,
    }


def region_errors(
    reference: Case, phase: Mapping[str, np.ndarray], threshold: float = FOREGROUND_THRESHOLD,
    painted: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Where the squared error of synthetic ``phase`` against ``reference.phase`` lies, one case.

    ``painted`` ((X, Y) or (X, Y, T) bool, None = everywhere) is where the synthetic phase may come from a
    generator (its ROI, :func:`~hdl_monai.phase_synthesis.generator_roi`); gross errors are counted there
    only, so noise drawn outside the ROI onto tissue is not taken for motion a generator painted.

    Returns:
        {region (:data:`REGIONS`): {"pixels": pixel count over every frame, "squared_error": sum over those
        pixels, every frame and the three directions of (synthetic - real)^2 on the normalised scale,
        "gross_values": how many of those (pixel, frame, direction) values are painted, still in the real case
        (:data:`STILL_PHASE`) and off by more than :data:`GROSS_ERROR`, "gross_squared_error": their part
        of "squared_error"}}.
        The regions are disjoint and cover the image, so their squared errors add up to ``3 * X * Y * T``
        times the full-image MSE. A region the case lacks (no RV label) has 0 pixels.
    """
    if reference.label is None:
        raise CaseError(f"{reference.name}: no label.nii.gz; the error budget needs the labels on every frame")
    real, fake = _normalised_phases(reference, phase)
    errors = [(f - r) ** 2 for r, f in zip(real, fake)]
    squared = sum(errors)
    where = np.ones(real[0].shape, dtype=bool) if painted is None else np.asarray(painted, dtype=bool)
    if where.ndim == 2:
        where = where[..., None]
    is_gross = [(e > GROSS_ERROR ** 2) & (np.abs(r) < STILL_PHASE) & where for r, e in zip(real, errors)]
    gross_count = sum(g.astype(np.int64) for g in is_gross)
    gross_squared = sum(np.where(g, e, 0.0) for g, e in zip(is_gross, errors))
    masks = region_masks(reference, threshold)
    return {r: {"pixels": int(masks[r].sum()), "squared_error": float(squared[masks[r]].sum(dtype=np.float64)),
                "gross_values": int(gross_count[masks[r]].sum()),
                "gross_squared_error": float(gross_squared[masks[r]].sum(dtype=np.float64))}
            for r in REGIONS}


def background_floor(
    cases: Sequence[Case], stats: Mapping[str, Any] | None, threshold: float = FOREGROUND_THRESHOLD
) -> dict[str, Any]:
    """What the background MSE must be, whatever the generator does, when the air phase is noise that the
    magnitude cannot predict (the phantom's, and the paper's premise).

    Over the real background pixels of ``cases`` (pooled, every frame), per direction d with mean mu_d and
    variance s2_d: a model that paints one value per pixel can do no better than s2_d (the mean predictor);
    a draw from an independent Gaussian N(m_d, sd_d^2) (the foreground-background scheme, ``stats`` = its
    fitted mean / std) expects s2_d + sd_d^2 + (mu_d - m_d)^2 (before the clip to [-1, 1]). Both are
    averaged over the directions, as the MSE is.

    Returns:
        {"pixels", "mean", "variance" (per direction), "mean_predictor", "gaussian_draw" (None without
        ``stats``)}.
    """
    count = 0
    sums = {d: 0.0 for d in DIRECTIONS}
    squares = {d: 0.0 for d in DIRECTIONS}
    for case in cases:
        air = _background(case, threshold)
        count += int(air.sum())
        for d in DIRECTIONS:
            values = normalize_phase(case.phase[d])[air].astype(np.float64)
            sums[d] += float(values.sum())
            squares[d] += float((values ** 2).sum())
    if count == 0:
        raise CaseError("background_floor: no background pixel (label 0, normalised magnitude <= threshold) in the cases")
    mean = {d: sums[d] / count for d in DIRECTIONS}
    variance = {d: max(squares[d] / count - mean[d] ** 2, 0.0) for d in DIRECTIONS}
    draw = None
    if stats is not None:
        draw = float(np.mean([variance[d] + float(stats["std"][d]) ** 2 + (mean[d] - float(stats["mean"][d])) ** 2
                              for d in DIRECTIONS]))
    return {"pixels": count, "mean": mean, "variance": variance,
            "mean_predictor": float(np.mean(list(variance.values()))), "gaussian_draw": draw}


def zero_phase(reference: Case) -> dict[str, np.ndarray]:
    """Phase x, y, z of zero velocity everywhere (:data:`~hdl_monai.data.PHASE_ZERO`) on ``reference``'s grid:
    the output that guesses nothing, which Table I's error budget scores beside the methods."""
    return {d: np.full(np.shape(reference.phase[d]), PHASE_ZERO, dtype=np.float32) for d in DIRECTIONS}


def curve_correlation(
    reference: Sequence[Mapping[str, np.ndarray]], synthetic: Sequence[Mapping[str, np.ndarray]]
) -> dict[str, float]:
    """Pearson r of synthetic vs reference curves, every pair's curves concatenated: per direction and
    ``"all"`` (the three directions concatenated too, the paper's single number). NaN when undefined."""
    if len(reference) != len(synthetic) or not reference:
        return {**{d: float("nan") for d in CYLINDRICAL}, _ALL: float("nan")}
    r = {d: pearson_r(np.concatenate([c[d] for c in reference]), np.concatenate([c[d] for c in synthetic])) for d in CYLINDRICAL}
    r[_ALL] = pearson_r(
        np.concatenate([c[d] for c in reference for d in CYLINDRICAL]),
        np.concatenate([c[d] for c in synthetic for d in CYLINDRICAL]),
    )
    return r


def case_evaluation(
    reference: Case,
    synthetic: Case,
    margin: int = 5,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
    real: VelocityAssessment | None = None,
    truth: VelocityAssessment | None = None,
    painted: np.ndarray | None = None,
) -> tuple[dict[str, Any], VelocityAssessment | None]:
    """Everything Tables I and II need from one (real case, synthetic twin) pair.

    Args:
        reference: the real case (phase, labels; velocity files for ``truth``).
        synthetic: the twin (synthetic phase, its own labels).
        margin: w1 dilation (pixels).
        exclude_border_px: myocardium border left out of the velocity curves (both sides).
        real, truth: the reference's assessments when already computed (from phase; from ground truth).
        painted: the generator's ROI, where :func:`region_errors` counts gross errors (None = everywhere).

    Returns:
        (record, the twin's assessment or None when it cannot be assessed). record = {"metrics": Table I
        values, "regions": :func:`region_errors`, "indices": Table II indices, "pearson_r": {direction...,
        "all"} vs real, "pearson_r_truth" (when ``truth`` or the reference's velocity files exist),
        "velocity_error": message or None}.
    """
    record: dict[str, Any] = {"metrics": phase_metrics(reference, synthetic.phase, margin),
                              "regions": region_errors(reference, synthetic.phase, painted=painted)}
    real = real or assess_case(reference, exclude_border_px=exclude_border_px)
    if truth is None and reference.velocity:
        truth = assess_case(reference, source="velocity", exclude_border_px=exclude_border_px)
    try:
        assessment = assess_case(synthetic, exclude_border_px=exclude_border_px)
    except VelocityError as err:
        record.update(indices=None, pearson_r=None, velocity_error=str(err))
        if truth is not None:
            record["pearson_r_truth"] = None
        return record, None
    record["indices"] = assessment.indices
    record["pearson_r"] = curve_correlation([real.curves_mm_s], [assessment.curves_mm_s])
    if truth is not None:
        record["pearson_r_truth"] = curve_correlation([truth.curves_mm_s], [assessment.curves_mm_s])
    record["velocity_error"] = None
    return record, assessment


# --------------------------------------------------------------------------------------------- tables


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or np.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}" if np.isfinite(value) else ("inf" if value > 0 else "-inf")


def table1_markdown(table1: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> str:
    """Table I layout: one row per (K, method), mean (std) over cases; MSE x100, MSEW1 x10, MSEW2 x100."""
    head = ["K", "method", *(HEADERS[m] for m in METRICS)]
    rows = []
    for K in sorted(table1, key=int):
        for method, stats in table1[K].items():
            rows.append([K, method, *[
                f"{_fmt(stats[m]['mean'] * FACTORS[m])} ({_fmt(stats[m]['std'] * FACTORS[m])})" for m in METRICS
            ]])
    return markdown_table(head, rows)


def error_budget(per_case: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Pool :func:`region_errors` over cases: per region its share of the pixels, its MSE (squared error per
    pixel and direction) and its share of the total squared error (NaN MSE for a region with no pixel)."""
    pixels = {r: sum(c[r]["pixels"] for c in per_case) for r in REGIONS}
    errors = {r: sum(c[r]["squared_error"] for c in per_case) for r in REGIONS}
    gross = {r: sum(c[r]["gross_values"] for c in per_case) for r in REGIONS}
    gross_errors = {r: sum(c[r]["gross_squared_error"] for c in per_case) for r in REGIONS}
    total_pixels, total_error = sum(pixels.values()), sum(errors.values())
    return {r: {
        "pixel_share": pixels[r] / total_pixels if total_pixels else float("nan"),
        "mse": errors[r] / (len(DIRECTIONS) * pixels[r]) if pixels[r] else float("nan"),
        "error_share": errors[r] / total_error if total_error else float("nan"),
        "gross_share": gross[r] / (len(DIRECTIONS) * pixels[r]) if pixels[r] else float("nan"),
        "gross_error_share": gross_errors[r] / errors[r] if errors[r] else float("nan"),
    } for r in REGIONS}


def artefact_warnings(budget: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
                      threshold: float = ARTEFACT_GROSS_SHARE) -> list[str]:
    """One message per (K, method, tissue region of :data:`ARTEFACT_REGIONS`) of an :func:`error_budget` per K
    and method whose gross-error share is above ``threshold``: motion painted on still tissue, such as a line
    along the generator's crop edge, which ``window_shift`` (:func:`~hdl_monai.phase_synthesis.synthesize_phase`)
    keeps out."""
    messages = []
    for K in sorted(budget, key=int):
        for method, regions in budget[K].items():
            for region in ARTEFACT_REGIONS:
                v = regions[region]
                if v["gross_share"] > threshold:
                    messages.append(
                        f"K={K} {method}: {100 * v['gross_share']:.2f} % of the {region.replace('_', ' ')} values "
                        f"(still in the real case) are off by more than {GROSS_ERROR}, holding "
                        f"{100 * v['gross_error_share']:.1f} % of that region's squared error: the generator paints "
                        "motion on still tissue (look at phase_examples_*.png for a line along the crop edge; "
                        "--window_shift 8 keeps crop-edge artefacts out)")
    return messages


def budget_markdown(budget: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]]) -> str:
    """One row per (K, method, region): pixels %, MSE x100 inside the region, share of the squared error %."""
    rows = []
    for K in sorted(budget, key=int):
        for method, regions in budget[K].items():
            for region, v in regions.items():
                if v["pixel_share"] > 0:
                    rows.append([K, method, region.replace("_", " "), _fmt(100 * v["pixel_share"], 1),
                                 _fmt(100 * v["mse"]), _fmt(100 * v["error_share"], 1),
                                 _fmt(100 * v["gross_share"], 2), _fmt(100 * v["gross_error_share"], 1)])
    return markdown_table(["K", "method", "region", "pixels %", "MSE x100", "share of squared error %",
                           f"gross errors on still values % (error > {GROSS_ERROR}, real < {STILL_PHASE})",
                           "their share of the region's error %"], rows)


def _floor_markdown(floor: Mapping[str, Any]) -> str:
    text = (f"Real background phase ({floor['pixels']} pixels): variance x100 "
            + ", ".join(f"{d} {100 * v:.3f}" for d, v in floor["variance"].items())
            + f". No model that paints one value per pixel can have a background MSE x100 below "
            f"{100 * floor['mean_predictor']:.3f} (the mean predictor)")
    if floor["gaussian_draw"] is not None:
        text += (f"; an independent draw from the proposed model's fitted Gaussian expects "
                 f"{100 * floor['gaussian_draw']:.3f} (before its clip to [-1, 1])")
    return text + ". Compare with the background rows above.\n"


def _zero_phase_summary(per_case: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """Full-image MSE (mean over cases, as Table I) and the pooled :func:`error_budget` of the zero-phase output."""
    mse = [sum(r["squared_error"] for r in c.values()) / (len(DIRECTIONS) * sum(r["pixels"] for r in c.values()))
           for c in per_case]
    return {"mse": float(np.mean(mse)), "error_budget": error_budget(per_case)}


def _zero_markdown(zero: Mapping[str, Any]) -> str:
    regions = ", ".join(f"{r.replace('_', ' ')} {_fmt(100 * v['mse'])}" for r, v in zero["error_budget"].items()
                        if v["pixel_share"] > 0)
    return (f"Zero phase (no generator: every pixel at zero velocity) scores full-image MSE x100 "
            f"{100 * zero['mse']:.3f}; MSE x100 per region: {regions}. Where a method's region MSE is above it, its "
            "guesses there cost more than they gain (noise, or flow the magnitude does not show).\n")


def _r_markdown(pearson: Mapping[str, Any], truth: Mapping[str, Any] | None) -> str:
    head = ["K", "method", "r pooled (all directions)", *[f"r {d}" for d in CYLINDRICAL], "per-case r, mean (std)", "paper"]
    if truth is not None:
        head.append("r vs ground truth (pooled)")
    rows = []
    if truth is not None and "real" in truth:
        rows.append(["-", "real phase", "-", *["-"] * len(CYLINDRICAL), "-", "-", _fmt(truth["real"]["pooled"][_ALL])])
    for K in sorted(pearson, key=int):
        for method, r in pearson[K].items():
            per_case = ", ".join(
                f"{d[:4]}. {_fmt(r['per_case'][d]['mean'])} ({_fmt(r['per_case'][d]['std'])})" for d in CYLINDRICAL
            )
            paper = f"{PAPER_PEARSON_R[int(K)]:.2f}" if method == "proposed" and int(K) in PAPER_PEARSON_R else "-"
            row = [K, method, _fmt(r["pooled"][_ALL]), *[_fmt(r["pooled"][d]) for d in CYLINDRICAL], per_case, paper]
            if truth is not None:
                row.append(_fmt(truth[K][method]["pooled"][_ALL]))
            rows.append(row)
    return markdown_table(head, rows)


# --------------------------------------------------------------------------------------------- figures


REGION_COLOURS = {"background": "#9e9e9e", "other_foreground": "#8c6d31", "lv_myocardium": "#d62728",
                  "lv_blood_pool": "#1f77b4", "rv_blood_pool": "#17becf"}


def plot_error_budget(budget: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
                      floor: Mapping[str, Any] | None = None):
    """Horizontal stacked bars, one per (K, method): each region's contribution to the full-image MSE
    (pixel share x MSE, x100), so a bar's length is Table I's MSE and two bars differ region by region.
    With ``floor``, a tick on each bar marks where its background segment would end at the mean
    predictor's floor (no one-value-per-pixel output goes below it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bars = [(f"K={K} {method}", regions) for K in sorted(budget, key=int) for method, regions in budget[K].items()]
    fig = Figure(figsize=(9, 1.8 + 0.5 * len(bars)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for row, (_, regions) in enumerate(bars):
        left = 0.0
        for region in REGIONS:
            v = regions.get(region)
            if not v or not v["pixel_share"] > 0:
                continue
            width = 100 * v["pixel_share"] * v["mse"]
            ax.barh(row, width, left=left, color=REGION_COLOURS[region],
                    label=region.replace("_", " ") if row == 0 else None)
            left += width
        air = regions.get("background")
        if floor is not None and air and air["pixel_share"] > 0:
            x = 100 * air["pixel_share"] * floor["mean_predictor"]
            ax.plot([x, x], [row - 0.45, row + 0.45], color="black", lw=1.5,
                    label="background at the mean-predictor floor" if row == 0 else None)
    ax.set_yticks(range(len(bars)), [name for name, _ in bars])
    ax.invert_yaxis()
    ax.set_xlabel("contribution to full-image MSE x100 (pixel share x region MSE; normalised phase)")
    ax.set_title("Where the squared error lies")
    fig.legend(loc="outside lower center", ncol=3, fontsize=8)
    return fig


def _plot_phase_examples(real: Case, twins: Mapping[str, Case], path: Path, t: int) -> None:
    """Fig. 7: real phase, then per K the synthetic phase and |synthetic - real| (normalised), frame t."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hdl_monai.velocity.plots import save_figure

    columns = [("real", real.phase, False)]
    for name, twin in twins.items():
        columns.append((name, twin.phase, False))
        columns.append((f"|{name} - real|", twin.phase, True))
    fig = Figure(figsize=(2.2 * len(columns), 6.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(DIRECTIONS), len(columns), squeeze=False)
    for r, d in enumerate(DIRECTIONS):
        ref = normalize_phase(real.phase[d][..., t])
        for c, (name, phase, diff) in enumerate(columns):
            image = normalize_phase(phase[d][..., t])
            ax = axes[r, c]
            if diff:
                shown = ax.imshow(np.abs(image - ref).T, origin="lower", cmap="magma", vmin=0.0, vmax=1.0)
            else:
                shown = ax.imshow(image.T, origin="lower", cmap="gray", vmin=-1.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"phase {d}")
        fig.colorbar(shown, ax=axes[r, -1], fraction=0.05)
    fig.suptitle(f"{real.case_id}, frame t = {t}\nnormalised phase (p / 2048 - 1; x horizontal) and absolute error",
                 fontsize=10)  # two lines: one run's figure is only three panels wide
    save_figure(fig, path)


# --------------------------------------------------------------------------------------------- evaluation


def _summary(values: Sequence[float]) -> dict[str, Any]:
    """mean and population std (as Table III) of a metric over cases, with the values."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "values": arr.tolist()}


def evaluate_phase(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    ks: Sequence[int] = (0, 3, 6),
    phase_model: Any = None,
    vanilla_model: Any = None,
    interpolation_model: Any = None,
    split: str = "test",
    device: str = "cpu",
    seed: int = 0,
    margin: int = 5,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
    example_case: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    window_shift: int | None = None,
) -> dict[str, Any]:
    """Tables I and II (and Fig. 7-9) over a dataset split; writes them to ``out`` (atomically).

    Args:
        dataset: dataset folder; the ``split`` cases need magnitude, real phase and labels on every frame.
        out: output folder (refused if it exists and is not empty, unless ``overwrite``). Writes
            evaluate_phase.json (everything, per case too), evaluate_phase.md (both tables, figures),
            table1_phase_metrics.md, error_budget.md (:func:`error_budget` per K and method, with
            :func:`background_floor`; error_budget.png, :func:`plot_error_budget`), table2_velocity.md,
            velocity_boxplots.png (Fig. 8, proposed model),
            velocity_curves_<case>.png (Fig. 9) and phase_examples_<case>.png (Fig. 7) for one case.
        ks: the K values (0 = real magnitude); K > 0 needs ``interpolation_model``.
        phase_model: the proposed model (None = the bundle default, see ``hdl_monai.pipeline``).
        vanilla_model: a baseline model of scheme "pix2pix" or "vanilla"; rows "vanilla" are added when given.
        interpolation_model: the HDL interpolation model (None = the bundle default).
        split: datalist split to evaluate.
        device: torch device.
        seed: background-noise seed of the synthesis (the same for every case, K and method).
        margin: w1 dilation, pixels.
        exclude_border_px: myocardium border left out of the velocity curves.
        example_case: case_id of the case drawn in Fig. 7 and 9 (default: the first).
        overwrite: replace an existing ``out``.
        progress: tqdm bar over (case, K).
        window_shift: pixels by which the phase generator's four blended windows move off the ROI
            (0: one window; see :func:`~hdl_monai.phase_synthesis.synthesize_phase`). The same for both
            methods; None = the default.

    Returns:
        The content of evaluate_phase.json.
    """
    from tqdm.auto import tqdm

    from hdl_monai.engines.pix2pix import paints_whole_image
    from hdl_monai.phase_synthesis import DEFAULT_WINDOW_SHIFT, generator_roi, load_phase_model, synthesize_phase
    from hdl_monai.pipeline import build_twin, load_twin_models, resolve_model
    from hdl_monai.velocity.report import _json_safe

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OverwriteError(f"{out}: exists; pass overwrite=True (--overwrite) to replace it")
    shift = DEFAULT_WINDOW_SHIFT if window_shift is None else int(window_shift)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 0:
        raise ValueError(f"K values must be >= 0, got {ks}")
    interp, proposed = load_twin_models(max(ks), interpolation_model, phase_model, device)
    models = {"proposed": proposed}
    if vanilla_model is not None:
        models["vanilla"] = load_phase_model(resolve_model("phase", vanilla_model), device)
    for method, model in models.items():
        if paints_whole_image(model.scheme) != (method == "vanilla"):
            expected = "a baseline scheme (pix2pix or vanilla)" if method == "vanilla" else "foreground_background"
            logger.warning("the %s model %s was trained with scheme %r (expected %s)", method, model.path, model.scheme, expected)
    dirs = case_dirs(dataset, [split])
    if not dirs:
        raise CaseError(f"{dataset}: no cases in the '{split}' split")
    cases = [load_case(d) for d in dirs]
    no_phase = [c.case_id for c in cases if len(c.phase) != 3]
    if no_phase:
        raise CaseError(f"{dataset}: cases {no_phase} have no real phase to compare with")
    example = example_case or cases[0].case_id
    if example not in [c.case_id for c in cases]:
        raise CaseError(f"{dataset}: example case {example!r} is not in the '{split}' split")
    with_truth = all(len(c.velocity) == 3 for c in cases)

    records: list[dict[str, Any]] = []
    zero_regions: list[dict[str, dict[str, float]]] = []  # the zero-phase output, the same at every K
    real_curves: list[Mapping[str, np.ndarray]] = []
    truth_curves: list[Mapping[str, np.ndarray]] = []
    synthetic: dict[tuple[int, str], list[tuple[int, Mapping[str, np.ndarray]]]] = {}  # (K, method) -> [(case, curves)]
    indices: dict[Any, list] = {"real": [], "truth": []}
    shown: dict[str, Any] = {"twins": {}, "assessments": {}}
    bar = tqdm(total=len(cases) * len(ks), desc="evaluate phase", unit="case-K", disable=not progress)
    for i, case in enumerate(cases):
        real = assess_case(case, exclude_border_px=exclude_border_px)
        zero_regions.append(region_errors(case, zero_phase(case)))
        truth = assess_case(case, source="velocity", exclude_border_px=exclude_border_px) if with_truth else None
        real_curves.append(real.curves_mm_s)
        indices["real"].append(real.indices)
        entry: dict[str, Any] = {"case_id": case.case_id, "real_indices": real.indices, "K": {}}
        if truth is not None:
            truth_curves.append(truth.curves_mm_s)
            indices["truth"].append(truth.indices)
            entry["truth_indices"] = truth.indices
            entry["real_pearson_r_truth"] = curve_correlation([truth.curves_mm_s], [real.curves_mm_s])
        if case.case_id == example:
            shown.update(case=case, real=real, truth=truth)
        for K in ks:
            bar.set_postfix_str(f"{case.case_id} K={K}", refresh=False)
            twin = build_twin(case, K, interp, proposed, device=device, seed=seed, window_shift=shift)
            twins = {"proposed": twin}
            if "vanilla" in models:
                twins["vanilla"] = replace(twin, phase=synthesize_phase(twin, models["vanilla"], device=device, seed=seed,
                                                                     window_shift=shift))
            for method, twin_case in twins.items():
                record, assessment = case_evaluation(case, twin_case, margin, exclude_border_px, real=real, truth=truth,
                                                     painted=generator_roi(twin_case, models[method]))
                entry["K"].setdefault(str(K), {})[method] = record
                if assessment is None:
                    logger.warning("%s K=%d %s: velocity not assessed: %s", case.case_id, K, method, record["velocity_error"])
                else:
                    synthetic.setdefault((K, method), []).append((i, assessment.curves_mm_s))
                    indices.setdefault((K, method), []).append(assessment.indices)
                if case.case_id == example and (method == "proposed" or K == ks[0]):  # the baseline at the first K
                    label = f"K={K}" if method == "proposed" else f"K={K} {method}"
                    shown["twins"][label] = twin_case
                    if assessment is not None:
                        shown["assessments"][label] = assessment
            bar.update(1)
        records.append(entry)
    bar.close()

    def correlations(reference: Sequence[Mapping[str, np.ndarray]], key: tuple[int, str], r_key: str) -> dict[str, Any]:
        pairs = synthetic.get(key, [])
        per_case = [records[i]["K"][str(key[0])][key[1]][r_key] for i, _ in pairs]
        return {
            "pooled": curve_correlation([reference[i] for i, _ in pairs], [c for _, c in pairs]),
            "per_case": {d: mean_std([r[d] for r in per_case]) for d in (*CYLINDRICAL, _ALL)},
            "n": len(pairs),
        }

    table1: dict[str, dict[str, Any]] = {}
    budget: dict[str, dict[str, Any]] = {}
    pearson: dict[str, dict[str, Any]] = {}
    pearson_truth: dict[str, Any] = {}
    failures = []
    for K in ks:
        for method in models:
            rows = [e["K"][str(K)][method] for e in records]
            table1.setdefault(str(K), {})[method] = {m: _summary([r["metrics"][m] for r in rows]) for m in METRICS}
            budget.setdefault(str(K), {})[method] = error_budget([r["regions"] for r in rows])
            failures += [f"{e['case_id']} K={K} {method}: {r['velocity_error']}" for e, r in zip(records, rows) if r["velocity_error"]]
            pearson.setdefault(str(K), {})[method] = correlations(real_curves, (K, method), "pearson_r")
            if with_truth:
                pearson_truth.setdefault(str(K), {})[method] = correlations(truth_curves, (K, method), "pearson_r_truth")
    if with_truth:
        pearson_truth["real"] = {
            "pooled": curve_correlation(truth_curves, real_curves),
            "per_case": {d: mean_std([e["real_pearson_r_truth"][d] for e in records]) for d in (*CYLINDRICAL, _ALL)},
            "n": len(records),
        }
    columns = {}
    if with_truth:
        columns["ground truth"] = summarise_indices(indices["truth"])
    columns["real"] = summarise_indices(indices["real"])
    for K in ks:
        for method in models:
            if indices.get((K, method)):
                columns[f"K={K} {method}"] = summarise_indices(indices[(K, method)])
    payload = {
        "dataset": str(dataset),
        "split": split,
        "cases": [c.case_id for c in cases],
        "ks": ks,
        "methods": list(models),
        "models": {"interpolation": str(interp.path) if interp is not None else None,
                   **{m: str(model.path) for m, model in models.items()}},
        "schemes": {m: model.scheme for m, model in models.items()},
        "seed": int(seed),
        "window_shift": shift,
        "margin_px": int(margin),
        "exclude_border_px": int(exclude_border_px),
        "example_case": example,
        "conventions": " ".join(__doc__.split("\n\n", 1)[1].split()),
        "table1": table1,
        "error_budget": budget,
        "artefact_warnings": artefact_warnings(budget),
        "background_floor": background_floor(cases, proposed.background_stats),
        "zero_phase": _zero_phase_summary(zero_regions),
        "table2": columns,
        "pearson_r": pearson,
        "pearson_r_truth": pearson_truth if with_truth else None,
        "paper_pearson_r": {str(k): v for k, v in PAPER_PEARSON_R.items()},
        "velocity_failures": failures,
        "per_case": records,
    }
    for message in payload["artefact_warnings"]:
        logger.warning("%s", message)
    payload = _json_safe(payload)
    with atomic_directory(out, overwrite=out.exists()) as tmp:
        atomic_write_json(tmp / "evaluate_phase.json", payload)
        table1_md = table1_markdown(table1)
        budget_md = (budget_markdown(budget) + "\n" + _floor_markdown(payload["background_floor"]) + "\n"
                     + _zero_markdown(payload["zero_phase"]))
        table2_md = markdown_table(["direction", "index", *[f"{c} (n = {_n(v)})" for c, v in columns.items()]], table_rows(columns))
        r_md = _r_markdown(pearson, pearson_truth if with_truth else None)
        atomic_write_text(tmp / "table1_phase_metrics.md", table1_md)
        atomic_write_text(tmp / "error_budget.md", budget_md)
        atomic_write_text(tmp / "table2_velocity.md", table2_md + "\n" + r_md)
        figures = _figures(tmp, shown, indices, ks, budget, payload["background_floor"])
        atomic_write_text(tmp / "evaluate_phase.md", _report_md(payload, table1_md, budget_md, table2_md, r_md, figures))
    return payload


def _n(summary: Mapping[str, Any]) -> int:
    """Cases behind a Table II column."""
    first = next(iter(summary.values()))
    return int(next(iter(first.values()))["n"])


def _figures(out: Path, shown: Mapping[str, Any], indices: Mapping[Any, list], ks: Sequence[int],
             budget: Mapping[str, Any], floor: Mapping[str, Any] | None) -> list[str]:
    """The error budget's bars, Fig. 8 (box plots: real and the proposed model per K), Fig. 9 and Fig. 7 for
    the example case (with the baseline model at the first K when given, as the paper's Fig. 11 sets it
    beside the proposed one)."""
    from hdl_monai.velocity.plots import plot_curves, plot_index_boxplots, save_figure

    save_figure(plot_error_budget(budget, floor), out / "error_budget.png")
    written = ["error_budget.png"]
    groups = {"real": indices["real"], **{f"K={K}": indices[(K, "proposed")] for K in ks if indices.get((K, "proposed"))}}
    save_figure(plot_index_boxplots(groups, title="velocity indices: real phase vs synthetic (proposed model)"),
                out / "velocity_boxplots.png")
    written.append("velocity_boxplots.png")
    case = shown["case"]
    series = {"real": shown["real"], **shown["assessments"]}
    if shown.get("truth") is not None:
        series["ground truth"] = shown["truth"]
    notes = {
        d: "r " + " / ".join(f"{pearson_r(shown['real'].curves_mm_s[d], a.curves_mm_s[d]):.2f}" for a in shown["assessments"].values())
        for d in CYLINDRICAL
    }
    baseline = [name for name in shown["assessments"] if name.endswith(" vanilla")]
    models_shown = "proposed model" + (f"; {baseline[0]}: the baseline" if baseline else "")
    title = (f"{case.case_id}: real vs synthetic global velocities ({models_shown}); "
             f"r vs real for {' / '.join(shown['assessments'])} in the panel titles")
    name = f"velocity_curves_{case.case_id}.png"
    save_figure(plot_curves(series, title=title, notes=notes), out / name)
    written.append(name)
    name = f"phase_examples_{case.case_id}.png"
    _plot_phase_examples(case, shown["twins"], out / name, t=1 % case.frames)
    written.append(name)
    return written


def _report_md(payload: Mapping[str, Any], table1_md: str, budget_md: str, table2_md: str, r_md: str,
               figures: Sequence[str]) -> str:
    lines = [
        "# Phase synthesis and velocity evaluation (Tables I and II of Xing et al. 2022)",
        "",
        f"Dataset `{payload['dataset']}`, split `{payload['split']}` ({len(payload['cases'])} case(s)); K = "
        f"{', '.join(str(k) for k in payload['ks'])}; models: " + ", ".join(
            f"{m} `{p}`" + (f" (scheme {payload['schemes'][m]})" if m in payload["schemes"] else "")
            for m, p in payload["models"].items() if p)
        + f"; seed {payload['seed']}; generator windows "
        + (f"4, shifted {payload['window_shift']} px" if payload.get("window_shift") else "1") + ".",
        "",
        "## Table I: synthetic vs real phase (normalised [-1, 1]; mean (std) over cases)",
        "",
        table1_md,
        "PSNR uses data range 2 (the normalised scale); the paper's PSNR (~42 dB) is on its own, unstated scale.",
        "",
        "## Where the squared error lies (pooled over cases and frames; real labels and real magnitude)",
        "",
        budget_md,
        *([f"**Warning:** {m}.\n" for m in payload["artefact_warnings"]]),
        "## Table II: velocity indices, mean (std) over cases",
        "",
        table2_md,
        "## Pearson r of the global velocity curves against the real ones",
        "",
        r_md,
    ]
    if payload["velocity_failures"]:
        lines += ["## Twins whose velocity could not be assessed (left out of Table II and r)", ""]
        lines += [f"- {f.splitlines()[0]}" for f in payload["velocity_failures"]] + [""]
    lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + ["", "## Conventions", "", payload["conventions"], ""]
    return "\n".join(lines)

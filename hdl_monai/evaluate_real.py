"""Temporal interpolation on real cine MRI (the Sunnybrook subset): linear, optical flow and HDL.

Real short-axis cine has what the phantom lacks (real anatomy, blood-flow artefacts, 20 frames per
cycle instead of 50) and lacks what HDL's network wants: the LV masks of the two kept frames, since
Sunnybrook contours exist only on end-diastole (ED: labels 1 myocardium + 2 cavity) and end-systole
(ES: label 2 only). This module evaluates interpolation there anyway, honestly:

- **LV-centred ROI.** Each slice gets one fixed box (the same for every frame) centred on the LV
  centroid of its labelled frames (labels 1 and 2 pooled over ED and ES, :func:`lv_roi_box`); slices
  without contours are left out, because they have no LV centre. The network predicts inside its own
  ROI (``spec.roi_size``, 96 x 96 px for the shipped model, about 131 mm at 1.37 mm pixels) around
  that centre; outside it the frame is linearly interpolated (as ``interpolate_with_model``).
- **Mask-free input (main HDL rows).** The mask pair channels of the 7-channel input are zero
  (:func:`mask_free_input`), so the model needs nothing but the kept magnitude frames.
  ``mask_mode="ed"`` instead puts the ED myocardium mask (label 1) in both mask channels, the ED
  mask "propagated" to every kept frame; it is only evaluated with the phantom model.
- **Fine-tuning** (:func:`finetune_mask_free`): leave-one-patient-out, starting from the phantom model,
  Adam on eq. 1's weighted MAE of the magnitude (w1 = the labelled LV region dilated by ``margin`` px,
  fixed over the cycle; w2 = the target frame's foreground; 1 inside, 0.1 outside) with zero mask
  channels and no Dice term; random (slice, tau, K, k) with K uniform in ``K_range``, tau uniform in
  0..T-1, k uniform in 1..K; ``steps`` steps of ``batch_size`` samples, reproducible from ``seed``.
- **Metrics** (:func:`roi_metrics`): PSNR (dB, data range 2) and SSIM (window 11) on the interpolated
  frames only (kept frames are copies), inside the evaluation ROI (default 96 x 96 px around the LV
  centroid), on magnitude normalised to [-1, 1] with the *reference* series' scale (99.5th
  percentile of the reference slice's ROI over all frames, ``clip(m / scale, 0, 1) * 2 - 1``), as the
  phantom evaluation (``hdl_monai.evaluate``) does on its whole image. A slice's value is the mean
  over its interpolated frames; tables give mean (std) over slices (population std), per patient and
  pooled, plus the paired PSNR difference to linear interpolation per slice.

Array axes follow the case format: magnitude and label series are (X, Y, T), x = axis 0.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.utils import ensure_tuple_rep

from hdl_monai.baselines.series import BASELINE_METHODS, rebuild_series
from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.data.case import Case, CaseError
from hdl_monai.engines.interpolation import (
    InterpolationModel,
    estimate_planes,
    load_interpolation_model,
    predict_batches,
    resolve_timing,
    save_interpolation_model,
)
from hdl_monai.losses.weighted import WeightedMAELoss
from hdl_monai.metrics import psnr, ssim
from hdl_monai.transforms.array import (
    RoiBox,
    check_gap,
    condition_maps,
    crop_roi,
    denormalize_magnitude,
    foreground_mask,
    interpolation_estimate,
    interpolation_frames,
    interpolation_plan,
    kept_frames,
    lv_center,
    magnitude_scale,
    mask_from_label,
    myocardium_region,
    normalize_magnitude,
    paste_roi,
    roi_box,
    sample_interpolation_indices,
    weight_map,
)

__all__ = [
    "REAL_METHODS",
    "MASK_MODES",
    "load_sunnybrook",
    "labelled_frames",
    "lv_roi_box",
    "check_ks",
    "mask_free_input",
    "interpolate_mask_free",
    "finetune_mask_free",
    "roi_metrics",
    "evaluate_slices",
    "summarize",
    "evaluate_sunnybrook",
    "markdown_report",
    "plot_psnr_vs_k",
    "write_report",
]

REAL_METHODS = ("linear", "optical_flow", "hdl", "hdl_ed_mask", "hdl_finetuned")
"""Rows of the real-cine table: the two baselines, the phantom model with zero masks, with the ED mask
in both mask channels, and the phantom model fine-tuned (zero masks) on the other patients."""
MASK_MODES = ("zero", "ed")
"""Mask channels of the network input: ``"zero"`` (mask-free) or ``"ed"`` (the ED myocardium mask)."""
_PATIENT_FOLDER = re.compile(r"^SCD\d+$")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- data


def load_sunnybrook(
    root: str | os.PathLike, patients: Sequence[str] | None = None, labelled_only: bool = True
) -> dict[str, list[Case]]:
    """Read Sunnybrook patients into memory: ``{patient folder: [slice cases]}`` (nothing is written).

    Uses :func:`hdl_monai.data.dicom.read_dicom_series` (the reader behind ``hdl-monai import-dicom``)
    with the contours in ``root/contours``. ``patients`` defaults to every ``SCD*`` folder of ``root``.
    With ``labelled_only`` the slices without contours are dropped (they have no LV centre).
    """
    from hdl_monai.data.dicom import read_dicom_series

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (the Sunnybrook subset, see its README)")
    names = list(patients) if patients else sorted(p.name for p in root.iterdir() if _PATIENT_FOLDER.match(p.name))
    if not names:
        raise CaseError(f"{root}: no patient folders (SCD*)")
    contours = root / "contours"
    out = {}
    for name in names:
        cases = read_dicom_series(root / name, contours=contours if contours.is_dir() else None)
        out[name] = [c for c in cases if labelled_frames(c)] if labelled_only else cases
    return out


def labelled_frames(case: Case) -> list[int]:
    """The frames that carry labels: ``case.labelled_frames``, every frame when the case lists none but
    has a label series, no frame when it has no label."""
    if case.label is None:
        return []
    return list(range(case.frames)) if case.labelled_frames is None else [int(f) for f in case.labelled_frames]


def lv_roi_box(case: Case, roi_size: Sequence[int] | int) -> RoiBox:
    """The ``roi_size`` box centred on the LV centroid (labels 1 and 2) of the labelled frames, fixed
    over the cycle. CaseError when the case has no labelled frame or no LV pixel on them."""
    frames = labelled_frames(case)
    if not frames:
        raise CaseError(f"{case.name}: no labelled frame, so no LV centre for the ROI (needs contours on some frame)")
    try:
        center = lv_center(case.label[..., frames], (1, 2))
    except ValueError:
        raise CaseError(f"{case.name}: no LV pixel (label 1 or 2) on the labelled frames {frames}") from None
    return roi_box(center, roi_size, case.magnitude.shape[:2])


def check_ks(ks: Sequence[int], case: Case, K_range: Sequence[int] | None = None) -> list[int]:
    """The K as ints; ValueError naming the case when one does not fit its T frames (``2 (K + 1) <= T``)
    or lies outside ``K_range`` (a model's trained range)."""
    out = []
    for K in ks:
        try:
            check_gap(int(K), case.frames)
        except ValueError as err:
            raise ValueError(f"{case.name}: {err}") from None
        if K_range is not None and not int(K_range[0]) <= int(K) <= int(K_range[1]):
            raise ValueError(f"{case.name}: K={K} outside the model's K_range {list(K_range)}")
        out.append(int(K))
    return out


def _ed_mask(case: Case, box: RoiBox, mask_labels: Sequence[int]) -> np.ndarray:
    """The ED myocardium mask in the box (rx, ry): the first labelled frame with label 1 pixels."""
    for f in labelled_frames(case):
        if (case.label[..., f] == 1).any():
            return mask_from_label(crop_roi(case.label[..., f : f + 1], box, 0)[..., 0], mask_labels)
    raise CaseError(f"{case.name}: no labelled frame carries the myocardium (label 1); mask_mode 'ed' needs one")


def _roi_series(case: Case, box: RoiBox, frames: Sequence[int], percentile: float) -> tuple[np.ndarray, float]:
    """(rx, ry, T) float32 crop normalised to [-1, 1] with the scale of ``frames`` (others left at -1)."""
    crop = crop_roi(case.magnitude, box, float(case.magnitude.min()))
    scale = magnitude_scale(crop[..., list(frames)], percentile)
    roi = np.full(crop.shape, -1.0, np.float32)
    roi[..., list(frames)] = normalize_magnitude(crop[..., list(frames)], scale)
    return roi, scale


# --------------------------------------------------------------------------------------------- network input


def mask_free_input(
    roi: np.ndarray,
    tau: int,
    K: int,
    k: int,
    K_max: int,
    include_K: bool = True,
    mask: np.ndarray | None = None,
    estimate: str | None = None,
) -> np.ndarray:
    """The 7-channel network input (C, rx, ry) float32 of query (tau, K, k) on a normalised ROI series.

    Channels: ``[M_tau, M_tau+K+1, S, S, tau / T, k / (K + 1)[, K / K_max]]`` with frame indices mod T;
    the mask channels S are zero (mask-free) unless ``mask`` (rx, ry) is given, which then fills both.

    Args:
        roi: (rx, ry, T) magnitude normalised to [-1, 1]; only frames tau and tau + K + 1 are read.
        tau, K, k: the query (first kept frame, gap, target offset 1..K).
        K_max, include_K: the K condition plane, as the model's spec.
        mask: optional binary (rx, ry) mask for both mask channels.
        estimate: the model's ``spec.estimate``: when set, its two guess planes (from the same pair and
            masks, see ``hdl_monai.transforms.interpolation_estimate``) are appended (9 channels).
    """
    T = roi.shape[-1]
    a, b, _ = interpolation_frames(tau, K, k, T)
    masks = np.zeros((2,) + roi.shape[:2], np.float32)
    if mask is not None:
        masks[:] = np.asarray(mask, np.float32)
    cond = condition_maps(a, k, K, T, roi.shape[:2], K_max, include_K)
    planes = [roi[None, ..., a], roi[None, ..., b], masks, cond]
    if estimate is not None:
        planes.append(interpolation_estimate(estimate, roi[..., a], roi[..., b], k / (K + 1), masks[0], masks[1]))
    return np.concatenate(planes).astype(np.float32)


def interpolate_mask_free(
    case: Case, K: int, model: InterpolationModel, mask_mode: str = "zero", batch_size: int = 16,
    timing: str | None = None,
) -> np.ndarray:
    """Rebuild the magnitude of a case down-sampled by K with a network fed without per-frame masks.

    Kept frames (``kept_frames(T, K)``) are copied; every other frame is predicted inside the model's ROI
    (centre :func:`lv_roi_box`), normalised by the ROI's kept frames' scale (99.5th percentile) and brought
    back with it, and linearly interpolated outside the ROI. ``mask_mode`` "zero": zero mask channels;
    "ed": the ED myocardium mask in both. ``timing``: of a hybrid model's flow guess (:func:`estimate_planes`;
    None = :func:`resolve_timing`'s default: "learned" when the model has a timing prior at the case's frame
    count, else the spline).
    Returns (X, Y, T) float32 in scanner units.
    """
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {list(MASK_MODES)}, got {mask_mode!r}")
    spec = model.spec
    K = check_ks([K], case, spec.K_range)[0]
    box = lv_roi_box(case, spec.roi_size)
    mask = _ed_mask(case, box, spec.mask_labels) if mask_mode == "ed" else None
    magnitude = rebuild_series(case.magnitude, None, K, "linear")[0].astype(np.float32)
    roi, scale = _roi_series(case, box, kept_frames(case.frames, K), spec.magnitude_percentile)
    plan = interpolation_plan(case.frames, K)
    # the guesses: one optical flow per kept pair, shared by the frames between them
    masks = None if mask is None else np.repeat(np.asarray(mask, np.float32)[..., None], case.frames, axis=-1)
    guesses = estimate_planes(spec, roi, masks, plan, resolve_timing(model, timing, case.frames), model.timing_prior)
    inputs = [
        np.concatenate([mask_free_input(roi, s.tau, s.K, s.k, spec.K_max, spec.include_K, mask), *guesses[i : i + 1]])
        for i, s in enumerate(plan)
    ]
    pred = denormalize_magnitude(np.moveaxis(predict_batches(model, inputs, batch_size)[:, 0], 0, -1), scale)
    targets = [s.target for s in plan]
    magnitude[..., targets] = paste_roi(pred.astype(np.float32), box, magnitude[..., targets])
    return magnitude


# --------------------------------------------------------------------------------------------- fine-tuning


class _TrainingSlice(NamedTuple):
    roi: np.ndarray  # (rx, ry, T) normalised with the whole ROI series' scale, as in bundle training
    w1: np.ndarray  # (rx, ry) weight of the labelled LV region, fixed over the cycle
    mask: np.ndarray | None  # (rx, ry) ED mask for mask_mode "ed"


def _training_slice(case: Case, model: InterpolationModel, margin: int, mask_mode: str) -> _TrainingSlice:
    spec = model.spec
    box = lv_roi_box(case, spec.roi_size)
    roi, _ = _roi_series(case, box, range(case.frames), spec.magnitude_percentile)
    label = crop_roi(case.label[..., labelled_frames(case)], box, 0)
    w1 = weight_map(myocardium_region(label, margin=margin).any(axis=-1))
    mask = _ed_mask(case, box, spec.mask_labels) if mask_mode == "ed" else None
    return _TrainingSlice(roi, w1, mask)


def finetune_mask_free(
    model: InterpolationModel,
    cases: Sequence[Case],
    steps: int = 200,
    K_range: Sequence[int] = (1, 3),
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    seed: int = 0,
    margin: int = 5,
    mask_mode: str = "zero",
    max_seconds: float | None = None,
    log_every: int = 25,
    freeze_norm: bool = True,
) -> tuple[InterpolationModel, dict[str, Any]]:
    """Fine-tune a copy of an interpolation network on real slices with the mask channels zeroed.

    Each step draws ``batch_size`` queries: a slice uniformly from ``cases``, then (tau, K, k) by
    :func:`~hdl_monai.transforms.sample_interpolation_indices` (K uniform in ``K_range``); the loss is
    :class:`~hdl_monai.losses.WeightedMAELoss` on the magnitude channel (w1 = the slice's labelled LV region
    dilated by ``margin`` px, w2 = the target frame's foreground), Adam, BatchNorm in training mode. The
    segmentation tail gets no loss (no masks on most frames). ``model`` itself is not changed.

    Args:
        model: the starting model (e.g. the phantom-trained one).
        cases: training slices (each needs labelled frames for its LV centre).
        steps: optimiser steps: the bound on the wall time (about 0.7 s each at batch 8, ROI 96, one core).
        K_range, batch_size, learning_rate, margin: as above.
        seed: seeds the query draws and torch; the same seed and inputs give the same weights.
        mask_mode: "zero" (mask-free) or "ed" (the ED mask in both mask channels).
        max_seconds: optional extra bound; training stops after the step that passes it (then the
            result depends on the machine's speed; ``history["steps"]`` says how many ran).
        log_every: log the mean loss every this many steps (logger ``hdl_monai.evaluate_real``).

    Returns:
        (the fine-tuned model in eval mode, path None; history ``{"steps", "seconds", "loss"}`` with the
        loss of every step).
    """
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {list(MASK_MODES)}, got {mask_mode!r}")
    if not cases:
        raise ValueError("finetune_mask_free: no training cases")
    if int(steps) < 0 or int(batch_size) < 1:
        raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps}, {batch_size}")
    spec = model.spec
    for case in cases:
        check_ks(K_range, case, spec.K_range)
    data = [_training_slice(case, model, margin, mask_mode) for case in cases]
    torch.manual_seed(int(seed))
    R = np.random.RandomState(int(seed))
    network = copy.deepcopy(model.network).to(model.device).train()
    if freeze_norm:
        for module in network.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    optimizer = torch.optim.Adam(network.parameters(), lr=float(learning_rate))
    loss_fn = WeightedMAELoss()
    losses: list[float] = []
    linear_losses: list[float] = []
    start = time.perf_counter()
    for step in range(int(steps)):
        inputs, targets, w1s, w2s = [], [], [], []
        for _ in range(int(batch_size)):
            s = data[R.randint(len(data))]
            T = s.roi.shape[-1]
            tau, K, k = sample_interpolation_indices(R, T, K_range)
            target = s.roi[..., interpolation_frames(tau, K, k, T)[2]]
            inputs.append(mask_free_input(s.roi, tau, K, k, spec.K_max, spec.include_K, s.mask, spec.estimate))
            targets.append(target[None])
            w1s.append(s.w1[None])
            w2s.append(weight_map(foreground_mask(target))[None])
        x, y, w1, w2 = (torch.from_numpy(np.stack(a)).to(model.device) for a in (inputs, targets, w1s, w2s))
        loss = loss_fn(network(x)[:, :1], y, w1, w2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        alpha = x[:, 5:6]  # condition plane k / (K + 1): the linear estimate, for reference
        linear_losses.append(float(loss_fn((1 - alpha) * x[:, :1] + alpha * x[:, 1:2], y, w1, w2)))
        elapsed = time.perf_counter() - start
        if log_every and ((step + 1) % int(log_every) == 0 or step + 1 == int(steps)):
            recent = losses[-int(log_every):]
            logger.info("fine-tune step %d/%d: loss %.4f (linear estimate %.4f; means of the last %d), %.0f s",
                        step + 1, steps, float(np.mean(recent)), float(np.mean(linear_losses[-len(recent):])),
                        len(recent), elapsed)
        if max_seconds is not None and elapsed > float(max_seconds):
            logger.warning("fine-tuning stopped by max_seconds=%s after %d of %d steps", max_seconds, step + 1, steps)
            break
    network.eval()
    history = {"steps": len(losses), "seconds": time.perf_counter() - start, "loss": losses,
               "linear_loss": linear_losses}
    tuned = InterpolationModel(network=network, spec=spec, path=None, device=model.device, timing_prior=model.timing_prior)
    return tuned, history


# --------------------------------------------------------------------------------------------- metrics


def roi_metrics(reference: np.ndarray, rebuilt: np.ndarray, K: int, box: RoiBox) -> dict[str, np.ndarray]:
    """Per interpolated frame PSNR (dB, data range 2) and SSIM inside ``box``.

    Both (X, Y, T) series are cropped to ``box`` (padding with the reference's minimum) and normalised to
    [-1, 1] with the reference crop's scale (99.5th percentile over all frames); only the frames that
    down-sampling by K drops (``interpolation_plan``) are compared. Returns ``{"frames": targets,
    "psnr": (F,), "ssim": (F,)}``; PSNR is inf for an exact frame.
    """
    reference, rebuilt = np.asarray(reference), np.asarray(rebuilt)
    if reference.shape != rebuilt.shape:
        raise ValueError(f"rebuilt shape {rebuilt.shape} differs from the reference {reference.shape}")
    frames = [s.target for s in interpolation_plan(reference.shape[-1], K)]
    pad = float(reference.min())
    ref_roi = crop_roi(reference, box, pad)
    scale = magnitude_scale(ref_roi)

    def batch(series: np.ndarray) -> np.ndarray:  # (rx, ry, F) -> (F, 1, rx, ry), normalised
        return np.moveaxis(normalize_magnitude(series[..., frames], scale), -1, 0)[:, None]

    ref, out = batch(ref_roi), batch(crop_roi(rebuilt, box, pad))
    return {"frames": np.asarray(frames), "psnr": np.asarray(psnr(out, ref)), "ssim": np.asarray(ssim(out, ref))}


def _rebuild(case: Case, K: int, method: str, models: Mapping[str, InterpolationModel], batch_size: int,
             timing: str | None = None) -> np.ndarray:
    if method in BASELINE_METHODS:
        return rebuild_series(case.magnitude, None, K, method)[0]
    if method not in models:
        raise ValueError(f"method {method!r} needs a model (known: {sorted(models)})")
    mode = "ed" if method == "hdl_ed_mask" else "zero"
    return interpolate_mask_free(case, K, models[method], mode, batch_size, timing)


def evaluate_slices(
    cases: Sequence[Case],
    ks: Sequence[int],
    methods: Sequence[str],
    models: Mapping[str, InterpolationModel] | None = None,
    roi_size: Sequence[int] | int = 96,
    patient: str | None = None,
    batch_size: int = 16,
    timing: str | None = None,
) -> list[dict[str, Any]]:
    """One row per (slice, K, method): ``{"patient", "case_id", "K", "method", "psnr", "ssim"}`` with the
    slice's mean over its interpolated frames (see :func:`roi_metrics`), inside the ``roi_size`` box
    around the slice's LV centroid.

    ``models`` maps the network methods (``hdl``, ``hdl_ed_mask``, ``hdl_finetuned``) to loaded models;
    the baselines need none; ``timing`` is their flow guess's (:func:`interpolate_mask_free`). Errors
    (CaseError / ValueError) name the case: no labelled frame, K that does not fit the series or the model's
    K_range.
    """
    models = dict(models or {})
    rows = []
    for case in cases:
        box = lv_roi_box(case, roi_size)
        for K in check_ks(ks, case):
            for method in methods:
                values = roi_metrics(case.magnitude, _rebuild(case, K, method, models, batch_size, timing), K, box)
                rows.append({"patient": patient or case.subject, "case_id": case.case_id, "K": K, "method": method,
                             "psnr": float(np.mean(values["psnr"])), "ssim": float(np.mean(values["ssim"]))})
    return rows


def _stats(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def summarize(rows: Sequence[Mapping[str, Any]], reference_method: str = "linear") -> dict[str, dict[str, Any]]:
    """``{K: {method: {"pooled": {psnr, ssim}, "per_patient": {p: {psnr, ssim}}, "vs_linear": ...}}}``.

    Each metric is ``{"mean", "std", "n"}`` over slices (population std). ``"vs_linear"`` (when the
    reference method was evaluated on the same slices): the paired per-slice PSNR difference to
    ``reference_method`` (``{"mean", "std", "n"}``, dB) and ``"better"``, the number of slices where
    the method's PSNR is higher.
    """
    out: dict[str, dict[str, Any]] = {}
    order = list(dict.fromkeys(r["method"] for r in rows))
    keys = sorted({(int(r["K"]), r["method"]) for r in rows}, key=lambda km: (km[0], order.index(km[1])))
    by = {(int(r["K"]), r["method"], r["case_id"]): r for r in rows}
    for K, method in keys:
        mine = [r for r in rows if int(r["K"]) == K and r["method"] == method]
        entry: dict[str, Any] = {
            "pooled": {m: _stats([r[m] for r in mine]) for m in ("psnr", "ssim")},
            "per_patient": {
                p: {m: _stats([r[m] for r in mine if r["patient"] == p]) for m in ("psnr", "ssim")}
                for p in dict.fromkeys(r["patient"] for r in mine)
            },
        }
        paired = [(r["psnr"], by[(K, reference_method, r["case_id"])]["psnr"]) for r in mine
                  if (K, reference_method, r["case_id"]) in by]
        if method != reference_method and paired:
            diff = [a - b for a, b in paired]
            entry["vs_linear"] = {"psnr_difference_db": _stats(diff), "better": int(sum(d > 0 for d in diff))}
        out.setdefault(str(K), {})[method] = entry
    return out


# --------------------------------------------------------------------------------------------- the study


def evaluate_sunnybrook(
    patients: Mapping[str, Sequence[Case]],
    model: str | os.PathLike | InterpolationModel,
    ks: Sequence[int] = (1, 2, 3),
    steps: int = 200,
    roi_size: Sequence[int] | int = 96,
    methods: Sequence[str] = REAL_METHODS,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    seed: int = 0,
    margin: int = 5,
    max_seconds: float | None = None,
    save_models: str | os.PathLike | None = None,
    device: str = "cpu",
    timing: str | None = None,
) -> dict[str, Any]:
    """The whole real-cine study: every method at every K on every patient's labelled slices.

    ``hdl`` and ``hdl_ed_mask`` use ``model`` as it is; ``hdl_finetuned`` is leave-one-patient-out: for
    each patient, ``model`` fine-tuned (:func:`finetune_mask_free`, zero masks, K range = min..max of
    ``ks``) on the *other* patients' slices, then evaluated on this patient's. With ``save_models`` the
    fine-tuned models are written there as ``finetuned_<patient>.pt``. ``timing``: of the models' flow guess
    (None: :func:`~hdl_monai.engines.interpolation.resolve_timing`'s default per slice).

    Returns a JSON-ready dict: ``{"protocol", "data", "finetune", "rows", "results"}`` (results as
    :func:`summarize`).
    """
    methods = list(methods)
    unknown = sorted(set(methods) - set(REAL_METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; expected some of {list(REAL_METHODS)}")
    if "hdl_finetuned" in methods and len(patients) < 2:
        raise ValueError("hdl_finetuned is leave-one-patient-out: it needs at least two patients")
    base = model if isinstance(model, InterpolationModel) else load_interpolation_model(model, device)
    ks = [int(k) for k in ks]
    for cases in patients.values():
        for case in cases:
            check_ks(ks, case, base.spec.K_range)
    fixed = [m for m in methods if m != "hdl_finetuned"]
    rows: list[dict[str, Any]] = []
    finetune: dict[str, Any] = {}
    start = time.perf_counter()
    for patient, cases in patients.items():
        t0 = time.perf_counter()
        models = {"hdl": base, "hdl_ed_mask": base}
        if "hdl_finetuned" in methods:
            others = [p for p in patients if p != patient]
            train = [c for p in others for c in patients[p]]
            logger.info("fold %s: fine-tuning on %d slices of %s", patient, len(train), others)
            models["hdl_finetuned"], history = finetune_mask_free(
                base, train, steps, (min(ks), max(ks)), batch_size, learning_rate, seed, margin, "zero", max_seconds
            )
            finetune[patient] = {
                "trained_on": others, "training_slices": len(train),
                "steps": history["steps"], "seconds": round(history["seconds"], 1),
                **{f"{name}_{part}_25": float(np.mean(values[sl])) if values else None
                   for name, values in (("loss", history["loss"]), ("linear_loss", history["linear_loss"]))
                   for part, sl in (("first", slice(None, 25)), ("last", slice(-25, None)))},
                "loss_every_25": [round(float(np.mean(history["loss"][i : i + 25])), 5)
                                  for i in range(0, len(history["loss"]), 25)],
            }
            if save_models is not None:
                save_interpolation_model(Path(save_models) / f"finetuned_{patient}.pt",
                                         models["hdl_finetuned"].network, base.spec)
        rows += evaluate_slices(cases, ks, methods, models, roi_size, patient, timing=timing)
        logger.info("patient %s: %d slices evaluated in %.0f s", patient, len(cases), time.perf_counter() - t0)
    roi = [int(r) for r in ensure_tuple_rep(roi_size, 2)]
    return {
        "protocol": {
            "ks": ks, "methods": methods, "evaluation_roi_px": roi, "model": str(base.path),
            "model_roi_px": list(base.spec.roi_size), "model_spec": base.spec.to_dict(),
            "timing": sorted({resolve_timing(base, timing, c.frames) for cs in patients.values() for c in cs})
            if base.spec.estimate is not None else None,
            "finetune": {"steps": int(steps), "batch_size": int(batch_size), "learning_rate": float(learning_rate),
                         "seed": int(seed), "K_range": [min(ks), max(ks)], "margin_px": int(margin),
                         "loss": "WeightedMAELoss (eq. 1) on magnitude, zero mask channels, no Dice",
                         "scheme": "leave-one-patient-out"},
            "metrics": "PSNR (dB, data range 2) and SSIM on interpolated frames only, inside the evaluation ROI "
                       "around the LV centroid of the labelled frames; magnitude normalised with the reference "
                       "slice's ROI scale (99.5th percentile, all frames); slice value = mean over its "
                       "interpolated frames; mean (std) over slices",
        },
        "data": {p: {"slices": [c.case_id for c in cs], "frames": sorted({c.frames for c in cs}),
                     "pixel_spacing_mm": sorted({round(float(c.pixel_spacing_mm[0]), 4) for c in cs})}
                 for p, cs in patients.items()},
        "finetune": finetune,
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
        "results": summarize(rows),
    }


# --------------------------------------------------------------------------------------------- reports


def _cell(stats: Mapping[str, Any], digits: int) -> str:
    return f"{stats['mean']:.{digits}f} ({stats['std']:.{digits}f})"


def markdown_report(payload: Mapping[str, Any], command: str = "") -> str:
    """The study as Markdown: pooled table, per-patient table, fine-tuning table, protocol notes."""
    results, protocol = payload["results"], payload["protocol"]
    patients = list(payload["data"])
    n_slices = sum(len(d["slices"]) for d in payload["data"].values())
    roi = protocol["evaluation_roi_px"]
    lines = [
        "# Temporal interpolation on real cine (Sunnybrook)",
        "",
        f"{len(patients)} patients ({', '.join(patients)}), {n_slices} contoured slices, "
        f"{'/'.join(str(f) for f in sorted({f for d in payload['data'].values() for f in d['frames']}))} frames per "
        "cycle. "
        f"Metrics inside a {roi[0]}x{roi[1]} px ROI around the LV centroid of the labelled (ED/ES) frames, "
        "interpolated frames only, magnitude normalised to [-1, 1] with the reference slice's ROI scale "
        "(99.5th percentile); a slice's value is the mean over its interpolated frames; mean (std) over slices.",
        "",
        "## Pooled over patients",
        "",
        "| K | method | PSNR (dB) | SSIM | PSNR - linear (dB, paired) | slices better than linear |",
        "|---|---|---|---|---|---|",
    ]
    for K, by_method in results.items():
        for method, entry in by_method.items():
            vs = entry.get("vs_linear")
            diff = _cell(vs["psnr_difference_db"], 2) if vs else "-"
            better = f"{vs['better']}/{vs['psnr_difference_db']['n']}" if vs else "-"
            lines.append(f"| {K} | {method} | {_cell(entry['pooled']['psnr'], 2)} | "
                         f"{_cell(entry['pooled']['ssim'], 3)} | {diff} | {better} |")
    lines += ["", "## Per patient (PSNR dB / SSIM)", "",
              "| K | method | " + " | ".join(f"{p} (n={len(payload['data'][p]['slices'])})" for p in patients) + " |",
              "|---|---|" + "---|" * len(patients)]
    for K, by_method in results.items():
        for method, entry in by_method.items():
            cells = [f"{_cell(entry['per_patient'][p]['psnr'], 2)} / {_cell(entry['per_patient'][p]['ssim'], 3)}"
                     if p in entry["per_patient"] else "-" for p in patients]
            lines.append(f"| {K} | {method} | " + " | ".join(cells) + " |")
    if payload.get("finetune"):
        ft = protocol["finetune"]
        lines += ["", "## Fine-tuning (leave one patient out)", "",
                  f"From `{protocol['model']}`; {ft['steps']} Adam steps of {ft['batch_size']} samples, learning rate "
                  f"{ft['learning_rate']:g}, K in {ft['K_range'][0]}..{ft['K_range'][1]}, seed {ft['seed']}; "
                  f"{ft['loss']}.", "",
                  "| test patient | trained on | slices | steps | seconds | loss, first 25 steps (linear) "
                  "| loss, last 25 steps (linear) |",
                  "|---|---|---|---|---|---|---|"]
        for patient, f in payload["finetune"].items():
            first, last = (
                "-" if f[f"loss_{part}_25"] is None
                else f"{f[f'loss_{part}_25']:.4f} ({f[f'linear_loss_{part}_25']:.4f})"
                for part in ("first", "last")
            )
            lines.append(f"| {patient} | {', '.join(f['trained_on'])} | {f['training_slices']} | {f['steps']} | "
                         f"{f['seconds']} | {first} | {last} |")
        lines += ["", "(linear): the same loss of the linear estimate (the network's input-to-output skip) on the "
                  "same batches; the network beats linear interpolation on its training data only where its "
                  "loss is lower."]
    lines += ["", "Methods: linear = eq. 2; optical_flow = Horn-Schunck; hdl = the phantom model with zero mask "
              "channels; hdl_ed_mask = the phantom model with the ED myocardium mask in both mask channels; "
              "hdl_finetuned = the phantom model fine-tuned with zero masks on the two other patients.",
              f"Total wall time {payload.get('seconds', '?')} s."]
    machine = payload.get("machine")
    if machine:
        lines[-1] += (f" Machine: {machine.get('cpu_count')} CPU cores, {machine.get('torch_threads')} torch "
                      f"thread(s), device {machine.get('device', 'cpu')}, torch {machine.get('torch')}, "
                      f"MONAI {machine.get('monai')}.")
    if command:
        lines += ["", f"Produced by `{command}`."]
    return "\n".join(lines) + "\n"


def plot_psnr_vs_k(results: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Left: PSNR against K (pooled mean +- std over slices); right: the paired per-slice PSNR difference to
    linear interpolation (mean +- std), one line per method. Written atomically (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(results, key=int)
    methods = list(dict.fromkeys(m for K in ks for m in results[K]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    panels = (("PSNR (dB), mean ± std over slices", lambda e: e["pooled"]["psnr"]),
              ("PSNR − linear (dB), paired per slice", lambda e: e.get("vs_linear", {}).get("psnr_difference_db")))
    for ax, (title, pick) in zip(axes, panels):
        for i, method in enumerate(methods):
            stats = [(int(K), pick(results[K][method])) for K in ks if method in results[K]]
            stats = [(K, s) for K, s in stats if s is not None]
            if not stats:
                continue
            x = np.asarray([K for K, _ in stats]) + 0.04 * (i - (len(methods) - 1) / 2)
            ax.errorbar(x, [s["mean"] for _, s in stats], yerr=[s["std"] for _, s in stats], marker="o", capsize=3,
                        label=method, color=f"C{i}")
        ax.set_xticks([int(K) for K in ks])
        ax.set_xlabel("K (frames dropped between kept frames)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.0, color="C0", lw=1)
    axes[0].legend()
    fig.suptitle("Sunnybrook cine, LV ROI: interpolation quality vs K")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_report(payload: Mapping[str, Any], out: str | os.PathLike, name: str = "interpolation_sunnybrook",
                 command: str = "") -> dict[str, Path]:
    """Write ``<out>/<name>.json``, ``.md`` and ``.png`` (PSNR / SSIM vs K); returns the paths."""
    out = Path(out)
    paths = {"json": out / f"{name}.json", "md": out / f"{name}.md", "png": out / f"{name}.png"}
    atomic_write_json(paths["json"], {**payload, "command": command})
    atomic_write_text(paths["md"], markdown_report(payload, command))
    plot_psnr_vs_k(payload["results"], paths["png"])
    return paths

"""Temporal interpolation of a case: keep every (K+1)-th frame, rebuild the rest (HDL module 1).

The network methods need a trained model of the interpolation bundle: ``hdl`` (multi-head multi-tail
R2U-Net), ``r2unet`` (plain R2U-Net) and ``gan`` (the hdl network trained with a PatchGAN loss, train.json
``--gan True``); each refuses a model trained for another. The classical baselines (linear,
optical_flow) need nothing.
"""

from __future__ import annotations

from dataclasses import replace

from hdl_monai.baselines.series import BASELINE_METHODS, rebuild_series
from hdl_monai.data.case import Case, CaseError
from hdl_monai.transforms.array import check_gap, kept_frames

__all__ = ["INTERPOLATION_METHODS", "interpolate_case"]

NETWORK_METHODS = ("hdl", "r2unet", "gan")
INTERPOLATION_METHODS = NETWORK_METHODS + BASELINE_METHODS


def interpolate_case(
    case: Case, K: int, method: str = "linear", model=None, device: str = "cpu", timing: str | None = None, **kwargs
) -> Case:
    """A new case whose frames not in ``kept_frames(T, K)`` are interpolated from the kept ones.

    The kept frames' magnitude and labels are copied unchanged. Phase and ground-truth velocity are
    dropped (they belong to the original frames, and phase synthesis makes new ones). The result
    records ``interpolation`` = {method, K, kept_frames, source_case[, model]} in case.json.

    Args:
        case: the full-length case (only its kept frames are read).
        K: frames dropped between two kept frames.
        method: "hdl", "r2unet" or "gan" (need ``model``), "linear" or "optical_flow".
        model: a trained interpolation model file (model.pt of the interpolation bundle) or a loaded
            ``hdl_monai.engines.interpolation.InterpolationModel``; it must serve ``method``
            (``hdl_monai.engines.interpolation.check_model_method``).
        device: torch device for the network methods.
        timing: for a hybrid network (``estimate``), where its flow guess places the in-between frames
            (``hdl_monai.engines.interpolation.estimate_planes``; None = "learned" when the model has a timing
            prior learned at the case's frame count, else ``DEFAULT_TIMING``: ``resolve_timing``); the
            baselines ignore it.
        kwargs: passed to the baseline (Horn-Schunck settings) or to ``interpolate_with_model``.

    Raises:
        CaseError: K does not fit the series, labels are missing on kept frames, the method is unknown,
            or a network method has no model.
        InterpolationModelError: the model is not one for ``method`` (e.g. a GAN model for "hdl").
    """
    T = case.frames
    try:
        check_gap(K, T)
    except ValueError as err:
        raise CaseError(f"{case.name}: {err}") from None
    kept = kept_frames(T, K)
    if case.label is None:
        raise CaseError(f"{case.name}: no label.nii.gz; interpolation needs the LV labels of the kept frames {kept}")
    if case.labelled_frames is not None:
        missing = sorted(set(kept) - set(case.labelled_frames))
        if missing:
            raise CaseError(f"{case.name}: labels missing on kept frames {missing} (labelled_frames {case.labelled_frames})")
    record = {"method": method, "K": int(K), "kept_frames": kept, "source_case": case.case_id}
    if method in BASELINE_METHODS:
        magnitude, label = rebuild_series(case.magnitude, case.label, K, method, **kwargs)
    elif method in NETWORK_METHODS:
        if model is None:
            raise CaseError(f"{case.name}: method {method!r} needs a trained interpolation model (--model model.pt)")
        from hdl_monai.engines.interpolation import (
            InterpolationModel,
            check_model_method,
            interpolate_with_model,
            load_interpolation_model,
            resolve_timing,
        )

        if not isinstance(model, InterpolationModel):
            model = load_interpolation_model(model, device=device)
        check_model_method(model, method)
        timing = resolve_timing(model, timing, case.frames)
        magnitude, label = interpolate_with_model(case, K, model, timing=timing, **kwargs)
        record["model"] = str(model.path)
        if model.spec.estimate is not None:
            record["timing"] = timing
        record["predicted_labels"] = "1 LV myocardium, 2 LV blood pool on interpolated frames (no RV)"
    else:
        raise CaseError(f"{case.name}: unknown method {method!r}; expected one of {list(INTERPOLATION_METHODS)}")
    extra = dict(case.extra)
    extra["interpolation"] = record
    return replace(
        case,
        magnitude=magnitude,
        label=label,
        phase={},
        velocity={},
        labelled_frames=None,
        source=f"interpolation-{method}",
        extra=extra,
        path=None,
    )

"""Temporal interpolation of a case: keep every (K+1)-th frame, rebuild the rest (HDL module 1).

The network methods (hdl, r2unet, gan) need a trained model of the interpolation bundle; the
classical baselines (linear, optical_flow) need nothing.
"""

from __future__ import annotations

from dataclasses import replace

from hdl_monai.baselines.series import BASELINE_METHODS, rebuild_series
from hdl_monai.data.case import Case, CaseError
from hdl_monai.transforms.array import check_gap, kept_frames

__all__ = ["INTERPOLATION_METHODS", "interpolate_case"]

NETWORK_METHODS = ("hdl", "r2unet", "gan")
INTERPOLATION_METHODS = NETWORK_METHODS + BASELINE_METHODS


def interpolate_case(case: Case, K: int, method: str = "linear", **kwargs) -> Case:
    """A new case whose frames not in ``kept_frames(T, K)`` are interpolated from the kept ones.

    The kept frames' magnitude and labels are copied unchanged. Phase and ground-truth velocity are
    dropped (they belong to the original frames, and phase synthesis makes new ones). The result
    records ``interpolation`` = {method, K, kept_frames, source_case} in case.json.

    Raises:
        CaseError: K does not fit the series, labels are missing on kept frames, or the method is unknown.
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
    if method in BASELINE_METHODS:
        magnitude, label = rebuild_series(case.magnitude, case.label, K, method, **kwargs)
    elif method in NETWORK_METHODS:
        raise CaseError(
            f"{case.name}: method {method!r} needs a trained interpolation model; this version provides "
            f"only the classical baselines {list(BASELINE_METHODS)}"
        )
    else:
        raise CaseError(f"{case.name}: unknown method {method!r}; expected one of {list(INTERPOLATION_METHODS)}")
    extra = dict(case.extra)
    extra["interpolation"] = {"method": method, "K": int(K), "kept_frames": kept, "source_case": case.case_id}
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

"""Rebuild a temporally down-sampled series with a classical baseline (linear, Horn-Schunck).

A series down-sampled by K keeps frames 0, K+1, 2(K+1), ... (``hdl_monai.transforms.kept_frames``);
every other frame is interpolated from the two kept frames around it, cyclically
(``hdl_monai.transforms.interpolation_plan``).
"""

from __future__ import annotations

import numpy as np

from hdl_monai.baselines.linear import interpolate_linear
from hdl_monai.baselines.optical_flow import horn_schunck, interpolate_flow
from hdl_monai.transforms.array import interpolation_plan, kept_frames

__all__ = ["BASELINE_METHODS", "rebuild_series"]

BASELINE_METHODS = ("linear", "optical_flow")


def rebuild_series(
    magnitude: np.ndarray, label: np.ndarray | None, K: int, method: str = "linear", **flow_kwargs
) -> tuple[np.ndarray, np.ndarray | None]:
    """Keep every (K+1)-th frame of an (X, Y, T) series and interpolate the rest.

    Args:
        magnitude: (X, Y, T) magnitude series.
        label: (X, Y, T) label series or None; only its kept frames are used.
        K: frames dropped between two kept frames.
        method: "linear" (eq. 2) or "optical_flow" (Horn-Schunck on the magnitude; labels moved with
            the same flow).
        flow_kwargs: passed to :func:`horn_schunck` (alpha, iterations, levels).

    Returns:
        (magnitude, label) with every frame filled; kept frames are returned unchanged.
    """
    if method not in BASELINE_METHODS:
        raise ValueError(f"unknown baseline method {method!r}; expected one of {list(BASELINE_METHODS)}")
    T = magnitude.shape[-1]
    plan = interpolation_plan(T, K)  # raises a clear ValueError when K does not fit T
    out_mag = magnitude.copy()
    out_label = label.copy() if label is not None else None
    flows: dict[int, np.ndarray] = {}
    for step in plan:
        nxt = (step.tau + step.K + 1) % T
        alpha_t = step.k / (step.K + 1)
        pair = None if label is None else (label[..., step.tau], label[..., nxt])
        if method == "linear":
            image, mask = interpolate_linear(magnitude[..., step.tau], magnitude[..., nxt], alpha_t, masks=pair)
        else:
            if step.tau not in flows:
                flows[step.tau] = horn_schunck(magnitude[..., step.tau], magnitude[..., nxt], **flow_kwargs)
            image, mask = interpolate_flow(
                magnitude[..., step.tau], magnitude[..., nxt], alpha_t, flow=flows[step.tau], masks=pair
            )
        out_mag[..., step.target] = image
        if out_label is not None:
            out_label[..., step.target] = mask
    assert sorted(set(kept_frames(T, K)) | {s.target for s in plan}) == list(range(T))
    return out_mag, out_label

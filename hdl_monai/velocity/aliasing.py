"""Aliasing: detect phase at the ends of its range in tissue, and a simple temporal unwrapping.

A velocity beyond +-venc wraps around: a phase just above 4096 reappears just above 0 (and the
velocity flips sign). Tissue phase that sits at the ends of the range (within ``margin`` of 0 or
4096, i.e. |v| >= (1 - margin) * venc) is therefore a warning sign that venc was too low.

:func:`unwrap_temporal` undoes wraps along time: for each pixel it follows the frames from frame 0
(assumed unaliased: the cycle starts at end-diastole, when the myocardium is slow) and removes any
jump of more than half the range (2048) between consecutive frames by adding or subtracting 4096.
With a tissue ``mask`` it only follows a pixel while it stays inside the mask grown by ``border``
pixels on both consecutive frames (tissue moves by about a pixel per frame, so a pixel entering the
myocardium was next to it a frame before), restarting its correction at 0 when it leaves, and
corrects only mask pixels. The unwrapped phase may leave 0..4096;
:func:`~hdl_monai.velocity.conversion.phase_to_velocity` then gives |v| > venc.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import ndimage

from hdl_monai.data.case import PHASE_MAX, PHASE_MIN
from hdl_monai.velocity.errors import VelocityError

__all__ = [
    "ALIASING_MARGIN",
    "ALIASING_THRESHOLD",
    "edge_fraction",
    "detect_aliasing",
    "unwrap_temporal",
]

ALIASING_MARGIN = 0.02  # fraction of the phase range at each end counted as "at the end" (|v| >= 0.96 venc)
ALIASING_THRESHOLD = 0.01  # warn when more than this fraction of tissue pixels of a frame is at the ends


def edge_fraction(phase: np.ndarray, mask: np.ndarray, margin: float = ALIASING_MARGIN) -> np.ndarray:
    """Per frame, the fraction of ``mask`` pixels whose phase lies within ``margin`` of 0 or 4096.

    Args:
        phase: (X, Y, T) phase in 0..4096.
        mask: (X, Y, T) tissue mask (e.g. the myocardium).
        margin: width of each end as a fraction of the range (0.02 -> 82 phase units).

    Returns:
        (T,) fractions in 0..1 (0 on frames without mask pixels).
    """
    phase, mask = np.asarray(phase), np.asarray(mask, dtype=bool)
    if phase.shape != mask.shape:
        raise VelocityError(f"phase {phase.shape} and mask {mask.shape} shapes disagree")
    width = float(margin) * (PHASE_MAX - PHASE_MIN)
    values = phase[mask]
    at_end = (values <= PHASE_MIN + width) | (values >= PHASE_MAX - width)
    _, _, t = np.nonzero(mask)
    T = mask.shape[-1]
    count = np.bincount(t, minlength=T)
    hits = np.bincount(t, weights=at_end.astype(np.float64), minlength=T)
    return np.divide(hits, count, out=np.zeros(T), where=count > 0)


def detect_aliasing(
    phase: Mapping[str, np.ndarray],
    mask: np.ndarray,
    margin: float = ALIASING_MARGIN,
    threshold: float = ALIASING_THRESHOLD,
) -> tuple[dict[str, dict[str, object]], list[str]]:
    """Look for aliasing in each direction's phase inside the tissue ``mask``.

    Returns:
        ``(report, warnings)``: report maps each direction to ``{"max_fraction": float,
        "frames": [frames whose edge fraction exceeds threshold]}``; warnings holds one
        sentence per direction with suspect frames (empty when none).
    """
    report: dict[str, dict[str, object]] = {}
    warnings: list[str] = []
    for d, p in phase.items():
        fraction = edge_fraction(p, mask, margin)
        frames = np.flatnonzero(fraction > threshold).tolist()
        report[d] = {"max_fraction": float(fraction.max(initial=0.0)), "frames": frames}
        if frames:
            warnings.append(
                f"possible aliasing in phase_{d}: on {len(frames)} frame(s) (first {frames[0]}) more than "
                f"{threshold:.0%} of myocardium pixels sit within {margin:.0%} of the phase range ends "
                f"(up to {fraction.max():.1%}); venc may be too low"
            )
    return report, warnings


def unwrap_temporal(phase: np.ndarray, mask: np.ndarray | None = None, border: int = 1) -> np.ndarray:
    """Undo phase wraps along time, pixel by pixel, starting from frame 0 (see the module docstring).

    Args:
        phase: (X, Y, T) phase in 0..4096.
        mask: optional (X, Y, T) tissue mask: only its pixels are corrected, and a pixel is followed
            while it is inside the mask grown by ``border`` pixels on consecutive frames. None
            unwraps every pixel.
        border: pixels by which the mask is grown (in-plane) to follow moving tissue.

    Returns:
        (X, Y, T) float32 phase, possibly outside 0..4096 where wraps were removed.
    """
    phase = np.asarray(phase, dtype=np.float32)
    if phase.ndim != 3:
        raise VelocityError(f"expected an (X, Y, T) phase, got shape {phase.shape}")
    region = None
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != phase.shape:
            raise VelocityError(f"phase {phase.shape} and mask {mask.shape} shapes disagree")
        region = mask
        if border > 0:
            region = ndimage.binary_dilation(mask, structure=np.ones((3, 3, 1), bool), iterations=int(border))
    period = np.float32(PHASE_MAX - PHASE_MIN)
    out = phase.copy()
    offset = np.zeros(phase.shape[:2], dtype=np.float32)
    for t in range(1, phase.shape[-1]):
        wraps = -np.round((phase[:, :, t] - phase[:, :, t - 1]) / period)
        offset = offset + wraps * period
        if region is not None:
            offset = np.where(region[:, :, t] & region[:, :, t - 1], offset, np.float32(0))
            out[:, :, t] += np.where(mask[:, :, t], offset, np.float32(0))
        else:
            out[:, :, t] += offset
    return out

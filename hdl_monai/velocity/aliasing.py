"""Aliasing: detect phase at the ends of its range in tissue, and temporal unwrapping.

A velocity beyond +-venc wraps around: a phase just above 4096 reappears just above 0 (and the
velocity flips sign). Tissue phase that sits at the ends of the range (within ``margin`` of 0 or
4096, i.e. |v| >= (1 - margin) * venc) is therefore a warning sign that venc was too low.

:func:`unwrap_temporal` undoes wraps along time, starting from a reference frame taken to be unaliased
and going forwards and backwards from it one frame at a time. Each tissue pixel gets the multiple of 4096
that brings it nearest the median of the already unwrapped tissue within ``border`` pixels of it on the
frame before (tissue moves about a pixel per frame, so that neighbourhood holds where it came from; the
default of 2 pixels was chosen on the phantom, where 1 left a few values wrong and 0, the pixel's own
history, many: ``benchmarks/velocity_unwrapping.py``). A median of neighbours rather than the pixel's
own history keeps one noisy pixel (partial volume at the myocardium's edge) from carrying a false wrap
into the frames after it. By default the reference is
:func:`reference_frame`'s choice: the frame with the fewest tissue pixels at the ends of the range, then
the one whose tissue is slowest (a series need not start at a slow frame: a trigger delay or a
retrospectively gated cine can put frame 0 in systole). Only mask pixels are changed. The unwrapped phase
may leave 0..4096; :func:`~hdl_monai.velocity.conversion.phase_to_velocity` then gives |v| > venc.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from hdl_monai.data.case import PHASE_MAX, PHASE_MIN
from hdl_monai.velocity.errors import VelocityError

__all__ = [
    "ALIASING_MARGIN",
    "ALIASING_THRESHOLD",
    "edge_fraction",
    "detect_aliasing",
    "reference_frame",
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


def _local_median(values: np.ndarray, known: np.ndarray, radius: int) -> np.ndarray:
    """(X, Y) median of the ``known`` values within ``radius`` pixels (a square window); NaN where none."""
    X, Y = values.shape
    padded = np.pad(np.where(known, values, np.nan), radius, constant_values=np.nan)
    window = np.sort([padded[i:i + X, j:j + Y] for i in range(2 * radius + 1) for j in range(2 * radius + 1)], axis=0)
    count = np.sum(~np.isnan(window), axis=0)  # NaN sorts last, so the known values come first
    low = np.take_along_axis(window, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    high = np.take_along_axis(window, np.maximum(count // 2, 0)[None], axis=0)[0]
    return np.where(count > 0, 0.5 * (low + high), np.nan)


def reference_frame(phase: np.ndarray, mask: np.ndarray | None = None, margin: float = ALIASING_MARGIN) -> int:
    """The frame least likely to be aliased, where :func:`unwrap_temporal` starts.

    It is the frame with the smallest :func:`edge_fraction` of ``mask`` pixels. Ties go to the frame
    whose mask pixels have the smallest mean distance from the range centre (the slowest tissue), and
    then to the earliest. Frames without mask pixels are never chosen.

    Args:
        phase: (X, Y, T) phase in 0..4096.
        mask: optional (X, Y, T) tissue mask; None uses every pixel.
        margin: as in :func:`edge_fraction`.

    Raises:
        VelocityError: a phase that is not (X, Y, T), a mask of another shape, or a mask with no pixel.
    """
    phase = np.asarray(phase, dtype=np.float64)
    if phase.ndim != 3:
        raise VelocityError(f"expected an (X, Y, T) phase, got shape {phase.shape}")
    mask = np.ones(phase.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != phase.shape:
        raise VelocityError(f"phase {phase.shape} and mask {mask.shape} shapes disagree")
    count = mask.sum(axis=(0, 1))
    if not count.any():
        raise VelocityError("the mask has no pixel on any frame, so no reference frame can be chosen")
    centre = 0.5 * (PHASE_MIN + PHASE_MAX)
    speed = np.where(mask, np.abs(phase - centre), 0.0).sum(axis=(0, 1)) / np.maximum(count, 1)
    fraction = edge_fraction(phase, mask, margin)
    candidates = [t for t in range(phase.shape[-1]) if count[t] > 0]
    return int(min(candidates, key=lambda t: (fraction[t], speed[t], t)))


def unwrap_temporal(
    phase: np.ndarray, mask: np.ndarray | None = None, border: int = 2, reference: int | str = "auto"
) -> np.ndarray:
    """Undo phase wraps along time, pixel by pixel, from a reference frame (see the module docstring).

    Args:
        phase: (X, Y, T) phase in 0..4096.
        mask: optional (X, Y, T) tissue mask: only its pixels are corrected, and only its pixels guide
            the next frame. None unwraps every pixel.
        border: radius in pixels of the neighbourhood on the frame before whose median guides a pixel
            (0: the pixel itself; pixels with no tissue there are guided by the frame's tissue median).
        reference: the frame taken as unaliased, which is left as it is: a frame index, or "auto" for
            :func:`reference_frame` (inside ``mask`` when given).

    Returns:
        (X, Y, T) float32 phase, possibly outside 0..4096 where wraps were removed.

    Raises:
        VelocityError: a phase that is not (X, Y, T), a mask of another shape, a negative ``border``, or
        a reference that is neither "auto" nor a frame of the series.
    """
    phase = np.asarray(phase, dtype=np.float32)
    if phase.ndim != 3:
        raise VelocityError(f"expected an (X, Y, T) phase, got shape {phase.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != phase.shape:
            raise VelocityError(f"phase {phase.shape} and mask {mask.shape} shapes disagree")
    if int(border) < 0:
        raise VelocityError(f"unwrapping border must be >= 0 pixels, got {border}")
    frames = phase.shape[-1]
    if isinstance(reference, str):
        if reference != "auto":
            raise VelocityError(f"unknown unwrapping reference {reference!r}; give a frame index or 'auto'")
        start = reference_frame(phase, mask) if mask is None or mask.any() else 0
    elif isinstance(reference, (int, np.integer)) and not isinstance(reference, bool) and 0 <= reference < frames:
        start = int(reference)
    else:
        raise VelocityError(f"unwrapping reference {reference!r} is not a frame of this {frames}-frame series")
    tissue = np.ones(phase.shape, bool) if mask is None else mask
    period = np.float32(PHASE_MAX - PHASE_MIN)
    out = phase.copy()
    for steps in (range(start + 1, frames), range(start - 1, -1, -1)):
        previous = start
        for t in steps:
            known = tissue[:, :, previous]
            if known.any():
                guide = _local_median(out[:, :, previous], known, int(border))
                guide = np.where(np.isnan(guide), np.median(out[:, :, previous][known]), guide)
                wraps = np.round((guide - phase[:, :, t]) / period)
                out[:, :, t] += np.where(tissue[:, :, t], wraps * period, 0.0).astype(np.float32)
            previous = t
    return out

"""Velocity indices of one global curve: PSV, TPSV, PDV, TPDV and mean velocity.

Convention (DESIGN "Velocity conventions"), for a curve v(t) in mm/s and end systole t_es:

- PSV = max |v| over systole (frames 0..t_es), TPSV its frame;
- PDV = max |v| over diastole (frames t_es+1..T-1), TPDV its frame;
- mean = mean |v| over the whole cycle.

PSV, PDV and mean are magnitudes (>= 0, as in the paper's Table II); the signed curve value at the
peak is kept too (``psv_signed_mm_s``, ``pdv_signed_mm_s``) so that the direction of motion
(e.g. inward radial motion in systole, v_r < 0) is not lost. Times are given as the frame index,
in a.u. (``t * 50 / T``) and in ms (``t * rr_interval_ms / T``). Ties pick the earliest frame.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from hdl_monai.velocity.cycle import check_end_systole, time_au, time_ms
from hdl_monai.velocity.errors import VelocityError

__all__ = ["INDEX_KEYS", "INDEX_UNITS", "velocity_indices", "curve_indices"]

# The indices reported per direction (velocity.json "indices"), in the order of the paper's Table II.
INDEX_KEYS = ("psv_mm_s", "tpsv_au", "tpsv_ms", "pdv_mm_s", "tpdv_au", "tpdv_ms", "mean_mm_s")
INDEX_UNITS = {"mm_s": "mm/s", "au": "a.u.", "ms": "ms", "frame": "frame"}


def velocity_indices(curve_mm_s: np.ndarray, end_systole_frame: int, rr_interval_ms: float) -> dict[str, float | int]:
    """PSV, TPSV, PDV, TPDV and mean of one curve (mm/s).

    Args:
        curve_mm_s: (T,) global velocity curve in mm/s.
        end_systole_frame: t_es, the last systolic frame (0 <= t_es <= T-2).
        rr_interval_ms: duration of the cycle in ms (for the times in ms).

    Returns:
        ``psv_mm_s``, ``tpsv_au``, ``tpsv_ms``, ``pdv_mm_s``, ``tpdv_au``, ``tpdv_ms``,
        ``mean_mm_s`` (the :data:`INDEX_KEYS`), plus ``psv_signed_mm_s``, ``pdv_signed_mm_s``,
        ``tpsv_frame`` and ``tpdv_frame``.
    """
    curve = np.asarray(curve_mm_s, dtype=np.float64)
    if curve.ndim != 1:
        raise VelocityError(f"a velocity curve must be 1-D (T,), got shape {curve.shape}")
    T = curve.shape[0]
    bad = np.flatnonzero(~np.isfinite(curve))
    if bad.size:
        raise VelocityError(f"frame {int(bad[0])}: velocity curve is not finite ({curve[bad[0]]})")
    t_es = check_end_systole(end_systole_frame, T)
    tpsv = int(np.argmax(np.abs(curve[: t_es + 1])))
    tpdv = t_es + 1 + int(np.argmax(np.abs(curve[t_es + 1 :])))
    return {
        "psv_mm_s": float(abs(curve[tpsv])),
        "tpsv_au": time_au(tpsv, T),
        "tpsv_ms": time_ms(tpsv, T, rr_interval_ms),
        "pdv_mm_s": float(abs(curve[tpdv])),
        "tpdv_au": time_au(tpdv, T),
        "tpdv_ms": time_ms(tpdv, T, rr_interval_ms),
        "mean_mm_s": float(np.mean(np.abs(curve))),
        "psv_signed_mm_s": float(curve[tpsv]),
        "pdv_signed_mm_s": float(curve[tpdv]),
        "tpsv_frame": tpsv,
        "tpdv_frame": tpdv,
    }


def curve_indices(
    curves_mm_s: Mapping[str, np.ndarray], end_systole_frame: int, rr_interval_ms: float
) -> dict[str, dict[str, float | int]]:
    """:func:`velocity_indices` for each direction of ``{"radial": curve, ...}``."""
    return {name: velocity_indices(curve, end_systole_frame, rr_interval_ms) for name, curve in curves_mm_s.items()}

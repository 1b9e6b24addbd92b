"""The cardiac cycle: end-systole detection, systole/diastole split and the two time axes.

Convention (DESIGN "Velocity conventions"):

- End systole t_es is case.json ``end_systole_frame`` when given, else the frame of least LV
  blood-pool (label 2) area. Frame 0 is the first frame of the cycle (the R-wave trigger).
- Systole is frames 0..t_es, diastole frames t_es+1..T-1.
- Time in "a.u." is the frame index normalised to 50 frames per cycle, ``t * 50 / T`` (as in the
  paper's Table II and Fig. 9); time in ms is ``t * rr_interval_ms / T``.
"""

from __future__ import annotations

import numpy as np

from hdl_monai.velocity.centre import BLOOD_POOL, MYOCARDIUM, filled_myocardium
from hdl_monai.velocity.errors import VelocityError

__all__ = [
    "FRAMES_PER_CYCLE_AU",
    "blood_pool_area",
    "detect_end_systole",
    "check_end_systole",
    "time_au",
    "time_ms",
]

FRAMES_PER_CYCLE_AU = 50


def blood_pool_area(label: np.ndarray, myocardium: int = MYOCARDIUM, blood_pool: int = BLOOD_POOL) -> np.ndarray:
    """LV blood-pool area per frame in pixels (T,).

    The count of ``blood_pool`` pixels; when some frame has none, the cavity enclosed by the
    myocardium (filled myocardium minus myocardium) is used on every frame instead, so that all
    frames are measured the same way.
    """
    label = np.asarray(label)
    area = (label == blood_pool).sum(axis=(0, 1))
    if np.all(area > 0):
        return area
    cavity = np.empty(label.shape[-1], dtype=np.int64)
    for t in range(label.shape[-1]):
        myo = label[:, :, t] == myocardium
        cavity[t] = int(filled_myocardium(myo).sum() - myo.sum())
    return cavity


def check_end_systole(end_systole_frame: int, frames: int) -> int:
    """``end_systole_frame`` as an int in 0..T-2 (at least one diastolic frame must follow)."""
    t_es = int(end_systole_frame)
    if not 0 <= t_es < frames:
        raise VelocityError(f"end-systole frame {t_es} outside 0..{frames - 1}")
    if t_es == frames - 1:
        raise VelocityError(f"end-systole frame {t_es} is the last frame: no diastolic frames to measure PDV")
    return t_es


def detect_end_systole(label: np.ndarray, myocardium: int = MYOCARDIUM, blood_pool: int = BLOOD_POOL) -> int:
    """Frame of least LV blood-pool area (the first such frame on ties); see :func:`blood_pool_area`."""
    area = blood_pool_area(label, myocardium, blood_pool)
    if not np.any(area > 0):
        raise VelocityError(
            f"no LV blood pool (label {blood_pool}) on any frame and the myocardium encloses no cavity: "
            "cannot detect end systole; set end_systole_frame in case.json"
        )
    return check_end_systole(int(np.argmin(np.where(area > 0, area, np.iinfo(np.int64).max))), label.shape[-1])


def time_au(frame: np.ndarray | float, frames: int) -> np.ndarray | float:
    """Frame index to time in a.u.: normalised to 50 frames per cycle, ``t * 50 / T``."""
    value = np.asarray(frame, dtype=np.float64) * FRAMES_PER_CYCLE_AU / frames
    return value if value.ndim else float(value)


def time_ms(frame: np.ndarray | float, frames: int, rr_interval_ms: float) -> np.ndarray | float:
    """Frame index to time in ms from the start of the cycle: ``t * rr_interval_ms / T``."""
    value = np.asarray(frame, dtype=np.float64) * float(rr_interval_ms) / frames
    return value if value.ndim else float(value)

"""Phase <-> velocity through the velocity encoding (venc).

Convention (DESIGN "Velocity conventions"): phase images hold 0..4096 with 2048 = zero velocity,
and a phase of 0 or 4096 is -venc or +venc::

    v = (p - 2048) / 2048 * venc        (cm/s, per direction x, y, z)

Velocities inside the library are cm/s (the unit of ``venc_cm_s`` and of the phantom's
``velocity_{x,y,z}`` files); reports use mm/s (``CM_S_TO_MM_S``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from hdl_monai.data.case import DIRECTIONS, PHASE_MAX, PHASE_MIN, PHASE_ZERO
from hdl_monai.velocity.errors import VelocityError

__all__ = [
    "CM_S_TO_MM_S",
    "PHASE_HALF_RANGE",
    "phase_to_velocity",
    "velocity_to_phase",
    "phases_to_velocities",
    "check_venc",
]

CM_S_TO_MM_S = 10.0
PHASE_HALF_RANGE = (PHASE_MAX - PHASE_MIN) / 2.0  # 2048: phase units per venc


def phase_to_velocity(phase: np.ndarray, venc_cm_s: float) -> np.ndarray:
    """Velocity in cm/s from phase in 0..4096 (2048 = 0 cm/s, 0 = -venc, 4096 = +venc).

    Args:
        phase: phase image(s) of one direction, any shape.
        venc_cm_s: velocity encoding of that direction in cm/s (> 0).
    """
    venc = float(venc_cm_s)
    if not venc > 0:
        raise VelocityError(f"venc must be positive, got {venc_cm_s}")
    return (np.asarray(phase, dtype=np.float32) - PHASE_ZERO) * np.float32(venc / PHASE_HALF_RANGE)


def velocity_to_phase(velocity: np.ndarray, venc_cm_s: float, clip: bool = False) -> np.ndarray:
    """Phase in 0..4096 from velocity in cm/s, the inverse of :func:`phase_to_velocity`.

    With ``clip`` values beyond +-venc are clipped to the phase range (a real scanner would alias
    them instead; see :mod:`hdl_monai.velocity.aliasing`).
    """
    venc = float(venc_cm_s)
    if not venc > 0:
        raise VelocityError(f"venc must be positive, got {venc_cm_s}")
    phase = np.asarray(velocity, dtype=np.float32) * np.float32(PHASE_HALF_RANGE / venc) + np.float32(PHASE_ZERO)
    return np.clip(phase, PHASE_MIN, PHASE_MAX) if clip else phase


def check_venc(venc_cm_s: Mapping[str, float] | None) -> dict[str, float]:
    """``venc_cm_s`` as {"x", "y", "z"} -> positive float; a clear VelocityError otherwise."""
    if venc_cm_s is None:
        raise VelocityError("venc_cm_s missing from case.json (needed to turn phase into velocity)")
    missing = [d for d in DIRECTIONS if d not in venc_cm_s]
    if missing:
        raise VelocityError(f"venc_cm_s in case.json lacks direction(s) {missing}")
    venc = {}
    for d in DIRECTIONS:
        try:
            venc[d] = float(venc_cm_s[d])
        except (TypeError, ValueError):
            raise VelocityError(f"venc_cm_s.{d} in case.json is not a number: {venc_cm_s[d]!r}") from None
        if not venc[d] > 0:
            raise VelocityError(f"venc_cm_s.{d} in case.json must be positive, got {venc[d]}")
    return venc


def phases_to_velocities(phase: Mapping[str, np.ndarray], venc_cm_s: Mapping[str, float] | None) -> dict[str, np.ndarray]:
    """{"x", "y", "z"} phase images -> velocities in cm/s, with the venc of each direction."""
    venc = check_venc(venc_cm_s)
    missing = [d for d in DIRECTIONS if d not in phase]
    if missing:
        raise VelocityError(f"missing phase image(s) {[f'phase_{d}.nii.gz' for d in missing]}")
    return {d: phase_to_velocity(phase[d], venc[d]) for d in DIRECTIONS}

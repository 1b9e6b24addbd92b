"""Known-answer velocity fields: a contracting ring with pure rotation, radial motion or through-plane shift.

Small, exactly specified cases for tests, benchmarks and installation checks; not a realistic
phantom (see :mod:`hdl_monai.data.phantom` for that). The LV is a ring (label 1) around a disk
(label 2) centred on the grid centre ((X - 1) / 2, (Y - 1) / 2), so the blood-pool centroid is the
exact centre. The blood pool shrinks linearly to 70 % of its area at ``end_systole_frame`` and
recovers afterwards, so end systole is detectable. The velocity field fills the whole image:

- circumferential: v = V(t) e_c   (pure rotation at speed V, counter-clockwise from +x to +y)
- radial:          v = U(t) e_r   (uniform radial motion; U < 0 is contraction towards the centre)
- longitudinal:    v_z = W(t)     (through-plane shift)

so the global curves are exactly U(t), V(t), W(t) (times 10 in mm/s). Velocities are in cm/s,
phase = 2048 + v / venc * 2048 (clipped to 0..4096), e_r/e_c as in :mod:`.cylindrical`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from hdl_monai.data.case import DIRECTIONS, Case
from hdl_monai.velocity.conversion import velocity_to_phase
from hdl_monai.velocity.cylindrical import CYLINDRICAL

__all__ = ["default_profiles", "ring_label", "cylindrical_field", "known_answer_case"]


def _bump(s: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((s - centre) / width) ** 2)


def default_profiles(frames: int) -> dict[str, np.ndarray]:
    """Cardiac-like U(t), V(t), W(t) in cm/s: a systolic peak (~s = 0.12-0.15) and a larger early-diastolic one (~0.5)."""
    s = np.arange(frames) / frames
    return {
        "radial": -3.0 * _bump(s, 0.15, 0.06) + 5.0 * _bump(s, 0.5, 0.06) + 1.5 * _bump(s, 0.85, 0.05),
        "circumferential": 2.0 * _bump(s, 0.1, 0.05) - 3.0 * _bump(s, 0.45, 0.07),
        "longitudinal": 4.0 * _bump(s, 0.12, 0.05) - 7.0 * _bump(s, 0.5, 0.06) - 3.0 * _bump(s, 0.85, 0.05),
    }


def ring_label(
    size: int = 32,
    frames: int = 12,
    end_systole_frame: int | None = None,
    blood_pool_radius: float | None = None,
    thickness: float | None = None,
) -> np.ndarray:
    """(size, size, frames) uint8 label: 2 inside the blood-pool radius, 1 in the ring around it.

    The blood-pool area is 100 % at frame 0, 70 % at ``end_systole_frame`` (default 35 % of the
    cycle) and back to 100 % at the end of the cycle; the wall keeps its thickness.
    """
    t_es = int(round(0.35 * frames)) if end_systole_frame is None else int(end_systole_frame)
    r0 = size / 6 if blood_pool_radius is None else float(blood_pool_radius)
    wall = size / 8 if thickness is None else float(thickness)
    t = np.arange(frames, dtype=np.float64)
    shrink = np.where(t <= t_es, t / max(t_es, 1), (frames - t) / max(frames - t_es, 1))
    radius = r0 * np.sqrt(1.0 - 0.3 * shrink)
    c = (size - 1) / 2.0
    x, y = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    r = np.hypot(x - c, y - c)[..., None]
    return np.where(r < radius, 2, np.where(r < radius + wall, 1, 0)).astype(np.uint8)


def cylindrical_field(
    shape: tuple[int, int, int],
    curves_cm_s: Mapping[str, np.ndarray],
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
) -> dict[str, np.ndarray]:
    """Cartesian {"x", "y", "z"} velocities (cm/s) of v = U e_r + V e_c + W e_z about the grid centre.

    ``curves_cm_s`` maps any of "radial", "circumferential", "longitudinal" to a (T,) profile.
    """
    X, Y, T = shape
    zero = np.zeros(T)
    u, v, w = (np.asarray(curves_cm_s.get(name, zero), dtype=np.float64) for name in CYLINDRICAL)
    dx = ((np.arange(X) - (X - 1) / 2.0) * pixel_spacing_mm[0])[:, None, None]
    dy = ((np.arange(Y) - (Y - 1) / 2.0) * pixel_spacing_mm[1])[None, :, None]
    norm = np.hypot(dx, dy)
    ex = np.divide(dx, norm, out=np.zeros(np.broadcast(dx, dy).shape), where=norm > 0)
    ey = np.divide(dy, norm, out=np.zeros(np.broadcast(dx, dy).shape), where=norm > 0)
    vx = u * ex - v * ey  # U e_r + V e_c with e_c = (-e_r.y, e_r.x)
    vy = u * ey + v * ex
    vz = np.broadcast_to(w, shape)
    return {d: np.ascontiguousarray(a, dtype=np.float32) for d, a in zip(DIRECTIONS, (vx, vy, vz))}


def known_answer_case(
    curves_cm_s: Mapping[str, np.ndarray] | None = None,
    size: int = 32,
    frames: int = 12,
    venc_cm_s: Mapping[str, float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    case_id: str = "known",
    rr_interval_ms: float = 1000.0,
    pixel_spacing_mm: tuple[float, float] = (1.5, 1.5),
    end_systole_frame: int | None = None,
    record_end_systole: bool = False,
) -> Case:
    """A ring case whose global curves are ``curves_cm_s`` (default :func:`default_profiles`).

    Args:
        curves_cm_s: "radial" / "circumferential" / "longitudinal" -> (frames,) profile in cm/s;
            missing directions are 0.
        size: image size in pixels (square); frames: T.
        venc_cm_s: per direction (default x, y 20, z 30 cm/s as in the paper).
        noise: Gaussian phase noise (std, phase units) added before clipping to 0..4096.
        seed: noise seed.
        case_id, rr_interval_ms, pixel_spacing_mm: the case's metadata.
        end_systole_frame: frame of least blood-pool area (default 35 % of the cycle).
        record_end_systole: also store it as case.json ``end_systole_frame``.
    """
    curves = default_profiles(frames) if curves_cm_s is None else dict(curves_cm_s)
    venc = dict(venc_cm_s or {"x": 20.0, "y": 20.0, "z": 30.0})
    t_es = int(round(0.35 * frames)) if end_systole_frame is None else int(end_systole_frame)
    label = ring_label(size, frames, t_es)
    velocity = cylindrical_field(label.shape, curves, pixel_spacing_mm)
    rng = np.random.default_rng(seed)
    phase = {}
    for d in DIRECTIONS:
        p = velocity_to_phase(velocity[d], venc[d])
        if noise:
            p = p + rng.normal(0.0, noise, p.shape).astype(np.float32)
        phase[d] = np.clip(p, 0.0, 4096.0).astype(np.float32)
    magnitude = np.where(label > 0, 1500.0, 200.0).astype(np.float32) + rng.normal(0, 20, label.shape).astype(np.float32)
    return Case(
        case_id=case_id,
        subject=case_id,
        magnitude=magnitude,
        phase=phase,
        velocity=velocity,
        label=label,
        pixel_spacing_mm=tuple(float(s) for s in pixel_spacing_mm),
        rr_interval_ms=float(rr_interval_ms),
        venc_cm_s=venc,
        source="known_answer",
        end_systole_frame=t_es if record_end_systole else None,
    )

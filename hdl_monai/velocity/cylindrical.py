"""Cartesian (x, y, z) velocities to cylindrical (radial, circumferential, longitudinal) about the LV centre.

Convention (DESIGN "Velocity conventions"), in the image plane with x = array axis 0 and
y = array axis 1, positions in mm (pixel index times pixel spacing) and c(t) the LV centre:

    e_r = (p - c) / |p - c|        radial unit vector, pointing OUTWARD from the LV centre
    e_c = (-e_r.y, e_r.x)          circumferential: e_r turned +90 degrees, counter-clockwise
                                   in the (x, y) array plane (from +x towards +y)
    v_r = v . e_r,  v_c = v . e_c,  v_l = v_z   (longitudinal = through-plane, unchanged)

So v_r > 0 is outward motion (wall thickening outwards / dilation), v_r < 0 inward (contraction),
and v_c > 0 is rotation from +x towards +y. A pixel exactly at the centre has no defined e_r; its
v_r and v_c are 0. Units are whatever the inputs are (cm/s in, cm/s out).
"""

from __future__ import annotations

import numpy as np

from hdl_monai.velocity.errors import VelocityError

__all__ = ["CYLINDRICAL", "to_cylindrical", "radial_offsets", "cylindrical_velocity"]

CYLINDRICAL = ("radial", "circumferential", "longitudinal")


def to_cylindrical(
    vx: np.ndarray, vy: np.ndarray, vz: np.ndarray, dx: np.ndarray, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(v_r, v_c, v_l) from Cartesian velocities and the offset (dx, dy) of each pixel from the centre.

    All arguments broadcast together; ``dx``, ``dy`` are p - c in mm (any common unit: only their
    direction matters). Returns arrays of the broadcast shape.
    """
    dx = np.asarray(dx, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    norm = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        ex = np.where(norm > 0, dx / norm, 0.0)
        ey = np.where(norm > 0, dy / norm, 0.0)
    vr = vx * ex + vy * ey
    vc = -vx * ey + vy * ex  # e_c = (-e_r.y, e_r.x)
    vl = np.broadcast_to(np.asarray(vz), np.broadcast(vr, np.asarray(vz)).shape)
    return vr, vc, np.array(vl, dtype=np.result_type(vr, vl))


def radial_offsets(
    shape: tuple[int, int, int], centre: np.ndarray, pixel_spacing_mm: tuple[float, float] = (1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets p - c(t) in mm, as broadcastable (X, 1, T) and (1, Y, T) arrays for an (X, Y, T) grid."""
    X, Y, T = shape
    centre = np.asarray(centre, dtype=np.float64)
    if centre.shape != (T, 2):
        raise VelocityError(f"centre has shape {centre.shape}, expected ({T}, 2) for {T} frames")
    sx, sy = (float(s) for s in pixel_spacing_mm)
    dx = (np.arange(X, dtype=np.float64)[:, None, None] - centre[None, None, :, 0]) * sx
    dy = (np.arange(Y, dtype=np.float64)[None, :, None] - centre[None, None, :, 1]) * sy
    return dx, dy


def cylindrical_velocity(
    vx: np.ndarray,
    vy: np.ndarray,
    vz: np.ndarray,
    centre: np.ndarray,
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full (X, Y, T) maps of (v_r, v_c, v_l) about the per-frame LV centre (T, 2) in pixel units."""
    vx, vy, vz = (np.asarray(v) for v in (vx, vy, vz))
    if not vx.shape == vy.shape == vz.shape or vx.ndim != 3:
        raise VelocityError(f"velocity shapes disagree or are not (X, Y, T): {vx.shape}, {vy.shape}, {vz.shape}")
    dx, dy = radial_offsets(vx.shape, centre, pixel_spacing_mm)
    return to_cylindrical(vx, vy, vz, dx, dy)

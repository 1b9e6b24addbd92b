"""Horn-Schunck optical flow (Horn & Schunck 1981) and flow-based frame interpolation.

Flow convention: ``flow[0]`` is the displacement along array axis 0 (x) and ``flow[1]`` along axis 1
(y), in pixels, such that ``frame1(p + flow(p)) ~= frame0(p)``: the content at p in frame0 has moved
to p + flow(p) in frame1. A coarse-to-fine pyramid handles displacements of several pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "horn_schunck",
    "warp",
    "interpolate_flow",
    "flow_estimate",
    "TIMINGS",
    "hermite_fraction",
    "hermite_timing",
    "spline_knot_velocities",
    "prior_fraction",
]

TIMINGS = ("linear", "cubic", "spline", "learned")
"""How far along the flow an in-between frame is placed: constant speed; a cubic per gap whose end speeds
come from the two neighbouring gaps (:func:`hermite_timing`); a cubic per gap whose end speeds are those
of a periodic cubic spline through every kept frame (:func:`spline_knot_velocities`); or at the whole
displacement a learned timing prior predicts, which may leave the flow's straight line (``offset`` of
:func:`interpolate_flow`, blend weights by :func:`prior_fraction`;
:class:`~hdl_monai.baselines.timing_prior.TimingPrior`)."""

_AVERAGE = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], dtype=np.float64) / 12.0


def warp(image: np.ndarray, flow: np.ndarray, order: int = 1) -> np.ndarray:
    """Sample ``image`` at p + flow(p) (edge values beyond the border).

    Args:
        image: (X, Y) array.
        flow: (2, X, Y) displacement in pixels along axes 0 and 1.
        order: spline order (1 bilinear for images, 0 nearest for label maps).
    """
    grid = np.indices(image.shape, dtype=np.float64)
    return ndimage.map_coordinates(image, grid + flow, order=order, mode="nearest")


def _horn_schunck_level(i0: np.ndarray, i1: np.ndarray, alpha: float, iterations: int) -> np.ndarray:
    # Derivatives averaged over both frames (2x2x2 cube of first differences, as in the original).
    ix = 0.5 * (np.gradient(i0, axis=0) + np.gradient(i1, axis=0))
    iy = 0.5 * (np.gradient(i0, axis=1) + np.gradient(i1, axis=1))
    it = i1 - i0
    u = np.zeros_like(i0)
    v = np.zeros_like(i0)
    denominator = alpha**2 + ix**2 + iy**2
    for _ in range(iterations):
        u_avg = ndimage.convolve(u, _AVERAGE, mode="nearest")
        v_avg = ndimage.convolve(v, _AVERAGE, mode="nearest")
        update = (ix * u_avg + iy * v_avg + it) / denominator
        u = u_avg - ix * update
        v = v_avg - iy * update
    return np.stack([u, v])


def horn_schunck(
    frame0: np.ndarray, frame1: np.ndarray, alpha: float = 0.1, iterations: int = 100, levels: int = 3
) -> np.ndarray:
    """Dense flow from ``frame0`` to ``frame1`` by Horn-Schunck, coarse to fine.

    Images are scaled to [0, 1] together (by their joint range) so ``alpha`` (the smoothness weight)
    means the same for any scanner units.

    Args:
        frame0, frame1: (X, Y) images.
        alpha: smoothness weight (larger: smoother flow).
        iterations: Jacobi iterations per pyramid level.
        levels: pyramid levels (each halves the size); 1 for a single scale.

    Returns:
        (2, X, Y) flow in pixels (see the module docstring for the convention).
    """
    if frame0.shape != frame1.shape or frame0.ndim != 2:
        raise ValueError(f"frames must be two 2-D arrays of one shape, got {frame0.shape} and {frame1.shape}")
    lo = min(frame0.min(), frame1.min())
    span = max(frame0.max(), frame1.max()) - lo
    scale = span if span > 0 else 1.0
    i0 = (np.asarray(frame0, np.float64) - lo) / scale
    i1 = (np.asarray(frame1, np.float64) - lo) / scale
    pyramid = [(i0, i1)]
    for _ in range(levels - 1):
        a, b = pyramid[-1]
        if min(a.shape) < 16:
            break
        pyramid.append((ndimage.zoom(ndimage.gaussian_filter(a, 1.0), 0.5, order=1),
                        ndimage.zoom(ndimage.gaussian_filter(b, 1.0), 0.5, order=1)))
    flow = np.zeros((2,) + pyramid[-1][0].shape)
    for a, b in reversed(pyramid):
        if flow.shape[1:] != a.shape:
            factors = (1, a.shape[0] / flow.shape[1], a.shape[1] / flow.shape[2])
            flow = ndimage.zoom(flow, factors, order=1) * 2.0
        warped = warp(b, flow)
        flow = flow + _horn_schunck_level(a, warped, alpha, iterations)
    return flow


def interpolate_flow(
    frame0: np.ndarray,
    frame1: np.ndarray,
    alpha_t: float | np.ndarray,
    flow: np.ndarray | None = None,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
    offset: np.ndarray | None = None,
    **flow_kwargs,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The frame at fraction ``alpha_t`` (0 = frame0, 1 = frame1) between two frames.

    Each pixel p of the new frame is taken from frame0 at p - alpha_t * flow(p) and from frame1 at
    p + (1 - alpha_t) * flow(p) (flow assumed locally constant), blended with weights
    (1 - alpha_t, alpha_t). Masks, when given, are moved with the same flow (nearest neighbour) and
    the label of the nearer input frame in time is kept.

    ``alpha_t`` may also be an (X, Y) map (a per-pixel fraction along the flow, e.g. :func:`hermite_timing`);
    the blend weights then follow it pixel by pixel.

    ``offset`` (2, X, Y), when given, is the new frame's displacement from frame0 in place of
    ``alpha_t * flow``: p comes from frame0 at p - offset(p) and from frame1 at p + flow(p) - offset(p), so a
    path that leaves the straight line between the two frames (a pixel that turns within the gap) is
    followed; ``alpha_t`` then only sets the blend weights.

    Returns:
        (image, mask or None)
    """
    if flow is None:
        flow = horn_schunck(frame0, frame1, **flow_kwargs)
    alpha_t = np.asarray(alpha_t, dtype=np.float64)
    to_new = alpha_t * flow if offset is None else np.asarray(offset, dtype=np.float64)
    back = warp(frame0, -to_new)
    fwd = warp(frame1, flow - to_new)
    image = (1 - alpha_t) * back + alpha_t * fwd
    mask = None
    if masks is not None:
        m0 = warp(masks[0].astype(np.float64), -to_new, order=0)
        m1 = warp(masks[1].astype(np.float64), flow - to_new, order=0)
        mask = np.where(alpha_t <= 0.5, m0, m1).astype(masks[0].dtype)
    return image.astype(frame0.dtype, copy=False), mask


def _along_flow(flow: np.ndarray, vector: np.ndarray, min_motion_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(``vector`` (2, X, Y) projected on ``flow`` (2, X, Y) in units of the flow's length, pixels whose flow
    is at least ``min_motion_px`` long): float64 (X, Y) and bool (X, Y); the projection is 0 where the flow
    is shorter (its value there is not to be used)."""
    flow = np.asarray(flow, dtype=np.float64)
    norm2 = (flow**2).sum(0)
    moving = norm2 >= min_motion_px**2
    return (np.asarray(vector, np.float64) * flow).sum(0) / np.where(moving, norm2, 1.0), moving


def hermite_fraction(
    flow: np.ndarray,
    gap: int,
    start_velocity: np.ndarray,
    end_velocity: np.ndarray,
    alpha_t: float,
    min_motion_px: float = 0.5,
    max_slope: float = 3.0,
) -> np.ndarray:
    """Per-pixel fraction along ``flow`` (the displacement over a gap of ``gap`` frame intervals) reached at
    time ``alpha_t`` of the gap, for a cubic Hermite path from 0 to 1 whose end speeds are the velocities
    (px per frame, (2, X, Y)) at the gap's two kept frames projected on ``flow``: float64 (X, Y).

    End slopes are in units of the gap's mean speed and clipped to [0, ``max_slope``]; pixels that move
    less than ``min_motion_px`` over the gap keep ``alpha_t``. End velocities equal to the gap's mean
    velocity give ``alpha_t`` exactly.
    """
    def slope(velocity: np.ndarray) -> np.ndarray:
        along, moving = _along_flow(flow, velocity, min_motion_px)
        return np.where(moving, np.clip(gap * along, 0.0, max_slope), 1.0)

    m0, m1 = slope(start_velocity), slope(end_velocity)
    t = float(alpha_t)
    h10, h01, h11 = t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
    return h10 * m0 + h01 + h11 * m1


def hermite_timing(
    flow: np.ndarray,
    gap: int,
    previous: tuple[np.ndarray, int],
    following: tuple[np.ndarray, int],
    alpha_t: float,
    min_motion_px: float = 0.5,
    max_slope: float = 3.0,
) -> np.ndarray:
    """Per-pixel fraction along ``flow`` reached at time ``alpha_t`` of a gap, when motion is smooth across
    kept frames instead of constant within each gap: float64 (X, Y).

    ``flow`` is the displacement over this gap of ``gap`` frame intervals; ``previous`` and ``following``
    are (flow, gap) of the gaps before and after it. The speed at each kept frame is the mean of the two
    adjoining gaps' mean velocities (per frame), projected on this gap's flow; a cubic Hermite curve from 0
    to 1 with those end slopes gives the fraction (:func:`hermite_fraction`). Constant speed gives
    ``alpha_t`` exactly; a gap faster than its neighbours gives an S-curve (slow, fast, slow), so a velocity
    peak between two kept frames is not flattened to the gap's mean. Pixels that move less than
    ``min_motion_px`` over the gap keep ``alpha_t``; end slopes are clipped to [0, ``max_slope``] (in units
    of the gap's mean speed).
    """
    speed = np.asarray(flow, dtype=np.float64) / gap
    start = (speed + np.asarray(previous[0], np.float64) / previous[1]) / 2
    end = (speed + np.asarray(following[0], np.float64) / following[1]) / 2
    return hermite_fraction(flow, gap, start, end, alpha_t, min_motion_px, max_slope)


def spline_knot_velocities(flows: np.ndarray, gaps: Sequence[int]) -> np.ndarray:
    """Velocity (px per frame) at every kept frame of one cycle from a periodic cubic spline through the
    kept frames' positions: float64 (n, 2, X, Y) for ``flows`` (n, 2, X, Y), the displacement over each of
    the n gaps between consecutive kept frames (the last one wrapping to the first), and ``gaps`` their
    lengths in frames.

    Pixel by pixel (Eulerian: each gap's flow is read at the same pixel), the positions are the running sum
    of the flows; the cycle's net drift is taken out as a constant speed so the rest is periodic, and the
    spline's slope at each kept frame is added back to it. Uniform motion gives every kept frame the common
    speed (so :func:`hermite_fraction` stays linear). Unlike :func:`hermite_timing`, which looks one gap
    either side, every kept frame of the cycle shapes each speed.
    """
    from scipy.interpolate import CubicSpline

    lengths = np.asarray(gaps, dtype=np.float64)
    n = lengths.size
    if n < 2 or np.asarray(flows).shape[0] != n:
        raise ValueError(f"spline timing needs one flow per gap and at least 2 gaps, got {np.asarray(flows).shape[0]} flows and {n} gaps")
    t = np.concatenate([[0.0], np.cumsum(lengths)])
    # the spline is linear in the data: column j is the knots' slopes for gap j's unit displacement,
    # whose positions are 0 up to knot j and 1 after it
    drift = 1.0 / t[-1]
    positions = (np.arange(n + 1)[:, None] > np.arange(n)[None, :]).astype(np.float64)  # (knots + 1, gaps)
    periodic = positions - drift * t[:, None]
    periodic[-1] = periodic[0]
    weights = CubicSpline(t, periodic, bc_type="periodic")(t[:-1], 1) + drift  # (knots, gaps)
    return np.tensordot(weights, np.asarray(flows, dtype=np.float64), axes=(1, 0))


def prior_fraction(
    flow: np.ndarray,
    offset: np.ndarray,
    alpha_t: float,
    min_motion_px: float = 0.5,
    limits: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Per-pixel fraction along ``flow`` (a gap's displacement, (2, X, Y)) of a predicted ``offset`` from the
    gap's first kept frame (2, X, Y), e.g. from :meth:`~hdl_monai.baselines.timing_prior.TimingPrior.weights`:
    float64 (X, Y), the offset projected on the flow in units of its length, clipped to ``limits``. The
    learned timing uses it as the blend weight of the gap's second kept frame (so within [0, 1]). Pixels
    that move less than ``min_motion_px`` over the gap keep ``alpha_t``.
    """
    along, moving = _along_flow(flow, offset, min_motion_px)
    return np.where(moving, np.clip(along, *limits), float(alpha_t))


def flow_estimate(
    frame0: np.ndarray,
    frame1: np.ndarray,
    alpha_t: float | np.ndarray,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
    flow: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    **flow_kwargs,
) -> np.ndarray:
    """The optical-flow guess at fraction ``alpha_t`` (a number, or an (X, Y) map such as
    :func:`hermite_timing`) as soft planes: the input-to-output skip of the hybrid interpolation network
    (``MultiHeadMultiTailR2UNet(estimate_channels=2)``).

    Plane 0 is :func:`interpolate_flow`'s image. Plane 1 is the two masks moved with the same flow but
    bilinearly, and blended with weights (1 - alpha_t, alpha_t) like the image, so it is a probability
    in [0, 1] rather than the baseline's nearest-frame label (zeros without ``masks``). ``offset``: the
    displacement from frame0 in place of ``alpha_t * flow`` (:func:`interpolate_flow`).

    Returns:
        float32 (2, X, Y).
    """
    if flow is None:
        flow = horn_schunck(frame0, frame1, **flow_kwargs)
    image, _ = interpolate_flow(np.asarray(frame0, np.float64), np.asarray(frame1, np.float64), alpha_t, flow=flow,
                                offset=offset)
    mask = np.zeros_like(image)
    if masks is not None:
        mask, _ = interpolate_flow(
            np.asarray(masks[0], np.float64), np.asarray(masks[1], np.float64), alpha_t, flow=flow, offset=offset
        )
    return np.stack([image, np.clip(mask, 0.0, 1.0)]).astype(np.float32)

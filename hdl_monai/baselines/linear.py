"""Linear temporal interpolation (paper eq. 2), for images and masks."""

from __future__ import annotations

import numpy as np

__all__ = ["interpolate_linear"]


def interpolate_linear(
    frame0: np.ndarray, frame1: np.ndarray, alpha_t: float, masks: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The frame at fraction ``alpha_t = k / (K + 1)`` between M_tau (0) and M_tau+K+1 (1).

    M_tau+k = (1 - alpha_t) M_tau + alpha_t M_tau+K+1. (The paper's eq. 2 prints the two weights the
    other way round; at k -> 0 the result must equal M_tau, which fixes the order used here.)
    Masks are blended the same way and rounded back to the nearest label, so for binary masks the
    result is the region where the blend reaches 0.5; label maps with several values are taken from
    the nearer frame in time (blending label values would invent labels in between).

    Returns:
        (image, mask or None)
    """
    if not 0.0 <= alpha_t <= 1.0:
        raise ValueError(f"alpha_t must lie in [0, 1], got {alpha_t}")
    image = (1 - alpha_t) * np.asarray(frame0, np.float64) + alpha_t * np.asarray(frame1, np.float64)
    mask = None
    if masks is not None:
        m0, m1 = masks
        if set(np.unique(m0)) | set(np.unique(m1)) <= {0, 1}:
            mask = ((1 - alpha_t) * m0 + alpha_t * m1 >= 0.5).astype(m0.dtype)
        else:
            mask = (m0 if alpha_t <= 0.5 else m1).copy()
    return image.astype(np.asarray(frame0).dtype, copy=False), mask

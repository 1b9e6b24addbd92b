"""Linear temporal interpolation (paper eq. 2), for images and masks."""

from __future__ import annotations

import numpy as np

__all__ = ["interpolate_linear", "blend_labels"]


def interpolate_linear(
    frame0: np.ndarray, frame1: np.ndarray, alpha_t: float, masks: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The frame at fraction ``alpha_t = k / (K + 1)`` between M_tau (0) and M_tau+K+1 (1).

    M_tau+k = (1 - alpha_t) M_tau + alpha_t M_tau+K+1. (The paper's eq. 2 prints the two weights the
    other way round; at k -> 0 the result must equal M_tau, which fixes the order used here.)
    Masks are blended the same way, one label at a time (see :func:`blend_labels`), so a binary mask
    becomes the region where the blend passes 0.5 and no label value is invented in between.

    Returns:
        (image, mask or None)
    """
    if not 0.0 <= alpha_t <= 1.0:
        raise ValueError(f"alpha_t must lie in [0, 1], got {alpha_t}")
    image = (1 - alpha_t) * np.asarray(frame0, np.float64) + alpha_t * np.asarray(frame1, np.float64)
    mask = None
    if masks is not None:
        mask = blend_labels(masks[0], masks[1], alpha_t)
    return image.astype(np.asarray(frame0).dtype, copy=False), mask


def blend_labels(label0: np.ndarray, label1: np.ndarray, alpha_t: float) -> np.ndarray:
    """Per-pixel label whose one-hot blend (1 - alpha_t) * [label0 == v] + alpha_t * [label1 == v] is
    largest; ties go to the nearer frame in time (label0 when alpha_t <= 0.5)."""
    values = np.union1d(np.unique(label0), np.unique(label1))
    scores = np.stack([(1 - alpha_t) * (label0 == v) + alpha_t * (label1 == v) for v in values])
    nearer = label0 if alpha_t <= 0.5 else label1
    scores += 1e-6 * np.stack([nearer == v for v in values])
    return values[np.argmax(scores, axis=0)].astype(label0.dtype)

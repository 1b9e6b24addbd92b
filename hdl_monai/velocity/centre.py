"""The LV centre c(t) per frame, the origin of the cylindrical coordinates.

Convention (DESIGN "Velocity conventions"): c(t) is the centroid of the LV blood pool (label 2)
at frame t; on a frame without label 2 it is the centroid of the filled myocardium (label 1 with
its cavity filled). Centres are in pixel index units, ``[x, y]`` with x = array axis 0 and
y = array axis 1; multiply by the pixel spacing for mm.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hdl_monai.velocity.errors import VelocityError

__all__ = ["MYOCARDIUM", "BLOOD_POOL", "centroids", "filled_myocardium", "lv_centre"]

MYOCARDIUM = 1
BLOOD_POOL = 2


def centroids(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame centroid of a boolean (X, Y, T) mask.

    Returns:
        ``(centre, count)``: centre (T, 2) in pixel units [x, y] (NaN on empty frames) and the
        number of mask pixels per frame (T,).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise VelocityError(f"expected an (X, Y, T) mask, got shape {mask.shape}")
    count = mask.sum(axis=(0, 1))
    along_x = mask.sum(axis=1)  # (X, T)
    along_y = mask.sum(axis=0)  # (Y, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (np.arange(mask.shape[0])[:, None] * along_x).sum(axis=0) / count
        cy = (np.arange(mask.shape[1])[:, None] * along_y).sum(axis=0) / count
    return np.stack([cx, cy], axis=-1).astype(np.float64), count


def filled_myocardium(myocardium: np.ndarray) -> np.ndarray:
    """A 2D (X, Y) myocardium mask with the cavity it encloses filled in."""
    return ndimage.binary_fill_holes(np.asarray(myocardium, dtype=bool))


def lv_centre(label: np.ndarray, myocardium: int = MYOCARDIUM, blood_pool: int = BLOOD_POOL) -> np.ndarray:
    """LV centre per frame: centroid of ``blood_pool`` pixels, else of the filled myocardium.

    Args:
        label: (X, Y, T) integer label map (0 background, 1 myocardium, 2 LV blood pool).
        myocardium: label value of the LV myocardium.
        blood_pool: label value of the LV blood pool.

    Returns:
        (T, 2) float array of [x, y] in pixel units (x = axis 0, y = axis 1).

    Raises:
        VelocityError: naming the first frame with neither blood pool nor myocardium.
    """
    label = np.asarray(label)
    centre, count = centroids(label == blood_pool)
    for t in np.flatnonzero(count == 0):
        filled = filled_myocardium(label[:, :, t] == myocardium)
        if not filled.any():
            raise VelocityError(
                f"frame {t}: no LV blood pool (label {blood_pool}) and no myocardium (label {myocardium}); "
                "cannot place the LV centre"
            )
        xs, ys = np.nonzero(filled)
        centre[t] = (xs.mean(), ys.mean())
    return centre

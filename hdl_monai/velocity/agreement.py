"""Agreement between two sets of velocity curves or indices (reference vs synthetic).

Pearson's r between a reference and a synthetic curve (the paper reports 0.99 / 0.92 / 0.48 for
K = 0 / 3 / 6), and index differences taken as synthetic - reference in the index's own unit.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from hdl_monai.velocity.errors import VelocityError
from hdl_monai.velocity.indices import INDEX_KEYS

__all__ = ["pearson_r", "curve_agreement", "pooled_agreement", "index_differences"]


def pearson_r(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation coefficient of two equally long 1-D series.

    Returns NaN when either series is constant (r is undefined there) or shorter than 2.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise VelocityError(f"curves differ in length: {a.size} and {b.size} frames")
    if a.size < 2:
        return math.nan
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denom == 0.0:
        return math.nan
    return float(np.clip(np.dot(da, db) / denom, -1.0, 1.0))


def curve_agreement(reference: Mapping[str, np.ndarray], synthetic: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Pearson r per direction for the directions both curve sets have."""
    missing = sorted(set(reference) ^ set(synthetic))
    if missing:
        raise VelocityError(f"curve sets differ in directions: {missing}")
    return {name: pearson_r(reference[name], synthetic[name]) for name in reference}


def pooled_agreement(
    reference: Sequence[Mapping[str, np.ndarray]], synthetic: Sequence[Mapping[str, np.ndarray]]
) -> dict[str, float]:
    """Pearson r per direction over all pairs' curves concatenated (one number per direction)."""
    if len(reference) != len(synthetic) or not reference:
        raise VelocityError(f"need the same, non-zero number of curve sets, got {len(reference)} and {len(synthetic)}")
    return {
        name: pearson_r(np.concatenate([r[name] for r in reference]), np.concatenate([s[name] for s in synthetic]))
        for name in reference[0]
    }


def index_differences(
    reference: Mapping[str, Mapping[str, float]],
    synthetic: Mapping[str, Mapping[str, float]],
    keys: Sequence[str] = INDEX_KEYS,
) -> dict[str, dict[str, float]]:
    """Synthetic - reference for each index of each direction: {"radial": {"psv_mm_s": d, ...}, ...}."""
    return {
        name: {key: float(synthetic[name][key]) - float(reference[name][key]) for key in keys}
        for name in reference
    }

"""Shared test fixtures: small in-memory cases and the path to ../shared when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hdl_monai.data.case import Case

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SUNNYBROOK = SHARED / "data" / "sunnybrook"


def make_case(case_id: str = "c0", size: int = 16, frames: int = 6, subject: str | None = None, seed: int = 0) -> Case:
    """A tiny valid case: ring label, magnitude, phase and velocity, deterministic from ``seed``."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    r = np.hypot(x - size / 2, y - size / 2)
    label2d = np.where(r < size / 6, 2, np.where(r < size / 3, 1, 0)).astype(np.uint8)
    label = np.repeat(label2d[..., None], frames, axis=-1)
    magnitude = (1000 + 100 * rng.standard_normal((size, size, frames))).astype(np.float32)
    phase = {d: (2048 + 50 * rng.standard_normal((size, size, frames))).astype(np.float32) for d in "xyz"}
    velocity = {d: ((phase[d] - 2048) / 2048 * v).astype(np.float32) for d, v in zip("xyz", (20, 20, 30))}
    return Case(
        case_id=case_id,
        subject=subject or case_id,
        magnitude=magnitude,
        phase=phase,
        velocity=velocity,
        label=label,
        pixel_spacing_mm=(1.5, 1.5),
        rr_interval_ms=1000.0,
        venc_cm_s={"x": 20.0, "y": 20.0, "z": 30.0},
        source="test",
    )


@pytest.fixture
def tiny_case() -> Case:
    return make_case()

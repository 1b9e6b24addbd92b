"""Aliasing: detection of phase at the range ends in tissue, and temporal unwrapping."""

from __future__ import annotations

import numpy as np

from hdl_monai.velocity import assess_case, detect_aliasing, edge_fraction, unwrap_temporal
from hdl_monai.velocity.conversion import velocity_to_phase
from hdl_monai.velocity.synthetic import known_answer_case

# through-plane velocity (cm/s) that passes venc_z = 30 cm/s at frames 4 (38 cm/s); frames 3 and 5
# sit at 29.5 cm/s, i.e. phase 4061, within the 2 % margin of the range end
W = np.array([0.0, 10.0, 20.0, 29.5, 38.0, 29.5, 20.0, 10.0, 0.0, -5.0, -2.0, 0.0])


def _aliased_case():
    case = known_answer_case({"longitudinal": W}, size=32, frames=W.size)
    case.phase["z"] = np.mod(velocity_to_phase(case.velocity["z"], 30.0), 4096.0).astype(np.float32)
    return case


def test_clean_case_has_no_warning():
    case = known_answer_case(size=32, frames=12, noise=30.0)
    result = assess_case(case)
    assert result.warnings == []
    assert all(r["frames"] == [] for r in result.aliasing.values())


def test_aliasing_is_detected_in_the_direction_and_frames():
    case = _aliased_case()
    report, warnings = detect_aliasing(case.phase, case.label == 1)
    assert report["z"]["frames"] == [3, 5] and report["x"]["frames"] == [] and report["y"]["frames"] == []
    assert len(warnings) == 1 and "phase_z" in warnings[0] and "first 3" in warnings[0]
    fraction = edge_fraction(case.phase["z"], case.label == 1)
    assert fraction[3] == 1.0 and fraction[0] == 0.0
    assert assess_case(case).warnings == warnings


def test_temporal_unwrapping_recovers_the_velocity():
    case = _aliased_case()
    wrapped = assess_case(case).curves_mm_s["longitudinal"]
    assert wrapped[4] < 0  # 38 cm/s aliased to -22 cm/s
    unwrapped = assess_case(case, unwrap=True)
    np.testing.assert_allclose(unwrapped.curves_mm_s["longitudinal"], W * 10.0, atol=0.05)
    assert unwrapped.unwrapped and unwrapped.warnings  # the warning stays: venc was too low
    # outside the mask nothing changes; a clean series is left alone
    phase = unwrap_temporal(case.phase["z"], case.label == 1)
    np.testing.assert_array_equal(phase[case.label == 0], case.phase["z"][case.label == 0])
    clean = known_answer_case(size=16, frames=12).phase["z"]
    np.testing.assert_array_equal(unwrap_temporal(clean), clean)

"""Aliasing: detection of phase at the range ends in tissue, and temporal unwrapping."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from hdl_monai.velocity import assess_case, detect_aliasing, edge_fraction, reference_frame, unwrap_temporal
from hdl_monai.velocity.assessment import case_velocities
from hdl_monai.velocity.conversion import velocity_to_phase
from hdl_monai.velocity.errors import VelocityError
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


def test_unwrapping_starts_from_the_slowest_clean_frame_when_frame_0_is_aliased():
    # the same profile started at its fastest frame (38 cm/s, aliased): a start at frame 0 keeps its wrap
    # on every frame, the automatic reference (a frame at 0 cm/s) recovers the whole curve
    shifted = np.roll(W, -4)
    case = known_answer_case({"longitudinal": shifted}, size=32, frames=W.size)
    case.phase["z"] = np.mod(velocity_to_phase(case.velocity["z"], 30.0), 4096.0).astype(np.float32)
    myo = case.label == 1
    assert reference_frame(case.phase["z"], myo) == int(np.flatnonzero(shifted == 0)[0])
    from_zero = assess_case(case)  # no unwrapping: frame 0 reads as -22 cm/s
    assert from_zero.curves_mm_s["longitudinal"][0] < 0
    # from frame 0 the whole curve is off by one wrap, -2 venc (-60 cm/s)
    naive = case_velocities(case, unwrap=True, mask=myo, reference=0)["z"]
    per_frame = np.array([naive[..., t][myo[..., t]].mean() for t in range(W.size)])
    np.testing.assert_allclose(per_frame, shifted - 60.0, atol=0.01)
    result = assess_case(case, unwrap=True)
    np.testing.assert_allclose(result.curves_mm_s["longitudinal"], shifted * 10.0, atol=0.05)
    assert result.unwrap_reference["z"] == reference_frame(case.phase["z"], myo)
    assert result.to_dict()["unwrap_reference"] == result.unwrap_reference
    assert assess_case(case).unwrap_reference == {}


def test_reference_frame_prefers_no_range_ends_then_slow_tissue_then_early():
    phase = np.full((4, 4, 5), 2048.0, np.float32)
    phase[..., 0] = 4090.0  # at the range end
    phase[..., 1] = 2048.0 + 900.0
    phase[..., 2] = 2048.0 - 100.0  # slowest clean frame
    phase[..., 3] = 2048.0 + 100.0  # as slow: the earlier wins
    phase[..., 4] = 2048.0 + 500.0
    assert reference_frame(phase) == 2
    mask = np.ones(phase.shape, bool)
    mask[..., 2] = False  # a frame without tissue is never the reference
    assert reference_frame(phase, mask) == 3


def test_unwrapping_reference_and_mask_errors():
    phase = np.full((4, 4, 5), 2048.0, np.float32)
    for bad in (5, -1, "first", 1.0, True):
        with pytest.raises(VelocityError, match="reference"):
            unwrap_temporal(phase, reference=bad)
    with pytest.raises(VelocityError, match="no pixel"):
        reference_frame(phase, np.zeros(phase.shape, bool))
    with pytest.raises(VelocityError, match="shapes disagree"):
        reference_frame(phase, np.ones((4, 4, 4), bool))
    # a mask with no pixel corrects nothing
    np.testing.assert_array_equal(unwrap_temporal(phase, np.zeros(phase.shape, bool)), phase)


def test_unwrapping_a_phantom_recorded_at_too_low_a_venc_gives_back_its_curves(tmp_path):
    # a phantom case whose myocardium stays below venc, encoded again at 0.4 venc: its fast frames alias
    # (curves off by up to ~23 cm/s) and the unwrapping gives back every value the curves use
    from hdl_monai.data.case import load_case
    from hdl_monai.data.phantom import generate_phantom
    from hdl_monai.velocity.curves import core_myocardium

    dataset = generate_phantom(tmp_path / "ph", subjects=1, slices=2, size=128, frames=50, seed=0, progress=False)
    case = load_case(dataset / "cases" / "sub000_s0")
    reference = assess_case(case)
    velocity = case_velocities(case)
    low = copy.copy(case)
    low.venc_cm_s = {d: 0.4 * v for d, v in case.venc_cm_s.items()}
    low.phase = {d: np.mod(velocity_to_phase(velocity[d], low.venc_cm_s[d]), 4096.0).astype(np.float32) for d in velocity}
    used = core_myocardium(case.label)

    def wrong(unwrap):
        measured = case_velocities(low, unwrap=unwrap, mask=case.label == 1)
        return sum(int((np.abs(measured[d] - velocity[d]) > 1.0)[used].sum()) for d in velocity)

    def curve_error(result):
        return max(float(np.abs(result.curves_mm_s[k] - reference.curves_mm_s[k]).max()) for k in reference.curves_mm_s)

    assert wrong(False) > 500 and curve_error(assess_case(low)) > 100.0
    assert wrong(True) == 0 and curve_error(assess_case(low, unwrap=True)) < 0.01
    # at the case's own venc there is nothing to undo where the curves look
    measured = case_velocities(case, unwrap=True, mask=case.label == 1)
    assert all(np.array_equal(measured[d][used], velocity[d][used]) for d in velocity)

"""Known-answer tests of the velocity core: conversion, centre, cylindrical transform, curves, indices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hdl_monai.velocity import (
    CYLINDRICAL,
    INDEX_KEYS,
    VelocityError,
    assess_case,
    assess_velocity,
    blood_pool_area,
    curve_agreement,
    cylindrical_velocity,
    detect_end_systole,
    global_curves,
    index_differences,
    lv_centre,
    mean_over_mask,
    pearson_r,
    phase_to_velocity,
    time_au,
    time_ms,
    to_cylindrical,
    velocity_indices,
    velocity_to_phase,
)
from hdl_monai.velocity.synthetic import cylindrical_field, default_profiles, known_answer_case, ring_label

T = 12


def _only(direction: str, value: float | np.ndarray) -> dict[str, np.ndarray]:
    return {direction: np.broadcast_to(np.asarray(value, dtype=np.float64), (T,)).copy()}


def _curves(case, **kw):
    return assess_case(case, **kw).curves_mm_s


# --- conversion -----------------------------------------------------------------------------


def test_phase_to_velocity_known_values():
    phase = np.array([0.0, 1024.0, 2048.0, 3072.0, 4096.0])
    np.testing.assert_allclose(phase_to_velocity(phase, 20.0), [-20.0, -10.0, 0.0, 10.0, 20.0])
    np.testing.assert_allclose(velocity_to_phase(phase_to_velocity(phase, 30.0), 30.0), phase, atol=1e-3)
    np.testing.assert_allclose(velocity_to_phase(np.array([-40.0, 40.0]), 20.0, clip=True), [0.0, 4096.0])
    with pytest.raises(VelocityError, match="venc"):
        phase_to_velocity(phase, 0.0)


# --- cylindrical sign conventions -----------------------------------------------------------


def test_cylindrical_signs_on_the_axes():
    # pixel on +x of the centre: e_r = +x, e_c = +y (counter-clockwise from +x towards +y)
    vr, vc, vl = to_cylindrical(np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([7.0, 7.0]), dx=np.array([2.0, 2.0]), dy=np.array([0.0, 0.0]))
    np.testing.assert_allclose(vr, [0.0, 1.0])
    np.testing.assert_allclose(vc, [1.0, 0.0])
    np.testing.assert_allclose(vl, [7.0, 7.0])
    # pixel on +y: e_r = +y, e_c = -x
    vr, vc, _ = to_cylindrical(np.array([-1.0]), np.array([0.0]), np.array([0.0]), dx=np.array([0.0]), dy=np.array([3.0]))
    np.testing.assert_allclose([vr[0], vc[0]], [0.0, 1.0])
    # at the centre itself both in-plane components are 0
    vr, vc, _ = to_cylindrical(np.array([5.0]), np.array([5.0]), np.array([0.0]), dx=np.array([0.0]), dy=np.array([0.0]))
    assert vr[0] == 0.0 and vc[0] == 0.0


def test_full_maps_match_field_definition():
    label = ring_label(24, T)
    field = cylindrical_field(label.shape, {"radial": np.full(T, 2.0), "circumferential": np.full(T, -3.0)})
    centre = lv_centre(label)
    vr, vc, vl = cylindrical_velocity(field["x"], field["y"], field["z"], centre)
    myo = label == 1
    np.testing.assert_allclose(vr[myo], 2.0, atol=1e-5)
    np.testing.assert_allclose(vc[myo], -3.0, atol=1e-5)
    np.testing.assert_allclose(vl[myo], 0.0)


# --- the known answers --------------------------------------------------------------


@pytest.mark.parametrize(
    "direction, venc",
    [("circumferential", None), ("radial", None), ("longitudinal", None)],
    ids=["pure rotation", "uniform radial contraction", "through-plane shift"],
)
def test_single_motion_gives_only_its_component(direction, venc):
    value = {"circumferential": 4.0, "radial": -3.0, "longitudinal": 6.0}[direction]
    curves = _curves(known_answer_case(_only(direction, value), size=32, frames=T))
    for name in CYLINDRICAL:
        expected = value * 10.0 if name == direction else 0.0
        np.testing.assert_allclose(curves[name], expected, atol=0.02, err_msg=name)


def test_rigid_rotation_with_anisotropic_spacing():
    """v = w x (p - c) in mm: v_r = 0 exactly and v_c = w |p - c| per pixel, only if spacing is used."""
    spacing = (1.0, 1.6)
    label = ring_label(32, 4)
    X, Y, _ = label.shape
    dx = ((np.arange(X) - (X - 1) / 2) * spacing[0])[:, None, None] * np.ones(label.shape)
    dy = ((np.arange(Y) - (Y - 1) / 2) * spacing[1])[None, :, None] * np.ones(label.shape)
    omega = 0.5  # rad/s -> cm/s per cm; here per mm, the unit does not matter for the check
    vx, vy, vz = -omega * dy, omega * dx, np.zeros(label.shape)
    centre = lv_centre(label)
    curves = global_curves(vx, vy, vz, label, centre, spacing, exclude_border_px=0)
    expected_vc = mean_over_mask(omega * np.hypot(dx, dy), label == 1)
    np.testing.assert_allclose(curves["radial"], 0.0, atol=1e-9)
    np.testing.assert_allclose(curves["circumferential"], expected_vc, rtol=1e-9)
    wrong = global_curves(vx, vy, vz, label, centre, (1.0, 1.0), exclude_border_px=0)
    assert np.abs(wrong["radial"]).max() < 1e-9  # symmetric ring: mean v_r still 0 ...
    assert not np.allclose(wrong["circumferential"], expected_vc, rtol=1e-3)  # ... but v_c is off


def test_noisy_phase_matches_ground_truth():
    case = known_answer_case(size=48, frames=20, noise=60.0, seed=3)  # 0.6-0.9 cm/s per-pixel noise
    from_phase = assess_case(case)
    truth = assess_case(case, source="velocity")
    for name in CYLINDRICAL:
        assert pearson_r(from_phase.curves_mm_s[name], truth.curves_mm_s[name]) >= 0.99, name
        for key in ("psv_mm_s", "pdv_mm_s"):
            ref = truth.indices[name][key]
            assert abs(from_phase.indices[name][key] - ref) <= 0.05 * ref, (name, key)
    expected = default_profiles(20)
    for name in CYLINDRICAL:
        np.testing.assert_allclose(truth.curves_mm_s[name], expected[name] * 10.0, atol=1e-3)


# --- centre and end systole -----------------------------------------------------------------


def test_lv_centre_from_blood_pool_and_from_filled_myocardium():
    label = np.zeros((20, 20, 3), np.uint8)
    x, y = np.meshgrid(np.arange(20), np.arange(20), indexing="ij")
    r = np.hypot(x - 8, y - 11)
    ring = np.where(r < 3, 2, np.where(r < 6, 1, 0))
    label[..., 0] = ring
    label[..., 1] = np.where(ring == 2, 0, ring)  # no blood pool: the filled myocardium is used
    label[..., 2] = np.roll(ring, 2, axis=0)
    np.testing.assert_allclose(lv_centre(label), [[8, 11], [8, 11], [10, 11]], atol=1e-9)
    label[..., 1] = 0
    with pytest.raises(VelocityError, match="frame 1"):
        lv_centre(label)


def test_end_systole_is_least_blood_pool_area():
    label = ring_label(32, T, end_systole_frame=5)
    assert detect_end_systole(label) == 5
    assert int(np.argmin(blood_pool_area(label))) == 5
    # without label 2 on some frame, the cavity enclosed by the myocardium is measured instead
    no_pool = np.where(label == 2, 0, label).astype(np.uint8)
    assert detect_end_systole(no_pool) == 5
    # case.json end_systole_frame wins over detection
    case = known_answer_case(frames=T, end_systole_frame=5, record_end_systole=True)
    case.end_systole_frame = 3
    result = assess_case(case)
    assert result.end_systole_frame == 3 and result.end_systole_source == "case.json"
    assert assess_case(known_answer_case(frames=T, end_systole_frame=5)).end_systole_source == "blood_pool_area"


# --- indices --------------------------------------------------------------------------------


def test_indices_known_curve():
    curve = np.array([0.0, 10.0, -30.0, 5.0, 0.0, 20.0, -45.0, 10.0, 0.0, 0.0])
    idx = velocity_indices(curve, end_systole_frame=4, rr_interval_ms=800.0)
    assert idx["psv_mm_s"] == 30.0 and idx["psv_signed_mm_s"] == -30.0 and idx["tpsv_frame"] == 2
    assert idx["pdv_mm_s"] == 45.0 and idx["pdv_signed_mm_s"] == -45.0 and idx["tpdv_frame"] == 6
    assert idx["tpsv_au"] == pytest.approx(2 * 50 / 10) and idx["tpsv_ms"] == pytest.approx(2 * 800 / 10)
    assert idx["tpdv_au"] == pytest.approx(30.0) and idx["tpdv_ms"] == pytest.approx(480.0)
    assert idx["mean_mm_s"] == pytest.approx(np.abs(curve).mean())
    assert set(INDEX_KEYS) <= set(idx)
    with pytest.raises(VelocityError, match="last frame"):
        velocity_indices(curve, end_systole_frame=9, rr_interval_ms=800.0)
    with pytest.raises(VelocityError, match="frame 3"):
        velocity_indices(np.where(np.arange(10) == 3, np.nan, curve), 4, 800.0)


def test_time_axes():
    np.testing.assert_allclose(time_au(np.arange(4), 25), [0, 2, 4, 6])
    assert time_ms(5, 50, 1000.0) == pytest.approx(100.0)
    assert isinstance(time_au(3, 30), float)


# --- agreement ------------------------------------------------------------------------------


def test_pearson_and_differences():
    a = np.sin(np.linspace(0, 6, 30))
    assert pearson_r(a, 3 * a + 1) == pytest.approx(1.0)
    assert pearson_r(a, -a) == pytest.approx(-1.0)
    assert math.isnan(pearson_r(a, np.ones(30)))
    with pytest.raises(VelocityError, match="length"):
        pearson_r(a, a[:-1])
    r = curve_agreement({"radial": a}, {"radial": a + 0.01 * np.cos(a)})
    assert r["radial"] > 0.99
    ref = {"radial": {k: 1.0 for k in INDEX_KEYS}}
    syn = {"radial": {k: 3.5 for k in INDEX_KEYS}}
    assert index_differences(ref, syn)["radial"]["psv_mm_s"] == 2.5


def test_assess_velocity_arrays_in_result_out():
    label = ring_label(24, T)
    field = cylindrical_field(label.shape, {"longitudinal": np.linspace(-2, 2, T)})
    result = assess_velocity(field["x"], field["y"], field["z"], label, rr_interval_ms=900.0, case_id="arr")
    np.testing.assert_allclose(result.curves_mm_s["longitudinal"], np.linspace(-20, 20, T), atol=1e-4)
    assert result.frames == T and result.time_ms[-1] == pytest.approx(900.0 * (T - 1) / T)
    d = result.to_dict()
    assert list(d)[:5] == ["case_id", "frames", "end_systole_frame", "curves_mm_s", "indices"]
    assert set(d["indices"]) == set(CYLINDRICAL) and len(d["curves_mm_s"]["radial"]) == T

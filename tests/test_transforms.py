"""Known-answer tests for hdl_monai.transforms: ROI crop, normalisation, weight maps, temporal stacking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import list_data_collate
from monai.transforms import Compose
from scipy import ndimage

from conftest import make_case
from hdl_monai.transforms import (
    CropLVROI,
    CropLVROId,
    DenormalizeMagnituded,
    DenormalizePhased,
    ForegroundMask,
    InterpolationSample,
    InterpolationSampled,
    NormalizeMagnitude,
    NormalizeMagnituded,
    NormalizePhase,
    NormalizePhased,
    PasteROId,
    PhaseSample,
    RandInterpolationSample,
    RandInterpolationSampled,
    RandPhaseSampled,
    WeightMaps,
    WeightMapsd,
    check_gap,
    condition_values,
    crop_roi,
    denormalize_magnitude,
    denormalize_phase,
    foreground_mask,
    interpolation_plan,
    kept_frames,
    lv_center,
    myocardium_region,
    normalize_phase,
    paste_roi,
    roi_box,
)


def frame_series(X: int = 6, Y: int = 5, T: int = 10) -> np.ndarray:
    """A series whose every pixel of frame t holds t (so a picked frame names itself)."""
    return np.broadcast_to(np.arange(T, dtype=np.float32), (X, Y, T)).copy()


def lv_label(X: int = 40, Y: int = 40, T: int = 4, center=(10, 30), r_in: int = 3, r_out: int = 6) -> np.ndarray:
    x, y = np.meshgrid(np.arange(X), np.arange(Y), indexing="ij")
    r = np.hypot(x - center[0], y - center[1])
    label2d = np.where(r <= r_in, 2, np.where(r <= r_out, 1, 0)).astype(np.uint8)
    return np.repeat(label2d[..., None], T, axis=-1)


# ------------------------------------------------------------------------------------------ ROI crop


def test_lv_center_is_centroid_over_all_frames():
    label = lv_label(center=(10, 30))
    assert lv_center(label) == pytest.approx((10.0, 30.0))
    label[..., 2:] = 0  # unlabelled frames add nothing
    assert lv_center(label) == pytest.approx((10.0, 30.0))
    with pytest.raises(ValueError, match="no pixel"):
        lv_center(np.zeros((4, 4, 2), np.uint8))


def test_crop_centres_on_lv_and_pads_at_edge():
    label = lv_label(center=(10, 30))
    img = np.random.default_rng(0).uniform(5, 10, label.shape).astype(np.float32)
    crop = CropLVROI(roi_size=(32, 32))
    out = crop(img, label=label)
    lab = crop(label, label=label)
    assert out.shape == (32, 32, 4) and out.dtype == np.float32
    assert lv_center(lab) == pytest.approx((16.0, 16.0))  # the centroid sits at roi_size // 2
    box = crop.compute_box((40, 40), label=label)
    assert box.start == (-6, 14) and box.end == (26, 46)
    assert np.all(out[:6] == img.min())  # rows before x = 0 are padded with the series minimum
    assert np.all(out[:, 26:] == img.min())  # columns past y = 39 too
    np.testing.assert_array_equal(out[6:, :26], img[0:26, 14:40])
    assert np.all(lab[:6] == 0)


def test_crop_explicit_center_constant_pad_torch_and_channel():
    img = torch.arange(2 * 8 * 8 * 3, dtype=torch.float32).reshape(2, 8, 8, 3)
    out = CropLVROI(roi_size=4, pad_value=-7.0)(img, center=(0.4, 7.6))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4, 4, 3)
    assert torch.all(out[:, :2] == -7.0) and torch.all(out[:, :, 2:] == -7.0)
    assert torch.equal(out[:, 2:, :2], img[:, 0:2, 6:8])


def test_crop_paste_round_trip_is_exact():
    rng = np.random.default_rng(1)
    img = rng.normal(size=(20, 16, 5)).astype(np.float32)
    for center in [(10, 8), (1, 1), (19.4, 15.6)]:
        box = roi_box(center, (12, 12), (20, 16))
        cropped = crop_roi(img, box)
        np.testing.assert_array_equal(paste_roi(cropped, box, background=img), img)
        pasted = paste_roi(cropped, box, background=0.0)
        (x0, y0), (x1, y1) = box.start, box.end
        inside = np.zeros((20, 16), bool)
        inside[max(x0, 0) : x1, max(y0, 0) : y1] = True
        np.testing.assert_array_equal(pasted[inside], img[inside])
        assert np.all(pasted[~inside] == 0)


def test_crop_dict_records_box_and_pastes_back():
    case = make_case(size=24, frames=4)
    data = {"magnitude": case.magnitude, "label": case.label, "phase_x": case.phase["x"]}
    crop = CropLVROId(["magnitude", "label", "phase_x"], roi_size=(16, 16), pad_value=("min", 0, 2048.0))
    out = crop(data)
    assert out["magnitude"].shape == (16, 16, 4) and out["label"].shape == (16, 16, 4)
    assert out["roi_box"] == {"start": [4, 4], "end": [20, 20], "spatial_shape": [24, 24]}
    assert data["magnitude"].shape == (24, 24, 4)  # input untouched
    back = PasteROId(["magnitude"])(out)
    np.testing.assert_array_equal(back["magnitude"][4:20, 4:20], case.magnitude[4:20, 4:20])
    centred = CropLVROId("magnitude", roi_size=8, center_key="center")({**data, "center": (2, 2)})
    assert centred["roi_box"]["start"] == [-2, -2]


# ------------------------------------------------------------------------------------------ normalisation


def test_phase_normalisation_known_values_and_inverse():
    p = np.array([0.0, 1024.0, 2048.0, 4096.0], dtype=np.float32)
    np.testing.assert_allclose(normalize_phase(p), [-1.0, -0.5, 0.0, 1.0])
    np.testing.assert_array_equal(denormalize_phase(normalize_phase(p)), p)
    t = NormalizePhase()(torch.tensor(p))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert float(denormalize_phase(torch.tensor([1.5]))[0]) == 4096.0  # overshoot clipped


def test_magnitude_normalisation_percentile_scale_and_inverse():
    m = np.linspace(0, 1000, 2001, dtype=np.float32).reshape(1, 1, -1)  # one pixel, 2001 "frames"
    norm = NormalizeMagnitude()
    scale = norm.compute_scale(m)
    assert scale == pytest.approx(995.0)  # 99.5th percentile of 0..1000
    out = norm(m)
    assert out.min() == -1.0 and out.max() == 1.0 and out.dtype == np.float32
    below = m <= scale
    np.testing.assert_allclose(denormalize_magnitude(out, scale)[below], m[below], rtol=1e-5, atol=1e-3)
    assert np.all(out[~below] == 1.0)


def test_normalisation_dicts_round_trip():
    case = make_case(frames=4)
    data = {"magnitude": case.magnitude, **{f"phase_{d}": case.phase[d] for d in "xyz"}}
    fwd = Compose([NormalizeMagnituded("magnitude"), NormalizePhased()])
    out = fwd(data)
    assert out["magnitude_scale"] == pytest.approx(np.percentile(case.magnitude, 99.5))
    assert out["phase_x"].min() >= -1 and out["phase_x"].max() <= 1
    back = Compose([DenormalizeMagnituded("magnitude"), DenormalizePhased()])(out)
    np.testing.assert_allclose(back["phase_z"], case.phase["z"], atol=1e-3)
    keep = case.magnitude <= out["magnitude_scale"]
    np.testing.assert_allclose(back["magnitude"][keep], case.magnitude[keep], rtol=1e-5)
    batch = np.stack([out["magnitude"], out["magnitude"]])  # per-item scales of a collated batch
    scaled = denormalize_magnitude(batch, [out["magnitude_scale"], 2 * out["magnitude_scale"]])
    np.testing.assert_allclose(scaled[1], 2 * scaled[0], rtol=1e-6)


# ------------------------------------------------------------------------------------------ foreground / weights


def test_foreground_threshold_is_strict_at_minus_0_95():
    m = np.array([-1.0, -0.95, np.nextafter(np.float32(-0.95), np.float32(0)), 0.0], dtype=np.float32)
    np.testing.assert_array_equal(foreground_mask(m), [0, 0, 1, 1])
    t = ForegroundMask()(torch.tensor(m))
    assert t.tolist() == [0.0, 0.0, 1.0, 1.0]
    m64 = np.array([-1.0, -0.95, -0.95 + 1e-12, 0.0])
    np.testing.assert_array_equal(foreground_mask(m64), [0, 0, 1, 1])


def test_weight_maps_inside_outside_and_dilated_myocardium():
    label = lv_label(X=30, Y=30, T=3, center=(15, 15), r_in=3, r_out=6)
    label[..., 1][label[..., 1] == 2] = 0  # frame 1: cavity unlabelled, must still be filled
    magnitude = np.full(label.shape, -1.0, np.float32)
    magnitude[5:25, 5:25] = 0.3
    w1, w2 = WeightMaps(margin=2)(magnitude, label)
    assert set(np.unique(w1)) == {np.float32(0.1), np.float32(1.0)} and w1.dtype == np.float32
    lv = np.isin(label[..., 0], (1, 2))
    expected = ndimage.distance_transform_edt(~lv) <= 2
    for t in range(3):
        np.testing.assert_array_equal(w1[..., t] == 1.0, expected)
    np.testing.assert_array_equal(w2 == 1.0, magnitude > -0.95)
    assert np.all(w2[magnitude <= -0.95] == np.float32(0.1))
    region0 = myocardium_region(label, margin=0)
    np.testing.assert_array_equal(region0[..., 0], lv)
    w1_t, w2_t = WeightMaps(margin=2, inside=2.0, outside=0.5)(torch.tensor(magnitude), torch.tensor(label))
    assert isinstance(w1_t, torch.Tensor) and set(torch.unique(w1_t).tolist()) == {0.5, 2.0}


def test_weight_maps_dict_keys():
    case = make_case(frames=3)
    out = Compose([NormalizeMagnituded("magnitude"), WeightMapsd(margin=1)])(
        {"magnitude": case.magnitude, "label": case.label}
    )
    for key in ("w1", "w2", "foreground"):
        assert out[key].shape == case.magnitude.shape
    no_label = WeightMapsd()({"magnitude": out["magnitude"]})
    assert "w1" not in no_label and "w2" in no_label


# ------------------------------------------------------------------------------------------ temporal stacking


def test_interpolation_sample_wraps_around():
    T = 10
    mag = frame_series(T=T)
    label = np.zeros(mag.shape, np.uint8)
    label[1, 1, :] = 1
    label[2, 2, :] = 2
    w1 = frame_series(T=T) + 100
    sampler = InterpolationSample()
    for k, target in zip((1, 2, 3), (9, 0, 1)):
        s = sampler(mag, label, extras={"w1": w1}, tau=8, K=3, k=k)
        assert s["magnitude_pair"].shape == (2, 6, 5) and s["magnitude_pair"].dtype == np.float32
        assert s["magnitude_pair"][:, 0, 0].tolist() == [8.0, 2.0]
        assert s["magnitude_target"][:, 0, 0].tolist() == [float(target)]
        assert s["w1"].shape == (1, 6, 5) and s["w1"][0, 0, 0] == 100 + target
        assert s["mask_pair"].shape == (2, 6, 5) and s["mask_target"].shape == (1, 6, 5)
        assert s["mask_pair"][0].sum() == 1 and s["mask_pair"][0, 1, 1] == 1  # myocardium only
        np.testing.assert_allclose(s["condition"][:, 3, 3], [8 / 10, k / 4, 3 / 6])
        assert np.all(s["condition"] == s["condition"][:, :1, :1])  # constant planes
        assert s["image"].shape == (7, 6, 5)
        assert (s["tau"], s["K"], s["k"], s["target_frame"], s["frames"]) == (8, 3, k, target, T)


def test_interpolation_sample_torch_paper_planes_and_channel():
    mag = torch.tensor(frame_series(T=8))[None]  # (1, X, Y, T)
    s = InterpolationSample(tau=-1, K=2, k=2, include_K=False)(mag)
    assert isinstance(s["image"], torch.Tensor) and s["image"].shape == (4, 6, 5)  # no mask, 2 planes
    assert s["magnitude_pair"][:, 0, 0].tolist() == [7.0, 2.0]
    assert s["magnitude_target"][0, 0, 0].item() == 1.0
    assert s["condition"][:, 0, 0].tolist() == pytest.approx([7 / 8, 2 / 3])
    assert condition_values(3, 1, 2, 10, K_max=4) == pytest.approx((0.3, 1 / 3, 0.5))


def test_K_that_does_not_fit_raises_naming_K_and_T():
    with pytest.raises(ValueError, match=r"K=5.*T=10"):
        check_gap(5, 10)
    with pytest.raises(ValueError, match=r"K=0"):
        check_gap(0, 10)
    check_gap(4, 10)
    with pytest.raises(ValueError, match=r"K=4.*T=9"):
        InterpolationSample()(frame_series(T=9), tau=0, K=4, k=1)
    with pytest.raises(ValueError, match="k=4"):
        InterpolationSample()(frame_series(T=10), tau=0, K=3, k=4)
    with pytest.raises(ValueError, match=r"K=3.*T=6"):
        RandInterpolationSample(K_range=(3, 6))(frame_series(T=6))


def test_interpolation_plan_covers_every_missing_frame_once():
    assert kept_frames(10, 3) == [0, 4, 8]
    plan = interpolation_plan(10, 3)
    assert [(s.tau, s.K, s.k, s.target) for s in plan[-2:]] == [(4, 3, 3, 7), (8, 1, 1, 9)]  # short last gap
    for T, K in [(10, 3), (10, 2), (12, 2), (50, 6), (9, 3)]:
        plan = interpolation_plan(T, K)
        targets = sorted(s.target for s in plan)
        assert targets == sorted(set(range(T)) - set(kept_frames(T, K)))
        for s in plan:
            assert 1 <= s.k <= s.K <= K and s.target == (s.tau + s.k) % T
            assert (s.tau + s.K + 1) % T in kept_frames(T, K)
    assert interpolation_plan(10, 4)[-1] == (5, 4, 4, 9)
    with pytest.raises(ValueError, match="K=5"):
        interpolation_plan(10, 5)


def test_random_interpolation_is_reproducible_and_respects_K_range():
    mag = frame_series(T=20)
    a = RandInterpolationSample(K_range=(2, 4)).set_random_state(seed=3)
    b = RandInterpolationSample(K_range=(2, 4)).set_random_state(seed=3)
    drawn = []
    for _ in range(40):
        sa, sb = a(mag), b(mag)
        assert (sa["tau"], sa["K"], sa["k"]) == (sb["tau"], sb["K"], sb["k"])
        assert 2 <= sa["K"] <= 4 and 1 <= sa["k"] <= sa["K"] and 0 <= sa["tau"] < 20
        assert sa["magnitude_target"][0, 0, 0] == (sa["tau"] + sa["k"]) % 20
        drawn.append(sa["K"])
    assert set(drawn) == {2, 3, 4}
    small = RandInterpolationSample().set_random_state(0)  # default 1..6 cut to K <= 2 for T = 6
    assert all(small(frame_series(T=6))["K"] <= 2 for _ in range(20))


def test_interpolation_dicts_compose():
    case = make_case(size=16, frames=8)
    pipeline = Compose(
        [
            NormalizeMagnituded("magnitude"),
            WeightMapsd(margin=1),
            RandInterpolationSampled(K_range=(1, 3), keep_series=False, num_samples=3),
        ]
    )
    pipeline.set_random_state(seed=7)
    samples = pipeline({"magnitude": case.magnitude, "label": case.label})
    assert isinstance(samples, list) and len(samples) == 3
    for s in samples:
        assert "magnitude" not in s and "label" not in s
        assert s["image"].shape == (7, 16, 16) and s["w1"].shape == (1, 16, 16) and s["w2"].shape == (1, 16, 16)
        assert s["foreground"].shape == (1, 16, 16)
    batch = list_data_collate(samples)
    assert batch["image"].shape == (3, 7, 16, 16) and batch["K"].shape == (3,)
    fixed = InterpolationSampled(tau=7, K=2, k=1)({"magnitude": case.magnitude, "label": case.label})
    np.testing.assert_array_equal(fixed["magnitude_target"][0], case.magnitude[..., 0])
    np.testing.assert_array_equal(fixed["mask_target"][0], (case.label[..., 0] == 1).astype(np.float32))


def test_phase_sample_triplet_is_cyclic():
    T = 10
    mag = frame_series(T=T)
    phase = [frame_series(T=T) + 10 * (i + 1) for i in range(3)]
    s = PhaseSample()(mag, phase, extras={"w2": frame_series(T=T)}, t=0)
    assert s["magnitude_triplet"][:, 0, 0].tolist() == [9.0, 0.0, 1.0]
    assert s["phase"][:, 0, 0].tolist() == [10.0, 20.0, 30.0]
    assert s["w2"].shape == (1, 6, 5) and s["t"] == 0
    last = PhaseSample(t=9)(torch.tensor(mag), torch.tensor(np.stack(phase)))
    assert last["magnitude_triplet"][:, 0, 0].tolist() == [8.0, 9.0, 0.0]
    data = {"magnitude": mag, "phase_x": phase[0], "phase_y": phase[1], "phase_z": phase[2]}
    r1 = RandPhaseSampled(num_samples=4).set_random_state(5)(data)
    r2 = RandPhaseSampled(num_samples=4).set_random_state(5)(data)
    assert [s["t"] for s in r1] == [s["t"] for s in r2]
    for s in r1:
        assert s["phase"][0, 0, 0] == 10 + s["t"]

"""Real-cine interpolation study (``hdl_monai.evaluate_real``): known answers on synthetic series, mask-free
inputs, reproducible fine-tuning, clear errors, and the whole study on tiny phantom "patients"."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import SUNNYBROOK, make_case
from hdl_monai.baselines.series import rebuild_series
from hdl_monai.data.case import CaseError
from hdl_monai.data.phantom import sample_subject, simulate_case
from hdl_monai.engines.interpolation import InterpolationModel, InterpolationModelSpec
from hdl_monai.evaluate_real import (
    REAL_METHODS,
    evaluate_slices,
    evaluate_sunnybrook,
    finetune_mask_free,
    interpolate_mask_free,
    load_sunnybrook,
    lv_roi_box,
    mask_free_input,
    roi_metrics,
    summarize,
    write_report,
)
from hdl_monai.transforms import crop_roi, interpolation_estimate, interpolation_plan, kept_frames

LABELLED = [7, 18]  # Sunnybrook-like: labels on two frames only (ES, ED)


def phantom_slice(seed: int, subject: str) -> object:
    """A 64x64, 20-frame phantom slice labelled on two frames only, magnitude + label."""
    params = sample_subject(seed, slices=1, size=64, frames=20)[0]
    case = simulate_case(params, case_id=f"{subject}_s00", subject=subject)
    label = np.zeros_like(case.label)
    label[..., LABELLED] = case.label[..., LABELLED]
    return replace(case, label=label, labelled_frames=list(LABELLED), phase={}, velocity={}, venc_cm_s=None)


def tiny_model(seed: int = 0) -> InterpolationModel:
    torch.manual_seed(seed)
    kwargs = {"channels": [4, 8], "recurrence": 1, "zero_init_residual": False}  # a trained-like, non-linear net
    spec = InterpolationModelSpec("hdl", kwargs, roi_size=(32, 32), K_range=(1, 3))
    return InterpolationModel(spec.build_network().eval(), spec)


def test_linear_is_exact_on_a_series_linear_between_its_kept_frames():
    case = make_case(size=32, frames=20)
    case.magnitude = rebuild_series(case.magnitude, None, 2, "linear")[0]  # linear between kept frames of K = 2
    rows = evaluate_slices([case], [2], ["linear", "optical_flow"], roi_size=16)
    linear = next(r for r in rows if r["method"] == "linear")
    flow = next(r for r in rows if r["method"] == "optical_flow")
    assert linear["psnr"] == math.inf and linear["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert math.isfinite(flow["psnr"])  # Horn-Schunck moves the noise: not exact


def test_roi_metrics_known_answer_and_interpolated_frames_only():
    """Constant reference 500 (scale 500, normalised +1); rebuilt frames 250 (normalised 0): error 1, PSNR 6.02 dB."""
    reference = np.full((40, 40, 20), 500.0, np.float32)
    rebuilt = np.full_like(reference, 250.0)
    rebuilt[..., kept_frames(20, 3)] = 9999.0  # kept frames are never compared
    box = lv_roi_box(make_case(size=40, frames=20), 16)
    values = roi_metrics(reference, rebuilt, 3, box)
    assert values["frames"].tolist() == [s.target for s in interpolation_plan(20, 3)] and len(values["psnr"]) == 15
    assert np.allclose(values["psnr"], 10 * math.log10(4.0))


def test_mask_free_input_channels():
    roi = np.random.default_rng(0).uniform(-1, 1, (8, 8, 20)).astype(np.float32)
    x = mask_free_input(roi, 18, 2, 1, K_max=6)  # wraps: frames 18 and (18 + 3) % 20 = 1
    assert x.shape == (7, 8, 8) and x.dtype == np.float32
    assert np.array_equal(x[0], roi[..., 18]) and np.array_equal(x[1], roi[..., 1])
    assert not x[2:4].any()
    assert np.allclose(x[4:7, 0, 0], [18 / 20, 1 / 3, 2 / 6]) and np.ptp(x[4:7], axis=(1, 2)).max() == 0
    mask = np.eye(8, dtype=np.float32)
    y = mask_free_input(roi, 0, 1, 1, K_max=6, include_K=False, mask=mask)
    assert y.shape == (6, 8, 8) and np.array_equal(y[2], mask) and np.array_equal(y[3], mask)
    z = mask_free_input(roi, 0, 1, 1, K_max=6, mask=mask, estimate="optical_flow")
    guess = interpolation_estimate("optical_flow", roi[..., 0], roi[..., 2], 0.5, mask, mask)
    assert z.shape == (9, 8, 8) and np.array_equal(z[:7], mask_free_input(roi, 0, 1, 1, K_max=6, mask=mask))
    np.testing.assert_allclose(z[7:], guess)


def test_interpolate_mask_free_keeps_frames_and_is_linear_outside_the_roi():
    case, model = phantom_slice(1, "p1"), tiny_model()
    out = interpolate_mask_free(case, 2, model)
    kept = kept_frames(20, 2)
    assert out.shape == case.magnitude.shape and np.array_equal(out[..., kept], case.magnitude[..., kept])
    linear = rebuild_series(case.magnitude, None, 2, "linear")[0]
    box = lv_roi_box(case, model.spec.roi_size)
    inside = np.zeros(case.magnitude.shape[:2], bool)
    inside[box.start[0] : box.end[0], box.start[1] : box.end[1]] = True
    assert np.allclose(out[~inside], linear[~inside]) and not np.allclose(out[inside], linear[inside])
    ed = interpolate_mask_free(case, 2, model, mask_mode="ed")
    assert np.abs(ed - out).max() > 0  # the ED mask reaches the network


def test_finetune_changes_weights_and_is_reproducible():
    cases, model = [phantom_slice(1, "p1"), phantom_slice(2, "p2")], tiny_model()
    start = {k: v.clone() for k, v in model.network.state_dict().items()}
    a, history = finetune_mask_free(model, cases, steps=2, batch_size=2, learning_rate=1e-2, seed=3, log_every=0)
    b, _ = finetune_mask_free(model, cases, steps=2, batch_size=2, learning_rate=1e-2, seed=3, log_every=0)
    c, _ = finetune_mask_free(model, cases, steps=2, batch_size=2, learning_rate=1e-2, seed=4, log_every=0)
    wa, wb, wc = (m.network.state_dict() for m in (a, b, c))
    assert history["steps"] == 2 and len(history["loss"]) == len(history["linear_loss"]) == 2
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], start[k]) for k in wa) and any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert all(torch.equal(model.network.state_dict()[k], start[k]) for k in start)  # the start model is untouched
    assert not a.network.training


def test_clear_errors():
    case, model = phantom_slice(1, "p1"), tiny_model()
    with pytest.raises(CaseError, match="no labelled frame"):
        lv_roi_box(replace(case, label=None, labelled_frames=None), 32)
    with pytest.raises(CaseError, match="no LV pixel"):
        lv_roi_box(replace(case, label=np.zeros_like(case.label)), 32)
    with pytest.raises(ValueError, match="K=10 does not fit a series of T=20"):
        evaluate_slices([case], [10], ["linear"], roi_size=32)
    with pytest.raises(ValueError, match="outside the model's K_range"):
        interpolate_mask_free(case, 4, model)
    with pytest.raises(ValueError, match="unknown methods"):
        evaluate_sunnybrook({"p1": [case]}, model, methods=["gan"])


def test_summarize_pairs_slices_with_linear():
    rows = [
        {"patient": p, "case_id": f"{p}_{i}", "K": 1, "method": m, "psnr": v + (1.0 if m == "hdl" else 0.0) * (i - 0.5),
         "ssim": 0.9}
        for p in ("a", "b") for i in (0, 1) for m, v in (("linear", 30.0), ("hdl", 30.0))
    ]
    result = summarize(rows)["1"]
    assert "vs_linear" not in result["linear"]
    assert result["hdl"]["vs_linear"]["better"] == 2
    assert result["hdl"]["vs_linear"]["psnr_difference_db"]["mean"] == pytest.approx(0.0)
    assert result["hdl"]["vs_linear"]["psnr_difference_db"]["std"] == pytest.approx(0.5)
    assert result["hdl"]["per_patient"]["a"]["psnr"]["n"] == 2 and result["hdl"]["pooled"]["psnr"]["n"] == 4


def test_whole_study_on_tiny_phantom_patients(tmp_path):
    patients = {f"p{i}": [phantom_slice(i, f"p{i}")] for i in (1, 2, 3)}
    payload = evaluate_sunnybrook(patients, tiny_model(), ks=[1, 3], steps=2, roi_size=32, batch_size=2)
    assert len(payload["rows"]) == 3 * 2 * len(REAL_METHODS)
    assert list(payload["results"]) == ["1", "3"] and list(payload["results"]["1"]) == list(REAL_METHODS)
    assert payload["finetune"]["p2"]["trained_on"] == ["p1", "p3"] and payload["finetune"]["p2"]["steps"] == 2
    paths = write_report(payload, tmp_path, command="pytest")
    data = json.loads(paths["json"].read_text())
    assert data["results"]["3"]["hdl_finetuned"]["pooled"]["psnr"]["n"] == 3
    text = paths["md"].read_text()
    assert "| 3 | hdl_finetuned |" in text and "leave one patient out" in text and paths["png"].stat().st_size > 0


@pytest.mark.skipif(not (SUNNYBROOK / "SCD0000301").is_dir(), reason=f"Sunnybrook data not found at {SUNNYBROOK}")
def test_sunnybrook_slices_have_an_lv_roi_inside_the_image():
    cases = load_sunnybrook(SUNNYBROOK, ["SCD0000301"])["SCD0000301"]
    assert len(cases) == 10 and all(c.frames == 20 and c.labelled_frames == [6, 19] for c in cases)
    for case in cases:
        box = lv_roi_box(case, 96)
        assert min(box.start) >= 0 and max(box.end) <= 256
        assert crop_roi(case.label[..., case.labelled_frames], box, 0).sum() == case.label.sum()  # the LV lies inside

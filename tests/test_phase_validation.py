"""Velocity validation of a phase generator: scores with known answers, the Ignite handler, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import hdl_monai.phase_validation as pv
from hdl_monai.data.case import load_case
from hdl_monai.data.loading import datalist_items
from hdl_monai.data.phantom import generate_phantom
from hdl_monai.networks.r2unet import R2UNet
from hdl_monai.phase_synthesis import load_phase_model, synthesize_phase
from hdl_monai.velocity.agreement import pearson_r
from hdl_monai.velocity.assessment import assess_case

ROI = 32
G_CONFIG = {"spatial_dims": 2, "in_channels": 5, "out_channels": 3, "channels": [4, 8], "recurrence": 2, "out_act": "tanh"}
STATS = {"mean": {d: 0.0 for d in "xyz"}, "std": {d: 0.03 for d in "xyz"}, "pixels": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vval") / "phantom"
    return generate_phantom(out, subjects=3, slices=1, size=40, frames=12, seed=5, progress=False)


@pytest.fixture(scope="module")
def cases(dataset):
    return [load_case(item["case"]) for item in _items(dataset)]


def _items(dataset) -> list[dict]:
    """Two cases of the 3-subject phantom (one per split)."""
    return (datalist_items(dataset, "training") + datalist_items(dataset, "validation"))[:2]


def _real_phase(case, model, seed=0):
    return {d: np.asarray(case.phase[d], np.float32).copy() for d in "xyz"}


def _generator(seed=0) -> R2UNet:
    torch.manual_seed(seed)
    return R2UNet(**G_CONFIG)


def test_a_generator_that_returns_the_real_phase_scores_r_one_against_it(cases, monkeypatch):
    monkeypatch.setattr(pv, "synthesize_phase", _real_phase)
    model = pv.in_memory_phase_model(_generator(), G_CONFIG, ROI, "foreground_background", STATS, cycle=True)
    pairs = pv.twin_inputs(cases, 0)
    got = pv.velocity_agreement(model, pairs, reference="phase", exclude_border_px=0)
    for d in pv.CURVE_DIRECTIONS:
        assert got[f"r_{d}"] == pytest.approx(1.0, abs=1e-9)
    assert got["r_pooled"] == pytest.approx(1.0, abs=1e-9)
    assert got["l1_myocardium"] == 0.0 and got["l1_myocardium_zero"] > 0.0 and got["cases"] == 2
    # against the ground truth the same twin scores what the real phase itself scores
    truth = pv.velocity_agreement(model, pairs, reference="truth", exclude_border_px=0)
    want = [pearson_r(assess_case(c, exclude_border_px=0).curves_mm_s["radial"],
                     assess_case(c, source="velocity", exclude_border_px=0).curves_mm_s["radial"])
            for c in cases]  # fmt: skip
    assert truth["r_radial"] == pytest.approx(float(np.mean(want)), abs=1e-12)
    assert 0.9 < truth["r_pooled"] < 1.0
    assert pv.velocity_agreement(model, pairs, exclude_border_px=0)["r_pooled"] == truth["r_pooled"]  # auto = truth on a phantom


def test_gross_share_counts_still_tissue_painted_off_by_more_than_half_venc(cases, monkeypatch):
    from hdl_monai.evaluate_phase import ARTEFACT_REGIONS, region_masks
    from hdl_monai.phase_synthesis import generator_roi

    model = pv.in_memory_phase_model(_generator(), G_CONFIG, ROI, "foreground_background", STATS, cycle=True)
    pairs = pv.twin_inputs(cases, 0)
    monkeypatch.setattr(pv, "synthesize_phase", _real_phase)
    assert pv.velocity_agreement(model, pairs, reference="phase", exclude_border_px=0)["gross_share_tissue"] == 0.0

    def shifted_x(case, model, seed=0):  # x off by 0.9 (normalised) everywhere
        return dict(_real_phase(case, model), x=np.clip(case.phase["x"] + 0.9 * 2048, 0, 4096).astype(np.float32))

    monkeypatch.setattr(pv, "synthesize_phase", shifted_x)
    got = pv.velocity_agreement(model, pairs, reference="phase", exclude_border_px=0)["gross_share_tissue"]
    gross = values = 0
    for real, given in pairs:
        masks = region_masks(real)
        tissue = masks[ARTEFACT_REGIONS[0]] | masks[ARTEFACT_REGIONS[1]]
        still_x = np.abs(real.phase["x"] / 2048.0 - 1.0) < 0.1
        gross += int((tissue & still_x & generator_roi(given, model)[..., None]).sum())
        values += 3 * int(tissue.sum())
    assert gross > 100
    assert got == pytest.approx(gross / values, rel=1e-12)


def test_an_untrained_generator_scores_below_the_real_phase(cases):
    model = pv.in_memory_phase_model(_generator(), G_CONFIG, ROI, "foreground_background", STATS, cycle=True)
    got = pv.velocity_agreement(model, pv.twin_inputs(cases, 0), reference="phase", exclude_border_px=0)
    assert got["r_pooled"] < 0.9
    assert got["l1_myocardium"] > 0.0


def test_reference_source_and_bad_input(cases):
    assert pv.reference_source(cases, "auto") == "velocity"
    assert pv.reference_source(cases, "phase") == "phase"
    bare = [load_case(cases[0].path, skip=("velocity",))]
    assert pv.reference_source(bare, "auto") == "phase"
    with pytest.raises(ValueError, match=bare[0].name):
        pv.reference_source(bare, "truth")
    with pytest.raises(ValueError, match="reference must be"):
        pv.reference_source(cases, "real")
    model = pv.in_memory_phase_model(_generator(), G_CONFIG, ROI, "foreground_background", STATS, cycle=True)
    with pytest.raises(ValueError, match="at least one case"):
        pv.velocity_agreement(model, [])
    no_phase = load_case(cases[0].path, skip=("phase",))
    with pytest.raises(ValueError, match="real phase_x/y/z"):
        pv.velocity_agreement(model, [(no_phase, no_phase)], reference="truth")
    with pytest.raises(ValueError, match="K must be"):
        pv.twin_inputs(cases, -1)


def test_handler_scores_logs_keeps_the_best_and_restores_train_mode(dataset, tmp_path, monkeypatch, caplog):
    items = _items(dataset)
    generator = _generator()
    generator.train()
    handler = pv.VelocityValidation(
        items, tmp_path, generator, G_CONFIG, ROI, "foreground_background", STATS, cycle=True,
        interval=1, reference="phase", exclude_border_px=0, summary_writer=tmp_path / "tb",
    )  # fmt: skip
    engine = SimpleNamespace(state=SimpleNamespace(epoch=1, metrics={}))
    first = handler(engine)
    assert generator.training  # mode restored
    assert engine.state.metrics["val_velocity_r"] == first["r_pooled_mean"] == first["K"][0]["r_pooled"]
    assert engine.state.metrics["val_velocity_r_K0"] == first["K"][0]["r_pooled"]
    assert 0.0 <= engine.state.metrics["val_gross_share_K0"] == first["K"][0]["gross_share_tissue"] <= 1.0
    caplog.clear()  # an untrained generator may well paint gross errors
    best = load_phase_model(tmp_path / pv.BEST_DIR)
    assert best.cycle and best.roi_size == (ROI, ROI)
    case = load_case(items[0]["case"])
    with torch.no_grad():
        for p in generator.parameters():  # a different generator from now on
            p.add_(0.5)
    # a worse epoch leaves best_velocity alone; a better one replaces it; a higher r with painted motion
    # (gross share on still tissue above the threshold) does not replace a clean best
    assert first["r_pooled_mean"] < 0.9
    scores = iter([(-1.0, 0.01), (0.9, 0.0), (0.99, 0.01)])

    def fake_score():
        r, gross = next(scores)
        per_direction = {f"r_{d}": r for d in ("pooled",) + pv.CURVE_DIRECTIONS} | {"gross_share_tissue": gross}
        return {"K": {0: per_direction}, "r_pooled_mean": r}

    monkeypatch.setattr(handler, "score", fake_score)
    before = synthesize_phase(case, load_phase_model(tmp_path / pv.BEST_DIR))["x"]
    state = SimpleNamespace(epoch=2, metrics={})
    with caplog.at_level("WARNING", logger=pv.logger.name):
        handler(SimpleNamespace(state=state))
    assert "Epoch 2, K=0: 1.00 % of the still tissue values are gross errors" in caplog.text
    assert state.metrics["val_gross_share_K0"] == 0.01
    assert np.array_equal(before, synthesize_phase(case, load_phase_model(tmp_path / pv.BEST_DIR))["x"])
    handler(SimpleNamespace(state=SimpleNamespace(epoch=3, metrics={})))
    kept = synthesize_phase(case, load_phase_model(tmp_path / pv.BEST_DIR))["x"]
    assert not np.array_equal(before, kept)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.5)
    with caplog.at_level("INFO", logger=pv.logger.name):
        handler(SimpleNamespace(state=SimpleNamespace(epoch=4, metrics={})))
    assert "higher r than epoch 3 but painted motion, so not kept as the best" in caplog.text
    assert np.array_equal(kept, synthesize_phase(case, load_phase_model(tmp_path / pv.BEST_DIR))["x"])
    history = json.loads((tmp_path / pv.HISTORY_FILE).read_text())
    assert [h["epoch"] for h in history["history"]] == [1, 2, 3, 4] and history["best_epoch"] == 3
    assert any(p.name.startswith("events") for p in (tmp_path / "tb").iterdir())


def test_clean_records_have_no_k_above_the_gross_threshold():
    from hdl_monai.evaluate_phase import ARTEFACT_GROSS_SHARE

    assert pv.clean({"K": {0: {"gross_share_tissue": ARTEFACT_GROSS_SHARE}, 3: {"gross_share_tissue": 0.0}}})
    assert not pv.clean({"K": {0: {"gross_share_tissue": 0.0}, "3": {"gross_share_tissue": 2 * ARTEFACT_GROSS_SHARE}}})
    assert pv.clean({"K": {"0": {"r_pooled": 0.9}}})  # a history record from before the share was measured
    assert pv.clean({"K": {0: {"gross_share_tissue": float("nan")}}})  # no labels to measure it on


def test_handler_arguments_are_checked(dataset, tmp_path):
    items = datalist_items(dataset, "training")[:1]
    args = (tmp_path, _generator(), G_CONFIG, ROI, "foreground_background", STATS)
    with pytest.raises(ValueError, match="interval"):
        pv.VelocityValidation(items, *args, interval=-1)
    with pytest.raises(ValueError, match="ks"):
        pv.VelocityValidation(items, *args, ks=[0, -3])
    with pytest.raises(ValueError, match="no cases"):
        pv.VelocityValidation([], *args, interval=5)
    with pytest.raises(ValueError, match="reference"):
        pv.VelocityValidation(items, *args, reference="nope")
    off = pv.VelocityValidation([], *args, interval=0)  # off: nothing to validate is fine
    assert off.interval == 0


def test_a_case_the_assessment_cannot_use_is_recorded_and_training_goes_on(dataset, tmp_path, caplog):
    # at 40 pixels the phantom's myocardium is gone after leaving out a 1-pixel border
    handler = pv.VelocityValidation(
        _items(dataset), tmp_path, _generator(), G_CONFIG, ROI, "foreground_background", STATS, cycle=True,
        interval=1, exclude_border_px=1,
    )  # fmt: skip
    with caplog.at_level("ERROR", logger="hdl_monai.phase_validation"):
        assert handler(SimpleNamespace(state=SimpleNamespace(epoch=4, metrics={}))) is None
    assert "velocity validation failed (training goes on)" in caplog.text and "no myocardium" in caplog.text
    history = json.loads((tmp_path / pv.HISTORY_FILE).read_text())
    assert history["best_epoch"] is None and history["history"][0]["epoch"] == 4
    assert "exclude_border_px" in history["history"][0]["error"]
    assert not (tmp_path / pv.BEST_DIR).exists()


def test_after_a_resume_the_history_and_the_best_carry_on(dataset, tmp_path, monkeypatch):
    args = (_items(dataset), tmp_path, _generator(), G_CONFIG, ROI, "foreground_background", STATS)

    def run(handler, epoch, r):
        per_direction = {f"r_{d}": r for d in ("pooled",) + pv.CURVE_DIRECTIONS} | {"gross_share_tissue": 0.0}
        monkeypatch.setattr(handler, "score", lambda: {"K": {0: per_direction}, "r_pooled_mean": r})
        return handler(SimpleNamespace(state=SimpleNamespace(epoch=epoch, metrics={})))

    first = pv.VelocityValidation(*args, cycle=True, interval=2)
    run(first, 2, 0.8)
    run(first, 4, 0.5)
    run(first, 6, 0.3)  # the run stops here; it resumes from the epoch-4 checkpoint
    resumed = pv.VelocityValidation(*args, cycle=True, interval=2)
    assert run(resumed, 6, 0.7)["r_pooled_mean"] == 0.7
    history = json.loads((tmp_path / pv.HISTORY_FILE).read_text())
    assert [(h["epoch"], h["r_pooled_mean"]) for h in history["history"]] == [(2, 0.8), (4, 0.5), (6, 0.7)]
    assert history["best_epoch"] == 2 and resumed.best["epoch"] == 2

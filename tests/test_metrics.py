"""Known-answer tests for hdl_monai.metrics: functions and ignite handlers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.engines import SupervisedEvaluator
from monai.handlers import from_engine

from hdl_monai.metrics import (
    DiceHandler,
    MSEHandler,
    MSEWHandler,
    PSNRHandler,
    SSIMHandler,
    dice,
    mse,
    msew,
    psnr,
    ssim,
)


def images(batch: int = 3, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 1, size, size))


def test_mse_of_constant_offset_is_offset_squared():
    x = images()
    out = mse(x, x + 0.3)
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    np.testing.assert_allclose(out, 0.09, rtol=1e-5)
    t = mse(torch.tensor(x), torch.tensor(x) - 0.5)
    assert isinstance(t, torch.Tensor) and torch.allclose(t, torch.full((3,), 0.25))
    assert mse(x[0, 0], x[0, 0] + 1).shape == (1,)  # one (X, Y) image = batch of one


def test_msew_known_values():
    x = images()
    y = x + 0.2
    np.testing.assert_allclose(msew(x, y, np.ones_like(x)), mse(x, y), rtol=1e-6)
    w = np.full((16, 16), 0.1)
    w[:8] = 1.0  # half the pixels weigh 1, half 0.1
    np.testing.assert_allclose(msew(x, y, w), 0.04 * (0.5 * 1.0 + 0.5 * 0.1), rtol=1e-5)  # mean over N pixels
    np.testing.assert_allclose(msew(x, y, w, normalize="weight"), 0.04, rtol=1e-5)
    per_sample = np.stack([np.ones((1, 16, 16)), np.zeros((1, 16, 16)), np.ones((1, 16, 16))])
    np.testing.assert_allclose(msew(x, y, per_sample), [0.04, 0.0, 0.04], rtol=1e-5, atol=1e-12)


def test_psnr_of_known_mse():
    x = images()
    np.testing.assert_allclose(psnr(x, x + 0.1), 20 * math.log10(2.0) - 10 * math.log10(0.01), rtol=1e-5)
    np.testing.assert_allclose(psnr(x, x + 0.1, data_range=1.0), 20.0, rtol=1e-5)
    assert np.isinf(psnr(x, x)).all()


def test_ssim_identity_and_degradation():
    x = images()
    np.testing.assert_allclose(ssim(x, x), 1.0, rtol=1e-6)
    noisy = x + np.random.default_rng(1).normal(0, 0.5, x.shape)
    assert np.all(ssim(x, noisy) < 0.9)
    small = images(batch=2, size=6)  # smaller than the 11-pixel window
    np.testing.assert_allclose(ssim(torch.tensor(small), torch.tensor(small)).numpy(), 1.0, rtol=1e-6)


def test_dice_known_answers():
    a = np.zeros((8, 8))
    a[:2, :2] = 1
    b = np.zeros((8, 8))
    b[:2, 1:3] = 1  # shares 2 of 4 pixels
    assert dice(a, a)[0] == pytest.approx(1.0)
    assert dice(a, 1 - a)[0] == pytest.approx(0.0)
    assert dice(a, b)[0] == pytest.approx(0.5)
    assert dice(np.zeros((4, 4)), np.zeros((4, 4)))[0] == pytest.approx(1.0)
    batch = torch.tensor(np.stack([a, a, b])[:, None], dtype=torch.float32)
    out = dice(batch * 0.9, torch.tensor(np.stack([a, 1 - a, a])[:, None]))  # probabilities > 0.5 count
    assert torch.allclose(out, torch.tensor([1.0, 0.0, 0.5]))


def _batches(n: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        target = torch.tensor(rng.uniform(-1, 1, (2, 1, 12, 12)), dtype=torch.float32)
        mask = (target > 0).float()
        w = torch.where(mask.bool(), 1.0, 0.1)
        out.append({"pred": target + 0.1, "label": target, "w1": w, "pred_mask": mask, "mask": mask})
    return out


def test_handlers_on_an_ignite_engine():
    batches = _batches()
    engine = Engine(lambda e, batch: batch)
    MSEHandler(output_transform=from_engine(["pred", "label"])).attach(engine, "mse")
    PSNRHandler(output_transform=from_engine(["pred", "label"])).attach(engine, "psnr")
    SSIMHandler(output_transform=from_engine(["label", "label"])).attach(engine, "ssim")
    DiceHandler(output_transform=from_engine(["pred_mask", "mask"])).attach(engine, "dice")
    MSEWHandler(output_transform=from_engine(["pred", "label", "w1"])).attach(engine, "msew1")
    state = engine.run(batches, max_epochs=1)
    mean_w = float(torch.cat([b["w1"] for b in batches]).mean())
    assert state.metrics["mse"] == pytest.approx(0.01, rel=1e-4)
    assert state.metrics["psnr"] == pytest.approx(20 * math.log10(2.0) + 20, rel=1e-4)
    assert state.metrics["ssim"] == pytest.approx(1.0, rel=1e-5)
    assert state.metrics["dice"] == pytest.approx(1.0)
    assert state.metrics["msew1"] == pytest.approx(0.01 * mean_w, rel=1e-4)
    assert state.metric_details["mse"].shape == (6, 1)


def test_handlers_on_a_monai_supervised_evaluator():
    batches = _batches(seed=2)
    data = [{"image": b["pred"], "label": b["label"], "w1": b["w1"]} for b in batches]
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=data,
        network=torch.nn.Identity(),
        epoch_length=len(data),
        key_val_metric={"val_mse": MSEHandler(output_transform=from_engine(["pred", "label"]))},
        additional_metrics={
            "val_msew1": MSEWHandler(output_transform=from_engine(["pred", "label"]), weight_key="w1"),
            "val_psnr": PSNRHandler(output_transform=from_engine(["pred", "label"])),
        },
    )
    evaluator.run()
    metrics = evaluator.state.metrics
    mean_w = float(torch.cat([b["w1"] for b in batches]).mean())
    assert metrics["val_mse"] == pytest.approx(0.01, rel=1e-4)
    assert metrics["val_msew1"] == pytest.approx(0.01 * mean_w, rel=1e-4)
    assert metrics["val_psnr"] == pytest.approx(20 * math.log10(2.0) + 20, rel=1e-4)


def test_msew_handler_without_weight_explains():
    engine = Engine(lambda e, batch: batch)
    MSEWHandler(output_transform=from_engine(["pred", "label"])).attach(engine, "msew")
    with pytest.raises(ValueError, match="weight"):
        engine.run(_batches(1), max_epochs=1)

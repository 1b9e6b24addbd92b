"""Weighted MAE (eq. 1) and the interpolation loss: weights and terms on known answers."""

from __future__ import annotations

import pytest
import torch

from hdl_monai.losses import InterpolationLoss, WeightedMAELoss


def test_weighted_mae_known_value():
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    w1 = torch.tensor([[[[1.0, 0.1], [0.1, 0.1]]]])
    w2 = torch.tensor([[[[1.0, 1.0], [0.1, 0.1]]]])
    # mean(w1*|e|) = (1 + 0.2 + 0.3 + 0.4)/4 = 0.475 ; mean(w2*|e|) = (1 + 2 + 0.3 + 0.4)/4 = 0.925
    assert WeightedMAELoss()(pred, target, w1, w2).item() == pytest.approx(1.4)
    assert WeightedMAELoss(2.0, 0.0)(pred, target, w1, w2).item() == pytest.approx(0.95)


def test_weights_favour_errors_inside_the_roi():
    target = torch.zeros(1, 1, 4, 4)
    w = torch.full((1, 1, 4, 4), 0.1)
    w[..., :2, :] = 1.0
    inside, outside = target.clone(), target.clone()
    inside[..., 0, 0] = 1.0
    outside[..., 3, 3] = 1.0
    loss = WeightedMAELoss()
    assert loss(inside, target, w, w) == pytest.approx(10 * loss(outside, target, w, w).item())


def test_interpolation_loss_adds_dice_for_the_mask_tail():
    target = torch.zeros(1, 2, 8, 8)
    target[:, 1, 2:6, 2:6] = 1.0
    ones = torch.ones(1, 1, 8, 8)
    good = target.clone()
    good[:, 1] = (target[:, 1] * 2 - 1) * 20  # confident, correct logits
    bad = good.clone()
    bad[:, 1] = -bad[:, 1]
    loss = InterpolationLoss()
    assert loss(good, target, ones, ones).item() < 1e-3
    assert loss(bad, target, ones, ones).item() > 0.9
    assert InterpolationLoss(dice_weight=0)(bad, target, ones, ones).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="differs from target"):
        loss(good[:, :1], target, ones, ones)

"""HDL's interpolation losses: the weighted MAE of eq. 1 and a Dice term for the segmentation tail."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.losses import DiceLoss

__all__ = ["WeightedMAELoss", "InterpolationLoss"]


class WeightedMAELoss(nn.Module):
    """Eq. 1 of the paper: Mean(w1 * |pred - target|) + Mean(w2 * |pred - target|).

    w1 highlights the LV myocardium region (padded), w2 the foreground (normalised magnitude above
    -0.95); both are 1 inside and 0.1 outside (see ``hdl_monai.transforms``). The means run over all
    pixels (not over the weights' sum), as written in the paper.

    Args:
        w1_weight: factor of the w1 term. w2_weight: factor of the w2 term.
    """

    def __init__(self, w1_weight: float = 1.0, w2_weight: float = 1.0) -> None:
        super().__init__()
        self.w1_weight = float(w1_weight)
        self.w2_weight = float(w2_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
        error = (pred - target).abs()
        return self.w1_weight * (w1 * error).mean() + self.w2_weight * (w2 * error).mean()


class InterpolationLoss(nn.Module):
    """Loss of the multi-head multi-tail network: weighted MAE on the magnitude + Dice on the mask.

    ``pred`` holds [magnitude (1) | segmentation logits (S)] channels as the network returns them;
    ``target`` holds [magnitude (1) | mask (S)], the mask as a binary (S = 1, sigmoid) or one-hot
    (S > 1, softmax) target.

    Args:
        w1_weight: factor of the w1 MAE term. w2_weight: factor of the w2 MAE term.
        dice_weight: factor of the Dice term (0 switches it off).
        mae_on_mask: factor of an extra plain MAE between sigmoid/softmax mask and target.
    """

    def __init__(
        self, w1_weight: float = 1.0, w2_weight: float = 1.0, dice_weight: float = 1.0, mae_on_mask: float = 0.0
    ) -> None:
        super().__init__()
        self.mae = WeightedMAELoss(w1_weight, w2_weight)
        self.dice_weight = float(dice_weight)
        self.mae_on_mask = float(mae_on_mask)
        self.dice_sigmoid = DiceLoss(sigmoid=True)
        self.dice_softmax = DiceLoss(softmax=True)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
        loss = self.mae(pred[:, :1], target[:, :1], w1, w2)
        logits, mask = pred[:, 1:], target[:, 1:]
        if logits.shape[1] == 0:
            return loss
        if self.dice_weight:
            dice = self.dice_sigmoid if logits.shape[1] == 1 else self.dice_softmax
            loss = loss + self.dice_weight * dice(logits, mask)
        if self.mae_on_mask:
            probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)
            loss = loss + self.mae_on_mask * (probs - mask).abs().mean()
        return loss

"""Dice overlap of binary masks (the paper's DICE of the interpolated LV myocardium segmentation)."""

from __future__ import annotations

from typing import Any

import torch
from monai.metrics import DiceMetric

from hdl_monai.metrics.regression import as_batch, to_output_kind

__all__ = ["BinaryDiceMetric", "dice"]


class BinaryDiceMetric(DiceMetric):
    """Dice of binary masks per sample: ``2 |A & B| / (|A| + |B|)``, 1 when both masks are empty.

    ``y_pred`` and ``y`` are batch-first (B, ...) masks or probabilities; both are binarised with
    ``> threshold`` and every sample's whole mask (all channels) is one set. Built on MONAI's
    ``DiceMetric`` (``include_background=True``, ``ignore_empty=False``).

    Args:
        threshold: binarisation threshold (default 0.5; use 0.0 for logits).
        reduction, get_not_nans: as ``DiceMetric``.
    """

    def __init__(self, threshold: float = 0.5, reduction: str = "mean", get_not_nans: bool = False) -> None:
        super().__init__(include_background=True, reduction=reduction, get_not_nans=get_not_nans, ignore_empty=False)
        self.threshold = float(threshold)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if y_pred.shape[0] != y.shape[0] or y_pred[0].numel() != y[0].numel():
            raise ValueError(f"mask shapes differ: {tuple(y_pred.shape)} and {tuple(y.shape)}")
        p = (y_pred > self.threshold).to(torch.float32).reshape(y_pred.shape[0], 1, -1)
        t = (y.to(y_pred.device) > self.threshold).to(torch.float32).reshape(y.shape[0], 1, -1)
        return super()._compute_tensor(p, t)


def dice(pred_mask: Any, target_mask: Any, threshold: float = 0.5) -> Any:
    """Dice per sample of binary masks (B, [C,] X, Y) (a single (X, Y) mask is a batch of one), shape (B,).

    Values above ``threshold`` are foreground; two empty masks score 1. Numpy in, float64 numpy out;
    tensors in, tensor out.
    """
    p, t = as_batch(pred_mask, "pred_mask"), as_batch(target_mask, "target_mask")
    if p.shape != t.shape:
        raise ValueError(f"pred_mask shape {tuple(p.shape)} differs from target_mask shape {tuple(t.shape)}")
    return to_output_kind(BinaryDiceMetric(threshold, reduction="none")(p, t), pred_mask, target_mask)

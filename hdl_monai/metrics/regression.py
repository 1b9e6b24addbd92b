"""Image-similarity metrics of the HDL paper (Table III, Fig. 10): MSE, weighted MSE (MSEW1/MSEW2), PSNR, SSIM.

Conventions
-----------
- Inputs are numpy arrays or torch tensors, batch-first ``(B, [C,] X, Y)``; a single 2-D image ``(X, Y)``
  counts as a batch of one. Every function returns one value per sample, shape (B,), as float64 numpy
  when both inputs are numpy and as a float32 tensor otherwise.
- Images are compared on the normalised scale [-1, 1] (magnitude and phase, see
  :mod:`hdl_monai.transforms`), whose data range is **2.0** - the default ``data_range`` of PSNR and SSIM.
  The paper's PSNR values (~70-80 dB) are on the authors' own, unstated scale; ours are comparable between
  methods, not with those numbers.
- Weighted MSE (paper: MSEW1 with w1, MSEW2 with w2): ``mean(w * (pred - target) ** 2)`` over all pixels
  and channels of a sample, i.e. normalised by the pixel count N (the paper's ``Mean(w x |.|)``), not by
  ``sum(w)``; ``normalize="weight"`` divides by ``sum(w)`` instead. With w = 1 it equals MSE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.metrics import MSEMetric, PSNRMetric, SSIMMetric
from monai.metrics.regression import RegressionMetric

__all__ = [
    "DATA_RANGE",
    "as_batch",
    "to_output_kind",
    "WeightedMSEMetric",
    "AdaptiveSSIMMetric",
    "mse",
    "msew",
    "psnr",
    "ssim",
]

DATA_RANGE = 2.0
"""Data range of images normalised to [-1, 1]."""


def as_batch(x: Any, name: str = "input", channel: bool = True) -> torch.Tensor:
    """A float32 batch-first tensor from numpy/torch input: (X, Y) -> (1, 1, X, Y); with ``channel``
    (B, X, Y) -> (B, 1, X, Y); (B, C, ...) unchanged. Tensors are detached and keep their device."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        t = t.as_tensor() if hasattr(t, "as_tensor") else t
        t = t.to(torch.float32)
    else:
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.ndim < 2:
        raise ValueError(f"{name}: expected a batch (B, [C,] X, Y) or one image (X, Y), got shape {tuple(t.shape)}")
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3 and channel:
        t = t[:, None]
    return t


def to_output_kind(values: torch.Tensor, *inputs: Any) -> np.ndarray | torch.Tensor:
    """Per-sample values (B, 1) or (B,) as (B,): float64 numpy when every input is numpy, else a tensor."""
    values = values.reshape(-1)
    if any(isinstance(x, torch.Tensor) for x in inputs):
        return values
    return values.cpu().numpy().astype(np.float64)


def _pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = as_batch(pred, "pred"), as_batch(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred shape {tuple(p.shape)} differs from target shape {tuple(t.shape)}")
    return p, t.to(p.device)


class WeightedMSEMetric(RegressionMetric):
    """Weighted MSE per sample: ``mean(w * (y_pred - y) ** 2)`` over channels and pixels (MSEW1/MSEW2).

    Call as ``metric(y_pred, y, weight=w)`` with batch-first tensors; ``w`` broadcasts to ``y_pred``
    (e.g. (B, 1, X, Y) against (B, C, X, Y)); without ``weight`` it is the plain MSE.

    Args:
        normalize: ``"pixels"`` (default, divide by the pixel count N as the paper's Mean) or ``"weight"``
            (divide by ``sum(w)``, a weighted average).
        reduction, get_not_nans: as MONAI's ``MSEMetric``.
    """

    def __init__(self, normalize: str = "pixels", reduction: str = "mean", get_not_nans: bool = False) -> None:
        super().__init__(reduction=reduction, get_not_nans=get_not_nans)
        if normalize not in ("pixels", "weight"):
            raise ValueError(f"normalize must be 'pixels' or 'weight', got {normalize!r}")
        self.normalize = normalize

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not isinstance(y_pred, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ValueError("y_pred and y must be PyTorch Tensor.")
        self._check_shape(y_pred, y)
        w = torch.ones_like(y_pred) if weight is None else torch.as_tensor(weight).to(y_pred)
        try:
            w = torch.broadcast_to(w, y_pred.shape)
        except RuntimeError as err:
            raise ValueError(f"weight shape {tuple(w.shape)} does not broadcast to {tuple(y_pred.shape)}") from err
        num = (w * (y_pred - y) ** 2).flatten(1).sum(dim=1, keepdim=True)
        den = w.flatten(1).sum(dim=1, keepdim=True) if self.normalize == "weight" else y_pred[0].numel()
        return num / den

    def _compute_metric(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._compute_tensor(y_pred, y)


class AdaptiveSSIMMetric(SSIMMetric):
    """MONAI's ``SSIMMetric`` whose window shrinks (to the largest odd size that fits) for images smaller
    than ``win_size``, so small test images and crops still get a score. Defaults: 2-D, data range 2.0."""

    def __init__(
        self, spatial_dims: int = 2, data_range: float = DATA_RANGE, win_size: int = 11, **kwargs: Any
    ) -> None:
        super().__init__(spatial_dims=spatial_dims, data_range=data_range, win_size=win_size, **kwargs)

    def _compute_metric(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        full = tuple(self.kernel_size)
        spatial = y_pred.shape[2:]
        fitted = tuple(min(int(w), int(s) if int(s) % 2 else int(s) - 1) for w, s in zip(full, spatial))
        if any(w < 1 for w in fitted):
            raise ValueError(f"SSIM needs images of at least 1 pixel per axis, got {tuple(spatial)}")
        self.kernel_size = fitted
        try:
            return super()._compute_metric(y_pred, y)
        finally:
            self.kernel_size = full


def mse(pred: Any, target: Any) -> np.ndarray | torch.Tensor:
    """Mean squared error per sample, shape (B,) (MONAI ``MSEMetric``)."""
    p, t = _pair(pred, target)
    return to_output_kind(MSEMetric(reduction="none")(p, t), pred, target)


def msew(pred: Any, target: Any, weight: Any, normalize: str = "pixels") -> np.ndarray | torch.Tensor:
    """Weighted MSE per sample, ``mean(w * (pred - target) ** 2)`` over pixels (N), shape (B,).

    ``weight`` broadcasts to ``pred`` after both are made batch-first (a (X, Y) weight applies to every
    sample). ``normalize="weight"`` divides by ``sum(w)`` instead of N.
    """
    p, t = _pair(pred, target)
    w = as_batch(weight, "weight").to(p.device)
    return to_output_kind(WeightedMSEMetric(normalize, reduction="none")(p, t, weight=w), pred, target, weight)


def psnr(pred: Any, target: Any, data_range: float = DATA_RANGE) -> np.ndarray | torch.Tensor:
    """PSNR in dB per sample: ``20 log10(data_range) - 10 log10(MSE)`` (MONAI ``PSNRMetric``); inf when
    MSE = 0. ``data_range`` defaults to 2.0 for images in [-1, 1]."""
    p, t = _pair(pred, target)
    return to_output_kind(PSNRMetric(max_val=data_range, reduction="none")(p, t), pred, target)


def ssim(
    pred: Any, target: Any, data_range: float = DATA_RANGE, win_size: int = 11, spatial_dims: int = 2
) -> np.ndarray | torch.Tensor:
    """SSIM per sample (Gaussian window ``win_size``, sigma 1.5; MONAI ``SSIMMetric``), averaged over channels
    and window positions; the window shrinks for images smaller than it. Inputs (B, C, X, Y) for 2-D."""
    p, t = _pair(pred, target)
    metric = AdaptiveSSIMMetric(spatial_dims=spatial_dims, data_range=data_range, win_size=win_size, reduction="none")
    return to_output_kind(metric(p, t), pred, target)

"""HDL evaluation metrics: MSE, weighted MSE (MSEW1/MSEW2), PSNR, SSIM, Dice, as functions and ignite handlers.

Functions take numpy or torch batch-first inputs and return per-sample values; images on the normalised
[-1, 1] scale have data range 2.0. See :mod:`hdl_monai.metrics.regression` for the conventions.
"""

from __future__ import annotations

from hdl_monai.metrics.handlers import DiceHandler, MSEHandler, MSEWHandler, PSNRHandler, SSIMHandler
from hdl_monai.metrics.regression import (
    DATA_RANGE,
    AdaptiveSSIMMetric,
    WeightedMSEMetric,
    as_batch,
    mse,
    msew,
    psnr,
    ssim,
)
from hdl_monai.metrics.segmentation import BinaryDiceMetric, dice

__all__ = [
    "DATA_RANGE",
    "as_batch",
    "mse",
    "msew",
    "psnr",
    "ssim",
    "dice",
    "WeightedMSEMetric",
    "AdaptiveSSIMMetric",
    "BinaryDiceMetric",
    "MSEHandler",
    "MSEWHandler",
    "PSNRHandler",
    "SSIMHandler",
    "DiceHandler",
]

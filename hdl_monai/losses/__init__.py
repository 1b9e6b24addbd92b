"""Losses: HDL's weighted MAE (eq. 1) and the interpolation loss with a Dice term."""

from hdl_monai.losses.weighted import InterpolationLoss, WeightedMAELoss

__all__ = ["WeightedMAELoss", "InterpolationLoss"]

"""Multi-head multi-tail R2U-Net for temporal interpolation (HDL module 1, paper III-A).

One encoder (head) per input domain — the magnitude pair (M_tau, M_tau+K+1) and the mask pair
(S_tau, S_tau+K+1) — so images and masks never share embedding weights. At every level the two
encoders' features are fused together with the temporal condition maps (resized to that level) by
a 1x1 convolution; the fused features feed two decoders (tails), one for the magnitude frame
M_tau+k and one for the segmentation S_tau+k. A global input-to-output skip adds the linear
interpolation of the two input magnitudes to the magnitude tail, so the tail learns a correction.

Hybrid variant (``estimate_channels=2``): the input also carries a classical guess of the target,
[magnitude, mask probability] (e.g. Horn-Schunck optical flow, ``hdl_monai.transforms.interpolation_estimate``).
Each head sees its guess plane next to its pair, and the skips add the guess instead of the linear
blend, so the tails learn a correction of the optical flow.

The network takes one tensor and returns one tensor, so MONAI engines, inferers and TorchScript
handle it like any other network:

    input  channels: [magnitude pair (magnitude_channels) | mask pair (mask_channels) | condition
                      (| estimate (2) with estimate_channels=2)]
    output channels: [magnitude (1) | segmentation logits (segmentation_channels)]
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution

from hdl_monai.networks.r2unet import R2UNetDecoder, R2UNetEncoder, check_spatial_size

__all__ = ["FusionBlock", "MultiHeadMultiTailR2UNet"]


class FusionBlock(nn.Module):
    """Fuse same-level features of several encoders and the condition maps with a 1x1 conv-norm-act.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: total channels of the concatenated inputs.
        out_channels: fused channels.
        act: activation. norm: normalisation.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, act="relu", norm="batch") -> None:
        super().__init__()
        self.conv = Convolution(spatial_dims, in_channels, out_channels, kernel_size=1, act=act, norm=norm)

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat(features, dim=1))


class MultiHeadMultiTailR2UNet(nn.Module):
    """HDL's interpolation network: magnitude and mask heads, fused skips, magnitude and mask tails.

    Args:
        spatial_dims: number of spatial dimensions (2).
        magnitude_channels: channels of the magnitude input (2: M_tau and M_tau+K+1).
        mask_channels: channels of the mask input (2: S_tau and S_tau+K+1).
        condition_channels: temporal condition maps (tau, k and K planes).
        segmentation_channels: output channels of the segmentation tail (logits).
        channels: feature channels per level, finest first (paper: 64 .. 1024).
        recurrence: recurrent passes per recurrent layer.
        act: activation. norm: normalisation. dropout: dropout rate.
        skip_weight_channel: index (within the condition maps) of the plane holding k / (K + 1); the
            input-to-output skip is then (1 - a) M_tau + a M_tau+K+1. None: the plain mean of the two.
        input_skip: add the input-to-output skip to the magnitude tail.
        mask_skip: also give the segmentation tail an input-to-output skip: the logit of the blended
            input masks (1 - a) S_tau + a S_tau+K+1 (clamped to [0.01, 0.99]) is added to its logits,
            so an untrained tail already reproduces the linear baseline's mask and learns a correction.
            Needs ``segmentation_channels == 1`` and ``mask_channels == 2``. Off by default (the paper
            has no such skip; checkpoints trained without it stay loadable).
        zero_init_residual: start the tails that carry an input-to-output skip (magnitude with
            ``input_skip``, segmentation with ``mask_skip``) with a zero final 1x1 convolution, so the
            untrained network returns exactly the linear estimate and training learns a correction
            from there (the tail's other layers still start at random; only the last one is zeroed).
        estimate_channels: 0, or 2 for the hybrid variant: two last input channels [magnitude guess,
            mask-probability guess] that join the heads' inputs and replace the linear blends in the skips
            (with ``zero_init_residual`` an untrained network returns the guess).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        magnitude_channels: int = 2,
        mask_channels: int = 2,
        condition_channels: int = 3,
        segmentation_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512, 1024),
        recurrence: int = 2,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
        dropout: float = 0.0,
        skip_weight_channel: int | None = 1,
        input_skip: bool = True,
        mask_skip: bool = False,
        zero_init_residual: bool = True,
        estimate_channels: int = 0,
    ) -> None:
        super().__init__()
        if estimate_channels not in (0, 2):
            raise ValueError(f"estimate_channels must be 0 or 2 ([magnitude, mask] guess), got {estimate_channels}")
        if skip_weight_channel is not None and not 0 <= skip_weight_channel < condition_channels:
            raise ValueError(f"skip_weight_channel {skip_weight_channel} outside 0..{condition_channels - 1}")
        if input_skip and not estimate_channels and magnitude_channels != 2:
            raise ValueError("the input-to-output skip needs exactly two magnitude input channels")
        if mask_skip and ((mask_channels != 2 and not estimate_channels) or segmentation_channels != 1):
            raise ValueError("mask_skip needs two mask input channels and one segmentation output channel")
        self.mask_skip = mask_skip
        self.magnitude_channels = magnitude_channels
        self.mask_channels = mask_channels
        self.condition_channels = condition_channels
        self.segmentation_channels = segmentation_channels
        self.skip_weight_channel = skip_weight_channel
        self.input_skip = input_skip
        self.estimate_channels = estimate_channels
        self.levels = len(channels) - 1
        guess = estimate_channels // 2  # one guess plane per head
        self.magnitude_head = R2UNetEncoder(
            spatial_dims, magnitude_channels + guess, channels, recurrence, act, norm, dropout
        )
        self.mask_head = R2UNetEncoder(spatial_dims, mask_channels + guess, channels, recurrence, act, norm, dropout)
        self.fusion = nn.ModuleList(
            FusionBlock(spatial_dims, 2 * c + condition_channels, c, act, norm) for c in channels
        )
        self.magnitude_tail = R2UNetDecoder(spatial_dims, channels, 1, recurrence, act, norm, dropout)
        self.mask_tail = R2UNetDecoder(spatial_dims, channels, segmentation_channels, recurrence, act, norm, dropout)
        if zero_init_residual:
            for tail, has_skip in ((self.magnitude_tail, input_skip), (self.mask_tail, mask_skip)):
                if has_skip:
                    nn.init.zeros_(tail.head.conv.weight)
                    nn.init.zeros_(tail.head.conv.bias)

    @property
    def in_channels(self) -> int:
        """Channels of the single input tensor."""
        return self.magnitude_channels + self.mask_channels + self.condition_channels + self.estimate_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected {self.in_channels} input channels (magnitude {self.magnitude_channels}, mask "
                f"{self.mask_channels}, condition {self.condition_channels}, estimate {self.estimate_channels}), "
                f"got {x.shape[1]}"
            )
        check_spatial_size(x, self.levels)
        magnitude, mask, condition, guess = torch.split(
            x, [self.magnitude_channels, self.mask_channels, self.condition_channels, self.estimate_channels], dim=1
        )
        if self.estimate_channels:
            magnitude_skip, mask_skip = guess[:, :1], guess[:, 1:2]
            magnitude, mask = torch.cat([magnitude, magnitude_skip], 1), torch.cat([mask, mask_skip], 1)
        else:
            magnitude_skip = self.linear_estimate(magnitude, condition) if self.input_skip else None
            mask_skip = self.linear_estimate(mask, condition) if self.mask_skip else None
        fused = [
            fuse(m, s, F.interpolate(condition, size=m.shape[2:], mode="area"))
            for fuse, m, s in zip(self.fusion, self.magnitude_head(magnitude), self.mask_head(mask))
        ]
        magnitude_out = self.magnitude_tail(fused)
        if self.input_skip:
            magnitude_out = magnitude_out + magnitude_skip
        mask_out = self.mask_tail(fused)
        if self.mask_skip:
            mask_out = mask_out + torch.logit(mask_skip.clamp(0.01, 0.99))
        return torch.cat([magnitude_out, mask_out], dim=1)

    def linear_estimate(self, magnitude: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The input-to-output skip: linear interpolation of M_tau and M_tau+K+1 at k / (K + 1)."""
        if self.skip_weight_channel is None:
            return magnitude.mean(dim=1, keepdim=True)
        alpha = condition[:, self.skip_weight_channel : self.skip_weight_channel + 1]
        return (1 - alpha) * magnitude[:, :1] + alpha * magnitude[:, 1:2]

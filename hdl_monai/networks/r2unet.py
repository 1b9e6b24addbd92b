"""R2U-Net (Alom et al. 2018): a U-Net whose blocks are recurrent residual convolutional units.

A recurrent convolutional layer applies one convolution (shared weights) ``recurrence + 1`` times;
each pass sees the block input added to the running state:

    h_0 = f(x),   h_{i+1} = f(x + h_i),   output h_recurrence

(The original HDL release added the input to itself, ``x + x``; this follows the paper.)
An RRCNN block maps the input to ``out_channels`` with a 1x1 convolution, runs two recurrent
layers on it and adds the 1x1 result back (the residual).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Pool

__all__ = ["RecurrentBlock", "RRCNNBlock", "UpConv", "R2UNetEncoder", "R2UNetDecoder", "R2UNet"]


class RecurrentBlock(nn.Module):
    """Recurrent convolutional layer: one conv-norm-act applied ``recurrence + 1`` times to x + state.

    Args:
        spatial_dims: number of spatial dimensions (2 for images).
        channels: input and output channels (the recurrence needs them equal).
        recurrence: number of recurrent passes after the first (t in Alom et al.; 2 in the paper).
        act: activation name or (name, args).
        norm: normalisation name or (name, args).
        dropout: dropout rate inside the convolution unit.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        recurrence: int = 2,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if recurrence < 0:
            raise ValueError(f"recurrence must be >= 0, got {recurrence}")
        self.recurrence = recurrence
        self.conv = Convolution(spatial_dims, channels, channels, kernel_size=3, act=act, norm=norm, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.conv(x)
        for _ in range(self.recurrence):
            state = self.conv(x + state)
        return state


class RRCNNBlock(nn.Module):
    """Recurrent residual block: 1x1 projection, two recurrent layers, residual sum.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels.
        out_channels: output channels.
        recurrence: recurrent passes per recurrent layer.
        act: activation. norm: normalisation. dropout: dropout rate.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        recurrence: int = 2,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.project = Convolution(spatial_dims, in_channels, out_channels, kernel_size=1, conv_only=True)
        self.recurrent = nn.Sequential(
            RecurrentBlock(spatial_dims, out_channels, recurrence, act, norm, dropout),
            RecurrentBlock(spatial_dims, out_channels, recurrence, act, norm, dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return x + self.recurrent(x)


class UpConv(nn.Module):
    """Upsampling by 2 (nearest) followed by a 3x3 conv-norm-act.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels. out_channels: output channels.
        act: activation. norm: normalisation.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, act="relu", norm="batch") -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = Convolution(spatial_dims, in_channels, out_channels, kernel_size=3, act=act, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class R2UNetEncoder(nn.Module):
    """Contracting path: an RRCNN block per level with 2x max pooling between levels.

    Returns the features of every level, finest first; the last one is the bottleneck.

    Args:
        spatial_dims: number of spatial dimensions.
        in_channels: input channels.
        channels: feature channels per level, finest first (the paper: 64, 128, 256, 512, 1024).
        recurrence: recurrent passes per recurrent layer.
        act: activation. norm: normalisation. dropout: dropout rate.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        channels: Sequence[int],
        recurrence: int = 2,
        act="relu",
        norm="batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        self.blocks = nn.ModuleList(
            RRCNNBlock(spatial_dims, widths[i], widths[i + 1], recurrence, act, norm, dropout)
            for i in range(len(channels))
        )
        self.pool = Pool["max", spatial_dims](kernel_size=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else self.pool(x))
            features.append(x)
        return features


class R2UNetDecoder(nn.Module):
    """Expanding path: at each level, UpConv, concatenation with the skip, RRCNN block; 1x1 head.

    Args:
        spatial_dims: number of spatial dimensions.
        channels: feature channels per level, finest first (as the encoder's).
        out_channels: channels of the final 1x1 convolution.
        recurrence: recurrent passes per recurrent layer.
        act: activation. norm: normalisation. dropout: dropout rate.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: Sequence[int],
        out_channels: int,
        recurrence: int = 2,
        act="relu",
        norm="batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        levels = len(channels) - 1
        self.ups = nn.ModuleList(
            UpConv(spatial_dims, channels[i + 1], channels[i], act, norm) for i in reversed(range(levels))
        )
        self.blocks = nn.ModuleList(
            RRCNNBlock(spatial_dims, 2 * channels[i], channels[i], recurrence, act, norm, dropout)
            for i in reversed(range(levels))
        )
        self.head = Convolution(spatial_dims, channels[0], out_channels, kernel_size=1, conv_only=True)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for up, block, skip in zip(self.ups, self.blocks, reversed(features[:-1])):
            x = block(torch.cat([skip, up(x)], dim=1))
        return self.head(x)


class R2UNet(nn.Module):
    """Recurrent residual U-Net.

    Args:
        spatial_dims: number of spatial dimensions (2).
        in_channels: input channels (6 for the plain interpolation baseline, 3 for phase synthesis).
        out_channels: output channels.
        channels: feature channels per level, finest first. The paper uses (64, 128, 256, 512, 1024);
            the spatial size must be divisible by 2 ** (len(channels) - 1).
        recurrence: recurrent passes per recurrent layer (t = 2 in the paper).
        act: activation. norm: normalisation. dropout: dropout rate.
        out_act: optional final activation ("tanh" for outputs in [-1, 1]), None for none.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: Sequence[int] = (64, 128, 256, 512, 1024),
        recurrence: int = 2,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
        dropout: float = 0.0,
        out_act: str | None = None,
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two levels, got {tuple(channels)}")
        self.levels = len(channels) - 1
        self.encoder = R2UNetEncoder(spatial_dims, in_channels, channels, recurrence, act, norm, dropout)
        self.decoder = R2UNetDecoder(spatial_dims, channels, out_channels, recurrence, act, norm, dropout)
        self.out_act = _output_activation(out_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spatial_size(x, self.levels)
        return self.out_act(self.decoder(self.encoder(x)))


def _output_activation(name: str | None) -> nn.Module:
    table = {None: nn.Identity, "none": nn.Identity, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if name not in table:
        raise ValueError(f"out_act must be one of {sorted(k for k in table if k)} or None, got {name!r}")
    return table[name]()


def check_spatial_size(x: torch.Tensor, levels: int) -> None:
    """Raise a clear error when the spatial size cannot be halved ``levels`` times."""
    factor = 2**levels
    bad = [s for s in x.shape[2:] if s % factor]
    if bad:
        raise ValueError(
            f"input spatial size {tuple(x.shape[2:])} must be divisible by {factor} "
            f"(2 ** {levels} poolings); crop or pad the image"
        )

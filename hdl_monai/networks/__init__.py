"""Networks: R2U-Net, HDL's multi-head multi-tail R2U-Net."""

from hdl_monai.networks.multihead import FusionBlock, MultiHeadMultiTailR2UNet
from hdl_monai.networks.r2unet import R2UNet, R2UNetDecoder, R2UNetEncoder, RecurrentBlock, RRCNNBlock, UpConv

__all__ = [
    "RecurrentBlock",
    "RRCNNBlock",
    "UpConv",
    "R2UNetEncoder",
    "R2UNetDecoder",
    "R2UNet",
    "FusionBlock",
    "MultiHeadMultiTailR2UNet",
]

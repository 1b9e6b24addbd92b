"""Classical interpolation baselines of the paper: linear (eq. 2) and Horn-Schunck optical flow."""

from hdl_monai.baselines.linear import blend_labels, interpolate_linear
from hdl_monai.baselines.optical_flow import flow_estimate, hermite_timing, horn_schunck, interpolate_flow, warp

__all__ = ["interpolate_linear", "blend_labels", "horn_schunck", "interpolate_flow", "flow_estimate", "hermite_timing", "warp"]

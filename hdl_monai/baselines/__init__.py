"""Classical interpolation baselines of the paper: linear (eq. 2) and Horn-Schunck optical flow, and the
timings the hybrid network's flow guess can take (Hermite, spline, learned prior)."""

from hdl_monai.baselines.linear import blend_labels, interpolate_linear
from hdl_monai.baselines.optical_flow import (
    flow_estimate,
    hermite_fraction,
    hermite_timing,
    horn_schunck,
    interpolate_flow,
    prior_fraction,
    spline_knot_velocities,
    warp,
)
from hdl_monai.baselines.timing_prior import TimingPrior

__all__ = [
    "interpolate_linear", "blend_labels", "horn_schunck", "interpolate_flow", "flow_estimate", "hermite_timing",
    "hermite_fraction", "spline_knot_velocities", "prior_fraction", "TimingPrior", "warp",
]

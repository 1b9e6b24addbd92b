"""Velocity assessment (HDL module 3): phase -> velocity -> cylindrical curves -> indices -> reports.

Conventions (DESIGN "Velocity conventions", repeated at each point of use):

- v = (p - 2048) / 2048 * venc per direction in cm/s; reports in mm/s (x 10).
- x is array axis 0, y array axis 1, z through-plane.
- LV centre c(t) = centroid of label 2, else of the filled myocardium (label 1).
- e_r = (p - c)/|p - c| (outward), e_c = (-e_r.y, e_r.x) (counter-clockwise, +x towards +y);
  v_r = v.e_r, v_c = v.e_c, v_l = v_z.
- Global curve = mean over label-1 pixels per frame.
- End systole = case.json end_systole_frame, else the frame of least blood-pool area;
  systole = 0..t_es, diastole = t_es+1..T-1.
- PSV/PDV = max |v| in systole/diastole (TPSV/TPDV their frames), mean = mean |v|; times in a.u.
  (t * 50 / T) and ms (t * rr_interval_ms / T).

The core (arrays / Case in, results out) has no I/O; :mod:`.report` and :mod:`.plots` are the edges.
"""

from hdl_monai.velocity.agreement import curve_agreement, index_differences, pearson_r, pooled_agreement
from hdl_monai.velocity.aliasing import detect_aliasing, edge_fraction, reference_frame, unwrap_temporal
from hdl_monai.velocity.assessment import VelocityAssessment, assess_case, assess_velocity, case_velocities
from hdl_monai.velocity.centre import lv_centre
from hdl_monai.velocity.conversion import CM_S_TO_MM_S, phase_to_velocity, phases_to_velocities, velocity_to_phase
from hdl_monai.velocity.curves import global_curves, mean_over_mask
from hdl_monai.velocity.cycle import blood_pool_area, detect_end_systole, time_au, time_ms
from hdl_monai.velocity.cylindrical import CYLINDRICAL, cylindrical_velocity, to_cylindrical
from hdl_monai.velocity.errors import VelocityError
from hdl_monai.velocity.indices import INDEX_KEYS, curve_indices, velocity_indices
from hdl_monai.velocity.summary import summarise_indices

__all__ = [
    "CM_S_TO_MM_S",
    "CYLINDRICAL",
    "INDEX_KEYS",
    "VelocityAssessment",
    "VelocityError",
    "assess_case",
    "assess_path",
    "assess_velocity",
    "blood_pool_area",
    "case_velocities",
    "compare_paths",
    "curve_agreement",
    "curve_indices",
    "cylindrical_velocity",
    "detect_aliasing",
    "detect_end_systole",
    "edge_fraction",
    "global_curves",
    "index_differences",
    "lv_centre",
    "mean_over_mask",
    "pearson_r",
    "phase_to_velocity",
    "phases_to_velocities",
    "pooled_agreement",
    "reference_frame",
    "summarise_indices",
    "time_au",
    "time_ms",
    "to_cylindrical",
    "unwrap_temporal",
    "velocity_indices",
    "velocity_to_phase",
]


def __getattr__(name: str):
    """``assess_path`` and ``compare_paths`` load the file-writing edge (and matplotlib) on first use."""
    if name in ("assess_path", "compare_paths"):
        from hdl_monai.velocity import report

        return getattr(report, name)
    raise AttributeError(f"module 'hdl_monai.velocity' has no attribute {name!r}")

"""Velocity assessment of one case: phase -> velocity -> cylindrical -> global curves -> indices.

The core of the velocity module: arrays or a :class:`~hdl_monai.data.case.Case` in, a
:class:`VelocityAssessment` out; no files, no plots, no logging (those are in
:mod:`hdl_monai.velocity.report`). Conventions, all from DESIGN "Velocity conventions":

- v = (p - 2048) / 2048 * venc per direction, in cm/s; curves and indices are reported in mm/s.
- LV centre c(t): centroid of label 2, else of the filled myocardium (:mod:`.centre`).
- e_r = (p - c)/|p - c| points outward, e_c = (-e_r.y, e_r.x) (counter-clockwise from +x, axis 0,
  towards +y, axis 1), v_r = v.e_r, v_c = v.e_c, v_l = v_z (:mod:`.cylindrical`).
- Global curve: mean over label-1 pixels per frame (:mod:`.curves`).
- End systole: case.json ``end_systole_frame``, else the frame of least blood-pool area; systole
  is frames 0..t_es, diastole t_es+1..T-1 (:mod:`.cycle`).
- PSV/PDV = max |v| in systole/diastole, TPSV/TPDV their frames in a.u. (t * 50 / T) and ms,
  mean = mean |v| over the cycle (:mod:`.indices`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from hdl_monai.data.case import DIRECTIONS, Case
from hdl_monai.velocity.aliasing import (
    ALIASING_MARGIN,
    ALIASING_THRESHOLD,
    detect_aliasing,
    reference_frame,
    unwrap_temporal,
)
from hdl_monai.velocity.centre import MYOCARDIUM, lv_centre
from hdl_monai.velocity.conversion import CM_S_TO_MM_S, check_venc, phase_to_velocity
from hdl_monai.velocity.curves import DEFAULT_EXCLUDE_BORDER_PX, global_curves
from hdl_monai.velocity.cycle import check_end_systole, detect_end_systole, time_au, time_ms
from hdl_monai.velocity.cylindrical import CYLINDRICAL
from hdl_monai.velocity.errors import VelocityError
from hdl_monai.velocity.indices import curve_indices

__all__ = ["SOURCES", "CONVENTIONS", "VelocityAssessment", "assess_velocity", "assess_case", "case_velocities"]

SOURCES = ("phase", "velocity")
CONVENTIONS = (
    "v = (p - 2048) / 2048 * venc; mm/s = 10 * cm/s; x = array axis 0, y = axis 1, z through-plane; "
    "LV centre = centroid of label 2 (else filled label 1); e_r outward from the centre, "
    "e_c = (-e_r.y, e_r.x), v_l = v_z; curves = mean over label 1 per frame (less exclude_border_px "
    "border pixels, default 1); "
    "systole = frames 0..t_es, diastole = t_es+1..T-1; PSV/PDV/mean are magnitudes (max|v|, mean|v|); "
    "time a.u. = t * 50 / T, ms = t * rr_interval_ms / T"
)


@dataclass
class VelocityAssessment:
    """Global curves and indices of one case.

    Attributes:
        case_id: the case's id.
        frames: T, frames over the cycle.
        rr_interval_ms: the cycle's duration in ms.
        end_systole_frame: t_es.
        end_systole_source: "case.json" when given there, else "blood_pool_area".
        curves_mm_s: {"radial", "circumferential", "longitudinal"} -> (T,) curve in mm/s.
        indices: per direction, the :func:`~hdl_monai.velocity.indices.velocity_indices` dict.
        centre_px: (T, 2) LV centre per frame, [x, y] in pixels.
        source: "phase" (velocity from phase and venc) or "velocity" (ground-truth velocity files).
        unwrapped: whether temporal phase unwrapping was applied.
        unwrap_reference: per direction, the frame the unwrapping started from (empty when not unwrapped).
        exclude_border_px: myocardium border pixels left out of the curves (0 = none).
        aliasing: per direction {"max_fraction", "frames"} (phase source only).
        warnings: human-readable warnings (e.g. possible aliasing).
    """

    case_id: str
    frames: int
    rr_interval_ms: float
    end_systole_frame: int
    end_systole_source: str
    curves_mm_s: dict[str, np.ndarray]
    indices: dict[str, dict[str, float | int]]
    centre_px: np.ndarray
    source: str = "phase"
    unwrapped: bool = False
    unwrap_reference: dict[str, int] = field(default_factory=dict)
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX
    aliasing: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def time_au(self) -> np.ndarray:
        """(T,) frame times in a.u. (t * 50 / T)."""
        return time_au(np.arange(self.frames), self.frames)

    @property
    def time_ms(self) -> np.ndarray:
        """(T,) frame times in ms (t * rr_interval_ms / T)."""
        return time_ms(np.arange(self.frames), self.frames, self.rr_interval_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content of velocity.json (the keys of the issue first, then provenance)."""
        return {
            "case_id": self.case_id,
            "frames": self.frames,
            "end_systole_frame": self.end_systole_frame,
            "curves_mm_s": {name: [float(v) for v in curve] for name, curve in self.curves_mm_s.items()},
            "indices": {name: dict(values) for name, values in self.indices.items()},
            "rr_interval_ms": self.rr_interval_ms,
            "end_systole_source": self.end_systole_source,
            "source": self.source,
            "unwrapped": self.unwrapped,
            "unwrap_reference": dict(self.unwrap_reference),
            "exclude_border_px": self.exclude_border_px,
            "lv_centre_px": [[float(c) for c in row] for row in self.centre_px],
            "aliasing": self.aliasing,
            "warnings": list(self.warnings),
            "conventions": CONVENTIONS,
        }


def assess_velocity(
    vx: np.ndarray,
    vy: np.ndarray,
    vz: np.ndarray,
    label: np.ndarray,
    *,
    rr_interval_ms: float,
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
    end_systole_frame: int | None = None,
    case_id: str = "",
    myocardium: int = MYOCARDIUM,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
) -> VelocityAssessment:
    """Curves and indices from (X, Y, T) Cartesian velocities in cm/s and a label map.

    Args:
        vx, vy, vz: velocities in cm/s (x = axis 0, y = axis 1, z through-plane).
        label: (X, Y, T) labels, 1 = LV myocardium (on every frame), 2 = LV blood pool.
        rr_interval_ms: cycle duration in ms.
        pixel_spacing_mm: (x, y) spacing, so that radial directions are taken in mm.
        end_systole_frame: t_es; None detects it as the frame of least blood-pool area.
        case_id: carried into the result.
        myocardium: label value averaged by the global curves.
        exclude_border_px: leave out myocardium pixels within this many pixels of its border
            (partial volume with blood); 0 (DESIGN's definition) averages every label-1 pixel.
    """
    label = np.asarray(label)
    if label.ndim != 3:
        raise VelocityError(f"label must be (X, Y, T), got shape {label.shape}")
    T = label.shape[-1]
    centre = lv_centre(label, myocardium=myocardium)
    curves = global_curves(vx, vy, vz, label, centre, pixel_spacing_mm, myocardium, exclude_border_px)
    curves = {name: curves[name] * CM_S_TO_MM_S for name in CYLINDRICAL}
    if end_systole_frame is None:
        t_es, es_source = detect_end_systole(label, myocardium=myocardium), "blood_pool_area"
    else:
        t_es, es_source = check_end_systole(end_systole_frame, T), "case.json"
    return VelocityAssessment(
        case_id=case_id,
        frames=T,
        rr_interval_ms=float(rr_interval_ms),
        end_systole_frame=t_es,
        end_systole_source=es_source,
        curves_mm_s=curves,
        indices=curve_indices(curves, t_es, rr_interval_ms),
        centre_px=centre,
        exclude_border_px=int(exclude_border_px),
    )


def _check_label(case: Case) -> np.ndarray:
    if case.label is None:
        raise VelocityError("missing label.nii.gz: velocity assessment needs the LV myocardium (label 1) on every frame")
    label = np.asarray(case.label)
    if label.ndim != 3:
        raise VelocityError(f"label.nii.gz: expected (X, Y, T), got shape {label.shape}")
    if case.labelled_frames is not None:
        unlabelled = sorted(set(range(label.shape[-1])) - {int(f) for f in case.labelled_frames})
        if unlabelled:
            raise VelocityError(
                f"frame {unlabelled[0]}: not labelled (case.json labelled_frames covers "
                f"{label.shape[-1] - len(unlabelled)} of {label.shape[-1]} frames); velocity assessment "
                "needs the myocardium on every frame of the cycle"
            )
    return label


def _check_shapes(case: Case, label: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
    shape = label.shape
    named = {"magnitude.nii.gz": case.magnitude, **arrays}
    for name, array in named.items():
        if np.shape(array) != shape:
            extra = ""
            if np.ndim(array) == 3 and len(shape) == 3 and np.shape(array)[-1] != shape[-1]:
                extra = f" ({np.shape(array)[-1]} frames vs {shape[-1]})"
            raise VelocityError(f"{name} has shape {np.shape(array)} but label.nii.gz has {shape}{extra}")


def case_velocities(
    case: Case,
    source: str = "phase",
    unwrap: bool = False,
    mask: np.ndarray | None = None,
    reference: int | str | Mapping[str, int | str] = "auto",
) -> dict[str, np.ndarray]:
    """Cartesian velocities {"x", "y", "z"} in cm/s of a case.

    Args:
        case: the case.
        source: "phase" converts phase_{x,y,z} with venc_cm_s; "velocity" takes the ground-truth
            velocity_{x,y,z} (phantoms).
        unwrap: with source "phase", apply :func:`~hdl_monai.velocity.aliasing.unwrap_temporal`
            (inside ``mask`` when given) before converting.
        mask: tissue mask for the unwrapping.
        reference: the unwrapping's start frame ("auto" or a frame index), or one per direction.
    """
    if source not in SOURCES:
        raise VelocityError(f"unknown velocity source {source!r}; expected one of {list(SOURCES)}")
    if source == "velocity":
        missing = [f"velocity_{d}.nii.gz" for d in DIRECTIONS if d not in case.velocity]
        if missing:
            raise VelocityError(f"missing ground-truth velocity file(s) {missing} (source='velocity')")
        return {d: np.asarray(case.velocity[d], dtype=np.float32) for d in DIRECTIONS}
    venc = check_venc(case.venc_cm_s)
    missing = [f"phase_{d}.nii.gz" for d in DIRECTIONS if d not in case.phase]
    if missing:
        raise VelocityError(f"missing phase file(s) {missing}")
    start = reference if isinstance(reference, Mapping) else {d: reference for d in DIRECTIONS}
    phase = {d: unwrap_temporal(case.phase[d], mask, reference=start[d]) if unwrap else case.phase[d] for d in DIRECTIONS}
    return {d: phase_to_velocity(phase[d], venc[d]) for d in DIRECTIONS}


def assess_case(
    case: Case,
    source: str = "phase",
    unwrap: bool = False,
    aliasing_margin: float = ALIASING_MARGIN,
    aliasing_threshold: float = ALIASING_THRESHOLD,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
) -> VelocityAssessment:
    """Velocity assessment of one case (see the module docstring for every convention).

    Args:
        case: a case with label (1 = myocardium on every frame), and phase_{x,y,z} with
            venc_cm_s (source "phase") or velocity_{x,y,z} (source "velocity").
        source: "phase" or "velocity" (ground truth, phantoms only).
        unwrap: apply temporal phase unwrapping inside the myocardium first, per direction from
            the frame :func:`~hdl_monai.velocity.aliasing.reference_frame` picks (recorded in
            ``unwrap_reference``).
        aliasing_margin: phase within this fraction of 0 or 4096 counts as "at the range end".
        aliasing_threshold: warn when more than this fraction of myocardium pixels of a frame is there.
        exclude_border_px: leave out myocardium pixels within this many pixels of its border
            (partial volume); 0 (DESIGN's definition) averages every label-1 pixel.

    Raises:
        VelocityError: naming the case and, where it applies, the frame (missing label, an
            unlabelled frame, a frame without myocardium, venc missing, shapes that disagree).
    """
    try:
        label = _check_label(case)
        if source == "phase":
            _check_shapes(case, label, {f"phase_{d}.nii.gz": a for d, a in case.phase.items()})
        elif source == "velocity":
            _check_shapes(case, label, {f"velocity_{d}.nii.gz": a for d, a in case.velocity.items()})
        myo = label == MYOCARDIUM
        unwrapping = bool(unwrap and source == "phase")
        start = {d: reference_frame(case.phase[d], myo) for d in DIRECTIONS} if unwrapping else {}
        velocity = case_velocities(case, source=source, unwrap=unwrap, mask=myo, reference=start or "auto")
        result = assess_velocity(
            velocity["x"],
            velocity["y"],
            velocity["z"],
            label,
            rr_interval_ms=case.rr_interval_ms,
            pixel_spacing_mm=tuple(case.pixel_spacing_mm),
            end_systole_frame=case.end_systole_frame,
            case_id=case.case_id,
            exclude_border_px=exclude_border_px,
        )
        result.source, result.unwrapped, result.unwrap_reference = source, unwrapping, start
        if source == "phase":
            result.aliasing, result.warnings = detect_aliasing(case.phase, myo, aliasing_margin, aliasing_threshold)
    except VelocityError as err:
        raise VelocityError(f"{case.name}: {err}") from None
    return result

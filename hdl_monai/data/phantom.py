"""Physics-based digital-twin phantom: short-axis 3Dir MVM series with exact ground-truth velocity.

The left ventricle (LV) is a Lagrangian, axisymmetric, nearly incompressible ring with an analytic
inverse map, so every pixel of every frame is rendered from the material point that sits there and
the stored velocity is the exact time derivative of that same motion (see docs/phantom.md).

Conventions (binding for everything in this module)
---------------------------------------------------
* Arrays are ``(X, Y, T)``: x is array axis 0, y array axis 1, z the slice normal (through-plane).
* Pixel ``(i, j)`` has its centre at ``x = (i - (N - 1) / 2) * dx``, ``y = (j - (N - 1) / 2) * dy``
  (mm, image centre at 0). The LV centre sits at ``lv_centre_mm`` in these coordinates and does not
  move. Anatomy is laid out with anterior towards -y and the patient's left towards +x, so that
  ``imshow(array[..., t].T)`` shows a radiological short-axis view (RV on the left, chest wall on top).
* Time: frame ``k`` is at ``t = k * rr_interval_ms / T``; frame 0 is end-diastole (R wave).
  ``tau = t / RR`` in [0, 1) is the normalised cycle time.
* Velocities are in cm/s. ``e_r`` points away from the LV centre, ``e_c = (-e_r.y, e_r.x)`` (a
  positive circumferential velocity turns from +x towards +y). ``v_z`` is positive from base
  towards apex, so systolic descent of the base is positive and early-diastolic recoil negative.
  A positive twist angle rotates the slice from +x towards +y; by default base slices rotate
  negatively and apical slices positively during systole (opposite senses).
* Phase images: scanner units 0..4096 (rounded to integers), 2048 = zero velocity,
  ``v = (p - 2048) / 2048 * venc``; phase wraps like a scanner's (4096 spans 2*pi).
* Magnitude: scanner units 0..4095 (integers), Rician noise.
* Ground-truth ``velocity_{x,y,z}``: noiseless tissue velocity at the pixel centre for pixels whose
  centre lies in the LV myocardium (label 1); 0 everywhere else (static tissue is truly 0; blood
  pools and air store 0 by definition although their phase carries flow or noise).
* Labels: 0 background, 1 LV myocardium, 2 LV blood pool, 3 RV blood pool, decided by the exact
  material membership of the pixel centre.

Public API: :class:`PhantomParameters`, :func:`sample_subject`, :func:`simulate_case`,
:func:`lv_motion`, :func:`generate_phantom`, :class:`Waveform`, :func:`cycle_waveforms`.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hdl_monai.data.atomic import atomic_directory, atomic_write_json
from hdl_monai.data.case import DEFAULT_LABELS, PHASE_MAX, PHASE_ZERO, Case, save_case
from hdl_monai.data.datalist import save_datalist, split_by_subject

__all__ = [
    "DEFAULT_VENC_CM_S",
    "PhantomParameters",
    "Waveform",
    "cycle_template",
    "cycle_waveforms",
    "lv_motion",
    "sample_subject",
    "simulate_case",
    "vessel_fractions",
    "generate_phantom",
]

DEFAULT_VENC_CM_S = {"x": 20.0, "y": 20.0, "z": 30.0}

BACKGROUND_PHASES = ("noise", "paper")
"""Choices for the phase of signal-free pixels (:func:`simulate_case`)."""
PAPER_BACKGROUND_PHASE = {"mean": 0.034, "std": 0.034}
"""Gaussian of the background phase the HDL paper fitted on its scanner data (Fig. 4), normalised units."""


AORTA_FLOWS = ("field", "jet")
"""Choices for the descending aorta's blood velocity (:func:`simulate_case`)."""

BLOOD_FLOWS = ("field", "coherent")
"""Choices for the LV and RV blood pools' velocity (:func:`simulate_case`)."""


def _check_options(background_phase: str, aorta_flow: str, blood_flow: str = "field") -> None:
    """ValueError naming the first option that is not a known choice."""
    for name, value, choices in (("background_phase", background_phase, BACKGROUND_PHASES),
                                 ("aorta_flow", aorta_flow, AORTA_FLOWS),
                                 ("blood_flow", blood_flow, BLOOD_FLOWS)):
        if value not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


_HARMONICS = 40  # Fourier harmonics kept for every waveform (exact, periodic derivatives)
_TEMPLATE_SAMPLES = 4096
_TEXTURE_MODES = 28
_GENERATOR_VERSION = 1


# --------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomParameters:
    """Everything that defines one phantom slice (one case). Units in the field names.

    Geometry (mm): ``r_endo_mm`` and ``wall_mm`` are the end-diastolic endocardial radius and wall
    thickness; ``lv_centre_mm`` is relative to the image centre. Motion: ``cavity_area_change`` is
    the slice's fractional blood-pool area change at peak contraction (EF-like, 0..1);
    ``long_strain`` the peak longitudinal shortening of the slab, which thickens the wall beyond
    area conservation (in-plane tissue area scales by ``1 / (1 - long_strain)``);
    ``long_displacement_mm`` the peak through-plane displacement towards the apex;
    ``twist_deg`` the peak rotation (sign as in the module docstring); ``transmural_twist`` the
    extra rotation of the endocardium relative to the epicardium (0 = rigid rotation of the ring).
    Timing (fractions of the cycle): ``t_ivc`` end of isovolumic contraction, ``t_es`` end-systole,
    ``t_ivr`` isovolumic relaxation length, ``e_duration``/``e_recovery`` early-filling duration and
    the share of the contraction it undoes (``long_*`` for the longitudinal waveform, ``untwist_*``
    for the twist), ``a_duration`` atrial kick, ``ejection_skew`` < 1 moves peak ejection earlier.
    Signal: intensities in scanner units, ``noise_sigma`` the std of each complex noise channel,
    ``texture_amplitude`` the relative contrast of the myocardial texture. Seeds pick texture,
    anatomy, blood flow and noise.
    """

    size: int = 64
    frames: int = 30
    pixel_spacing_mm: float = 3.0
    rr_interval_ms: float = 900.0
    venc_cm_s: tuple[float, float, float] = (20.0, 20.0, 30.0)
    lv_centre_mm: tuple[float, float] = (0.0, 0.0)
    r_endo_mm: float = 22.0
    wall_mm: float = 9.0
    cavity_area_change: float = 0.6
    long_strain: float = 0.1
    long_displacement_mm: float = 8.0
    twist_deg: float = 5.0
    transmural_twist: float = 0.2
    t_ivc: float = 0.04
    t_es: float = 0.34
    t_ivr: float = 0.06
    e_duration: float = 0.14
    e_recovery: float = 0.72
    long_e_duration: float = 0.11
    long_e_recovery: float = 0.78
    untwist_duration: float = 0.12
    untwist_recovery: float = 0.85
    diastasis_drop: float = 0.15
    a_duration: float = 0.12
    ejection_skew: float = 0.8
    slice_z_mm: float = 30.0
    slice_thickness_mm: float = 8.0
    blood_intensity: float = 2500.0
    myo_intensity: float = 700.0
    texture_amplitude: float = 0.2
    noise_sigma: float = 14.0
    blood_flow_cm_s: tuple[float, float, float] = (14.0, 14.0, 30.0)
    coil_gradient: float = 0.25
    rv_scale: float = 1.0
    texture_seed: int = 0
    anatomy_seed: int = 0
    noise_seed: int = 0
    supersample: int = 2

    def __post_init__(self) -> None:
        problems = []
        if self.size < 16:
            problems.append(f"size must be >= 16 pixels, got {self.size}")
        if self.frames < 4:
            problems.append(f"frames must be >= 4, got {self.frames}")
        if not (self.pixel_spacing_mm > 0 and self.rr_interval_ms > 0):
            problems.append("pixel_spacing_mm and rr_interval_ms must be positive")
        if not (0 < self.r_endo_mm and 0 < self.wall_mm):
            problems.append("r_endo_mm and wall_mm must be positive")
        if not 0 <= self.cavity_area_change < 0.95:
            problems.append(f"cavity_area_change must be in [0, 0.95), got {self.cavity_area_change}")
        if not 0 <= self.long_strain < 0.5:
            problems.append(f"long_strain must be in [0, 0.5), got {self.long_strain}")
        if not 0 < self.t_ivc < self.t_es < 0.6:
            problems.append(f"need 0 < t_ivc < t_es < 0.6, got t_ivc={self.t_ivc}, t_es={self.t_es}")
        end_e = self.t_es + self.t_ivr + max(self.e_duration, self.long_e_duration)
        if end_e > 0.985 - self.a_duration - 0.02:
            problems.append("cycle timing does not fit: t_es + t_ivr + E duration overlaps the atrial kick")
        if any(v <= 0 for v in self.venc_cm_s) or len(self.venc_cm_s) != 3:
            problems.append(f"venc_cm_s must be three positive numbers, got {self.venc_cm_s}")
        if self.supersample < 1:
            problems.append(f"supersample must be >= 1, got {self.supersample}")
        if problems:
            raise ValueError("PhantomParameters: " + "; ".join(problems))

    @property
    def r_epi_mm(self) -> float:
        """End-diastolic epicardial radius (mm)."""
        return self.r_endo_mm + self.wall_mm

    @property
    def venc(self) -> dict[str, float]:
        """venc per direction as the case format's dict (cm/s)."""
        return {d: float(v) for d, v in zip("xyz", self.venc_cm_s)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PhantomParameters:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name: f for f in fields(cls)}
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in names}
        return cls(**kwargs)


# --------------------------------------------------------------------------------------------------
# Waveforms
# --------------------------------------------------------------------------------------------------


def _smoothstep(u: np.ndarray) -> np.ndarray:
    """Quintic 0->1 ramp with zero first and second derivatives at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (10.0 + u * (-15.0 + 6.0 * u))


def cycle_template(
    tau: np.ndarray,
    t_start: float,
    t_peak: float,
    t_relax: float,
    e_duration: float,
    e_recovery: float,
    a_duration: float,
    diastasis_drop: float = 0.15,
    skew: float = 1.0,
) -> np.ndarray:
    """Piecewise-smooth contraction state over the cycle, 0 at end-diastole and 1 at peak.

    tau in [0, 1): hold 0 until ``t_start`` (isovolumic contraction), rise to 1 at ``t_peak``
    (``skew`` < 1 makes the rise steepest early), hold until ``t_relax`` (isovolumic relaxation),
    fall by ``e_recovery`` over ``e_duration`` (early filling, E), drift down by
    ``diastasis_drop`` of the rest (diastasis), and return to 0 in the atrial kick (A) that ends at
    0.985 and lasts ``a_duration``.
    """
    tau = np.mod(np.asarray(tau, dtype=np.float64), 1.0)
    a_end = 0.985
    a_start = a_end - a_duration
    e_end = t_relax + e_duration
    level_e = 1.0 - e_recovery
    level_a = level_e * (1.0 - diastasis_drop)
    rise = _smoothstep(((tau - t_start) / (t_peak - t_start)).clip(0, 1) ** skew)
    out = np.where(tau < t_peak, rise, 1.0)
    out = np.where(tau >= t_relax, 1.0 - e_recovery * _smoothstep((tau - t_relax) / e_duration), out)
    out = np.where(tau >= e_end, level_e - (level_e - level_a) * _smoothstep((tau - e_end) / (a_start - e_end)), out)
    out = np.where(tau >= a_start, level_a * (1.0 - _smoothstep((tau - a_start) / a_duration)), out)
    return out


@dataclass(frozen=True)
class Waveform:
    """A smooth periodic function of normalised cycle time: truncated Fourier series.

    ``f(tau) = a0 + sum_k a_k cos(2 pi k tau) + b_k sin(2 pi k tau)``; :meth:`derivative` is the
    exact analytic d/dtau, so velocities derived from a waveform are exact and periodic.
    """

    a0: float
    a: np.ndarray
    b: np.ndarray

    @classmethod
    def fit(cls, samples: np.ndarray, harmonics: int = _HARMONICS) -> Waveform:
        """Fourier series of ``samples`` taken at tau = arange(n) / n, truncated to ``harmonics``."""
        n = len(samples)
        spec = np.fft.rfft(samples) / n
        return cls(float(spec[0].real), 2.0 * spec[1 : harmonics + 1].real, -2.0 * spec[1 : harmonics + 1].imag)

    def _angles(self, tau: np.ndarray) -> np.ndarray:
        k = np.arange(1, len(self.a) + 1)
        return 2.0 * np.pi * np.multiply.outer(np.asarray(tau, dtype=np.float64), k)

    def __call__(self, tau: np.ndarray) -> np.ndarray:
        ang = self._angles(tau)
        return self.a0 + np.cos(ang) @ self.a + np.sin(ang) @ self.b

    def derivative(self, tau: np.ndarray) -> np.ndarray:
        """d f / d tau (per cycle)."""
        ang = self._angles(tau)
        w = 2.0 * np.pi * np.arange(1, len(self.a) + 1)
        return np.cos(ang) @ (w * self.b) - np.sin(ang) @ (w * self.a)


def cycle_waveforms(p: PhantomParameters) -> dict[str, Waveform]:
    """The three normalised motion waveforms of a slice: "radial" (cavity), "longitudinal", "twist".

    Each is ~0 at end-diastole and ~1 at peak contraction; amplitudes are applied in
    :func:`lv_motion`.
    """
    tau = np.arange(_TEMPLATE_SAMPLES) / _TEMPLATE_SAMPLES
    relax = p.t_es + p.t_ivr
    common = dict(a_duration=p.a_duration, diastasis_drop=p.diastasis_drop, skew=p.ejection_skew)
    radial = cycle_template(tau, p.t_ivc, p.t_es, relax, p.e_duration, p.e_recovery, **common)
    longitudinal = cycle_template(tau, p.t_ivc, p.t_es, relax, p.long_e_duration, p.long_e_recovery, **common)
    twist = cycle_template(tau, p.t_ivc, p.t_es, p.t_es, p.untwist_duration, p.untwist_recovery, **common)
    return {"radial": Waveform.fit(radial), "longitudinal": Waveform.fit(longitudinal), "twist": Waveform.fit(twist)}


# --------------------------------------------------------------------------------------------------
# LV motion: forward map, inverse map, velocity
# --------------------------------------------------------------------------------------------------


@dataclass
class _MotionState:
    """Time-dependent scalars of the LV model at given normalised times (arrays of shape (n,))."""

    re2: np.ndarray  # r_endo(t)^2, mm^2
    dre2: np.ndarray  # d(r_endo^2)/dtau, mm^2 per cycle
    s: np.ndarray  # in-plane area scale of the tissue (>= 1, longitudinal shortening)
    ds: np.ndarray
    phi: np.ndarray  # twist angle, rad
    dphi: np.ndarray
    dz: np.ndarray  # through-plane displacement towards apex, mm
    ddz: np.ndarray
    contraction: np.ndarray  # radial waveform value (0 ED .. 1 ES)


def _motion_state(p: PhantomParameters, tau: np.ndarray, waves: Mapping[str, Waveform] | None = None) -> _MotionState:
    waves = waves or cycle_waveforms(p)
    tau = np.asarray(tau, dtype=np.float64)
    cr, dcr = waves["radial"](tau), waves["radial"].derivative(tau)
    cl, dcl = waves["longitudinal"](tau), waves["longitudinal"].derivative(tau)
    ct, dct = waves["twist"](tau), waves["twist"].derivative(tau)
    r0sq = p.r_endo_mm**2
    shorten = 1.0 - p.long_strain * cl
    twist = np.deg2rad(p.twist_deg)
    return _MotionState(
        re2=r0sq * (1.0 - p.cavity_area_change * cr),
        dre2=-r0sq * p.cavity_area_change * dcr,
        s=1.0 / shorten,
        ds=p.long_strain * dcl / shorten**2,
        phi=twist * ct,
        dphi=twist * dct,
        dz=p.long_displacement_mm * cl,
        ddz=p.long_displacement_mm * dcl,
        contraction=cr,
    )


def _twist_profile(p: PhantomParameters, R: np.ndarray) -> np.ndarray:
    """g(R): 1 at mid-wall, 1 + transmural_twist / 2 at the endocardium, 1 - .../2 at the epicardium."""
    mid = p.r_endo_mm + 0.5 * p.wall_mm
    return 1.0 - p.transmural_twist * (R - mid) / p.wall_mm


def lv_motion(p: PhantomParameters, R_mm: np.ndarray, theta0: np.ndarray, tau: np.ndarray) -> dict[str, np.ndarray]:
    """Forward map of LV material points and their exact velocity.

    Args:
        p: slice parameters.
        R_mm, theta0: material (end-diastolic) radius in mm and angle in rad about the LV centre;
            ``R_mm`` must lie in the wall, ``r_endo_mm <= R <= r_epi_mm``.
        tau: normalised cycle times in [0, 1); all three are broadcast together.

    Returns:
        dict with "x", "y" (current position in mm, image coordinates), "r", "theta", and velocities
        in cm/s "v_r", "v_c", "v_x", "v_y", "v_z".

    The map is ``r^2 = r_endo(t)^2 + s(t) (R^2 - r_endo0^2)`` (in-plane incompressibility with
    longitudinal shortening), ``theta = Theta + phi(t) g(R)``, through-plane displacement
    ``z(t)`` the same for the whole slice.
    """
    R_mm, theta0, tau = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (R_mm, theta0, tau)))
    st = _motion_state(p, tau.ravel())
    shape = tau.shape
    re2, dre2, s, ds, phi, dphi, ddz = (a.reshape(shape) for a in (st.re2, st.dre2, st.s, st.ds, st.phi, st.dphi, st.ddz))
    m2 = R_mm**2 - p.r_endo_mm**2
    r = np.sqrt(re2 + s * m2)
    g = _twist_profile(p, R_mm)
    theta = theta0 + phi * g
    per_cycle_to_cm_s = 100.0 / p.rr_interval_ms  # mm per cycle -> cm/s
    v_r = (dre2 + ds * m2) / (2.0 * r) * per_cycle_to_cm_s
    v_c = r * dphi * g * per_cycle_to_cm_s
    c, sn = np.cos(theta), np.sin(theta)
    return {
        "x": p.lv_centre_mm[0] + r * c,
        "y": p.lv_centre_mm[1] + r * sn,
        "r": r,
        "theta": theta,
        "v_r": v_r,
        "v_c": v_c,
        "v_x": v_r * c - v_c * sn,
        "v_y": v_r * sn + v_c * c,
        "v_z": ddz * per_cycle_to_cm_s,
    }


# --------------------------------------------------------------------------------------------------
# Texture and anatomy
# --------------------------------------------------------------------------------------------------


def _texture_modes(seed: int, n: int, wavelength_mm: tuple[float, float], kz_wavelength_mm: tuple[float, float] | None):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(*wavelength_mm, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    k = 2 * np.pi / lam
    kz = np.zeros(n) if kz_wavelength_mm is None else 2 * np.pi / rng.uniform(*kz_wavelength_mm, n) * rng.choice([-1, 1], n)
    amp = np.sqrt(2.0 / n) * rng.uniform(0.6, 1.4, n)
    amp /= np.sqrt((amp**2).sum() / 2.0)  # unit variance
    return k * np.cos(ang), k * np.sin(ang), kz, rng.uniform(0, 2 * np.pi, n), amp


def _myocardial_texture(p: PhantomParameters, X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance texture of material coordinates (mm), averaged over the slice thickness.

    A sum of 3-D random Fourier modes; the slab average of ``cos(kz z)`` over the thickness h is
    ``sinc(kz h / 2)`` times the centre value, applied analytically.
    """
    kx, ky, kz, psi, amp = _texture_modes(p.texture_seed, _TEXTURE_MODES, (3.5, 9.0), (14.0, 40.0))
    amp = amp * np.sinc(kz * p.slice_thickness_mm / (2 * np.pi))
    phase = np.multiply.outer(X, kx) + np.multiply.outer(Y, ky) + np.multiply.outer(Z, kz) + psi
    return np.cos(phase) @ amp


def _ellipse_radius2(u, v, cu, cv, a, b, angle_deg=0.0):
    """Squared normalised radius of (u, v) in the ellipse: 0 at its centre, 1 on its rim."""
    ca, sa = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))
    du, dv = u - cu, v - cv
    return ((du * ca + dv * sa) / a) ** 2 + ((-du * sa + dv * ca) / b) ** 2


def _ellipse(u, v, cu, cv, a, b, angle_deg=0.0):
    return _ellipse_radius2(u, v, cu, cv, a, b, angle_deg) < 1.0


@dataclass
class _Anatomy:
    """Static anatomy around the LV, in LV-centred mm (u towards patient left, v posterior)."""

    body: tuple
    fat_mm: float
    muscle_mm: float
    lung_l: tuple
    lung_r: tuple
    rv: tuple
    rv_wall_mm: float
    liver: tuple
    spine: tuple
    aorta: tuple
    halo_mm: float
    tissue: float  # relative intensities (myocardium = 1)
    fat: float
    muscle: float
    liver_level: float
    spine_level: float
    halo: float
    modes: tuple


def _anatomy(p: PhantomParameters, r_epi_max: float) -> _Anatomy:
    rng = np.random.default_rng(p.anatomy_seed)
    re = p.r_epi_mm
    rv = p.rv_scale * re
    u = rng.uniform
    return _Anatomy(
        body=(u(-15, 5), u(35, 50) + re, u(140, 170), u(95, 115) + re, u(-8, 8)),
        fat_mm=u(6, 12),
        muscle_mm=u(8, 14),
        lung_l=(r_epi_max + u(18, 26), u(-5, 15), u(22, 30), u(55, 70), u(-25, -10)),
        lung_r=(-r_epi_max - rv - u(40, 50), u(-5, 15), u(28, 36), u(55, 70), u(10, 25)),
        rv=(-(re + 0.35 * rv), -0.3 * rv, 0.9 * rv, 1.35 * rv, u(15, 35)),
        rv_wall_mm=u(2.5, 4.0),
        liver=(u(-60, -30), re + u(55, 75), u(70, 90), u(35, 50), u(-20, -5)),
        spine=(u(0, 15), re + u(70, 85), u(14, 18)),
        aorta=(u(28, 40), re + u(40, 55), u(9, 12)),
        halo_mm=u(2.5, 5.0),
        tissue=u(0.55, 0.75),
        fat=u(0.2, 0.3),
        muscle=u(0.85, 1.05),
        liver_level=u(0.7, 0.9),
        spine_level=u(0.35, 0.5),
        halo=u(0.3, 0.45),
        modes=_texture_modes(p.anatomy_seed + 7, 12, (8.0, 30.0), None),
    )


def _static_scene(p: PhantomParameters, an: _Anatomy, u: np.ndarray, v: np.ndarray, r_epi_max: float):
    """Static anatomy at points (u, v) (LV-centred mm).

    Returns (tissue, blood, group): tissue magnitude (relative to myocardium = 1) of static tissue,
    blood magnitude (relative), and the blood group per point (0 none, 1 RV, 2 aorta).
    The LV itself is drawn over this scene; inside the LV's largest extent the scene holds the
    pericardial halo and the RV blood pool.
    """
    kx, ky, _, psi, amp = an.modes
    tex = 1.0 + 0.12 * (np.cos(np.multiply.outer(u, kx) + np.multiply.outer(v, ky) + psi) @ amp)
    bu, bv, ba, bb, bang = an.body
    body = _ellipse(u, v, bu, bv, ba, bb, bang)
    inner = _ellipse(u, v, bu, bv, ba - an.fat_mm, bb - an.fat_mm, bang)
    thorax = _ellipse(u, v, bu, bv, ba - an.fat_mm - an.muscle_mm, bb - an.fat_mm - an.muscle_mm, bang)
    r = np.hypot(u, v)
    near_heart = r < r_epi_max + an.halo_mm
    rv_blood = _ellipse(u, v, *an.rv)
    ru, rvv, ra, rb, rang = an.rv
    rv_wall = _ellipse(u, v, ru, rvv, ra + an.rv_wall_mm, rb + an.rv_wall_mm, rang)
    heart = near_heart | rv_wall
    tissue = np.where(body, an.fat, 0.0)
    tissue = np.where(inner, an.muscle, tissue)
    tissue = np.where(thorax, an.tissue, tissue)
    tissue = np.where(thorax & _ellipse(u, v, *an.liver), an.liver_level, tissue)
    su, sv, sr = an.spine
    tissue = np.where(thorax & (np.hypot(u - su, v - sv) < sr), an.spine_level, tissue)
    lungs = thorax & (_ellipse(u, v, *an.lung_l) | _ellipse(u, v, *an.lung_r)) & ~heart
    tissue = np.where(lungs, 0.0, tissue)
    tissue = np.where(heart, an.halo, tissue)
    tissue = np.where(rv_wall, an.muscle, tissue)
    au, av, ar = an.aorta
    aorta = thorax & (np.hypot(u - au, v - av) < ar) & ~heart
    group = np.where(rv_blood, 1, np.where(aorta, 2, 0)).astype(np.int8)
    tissue = np.where(group > 0, 0.0, tissue) * tex
    blood = np.where(group > 0, p.blood_intensity / p.myo_intensity, 0.0)
    return tissue, blood, group


def _coherent_pool_velocity(
    p: PhantomParameters, group: int, u: np.ndarray, v: np.ndarray, st: _MotionState, drive: np.ndarray,
    rv: tuple,
) -> np.ndarray:
    """Blood velocity (cm/s, shape (3, n_points, n_frames)) of a pool that moves with its chamber.

    LV (group 0), points inside the current endocardium: the blood column contracts and twists with
    the endocardium (in-plane velocity ``r / r_endo(t)`` times the endocardial wall's, so it matches the
    wall at the endocardium and is 0 at the centre) and flows through the plane with a parabolic profile
    on top of the wall's through-plane motion: ``v_z = v_z,wall + amp_z (-drive) (1 - r^2 / r_endo(t)^2)``,
    towards the apex (+z) in filling and the base in ejection. RV (group 1), ellipse ``rv`` = (centre u,
    centre v, semi-axes a, b, angle): the pool contracts towards its centre in ejection and expands in
    filling (in-plane ``-drive 0.5 amp_x (offset / mean semi-axis)``), with the same parabolic
    through-plane flow over the ellipse at 0.8 of the LV's. Nothing is random: the velocity is a
    function of the position and the cardiac phase that the magnitude shows.
    """
    k = 100.0 / p.rr_interval_ms  # mm per cycle -> cm/s
    amp = np.asarray(p.blood_flow_cm_s, dtype=np.float64)
    forward = -drive[None, :]  # +1 at the strongest filling (towards the apex)
    u2, v2 = u[:, None], v[:, None]
    if group == 0:
        re2 = st.re2[None, :]
        radial = st.dre2[None, :] / (2.0 * re2) * k  # v_r / r, matches the wall at r = r_endo
        spin = st.dphi[None, :] * _twist_profile(p, p.r_endo_mm) * k  # v_c / r
        profile = np.clip(1.0 - (u2 * u2 + v2 * v2) / re2, 0.0, 1.0)
        return np.stack([radial * u2 - spin * v2, radial * v2 + spin * u2,
                         st.ddz[None, :] * k + amp[2] * forward * profile])
    cu, cv, a, b, _ = rv
    inward = 0.5 * amp[0] * forward / (0.5 * (a + b))
    profile = np.clip(1.0 - _ellipse_radius2(u2, v2, *rv), 0.0, 1.0)
    return np.stack([inward * (u2 - cu), inward * (v2 - cv), 0.8 * amp[2] * forward * profile])


def _blood_velocity(
    p: PhantomParameters, group: int, u: np.ndarray, v: np.ndarray, tau: np.ndarray, drive: np.ndarray,
    aorta_jet: tuple[float, float, float] | None = None, chambers: tuple[_MotionState, tuple] | None = None,
) -> np.ndarray:
    """Flow-like blood velocity (cm/s), shape (3, n_points, n_frames): smooth random field x waveform.

    ``drive`` (n_frames,) is the normalised cavity volume rate (-1 filling .. +1 ejection). Blood is
    allowed to exceed venc (it aliases, as on a scanner); it is not ground truth.

    ``aorta_jet`` = (u, v, radius) of the descending aorta (mm, LV-centred) makes group 2 a coherent
    jet instead of the random field: caudal (+z, base to apex) through-plane flow with a parabolic
    profile over the lumen, the ejection rate delayed by the pulse's transit (2 % of the cycle), a small
    forward flow in diastole, and an in-plane part of 15 % along one direction per subject (the vessel's tilt).

    ``chambers`` = (motion state at the frames, RV ellipse) makes the LV (0) and RV (1) pools move with
    their chambers instead (:func:`_coherent_pool_velocity`).
    """
    if chambers is not None and group in (0, 1):
        return _coherent_pool_velocity(p, group, u, v, chambers[0], drive, chambers[1])
    rng = np.random.default_rng([p.anatomy_seed, 101 + group])
    amp = np.asarray(p.blood_flow_cm_s, dtype=np.float64)
    if group == 2:  # descending aorta: strong through-plane flow, systolic and delayed
        amp = amp * np.array([0.2, 0.2, 2.5])
        drive = np.clip(np.roll(drive, max(1, len(drive) // 25)), 0, None) * 1.2 + 0.1
        if aorta_jet is not None:
            au, av, ar = aorta_jet
            profile = np.clip(1.0 - ((u - au) ** 2 + (v - av) ** 2) / ar**2, 0.0, None)
            # at the centre: amp[2] x (1.2 x ejection rate + 0.1) / 1.3, the rate relative to the
            # cycle's strongest volume rate (filling or ejection); 0.1 / 1.3 of amp[2] in diastole
            vz = amp[2] * np.multiply.outer(profile, drive) / 1.3
            tilt = rng.uniform(0, 2 * np.pi)
            return np.stack([0.15 * np.cos(tilt) * vz, 0.15 * np.sin(tilt) * vz, vz])
        # "field": its sign and pattern follow the random field like the other vessels' (not a
        # coherent jet), and it aliases
    out = np.empty((3, len(u), len(tau)))
    for d in range(3):
        k = 2 * np.pi / rng.uniform(20, 50, 3)
        ang = rng.uniform(0, 2 * np.pi, 3)
        psi = rng.uniform(0, 2 * np.pi, 3)
        spin = rng.integers(1, 3, 3)
        space = np.multiply.outer(u, k * np.cos(ang)) + np.multiply.outer(v, k * np.sin(ang))  # (n, 3)
        field = np.cos(space[:, None, :] + psi + 2 * np.pi * np.multiply.outer(tau, spin)[None]).mean(-1)  # (n, T)
        if d == 2 and group != 2:
            out[d] = amp[d] * (-drive)[None] * (0.7 + 0.5 * field)  # filling moves blood towards the apex (+z)
        else:
            out[d] = amp[d] * (0.3 + np.abs(drive))[None] * field * (1.5 if d < 2 else 1.0)
    return out


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def _pixel_coords(p: PhantomParameters, idx: np.ndarray, sub: int) -> np.ndarray:
    """Sub-sample coordinates (mm, image frame) for pixel indices ``idx``: shape (len(idx) * sub,)."""
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    return ((np.asarray(idx, dtype=np.float64)[:, None] + offsets[None, :] - (p.size - 1) / 2) * p.pixel_spacing_mm).ravel()


def _box_average(a: np.ndarray, nx: int, ny: int, sub: int) -> np.ndarray:
    """Average (nx*sub, ny*sub, ...) sub-samples into (nx, ny, ...) pixels."""
    return a.reshape(nx, sub, ny, sub, *a.shape[2:]).mean(axis=(1, 3))


_STATIC_SUPERSAMPLE = 3
"""Sub-samples per pixel side of the static scene (partial volume of tissue, vessels and air)."""

VESSELS = {"rv_blood": 1, "aorta": 2}
"""Blood groups of the static scene: name -> group id of :func:`_static_scene`."""


def _epicardial_reach(p: PhantomParameters, fine: _MotionState) -> float:
    """Largest epicardial radius (mm) over the cycle sampled by ``fine``."""
    return float(np.sqrt((fine.re2 + fine.s * (p.r_epi_mm**2 - p.r_endo_mm**2)).max()))


def _static_samples(p: PhantomParameters, an: _Anatomy, r_epi_max: float):
    """:func:`_static_scene` on the sub-sample grid of the whole image ((size * 3,) * 2 points)."""
    cx, cy = p.lv_centre_mm
    xs = _pixel_coords(p, np.arange(p.size), _STATIC_SUPERSAMPLE) - cx
    ys = _pixel_coords(p, np.arange(p.size), _STATIC_SUPERSAMPLE) - cy
    U, V = np.meshgrid(xs, ys, indexing="ij")
    return _static_scene(p, an, U, V, r_epi_max)


def vessel_fractions(p: PhantomParameters) -> dict[str, np.ndarray]:
    """Share of each pixel (``(size, size)``, 0..1) covered by each blood vessel of the static scene.

    Keys are :data:`VESSELS`: ``"rv_blood"`` (labelled 3 where the pixel centre is inside it) and
    ``"aorta"``, the descending aorta, which the label map leaves at 0 (other foreground) although its
    phase is aliased blood flow, not still tissue. Evaluations use it to split the error on unlabelled
    foreground into the vessel and the still tissue around it.
    """
    fine = _motion_state(p, np.arange(512) / 512, cycle_waveforms(p))
    r_epi_max = _epicardial_reach(p, fine)
    _, _, group = _static_samples(p, _anatomy(p, r_epi_max), r_epi_max)
    n = p.size
    return {name: _box_average((group == g).astype(np.float64), n, n, _STATIC_SUPERSAMPLE) for name, g in VESSELS.items()}


def simulate_case(
    p: PhantomParameters,
    *,
    case_id: str = "phantom",
    subject: str = "",
    noise: bool = True,
    extra: Mapping[str, Any] | None = None,
    background_phase: str = "noise",
    aorta_flow: str = "field",
    blood_flow: str = "field",
) -> Case:
    """Render one phantom slice over one cardiac cycle as an in-memory :class:`Case`.

    Args:
        p: slice parameters (see :func:`sample_subject` for realistic random ones).
        case_id, subject: identifiers written to case.json.
        noise: add scanner noise (complex Gaussian on the reference and the three velocity-encoded
            signals). Without noise the magnitude is the exact partial-volume signal, the phase
            ``2048 * (1 + arg(mean(m e^{i pi v / venc})) / pi)`` and air phase 2048.
        extra: more case.json keys.
        background_phase: phase of signal-free pixels (air, where the noiseless magnitude is 0): "noise"
            = what the noise gives (uniform over the whole range, as in raw phase); "paper" = Gaussian in
            the normalised units ``p / 2048 - 1`` with the mean and std the HDL paper fitted on its
            scanner data (Fig. 4: :data:`PAPER_BACKGROUND_PHASE`), as on scanners that suppress phase
            outside the body. Drawn from its own random stream, so tissue pixels are identical for both.
        aorta_flow: blood velocity of the descending aorta (unlabelled, outside the LV): "field" = a
            smooth random field like the other blood pools' (its sign varies over the lumen and from
            subject to subject); "jet" = a coherent caudal systolic jet with a parabolic profile, as in
            a real descending aorta. Both alias at the default venc. Every other pixel is identical.
        blood_flow: blood velocity of the LV and RV pools: "field" = a smooth random field whose
            through-plane part follows the cavity volume rate; "coherent" = the pools move with their
            chambers (:func:`_coherent_pool_velocity`), so their phase follows from the position and
            the cardiac phase. Every pixel outside the pools is identical.

    Returns:
        A case with magnitude, phase x/y/z (0..4096 integers), label (0..3), ground-truth velocity
        x/y/z in cm/s (tissue velocity in label-1 pixels, 0 elsewhere), ``end_systole_frame`` (the
        frame of peak radial contraction) and ``extra["phantom"]`` with the parameters.
    """
    _check_options(background_phase, aorta_flow, blood_flow)
    N, T, sub, dx = p.size, p.frames, p.supersample, p.pixel_spacing_mm
    cx, cy = p.lv_centre_mm
    venc = np.asarray(p.venc_cm_s, dtype=np.float64)
    tau = np.arange(T) / T
    waves = cycle_waveforms(p)
    st = _motion_state(p, tau, waves)
    fine = _motion_state(p, np.arange(512) / 512, waves)
    r0sq, repi_sq = p.r_endo_mm**2, p.r_epi_mm**2
    m_epi = repi_sq - r0sq
    r_epi_t = np.sqrt(st.re2 + st.s * m_epi)
    r_epi_max = _epicardial_reach(p, fine)
    an = _anatomy(p, r_epi_max)
    jet = an.aorta if aorta_flow == "jet" else None
    chambers = (st, an.rv) if blood_flow == "coherent" else None
    rate = -np.gradient(fine.re2)  # cavity area decrease rate, for blood-flow drive
    drive = np.interp(tau, np.arange(512) / 512, rate / np.abs(rate).max())
    ratio_blood = p.blood_intensity / p.myo_intensity

    # ---- static scene at pixel level (3x3 super-sampling, once) ---------------------------------
    s_static = _STATIC_SUPERSAMPLE
    tissue_s, blood_s, group_s = _static_samples(p, an, r_epi_max)
    tissue_px = _box_average(tissue_s, N, N, s_static)
    xc = (np.arange(N) - (N - 1) / 2) * dx - cx
    yc = (np.arange(N) - (N - 1) / 2) * dx - cy
    Uc, Vc = np.meshgrid(xc, yc, indexing="ij")
    _, _, group_c = _static_scene(p, an, Uc, Vc, r_epi_max)
    mag_static = tissue_px[..., None].repeat(T, axis=-1)
    encoded = [mag_static.astype(np.complex64) for _ in range(3)]
    for g in VESSELS.values():
        frac = _box_average(np.where(group_s == g, blood_s, 0.0), N, N, s_static)
        ii, jj = np.nonzero(frac > 0)
        if ii.size == 0:
            continue
        vel = _blood_velocity(p, g, Uc[ii, jj], Vc[ii, jj], tau, drive, aorta_jet=jet, chambers=chambers)
        mag_static[ii, jj] += frac[ii, jj, None]
        for d in range(3):
            encoded[d][ii, jj] += frac[ii, jj, None] * np.exp(1j * np.pi * vel[d] / venc[d])
    magnitude = mag_static  # relative units (myocardium = 1) until scaled
    label = np.where(group_c == 1, 3, 0).astype(np.uint8)[..., None].repeat(T, axis=-1)
    velocity = np.zeros((3, N, N, T), dtype=np.float32)

    # ---- LV box: dynamic rendering with sub-sampling ------------------------------------------
    half = r_epi_max + 1.5 * dx
    i0 = max(0, int(np.floor((cx - half) / dx + (N - 1) / 2)))
    i1 = min(N, int(np.ceil((cx + half) / dx + (N - 1) / 2)) + 1)
    j0 = max(0, int(np.floor((cy - half) / dx + (N - 1) / 2)))
    j1 = min(N, int(np.ceil((cy + half) / dx + (N - 1) / 2)) + 1)
    nx, ny = i1 - i0, j1 - j0
    if nx > 0 and ny > 0:
        bu = _pixel_coords(p, np.arange(i0, i1), sub) - cx
        bv = _pixel_coords(p, np.arange(j0, j1), sub) - cy
        BU, BV = np.meshgrid(bu, bv, indexing="ij")
        u, v = BU.ravel(), BV.ravel()
        r2 = u * u + v * v
        theta = np.arctan2(v, u)
        R2 = r0sq + (r2[:, None] - st.re2[None, :]) / st.s[None, :]  # (n, T) material radius^2
        myo = (R2 >= r0sq) & (R2 <= repi_sq)
        cav = R2 < r0sq
        tis_b, blood_b, group_b = _static_scene(p, an, u, v, r_epi_max)
        mag = np.where(myo | cav, 0.0, (tis_b + blood_b)[:, None])
        vsub = np.zeros((3, u.size, T))
        # myocardium: texture on material coordinates, velocity from the model
        pi_, ti = np.nonzero(myo)
        R = np.sqrt(R2[pi_, ti])
        g = _twist_profile(p, R)
        Th = theta[pi_] - st.phi[ti] * g
        tex = _myocardial_texture(p, R * np.cos(Th), R * np.sin(Th), p.slice_z_mm - st.dz[ti])
        mag[pi_, ti] = np.clip(1.0 + p.texture_amplitude * tex, 0.05, None)
        vr, vc, vz = _wall_velocity(p, st, R, np.sqrt(r2[pi_]), g, ti)
        ct, sn = np.cos(theta[pi_]), np.sin(theta[pi_])
        vsub[0, pi_, ti] = vr * ct - vc * sn
        vsub[1, pi_, ti] = vr * sn + vc * ct
        vsub[2, pi_, ti] = vz
        # LV blood pool
        mag[cav] = ratio_blood
        pts = np.nonzero(cav.any(axis=1))[0]
        full = np.zeros((3, u.size, T))
        full[:, pts] = _blood_velocity(p, 0, u[pts], v[pts], tau, drive, chambers=chambers)
        vsub[:, cav] = full[:, cav]
        # RV / aorta blood outside the LV
        for gid in (1, 2):
            sel = (group_b == gid)[:, None] & ~(myo | cav)
            if sel.any():
                pts = np.nonzero(sel.any(axis=1))[0]
                vel = _blood_velocity(p, gid, u[pts], v[pts], tau, drive, aorta_jet=jet, chambers=chambers)
                full = np.zeros((3, u.size, T))
                full[:, pts] = vel
                vsub[:, sel] = full[:, sel]
        mag_b = mag.reshape(nx * sub, ny * sub, T)
        magnitude[i0:i1, j0:j1] = _box_average(mag_b, nx, ny, sub)
        for d in range(3):
            enc = (mag * np.exp(1j * np.pi * vsub[d] / venc[d])).reshape(nx * sub, ny * sub, T)
            encoded[d][i0:i1, j0:j1] = _box_average(enc, nx, ny, sub)
        # labels and ground truth at pixel centres
        pu, pv = np.meshgrid(xc[i0:i1], yc[j0:j1], indexing="ij")
        pr2 = (pu * pu + pv * pv)[..., None]
        in_myo = (pr2 >= st.re2) & (pr2 <= r_epi_t**2)
        lab = label[i0:i1, j0:j1]
        lab[pr2 < st.re2] = 2
        lab[in_myo] = 1
        ci, cj, ct_ = np.nonzero(in_myo)
        pr = np.sqrt(pr2[ci, cj, 0])
        Rc = np.sqrt(r0sq + (pr**2 - st.re2[ct_]) / st.s[ct_])
        gc = _twist_profile(p, Rc)
        vr, vc, vz = _wall_velocity(p, st, Rc, pr, gc, ct_)
        thc = np.arctan2(pv[ci, cj], pu[ci, cj])
        cs, sn = np.cos(thc), np.sin(thc)
        velocity[0, i0 + ci, j0 + cj, ct_] = vr * cs - vc * sn
        velocity[1, i0 + ci, j0 + cj, ct_] = vr * sn + vc * cs
        velocity[2, i0 + ci, j0 + cj, ct_] = vz

    # ---- coil sensitivity, scaling, noise, quantisation ---------------------------------------
    bias = np.clip(1.0 - p.coil_gradient * Vc / 100.0 + 0.1 * p.coil_gradient * Uc / 100.0, 0.5, 1.6)[..., None]
    scale = p.myo_intensity * bias
    scale = scale.astype(np.float32)
    ref = (magnitude * scale).astype(np.complex64)
    enc = encoded
    for e in enc:
        e *= scale
    if noise:
        rng = np.random.default_rng([p.noise_seed, 977])
        sigma = np.float32(p.noise_sigma)
        for e in (ref, *enc):
            e.real += rng.standard_normal(e.shape, dtype=np.float32) * sigma
            e.imag += rng.standard_normal(e.shape, dtype=np.float32) * sigma
    magnitude_out = np.clip(np.rint(np.abs(ref)), 0, PHASE_MAX - 1).astype(np.float32)
    phases = {}
    for d, name in enumerate("xyz"):
        ang = np.angle(enc[d] * np.conj(ref))
        phases[name] = np.clip(np.rint(PHASE_ZERO * (1.0 + ang / np.pi)), 0, PHASE_MAX).astype(np.float32)
    if background_phase == "paper":
        air = magnitude == 0
        bg_rng = np.random.default_rng([p.noise_seed, 991])
        mean, std = PAPER_BACKGROUND_PHASE["mean"], PAPER_BACKGROUND_PHASE["std"]
        for name in "xyz":
            draw = np.clip(bg_rng.normal(mean, std, int(air.sum())), -1.0, 1.0)
            phases[name][air] = np.rint(PHASE_ZERO * (1.0 + draw)).astype(np.float32)
    es_frame = min(T - 1, int(round(p.t_es * T)))
    meta = {
        "phantom": {
            "generator_version": _GENERATOR_VERSION,
            "parameters": p.to_dict(),
            "noise": bool(noise),
            "background_phase": background_phase,
            "aorta_flow": aorta_flow,
            "blood_flow": blood_flow,
            "lv_centre_px": [cx / dx + (N - 1) / 2, cy / dx + (N - 1) / 2],
            "velocity_ground_truth": "tissue velocity (cm/s) at pixel centres in label 1; 0 elsewhere",
            "v_z_positive": "base to apex",
            "circumferential_positive": "e_c = (-e_r.y, e_r.x)",
        }
    }
    meta.update(extra or {})
    return Case(
        case_id=case_id,
        subject=subject or case_id,
        magnitude=magnitude_out,
        phase=phases,
        label=label,
        velocity={d: velocity[i] for i, d in enumerate("xyz")},
        pixel_spacing_mm=(dx, dx),
        rr_interval_ms=float(p.rr_interval_ms),
        venc_cm_s=p.venc,
        source="phantom",
        labels=dict(DEFAULT_LABELS),
        end_systole_frame=es_frame,
        extra=meta,
    )


def _wall_velocity(p: PhantomParameters, st: _MotionState, R: np.ndarray, r: np.ndarray, g: np.ndarray, ti: np.ndarray):
    """(v_r, v_c, v_z) in cm/s of wall points with material radius R, current radius r, at frames ti."""
    k = 100.0 / p.rr_interval_ms
    v_r = (st.dre2[ti] + st.ds[ti] * (R * R - p.r_endo_mm**2)) / (2.0 * r) * k
    v_c = r * st.dphi[ti] * g * k
    v_z = st.ddz[ti] * k
    return v_r, v_c, v_z


# --------------------------------------------------------------------------------------------------
# Parameter sampling and datasets
# --------------------------------------------------------------------------------------------------


def sample_subject(
    seed: int | np.random.Generator | Sequence[int] = 0,
    *,
    slices: int = 3,
    size: int = 128,
    frames: int = 50,
    venc_cm_s: Mapping[str, float] | None = None,
    fov_mm: float | None = None,
) -> list[PhantomParameters]:
    """Random but plausible parameters for one healthy subject, one entry per slice (base to apex).

    Ranges (see docs/phantom.md): heart rate 55-80 bpm, end-systole at ~0.31-0.38 of the cycle,
    ED endocardial radius 22-27 mm at the base, wall 8-11 mm, cavity area change 0.55-0.68 (larger
    towards the apex), basal longitudinal displacement 9-13 mm falling towards the apex, twist
    -3..-7 deg at the base and +7..+13 deg at the apex. The field of view ``fov_mm`` (default
    175-215 mm) sets the pixel spacing as fov / size.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    venc = dict(DEFAULT_VENC_CM_S if venc_cm_s is None else venc_cm_s)
    u = rng.uniform
    hr = u(55, 80)
    rr = 60000.0 / hr
    t_es = float(np.clip(0.33 * np.sqrt(1000.0 / rr) + rng.normal(0, 0.01), 0.3, 0.39))
    fov = fov_mm if fov_mm is not None else u(175, 215)
    spacing = fov / size
    base = dict(
        size=size,
        frames=frames,
        pixel_spacing_mm=spacing,
        rr_interval_ms=rr,
        venc_cm_s=(float(venc["x"]), float(venc["y"]), float(venc["z"])),
        t_ivc=u(0.03, 0.05),
        t_es=t_es,
        t_ivr=u(0.05, 0.07),
        e_duration=u(0.13, 0.16),
        e_recovery=u(0.65, 0.8),
        long_e_duration=u(0.10, 0.13),
        long_e_recovery=u(0.72, 0.85),
        untwist_duration=u(0.10, 0.14),
        untwist_recovery=u(0.8, 0.95),
        diastasis_drop=u(0.1, 0.25),
        a_duration=u(0.10, 0.13),
        ejection_skew=u(0.7, 0.9),
        transmural_twist=u(0.0, 0.3),
        long_strain=u(0.08, 0.14),
        slice_thickness_mm=8.0,
        blood_intensity=u(2200, 3000),
        texture_amplitude=u(0.15, 0.25),
        coil_gradient=u(0.15, 0.35),
        texture_seed=int(rng.integers(2**31)),
        anatomy_seed=int(rng.integers(2**31)),
    )
    base["myo_intensity"] = base["blood_intensity"] * u(0.24, 0.32)
    base["noise_sigma"] = base["blood_intensity"] * u(0.004, 0.007)
    r_base, wall = u(22, 27), u(8, 11)
    ef = u(0.55, 0.68)
    disp = u(7, 10)
    twist_base, twist_apex = u(-8, -4), u(9, 15)
    flow = (u(10, 20), u(10, 20), u(20, 40))
    centre = rng.uniform(-0.05, 0.05, 2) * fov
    positions = np.linspace(0.1, 0.75, slices) if slices > 1 else np.array([0.45])
    out = []
    for q in positions:
        q = float(q)
        out.append(
            PhantomParameters(
                **base,
                lv_centre_mm=(float(centre[0] + rng.normal(0, 1.5)), float(centre[1] + rng.normal(0, 1.5))),
                r_endo_mm=r_base * (1.0 - 0.45 * q),
                wall_mm=wall * (1.0 - 0.2 * q),
                cavity_area_change=min(0.8, ef * (0.92 + 0.25 * q)),
                long_displacement_mm=disp * (1.0 - 0.8 * q),
                twist_deg=twist_base + (twist_apex - twist_base) * q,
                slice_z_mm=q * 80.0,
                blood_flow_cm_s=tuple(f * (1.0 - 0.4 * q) for f in flow),
                rv_scale=1.0 - 0.3 * q,
                noise_seed=int(rng.integers(2**31)),
            )
        )
    return out


def generate_phantom(
    out: str | os.PathLike,
    subjects: int = 20,
    slices: int = 3,
    size: int = 128,
    frames: int = 50,
    seed: int = 0,
    overwrite: bool = False,
    *,
    progress: bool = True,
    noise: bool = True,
    venc_cm_s: Mapping[str, float] | None = None,
    writers: int = 1,
    background_phase: str = "noise",
    aorta_flow: str = "field",
    blood_flow: str = "field",
) -> Path:
    """Write a phantom dataset: ``<out>/cases/<subNNN_sK>/`` for every subject and slice, plus
    ``<out>/datalist.json`` split by subject (60/20/20) and ``<out>/phantom.json`` (the arguments).

    The whole dataset appears at once (built in a temporary sibling folder, then renamed); an
    existing ``out`` is refused unless ``overwrite``. The same arguments give identical files.
    ``writers`` background threads compress and write cases while the next one is simulated.
    ``background_phase``, ``aorta_flow`` and ``blood_flow``: see :func:`simulate_case`.
    """
    _check_options(background_phase, aorta_flow, blood_flow)
    if subjects < 1 or slices < 1:
        raise ValueError(f"need at least one subject and one slice, got subjects={subjects}, slices={slices}")
    out = Path(out)
    root = np.random.SeedSequence(seed)
    case_subjects: dict[str, str] = {}
    jobs = [(s, k) for s in range(subjects) for k in range(slices)]
    with atomic_directory(out, overwrite=overwrite) as tmp:
        (tmp / "cases").mkdir()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc="phantom", unit="case")
        pending: list[Future] = []
        with ThreadPoolExecutor(max_workers=max(1, writers)) as pool:
            params_by_subject: dict[int, list[PhantomParameters]] = {}
            for child_index, child in enumerate(root.spawn(subjects)):
                params_by_subject[child_index] = sample_subject(
                    np.random.default_rng(child), slices=slices, size=size, frames=frames, venc_cm_s=venc_cm_s
                )
            for s, k in jobs:
                subject = f"sub{s:03d}"
                case_id = f"{subject}_s{k}"
                extra = {"slice_index": k, "slices_per_subject": slices}
                case = simulate_case(params_by_subject[s][k], case_id=case_id, subject=subject, noise=noise, extra=extra,
                                     background_phase=background_phase, aorta_flow=aorta_flow,
                                     blood_flow=blood_flow)
                case_subjects[case_id] = subject
                while len(pending) > max(1, writers):
                    pending.pop(0).result()
                pending.append(pool.submit(save_case, case, tmp / "cases" / case_id))
                if bar is not None:
                    bar.update(1)
            for f in pending:
                f.result()
        if bar is not None:
            bar.close()
        save_datalist(tmp, split_by_subject(case_subjects, seed=seed))
        atomic_write_json(
            tmp / "phantom.json",
            {
                "generator": "hdl_monai.data.phantom",
                "generator_version": _GENERATOR_VERSION,
                "subjects": subjects,
                "slices": slices,
                "size": size,
                "frames": frames,
                "seed": seed,
                "noise": noise,
                "background_phase": background_phase,
                "aorta_flow": aorta_flow,
                "blood_flow": blood_flow,
                "venc_cm_s": dict(DEFAULT_VENC_CM_S if venc_cm_s is None else venc_cm_s),
            },
        )
    return out

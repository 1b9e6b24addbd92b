"""Digital-twin phantom: physical consistency (motion, velocity, phase), noise, timing, datasets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import least_squares

from hdl_monai.data import OverwriteError, load_case, load_datalist, validate_dataset
from hdl_monai.data.phantom import (
    PhantomParameters,
    Waveform,
    cycle_template,
    cycle_waveforms,
    generate_phantom,
    lv_motion,
    sample_subject,
    simulate_case,
    vessel_fractions,
)

# A mid-ventricular slice with fine pixels, used by the known-answer tests.
MID = PhantomParameters(size=64, frames=30, pixel_spacing_mm=1.5, twist_deg=8.0, texture_seed=3, anatomy_seed=4)


@pytest.fixture(scope="module")
def clean_case():
    return simulate_case(MID, noise=False)


@pytest.fixture(scope="module")
def noisy_case():
    return simulate_case(MID, noise=True)


def _global_curves(case):
    """Global (label-1 mean) radial, circumferential, longitudinal ground-truth velocity per frame."""
    X, Y = np.meshgrid(*(np.arange(n, dtype=float) for n in case.magnitude.shape[:2]), indexing="ij")
    out = []
    for t in range(case.frames):
        myo, cav = case.label[..., t] == 1, case.label[..., t] == 2
        ex, ey = X[myo] - X[cav].mean(), Y[myo] - Y[cav].mean()
        norm = np.hypot(ex, ey)
        ex, ey = ex / norm, ey / norm
        vx, vy, vz = (case.velocity[d][..., t][myo] for d in "xyz")
        out.append(((vx * ex + vy * ey).mean(), (-vx * ey + vy * ex).mean(), vz.mean()))
    return np.array(out)


def test_waveform_derivative_is_exact_and_periodic():
    w = cycle_waveforms(MID)["longitudinal"]
    tau = np.linspace(0, 1, 2001)
    h = 1e-6
    numeric = (w(tau + h) - w(tau - h)) / (2 * h)
    assert np.allclose(w.derivative(tau), numeric, atol=1e-4 * np.abs(numeric).max())
    assert w(0.0) == pytest.approx(w(1.0), abs=1e-12)
    tau_s = np.arange(256) / 256
    sine = Waveform.fit(np.sin(2 * np.pi * tau_s), harmonics=4)  # known answer: d/dtau sin = 2 pi cos
    assert np.allclose(sine.derivative(tau), 2 * np.pi * np.cos(2 * np.pi * tau), atol=1e-9)
    template = cycle_template(tau, 0.04, 0.34, 0.40, 0.11, 0.78, 0.12, diastasis_drop=0.15, skew=MID.ejection_skew)
    assert np.abs(w(tau) - template).max() < 0.02  # the truncated series follows the template


def test_tracked_material_points_move_with_the_stored_velocity():
    """Central differences of the forward map equal the analytic velocity (tracking known answer)."""
    rng = np.random.default_rng(0)
    R = rng.uniform(MID.r_endo_mm, MID.r_epi_mm, 200)
    theta = rng.uniform(0, 2 * np.pi, 200)
    tau = rng.uniform(0, 1, 200)
    h = 1e-4
    a, b, m = lv_motion(MID, R, theta, tau - h), lv_motion(MID, R, theta, tau + h), lv_motion(MID, R, theta, tau)
    dt_s = 2 * h * MID.rr_interval_ms / 1000.0
    for key, pos in (("v_x", "x"), ("v_y", "y")):
        numeric = (b[pos] - a[pos]) / 10.0 / dt_s  # mm -> cm
        assert np.allclose(numeric, m[key], atol=1e-3)
    # radial speed matches the endocardial radius change and area conservation: r dr = r_endo dr_endo
    assert np.all(np.abs(m["v_r"]) < 15) and np.all(np.abs(m["v_z"]) < 15)


def test_ground_truth_velocity_is_the_motion_of_the_material_at_each_pixel(clean_case):
    """Invert the forward map numerically at pixel centres; the stored velocity is that point's velocity."""
    c, dx, n = clean_case, MID.pixel_spacing_mm, MID.size
    rng = np.random.default_rng(1)
    xi, yi, ti = np.nonzero(c.label == 1)
    for k in rng.choice(len(xi), 12, replace=False):
        i, j, t = xi[k], yi[k], ti[k]
        target = np.array([(i - (n - 1) / 2) * dx, (j - (n - 1) / 2) * dx])

        def residual(q, t=t, target=target):
            m = lv_motion(MID, q[0], q[1], t / MID.frames)
            return [float(m["x"]) - target[0], float(m["y"]) - target[1]]

        guess = [MID.r_endo_mm + MID.wall_mm / 2, np.arctan2(target[1], target[0])]
        sol = least_squares(residual, guess, bounds=([MID.r_endo_mm - 1, -10], [MID.r_epi_mm + 1, 10]))
        assert np.abs(sol.fun).max() < 1e-6
        assert MID.r_endo_mm - 1e-6 <= sol.x[0] <= MID.r_epi_mm + 1e-6  # label 1 is the material wall
        m = lv_motion(MID, sol.x[0], sol.x[1], t / MID.frames)
        for d in "xyz":
            assert c.velocity[d][i, j, t] == pytest.approx(float(m[f"v_{d}"]), abs=1e-4)


def test_texture_in_the_magnitude_moves_with_the_velocity():
    """Warping frame t by the stored velocity reproduces frame t+1 in the myocardium (texture tracking).

    The residual after the warp must be far below the residual of assuming no motion and of moving
    the wrong way, so the rendered texture is advected by exactly the motion the velocity describes.
    """
    p = dataclasses.replace(MID, size=80, pixel_spacing_mm=1.0, twist_deg=12.0, texture_amplitude=0.4, long_displacement_mm=0.0)
    c = simulate_case(p, noise=False)
    px_per_frame = 10.0 * p.rr_interval_ms / p.frames / 1000.0 / p.pixel_spacing_mm  # (cm/s) -> px/frame
    for f0 in (3, 13):  # ejection, early filling
        f1 = f0 + 1
        ii, jj = np.nonzero(ndimage.binary_erosion(c.label[..., f1] == 1, iterations=2))
        vx = 0.5 * (c.velocity["x"][ii, jj, f0] + c.velocity["x"][ii, jj, f1]) * px_per_frame
        vy = 0.5 * (c.velocity["y"][ii, jj, f0] + c.velocity["y"][ii, jj, f1]) * px_per_frame
        assert np.hypot(vx, vy).mean() > 0.7  # visible motion, most of a pixel per frame
        target = c.magnitude[ii, jj, f1]

        def residual(sign, f0=f0, ii=ii, jj=jj, vx=vx, vy=vy, target=target):
            src = ndimage.map_coordinates(c.magnitude[..., f0].astype(float), [ii - sign * vx, jj - sign * vy], order=3)
            return np.sqrt(np.mean((src - target) ** 2))

        assert residual(1) < 0.35 * residual(0)
        assert residual(1) < 0.2 * residual(-1)


def test_phase_encodes_velocity_through_venc(clean_case, noisy_case):
    venc = clean_case.venc_cm_s
    interior = np.stack([ndimage.binary_erosion(clean_case.label[..., t] == 1) for t in range(clean_case.frames)], -1)
    assert interior.sum() > 200
    for d in "xyz":
        v_clean = (clean_case.phase[d] - 2048) / 2048 * venc[d]
        v_noisy = (noisy_case.phase[d] - 2048) / 2048 * venc[d]
        truth = clean_case.velocity[d]
        assert np.abs(v_clean - truth)[interior].max() < 0.06  # 12-bit rounding + partial volume
        assert np.median(np.abs(v_noisy - truth)[interior]) < 0.6  # phase noise at myocardial SNR
    for d in "xyz":
        assert noisy_case.phase[d].min() >= 0 and noisy_case.phase[d].max() <= 4096
        assert np.all(noisy_case.phase[d] == np.round(noisy_case.phase[d]))


def test_ejection_shrinks_the_blood_pool_and_thickens_the_wall(clean_case):
    es = clean_case.end_systole_frame
    lab = clean_case.label
    cav0, cav_es = (lab[..., 0] == 2).sum(), (lab[..., es] == 2).sum()
    myo0, myo_es = (lab[..., 0] == 1).sum(), (lab[..., es] == 1).sum()
    assert cav_es / cav0 == pytest.approx(1 - MID.cavity_area_change, abs=0.06)
    # in-plane tissue area changes only by longitudinal shortening, 1 / (1 - long_strain)
    assert 0.97 < myo_es / myo0 < 1.0 / (1.0 - MID.long_strain) + 0.05

    def thickness(t):
        cav, myo = (lab[..., t] == 2).sum(), (lab[..., t] == 1).sum()
        return np.sqrt((cav + myo) / np.pi) - np.sqrt(cav / np.pi)

    assert thickness(es) > 1.3 * thickness(0)


def test_cycle_timing_and_velocity_pattern(clean_case):
    es = clean_case.end_systole_frame
    assert 0.28 <= es / clean_case.frames <= 0.42  # end-systole about a third of the cycle
    cav = (clean_case.label == 2).sum((0, 1))
    assert cav[es] <= cav.min() * 1.03  # least blood pool at end-systole
    curves = _global_curves(clean_case)
    systole, diastole = curves[: es + 1], curves[es + 1 :]
    assert systole[:, 0].min() < -1.5 and diastole[:, 0].max() > 2.0  # inward then outward (cm/s)
    assert abs(diastole[:, 0].max()) > abs(systole[:, 0].min())
    assert systole[:, 2].max() > 1.5 and diastole[:, 2].min() < -3.0  # towards apex, then back
    assert abs(diastole[:, 2].min()) > abs(systole[:, 2].max())  # E' longitudinal beats systolic
    assert abs(diastole[:, 1]).max() > 0.5 and systole[:, 1].max() > 0.5  # twist then untwist (twist_deg > 0)


def test_sampled_subjects_are_plausible_and_never_alias():
    rng = np.random.default_rng(5)
    for seed in range(12):
        slices = sample_subject(seed, slices=3, size=64, frames=50)
        assert slices[0].twist_deg < 0 < slices[-1].twist_deg  # base and apex rotate in opposite senses
        assert slices[0].long_displacement_mm > slices[-1].long_displacement_mm  # base moves more
        assert slices[0].r_endo_mm > slices[-1].r_endo_mm
        assert len({p.rr_interval_ms for p in slices}) == 1
        for p in slices:
            R = np.linspace(p.r_endo_mm, p.r_epi_mm, 5)  # the endocardium moves fastest
            th = rng.uniform(0, 2 * np.pi, 5)
            m = lv_motion(p, R[:, None], th[:, None], np.arange(100)[None, :] / 100)
            # headroom for phase noise: tissue stays well inside +-venc, so it never aliases
            assert np.abs(m["v_x"]).max() < 0.75 * p.venc_cm_s[0]
            assert np.abs(m["v_y"]).max() < 0.75 * p.venc_cm_s[1]
            assert np.abs(m["v_z"]).max() < 0.75 * p.venc_cm_s[2]


def test_air_is_dark_rician_and_has_uniform_phase(clean_case, noisy_case):
    air = clean_case.magnitude == 0
    assert air.mean() > 0.05
    mag = noisy_case.magnitude
    assert mag.min() >= 0
    scale = np.percentile(mag, 99.5)
    normalised = np.clip(mag / scale, 0, 1) * 2 - 1
    assert (normalised[air] < -0.95).mean() > 0.995
    assert mag[air].mean() == pytest.approx(MID.noise_sigma * np.sqrt(np.pi / 2), rel=0.1)  # Rayleigh mean
    for d in "xyz":
        hist, _ = np.histogram(noisy_case.phase[d][air], bins=8, range=(0, 4096))
        assert np.all(np.abs(hist / hist.sum() - 1 / 8) < 0.02)
    # static tissue: zero velocity, small phase noise
    tissue = (clean_case.magnitude > 0.5 * MID.myo_intensity) & (clean_case.label == 0)
    static = tissue & np.all(np.stack([np.abs(clean_case.phase[d] - 2048) < 1 for d in "xyz"]), axis=0)
    assert np.abs(noisy_case.phase["x"][static] - 2048).std() < 40


def test_vessel_fractions_find_the_unlabelled_aorta_and_the_rv():
    p = dataclasses.replace(MID, pixel_spacing_mm=3.0)  # a 192 mm field of view reaches the descending aorta
    case = simulate_case(p, noise=False)
    shares = vessel_fractions(p)
    assert set(shares) == {"aorta", "rv_blood"}
    assert all(v.shape == (p.size, p.size) and v.min() >= 0 and v.max() <= 1 for v in shares.values())
    assert np.all(shares["aorta"] * shares["rv_blood"] == 0)
    aorta, rv = shares["aorta"] == 1, shares["rv_blood"] == 1
    assert aorta.sum() >= 15 and rv.sum() >= 30
    # the aorta is unlabelled, blood-bright, and its through-plane phase swings over the cycle
    assert np.all(case.label[aorta] == 0)
    myo = case.magnitude[case.label == 1].mean()
    assert case.magnitude[aorta].mean() / myo == pytest.approx(p.blood_intensity / p.myo_intensity, rel=0.25)
    assert case.phase["z"][aorta].std(axis=-1).mean() > 300
    still = (case.magnitude > 0).all(-1) & (case.label == 0).all(-1) & (shares["aorta"] == 0) & (shares["rv_blood"] == 0)
    assert (case.phase["z"][still] == 2048).all(-1).mean() > 0.9  # zero phase without noise, but near the moving wall
    assert (case.label[rv] == 3).mean() > 0.8


def test_aorta_jet_is_a_coherent_caudal_systolic_flow_and_changes_nothing_else():
    p = dataclasses.replace(MID, pixel_spacing_mm=3.0)
    field = simulate_case(p, noise=False)
    jet = simulate_case(p, noise=False, aorta_flow="jet")
    share = vessel_fractions(p)["aorta"]
    touched = share > 0
    for d in "xyz":
        np.testing.assert_array_equal(jet.phase[d][~touched], field.phase[d][~touched])
    np.testing.assert_array_equal(jet.magnitude, field.magnitude)
    assert jet.extra["phantom"]["aorta_flow"] == "jet"
    # known answer: at the lumen's centre the through-plane velocity is +z (caudal), 2.5 x blood_flow z
    # times the ejection rate (relative to the cycle's strongest volume rate) in systole, and a small
    # forward flow (0.1 / 1.3 of 2.5 x blood_flow z) in diastole; phase wraps at venc as on a scanner
    ii, jj = np.nonzero(share == 1)
    centre = int(ii.mean().round()), int(jj.mean().round())
    assert share[centre] == 1
    peak = 2.5 * p.blood_flow_cm_s[2]
    phase = jet.phase["z"][centre] / 2048.0 - 1.0
    assert phase.max() > 0.5 and phase.min() < -0.5  # 75 cm/s against venc 30: it aliases
    assert np.median(phase) == pytest.approx(0.1 / 1.3 * peak / p.venc_cm_s[2], abs=0.02)
    slow = simulate_case(dataclasses.replace(p, blood_flow_cm_s=(14.0, 14.0, 10.0)), noise=False, aorta_flow="jet")
    slow_phase = slow.phase["z"][centre] / 2048.0 - 1.0
    # 25 cm/s at the strongest volume rate (here filling is faster than ejection, so the jet peaks lower)
    assert 0.25 * 25.0 / p.venc_cm_s[2] < slow_phase.max() <= 25.0 / p.venc_cm_s[2]
    assert np.median(slow_phase) == pytest.approx(0.1 / 1.3 * 25.0 / p.venc_cm_s[2], abs=0.005)
    assert slow_phase.min() > 0  # forward all cycle
    # coherent: in diastole the whole lumen flows forward, fastest at the centre (parabolic profile)
    quiet = int(np.flatnonzero(np.abs(phase - np.median(phase)) < 1e-3)[0])
    diastole = jet.phase["z"][..., quiet] / 2048.0 - 1.0
    assert (diastole[share == 1] >= 0).all()
    assert diastole[centre] == diastole[share == 1].max() > 0
    with pytest.raises(ValueError, match="aorta_flow"):
        simulate_case(p, aorta_flow="vortex")


def test_coherent_blood_pools_move_with_their_chambers_and_change_nothing_else(clean_case):
    p = MID
    coherent = simulate_case(p, noise=False, blood_flow="coherent")
    assert coherent.extra["phantom"]["blood_flow"] == "coherent"
    np.testing.assert_array_equal(coherent.magnitude, clean_case.magnitude)
    pools = np.isin(clean_case.label, (2, 3)).any(-1) | (vessel_fractions(p)["rv_blood"] > 0)
    near = ndimage.binary_dilation(pools)  # partial-volume pixels at the pools' edges
    for d in "xyz":
        np.testing.assert_array_equal(coherent.phase[d][~near], clean_case.phase[d][~near])
    # known answer from the wall's kinematics (lv_motion at the endocardium): inside the cavity the
    # in-plane velocity is the endocardium's scaled by r / r_endo(t), radial and swirling with it
    tau = np.arange(p.frames) / p.frames
    wall = lv_motion(p, np.full_like(tau, p.r_endo_mm), np.zeros_like(tau), tau)
    radial, spin = wall["v_r"] / wall["r"], wall["v_c"] / wall["r"]
    cx, cy = coherent.extra["phantom"]["lv_centre_px"]
    i, j = int(round(cx)) + 3, int(round(cy)) - 2
    u, v = (i - cx) * p.pixel_spacing_mm, (j - cy) * p.pixel_spacing_mm
    assert np.hypot(u, v) + p.pixel_spacing_mm < wall["r"].min()  # the whole pixel stays in the cavity
    assert (coherent.label[i, j] == 2).all()
    venc = p.venc_cm_s
    for d, expected in (("x", radial * u - spin * v), ("y", radial * v + spin * u)):
        assert np.abs(expected).max() > 1.0  # the kinematics are visible, not 0
        np.testing.assert_allclose(coherent.phase[d][i, j] / 2048.0 - 1.0, expected / venc[0 if d == "x" else 1],
                                   atol=1.0 / 2048)
    # through the plane: the wall's motion plus a flow towards the apex in filling (cavity growing) and
    # the base in ejection, largest at the centre (parabolic profile)
    flow = (coherent.phase["z"][i, j] / 2048.0 - 1.0) * venc[2] - wall["v_z"]
    assert np.corrcoef(flow, wall["v_r"])[0, 1] > 0.98
    assert np.abs(flow).max() <= p.blood_flow_cm_s[2]
    frame = int(np.abs(flow).argmax())
    z = coherent.phase["z"][..., frame] / 2048.0 - 1.0
    lv = coherent.label[..., frame] == 2
    centre = int(round(cx)), int(round(cy))
    assert abs(z[centre] - wall["v_z"][frame] / venc[2]) == pytest.approx(
        np.abs(z[lv] - wall["v_z"][frame] / venc[2]).max(), abs=2.0 / 2048)
    with pytest.raises(ValueError, match="blood_flow"):
        simulate_case(p, blood_flow="vortex")


def test_paper_background_phase_replaces_only_the_air(clean_case, noisy_case):
    from hdl_monai.data.phantom import PAPER_BACKGROUND_PHASE

    paper = simulate_case(MID, noise=True, background_phase="paper")
    air = clean_case.magnitude == 0
    np.testing.assert_array_equal(paper.magnitude, noisy_case.magnitude)
    for d in "xyz":
        np.testing.assert_array_equal(paper.phase[d][~air], noisy_case.phase[d][~air])
        values = paper.phase[d][air] / 2048.0 - 1.0  # the normalised units of the phase networks
        assert values.mean() == pytest.approx(PAPER_BACKGROUND_PHASE["mean"], abs=0.002)
        assert values.std() == pytest.approx(PAPER_BACKGROUND_PHASE["std"], abs=0.002)
    assert paper.extra["phantom"]["background_phase"] == "paper"
    with pytest.raises(ValueError, match="background_phase must be one of"):
        simulate_case(MID, background_phase="gaussian")


def test_simulation_is_deterministic_and_validates(clean_case):
    again = simulate_case(MID, noise=False)
    np.testing.assert_array_equal(again.magnitude, clean_case.magnitude)
    np.testing.assert_array_equal(again.phase["z"], clean_case.phase["z"])
    other = simulate_case(dataclasses.replace(MID, texture_seed=MID.texture_seed + 1), noise=False)
    assert not np.array_equal(other.magnitude, clean_case.magnitude)
    from hdl_monai.data import check_case

    assert check_case(clean_case) == []
    assert clean_case.source == "phantom" and clean_case.venc_cm_s == {"x": 20.0, "y": 20.0, "z": 30.0}
    assert PhantomParameters.from_dict(clean_case.extra["phantom"]["parameters"]) == MID


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="cavity_area_change"):
        PhantomParameters(cavity_area_change=1.2)
    with pytest.raises(ValueError, match="t_es"):
        PhantomParameters(t_es=0.8)
    with pytest.raises(ValueError, match="subject"):
        generate_phantom("unused", subjects=0)


def _arrays(dataset):
    return {
        item["case"]: load_case(dataset / item["case"]) for split in load_datalist(dataset).values() for item in split
    }


def test_generated_dataset_is_valid_split_by_subject_and_reproducible(tmp_path):
    kwargs = dict(subjects=4, slices=2, size=32, frames=8, progress=False)
    a = generate_phantom(tmp_path / "a", seed=7, **kwargs)
    assert validate_dataset(a) == []
    datalist = load_datalist(a)
    splits = {s: {item["subject"] for item in items} for s, items in datalist.items()}
    assert sum(len(v) for v in splits.values()) == 4
    assert not (splits["training"] & splits["validation"] or splits["training"] & splits["test"] or splits["validation"] & splits["test"])
    cases = _arrays(a)
    assert sorted(cases) == sorted(f"cases/sub{s:03d}_s{k}" for s in range(4) for k in range(2))
    first = cases["cases/sub000_s0"]
    assert first.subject == "sub000" and first.source == "phantom" and first.end_systole_frame is not None
    assert first.extra["phantom"]["parameters"]["frames"] == 8

    b = generate_phantom(tmp_path / "b", seed=7, **kwargs)
    c = generate_phantom(tmp_path / "c", seed=8, **kwargs)
    for key, case in _arrays(b).items():
        np.testing.assert_array_equal(case.magnitude, cases[key].magnitude)
        np.testing.assert_array_equal(case.phase["x"], cases[key].phase["x"])
    assert not np.array_equal(_arrays(c)["cases/sub000_s0"].magnitude, first.magnitude)

    with pytest.raises(OverwriteError):
        generate_phantom(a, seed=8, **kwargs)
    generate_phantom(a, seed=8, overwrite=True, **kwargs)
    assert np.array_equal(_arrays(a)["cases/sub000_s0"].magnitude, _arrays(c)["cases/sub000_s0"].magnitude)

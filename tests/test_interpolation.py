"""Rebuilding a down-sampled series with the classical baselines, and `hdl-monai interpolate`."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_case
from hdl_monai.baselines.series import rebuild_series
from hdl_monai.cli import main
from hdl_monai.data import CaseError, load_case, save_case
from hdl_monai.interpolation import interpolate_case


def test_linear_rebuild_is_exact_on_piecewise_linear_series_and_keeps_kept_frames():
    T, K = 12, 2
    rng = np.random.default_rng(0)
    kept_values = rng.random((4, 4, T // (K + 1)))
    series = np.zeros((4, 4, T))
    for j in range(T // (K + 1)):
        a, b = kept_values[..., j], kept_values[..., (j + 1) % (T // (K + 1))]
        for k in range(K + 1):
            series[..., j * (K + 1) + k] = a + (b - a) * k / (K + 1)
    broken = series.copy()
    broken[..., [t for t in range(T) if t % (K + 1)]] = -99.0  # dropped frames must not be read
    rebuilt, _ = rebuild_series(broken, None, K, "linear")
    np.testing.assert_allclose(rebuilt, series, atol=1e-12)


def test_wrap_around_gap_shorter_than_K_uses_frame_zero():
    T, K = 10, 3  # kept 0, 4, 8; the last gap (8 -> 10 == 0) holds only frame 9
    series = np.zeros((2, 2, T))
    series[..., 8] = 1.0
    series[..., 0] = 3.0
    rebuilt, _ = rebuild_series(series, None, K, "linear")
    assert rebuilt[0, 0, 9] == pytest.approx(2.0)


def test_interpolate_case_errors_name_the_case():
    case = make_case(frames=6)
    with pytest.raises(CaseError, match="case c0: K=3 does not fit a series of T=6"):
        interpolate_case(case, 3)
    case.labelled_frames = [0, 1]
    with pytest.raises(CaseError, match=r"labels missing on kept frames \[3\]"):
        interpolate_case(case, 2)
    case.labelled_frames, case.label = None, None
    with pytest.raises(CaseError, match="no label.nii.gz"):
        interpolate_case(case, 2)
    with pytest.raises(CaseError, match="needs a trained interpolation model"):
        interpolate_case(make_case(frames=6), 2, "hdl")


@pytest.mark.parametrize("method", ["linear", "optical_flow"])
def test_cli_interpolate_writes_a_valid_case(tmp_path, method):
    save_case(make_case(frames=8, size=32), tmp_path / "c0")
    main(["interpolate", str(tmp_path / "c0"), "--out", str(tmp_path / "twin"), "--k", "1", "--method", method])
    twin = load_case(tmp_path / "twin")
    original = load_case(tmp_path / "c0")
    np.testing.assert_array_equal(twin.magnitude[..., ::2], original.magnitude[..., ::2])
    assert twin.extra["interpolation"] == {"method": method, "K": 1, "kept_frames": [0, 2, 4, 6], "source_case": "c0"}
    assert not twin.phase and twin.label.shape == original.label.shape
    with pytest.raises(SystemExit) as stop:  # existing output refused
        main(["interpolate", str(tmp_path / "c0"), "--out", str(tmp_path / "twin"), "--k", "1"])
    assert stop.value.code == 2


def test_interpolation_metrics_known_answers():
    from dataclasses import replace

    from hdl_monai.evaluate import interpolation_metrics
    from hdl_monai.transforms.array import magnitude_scale

    case = make_case(frames=8, size=32)
    same = interpolation_metrics(case, case, 1)
    assert same["mse"] == 0 and same["msew1"] == 0 and same["dice"] == 1.0 and same["ssim"] == pytest.approx(1.0)
    # +0.05 of the scale is +0.1 on the [-1, 1] map; shift only pixels that stay below the clip point
    scale = magnitude_scale(case.magnitude)
    rebuilt = replace(case, magnitude=case.magnitude.copy())
    frames = rebuilt.magnitude[..., 1::2]
    shifted = frames + 0.05 * scale < scale
    rebuilt.magnitude[..., 1::2] = frames + 0.05 * scale * shifted
    values = interpolation_metrics(case, rebuilt, 1)
    assert values["mse"] == pytest.approx(0.01 * shifted.mean(), rel=1e-4)
    assert values["msew1"] < values["mse"]  # w1 is 0.1 outside the LV region
    per_frame = 0.01 * shifted.mean(axis=(0, 1))
    assert values["psnr"] == pytest.approx(np.mean(10 * np.log10(4 / per_frame)), rel=1e-4)
    assert values["dice"] == 1.0  # labels untouched


def test_evaluate_interpolation_writes_tables(tmp_path):
    from hdl_monai.data import save_datalist
    from hdl_monai.evaluate import evaluate_interpolation

    for i in range(2):
        save_case(make_case(f"c{i}", frames=8, size=32, seed=i), tmp_path / "ds" / "cases" / f"c{i}")
    save_datalist(tmp_path / "ds", {"test": [{"case": "cases/c0"}, {"case": "cases/c1"}]})
    results = evaluate_interpolation(tmp_path / "ds", tmp_path / "ev", ks=[1, 2], progress=False)
    assert set(results) == {"1", "2"} and set(results["1"]) == {"linear", "optical_flow"}
    assert len(results["2"]["linear"]["dice"]["values"]) == 2
    table = (tmp_path / "ev" / "interpolation_metrics.md").read_text()
    assert table.count("| linear |") == 2 and (tmp_path / "ev" / "metrics_vs_k.png").stat().st_size > 10_000


def _accelerating_blob(T: int = 24, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A textured blob whose x-position follows a smooth periodic path with a sharp mid-cycle surge
    (positions (T,) in px, frames (size, size, T))."""
    from scipy import ndimage

    t = np.arange(T)
    # displacement rises by 8 px around mid-cycle and falls back smoothly: speed peaks within a few frames
    position = 8.0 * np.exp(-(((t - T / 2) / (T / 8)) ** 2))
    rng = np.random.default_rng(1)
    base = ndimage.gaussian_filter(rng.standard_normal((size, size)), 2.0)
    x, y = np.indices((size, size))
    base += 3.0 * np.exp(-((x - 18) ** 2 + (y - 24) ** 2) / 40.0)
    frames = np.stack([ndimage.shift(base, (p, 0.0), order=3, mode="nearest") for p in position], axis=-1)
    return position, frames


@pytest.mark.parametrize("K", [2, 3])
def test_cubic_timing_follows_a_velocity_peak_between_kept_frames(K):
    from hdl_monai.engines.interpolation import InterpolationModelSpec, estimate_planes
    from hdl_monai.transforms import interpolation_plan

    _, frames = _accelerating_blob()
    spec = InterpolationModelSpec(estimate="optical_flow", roi_size=frames.shape[:2])
    plan = interpolation_plan(frames.shape[-1], K)
    errors = {}
    for timing in ("linear", "cubic", "spline"):
        guesses = estimate_planes(spec, frames, None, plan, timing)
        assert len(guesses) == len(plan) and guesses[0].shape == (2,) + frames.shape[:2]
        inner = (slice(8, 40), slice(8, 40))
        errors[timing] = np.mean([np.mean((g[0] - frames[..., s.target])[inner] ** 2) for g, s in zip(guesses, plan)])
    # the surge makes constant speed within a gap wrong; the cubic timing tracks it better
    assert errors["cubic"] < 0.8 * errors["linear"], errors
    assert errors["spline"] < 0.8 * errors["linear"], errors
    with pytest.raises(ValueError, match="timing must be one of"):
        estimate_planes(spec, frames, None, plan, "quadratic")


def test_cubic_timing_is_linear_when_the_motion_is_uniform():
    from scipy import ndimage

    from hdl_monai.engines.interpolation import InterpolationModelSpec, estimate_planes
    from hdl_monai.transforms import interpolation_plan

    rng = np.random.default_rng(2)
    base = ndimage.gaussian_filter(rng.standard_normal((40, 40)), 2.0)
    # kept frames 0, 3, 6, 9: 1 px per frame through gaps 0-3, 3-6, 6-9, then back 9 px in the last gap
    position = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 6, 3], float) - 4.5
    frames = np.stack([ndimage.shift(base, (p, 0.0), order=3, mode="nearest") for p in position], axis=-1)
    spec = InterpolationModelSpec(estimate="optical_flow", roi_size=(40, 40))
    plan = interpolation_plan(12, 2)
    linear = estimate_planes(spec, frames, None, plan, "linear")
    cubic = estimate_planes(spec, frames, None, plan, "cubic")
    change = {}
    for g_lin, g_cub, step in zip(linear, cubic, plan):
        change.setdefault(step.tau, []).append(np.abs(g_cub[0] - g_lin[0])[8:32, 8:32].mean())
    # gap 3-6 has neighbours at its own speed: the cubic timing stays (nearly) linear there, while the
    # gaps next to the reversal change
    assert np.mean(change[3]) < 0.2 * min(np.mean(change[0]), np.mean(change[9])), change


@pytest.mark.parametrize("timing", ["linear", "cubic"])
def test_training_samples_carry_the_guess_inference_gives(timing):
    # T = 24 is a multiple of K + 1 = 4: every gap is K + 1 long, so a training sample's equal-gap Hermite
    # timing is exactly what estimate_planes (the model's inference) computes for that gap
    from hdl_monai.engines.interpolation import InterpolationModelSpec, estimate_planes
    from hdl_monai.transforms import InterpolationSample, interpolation_plan

    _, frames = _accelerating_blob()
    frames = frames.astype(np.float32)
    K = 3
    spec = InterpolationModelSpec(estimate="optical_flow", roi_size=frames.shape[:2])
    plan = interpolation_plan(frames.shape[-1], K)
    guesses = estimate_planes(spec, frames, None, plan, timing)
    sampler = InterpolationSample(estimate="optical_flow", timing=timing)
    for step in (plan[7], plan[1]):  # a gap at the surge (frames 8-12), one in the calm
        sample = sampler(frames, tau=step.tau, K=step.K, k=step.k)
        np.testing.assert_allclose(sample["estimate"], guesses[plan.index(step)], atol=1e-5)
    if timing == "cubic":  # the surge gap is placed differently from constant speed
        linear = InterpolationSample(estimate="optical_flow")(frames, tau=plan[7].tau, K=K, k=plan[7].k)
        assert np.abs(linear["estimate"][0] - guesses[7][0]).mean() > 1e-3


def test_spline_timing_is_linear_when_the_motion_is_uniform():
    from hdl_monai.baselines.optical_flow import hermite_fraction, spline_knot_velocities

    # every knot of a uniform drift gets the drift speed, whatever the gap lengths (the last one is short)
    flows = np.ones((5, 2, 4, 4))
    flows[:, 0] *= np.array([4, 4, 4, 4, 2], float)[:, None, None] * 0.75
    flows[:, 1] = 0.0
    speeds = spline_knot_velocities(flows, [4, 4, 4, 4, 2])
    np.testing.assert_allclose(speeds[:, 0], 0.75, atol=1e-12)
    np.testing.assert_allclose(speeds[:, 1], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="one flow per gap"):
        spline_knot_velocities(flows[:3], [4, 4, 4, 4, 2])
    # so every gap is placed at constant speed
    for i, gap in enumerate([4, 4, 4, 4, 2]):
        for k in range(1, gap):
            alpha = hermite_fraction(flows[i], gap, speeds[i], speeds[(i + 1) % 5], k / gap)
            np.testing.assert_allclose(alpha, k / gap, atol=1e-12)
    # a sine-shaped cycle: the knots' speeds follow the derivative, not the gaps' means
    t = np.arange(0, 25, 5.0)
    position = np.sin(2 * np.pi * np.append(t, 25.0) / 25)
    sine = np.diff(position)[:, None, None, None] * np.ones((5, 2, 1, 1))
    want = 2 * np.pi / 25 * np.cos(2 * np.pi * t / 25)
    np.testing.assert_allclose(spline_knot_velocities(sine, [5] * 5)[:, 0, 0, 0], want, atol=0.02)


def test_sample_timing_is_checked():
    from hdl_monai.transforms import InterpolationSample, RandInterpolationSampled

    with pytest.raises(ValueError, match="for a training sample"):
        InterpolationSample(estimate="optical_flow", timing="spline")
    assert RandInterpolationSampled(estimate="optical_flow", timing="cubic").sampler.timing == "cubic"


def _surge_prior(T: int = 24) -> "TimingPrior":
    """A timing prior fitted on exact x-paths of the blob's family: surges of varying height, slightly
    varying width and a little noise (the prior learns where in the cycle the motion happens)."""
    from hdl_monai.baselines.timing_prior import TimingPrior

    rng = np.random.default_rng(3)
    t = np.arange(T)
    rows = [h * np.exp(-(((t - T / 2) / (T / 8 * w)) ** 2)) + 0.05 * rng.standard_normal(T)
            for h, w in zip(rng.uniform(-10, 10, 200), rng.uniform(0.9, 1.1, 200))]
    return TimingPrior.fit(np.stack(rows))


@pytest.mark.parametrize("K", [2, 3])
def test_learned_timing_places_frames_where_the_training_cycles_moved(K):
    from hdl_monai.engines.interpolation import InterpolationModelSpec, estimate_planes
    from hdl_monai.transforms import interpolation_plan

    _, frames = _accelerating_blob()
    spec = InterpolationModelSpec(estimate="optical_flow", roi_size=frames.shape[:2])
    plan = interpolation_plan(frames.shape[-1], K)
    inner = (slice(8, 40), slice(8, 40))
    errors = {}
    for timing in ("linear", "spline", "learned"):
        guesses = estimate_planes(spec, frames, None, plan, timing, prior=_surge_prior())
        errors[timing] = np.mean([np.mean((g[0] - frames[..., s.target])[inner] ** 2) for g, s in zip(guesses, plan)])
    # the prior knows the surge's shape: it beats the smooth spline, which beats constant speed
    assert errors["learned"] < 0.7 * errors["spline"] < 0.7 * errors["linear"], errors
    with pytest.raises(ValueError, match="needs a timing prior"):
        estimate_planes(spec, frames, None, plan, "learned")


def test_timing_prior_weights_resampling_and_file(tmp_path):
    from hdl_monai.baselines.timing_prior import TimingPrior, TimingPriorError, cycle_trajectories, fourier_resampler
    from hdl_monai.data.atomic import OverwriteError

    # band-limited resampling is exact for a low harmonic, and the identity at the same odd length
    np.testing.assert_allclose(fourier_resampler(25, 25), np.eye(25), atol=1e-12)
    s = np.arange(20) / 20
    d = np.arange(30) / 30
    np.testing.assert_allclose(fourier_resampler(20, 30) @ np.sin(2 * np.pi * 3 * s), np.sin(2 * np.pi * 3 * d), atol=1e-12)
    # trajectories: a constant flow is pure drift (nothing periodic left); a known back-and-forth path comes back
    flows = np.full((12, 2, 3, 3), 0.4)
    np.testing.assert_allclose(cycle_trajectories(flows), 0.0, atol=1e-12)
    path = np.sin(2 * np.pi * np.arange(13) / 12)
    flows = np.zeros((12, 2, 3, 3))
    flows[:, 0] = np.diff(path)[:, None, None]
    rows = cycle_trajectories(flows, np.eye(3, dtype=bool))
    assert rows.shape == (6, 12)
    np.testing.assert_allclose(rows[:3], np.tile(path[:12] - path[0], (3, 1)), atol=1e-12)
    np.testing.assert_allclose(rows[3:], 0.0)
    # a family of two harmonics is rebuilt exactly from 5 of its 12 frames (plus a common shift)
    rng = np.random.default_rng(0)
    t = np.arange(12) / 12
    basis = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * 2 * t)])
    prior = TimingPrior.fit(rng.standard_normal((100, 2)) @ basis)
    kept = [0, 3, 6, 9, 11]
    A = prior.weights(12, kept, ridge=1e-9)
    np.testing.assert_allclose(A.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(A[kept], np.eye(5), atol=1e-12)
    new = np.array([0.7, -1.3]) @ basis + 5.0
    np.testing.assert_allclose(A @ new[kept], new, atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 distinct"):
        prior.weights(12, [3, 3])
    # the file: round trip, no silent overwrite, clear errors
    path = prior.save(tmp_path / "timing_prior.json")
    again = TimingPrior.load(path)
    np.testing.assert_allclose(again.moment, prior.moment)
    assert again.trajectories == 100 and again.frames == 12
    with pytest.raises(OverwriteError, match="exists"):
        prior.save(path)
    with pytest.raises(FileNotFoundError, match="fit-timing-prior"):
        TimingPrior.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(TimingPriorError, match="bad.json: format"):
        TimingPrior.load(tmp_path / "bad.json")
    with pytest.raises(TimingPriorError, match="NaN"):
        TimingPrior.fit(np.full((3, 12), np.nan))


def test_fit_timing_prior_beside_the_model_and_its_default(tmp_path, capsys):
    import torch

    from hdl_monai.cli import main
    from hdl_monai.baselines.timing_prior import TIMING_PRIOR_FILE, TimingPrior
    from hdl_monai.data.atomic import OverwriteError
    from hdl_monai.data.case import load_case
    from hdl_monai.data.phantom import generate_phantom
    from hdl_monai.engines.interpolation import (
        InterpolationModelSpec,
        fit_timing_prior,
        load_interpolation_model,
        resolve_timing,
        save_interpolation_model,
    )
    from hdl_monai.interpolation import interpolate_case

    data = generate_phantom(tmp_path / "ph", subjects=3, slices=1, size=48, frames=12, seed=2, progress=False)
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8], "recurrence": 1}, roi_size=(32, 32),
                                  estimate="optical_flow")
    torch.manual_seed(0)
    path = save_interpolation_model(tmp_path / "model" / "model.pt", spec.build_network(), spec)
    bare = load_interpolation_model(path)
    assert bare.timing_prior is None and resolve_timing(bare, None) == "spline"
    with pytest.raises(ValueError, match=r"timing_prior.json does not exist.*fit-timing-prior"):
        resolve_timing(bare, "learned")

    written = fit_timing_prior(data, path, split="training", pixels=50, progress=False)
    assert written == path.parent / TIMING_PRIOR_FILE
    prior = TimingPrior.load(written)
    assert prior.frames == 12 and prior.cases >= 1 and prior.trajectories == 2 * 50 * prior.cases
    # the phantom's walls move: the paths are not all zero, and the matrix is a proper second moment
    assert np.trace(prior.moment) > 0 and np.all(np.linalg.eigvalsh(prior.moment) > -1e-9)
    with pytest.raises(OverwriteError, match="exists"):
        fit_timing_prior(data, path, progress=False)
    model = load_interpolation_model(path)
    assert model.timing_prior is not None and resolve_timing(model, None) == "learned"
    # by default a prior serves series of the length it was learned at; another protocol gets the spline
    assert resolve_timing(model, None, frames=12) == "learned" and resolve_timing(model, None, frames=20) == "spline"
    assert resolve_timing(model, "learned", frames=20) == "learned"
    case = load_case(next((data / "cases").iterdir()))
    twin = interpolate_case(case, 2, "hdl", model=model)
    assert twin.extra["interpolation"]["timing"] == "learned"
    np.testing.assert_array_equal(twin.magnitude[..., [0, 3, 6, 9]], case.magnitude[..., [0, 3, 6, 9]])
    assert np.isfinite(twin.magnitude).all()
    # the command writes where it is told and says so
    main(["fit_timing_prior", str(data), str(path), "--out", str(tmp_path / "p.json"), "--pixels", "20"])
    assert "timing prior written to" in capsys.readouterr().out and TimingPrior.load(tmp_path / "p.json").cases == prior.cases


def test_timing_prior_fitter_moves_a_stale_prior_aside_when_fitting_fails(tmp_path):
    from hdl_monai.baselines.timing_prior import TIMING_PRIOR_FILE
    from hdl_monai.engines.interpolation import InterpolationModelSpec, TimingPriorFitter

    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8], "recurrence": 1}, roi_size=(32, 32),
                                  estimate="optical_flow")
    out = tmp_path / "run"
    out.mkdir()
    (out / TIMING_PRIOR_FILE).write_text('{"from": "an earlier run"}')
    fitter = TimingPriorFitter(tmp_path / "no_such_dataset", out, spec)
    assert fitter() is None
    # the earlier run's prior no longer sits beside the new model, and it is kept, not deleted
    assert not (out / TIMING_PRIOR_FILE).exists()
    assert (out / (TIMING_PRIOR_FILE + ".stale")).read_text() == '{"from": "an earlier run"}'
    # nothing to move the second time; still no prior written
    assert fitter() is None and not (out / TIMING_PRIOR_FILE).exists()


def test_interpolate_flow_follows_an_offset_off_the_straight_line():
    from scipy import ndimage

    from hdl_monai.baselines.optical_flow import interpolate_flow

    x, y = np.indices((48, 48))
    blob = lambda cx, cy: np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 8.0)  # noqa: E731
    frame0, frame1 = blob(20, 20), blob(20, 30)
    flow = np.zeros((2, 48, 48))
    flow[1] = 10.0  # exact: 10 px along y
    # without an offset the middle frame sits halfway along the flow; the same offset given explicitly is identical
    straight, _ = interpolate_flow(frame0, frame1, 0.5, flow=flow)
    np.testing.assert_array_equal(straight, interpolate_flow(frame0, frame1, 0.5, flow=flow, offset=0.5 * flow)[0])
    np.testing.assert_allclose(ndimage.center_of_mass(straight), (20, 25), atol=0.05)
    # a path that bulges 6 px along x in the middle of the gap (a turn the two frames cannot show)
    offset = np.stack([np.full((48, 48), 6.0), np.full((48, 48), 5.0)])
    turned, _ = interpolate_flow(frame0, frame1, 0.5, flow=flow, offset=offset)
    np.testing.assert_allclose(ndimage.center_of_mass(turned), (26, 25), atol=0.05)
    np.testing.assert_allclose(turned, blob(26, 25), atol=1e-6)  # both input frames land on the same place
    # its blend weights: the offset's share of the flow, within [0, 1]; pixels that hardly move keep alpha_t
    from hdl_monai.baselines.optical_flow import prior_fraction

    np.testing.assert_allclose(prior_fraction(flow, offset, 0.3), 0.5)
    np.testing.assert_allclose(prior_fraction(flow, 1.4 * flow, 0.3), 1.0)
    np.testing.assert_allclose(prior_fraction(0.1 * flow / 10, offset, 0.3), 0.3)


def test_learned_timing_follows_a_turning_path():
    """x and y surge at different times of the cycle, so between kept frames the blob's path turns: the
    learned timing moves it by the predicted 2-D displacement, not along the straight line between the kept
    frames (where the spline has to put it)."""
    from scipy import ndimage

    from hdl_monai.baselines.timing_prior import TimingPrior
    from hdl_monai.engines.interpolation import InterpolationModelSpec, estimate_planes
    from hdl_monai.transforms import interpolation_plan

    T, size = 24, 48
    t = np.arange(T)
    surge = lambda centre, width=1.0: np.exp(-(((t - centre) / (T / 8 * width)) ** 2))  # noqa: E731
    rng = np.random.default_rng(1)
    base = ndimage.gaussian_filter(rng.standard_normal((size, size)), 2.0)
    xx, yy = np.indices((size, size))
    base += 3.0 * np.exp(-((xx - 22) ** 2 + (yy - 22) ** 2) / 40.0)
    path = np.stack([7.0 * surge(T / 2), 7.0 * surge(T / 2 - 3)], axis=1)  # (T, 2): y leads x by 3 frames
    frames = np.stack([ndimage.shift(base, p, order=3, mode="nearest") for p in path], axis=-1)
    rng = np.random.default_rng(3)
    rows = [h * surge(c, w) + 0.05 * rng.standard_normal(T)
            for h, c, w in zip(rng.uniform(-9, 9, 300), rng.choice([T / 2, T / 2 - 3], 300), rng.uniform(0.9, 1.1, 300))]
    prior = TimingPrior.fit(np.stack(rows))
    spec = InterpolationModelSpec(estimate="optical_flow", roi_size=(size, size))
    plan = interpolation_plan(T, 3)
    inner = (slice(8, 40), slice(8, 40))
    errors = {}
    for timing in ("spline", "learned"):
        guesses = estimate_planes(spec, frames, None, plan, timing, prior=prior)
        errors[timing] = np.mean([np.mean((g[0] - frames[..., s.target])[inner] ** 2) for g, s in zip(guesses, plan)])
    # measured: 1.1e-4 vs 1.2e-2 (projected on the straight line, the learned timing had 8.6e-3)
    assert errors["learned"] < 0.1 * errors["spline"], errors

"""Tables I and II of the phase module (``hdl_monai.evaluate_phase``, ``hdl-monai evaluate-phase``):
known-answer metrics, and the written tables against a direct recomputation, on a tiny phantom."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hdl_monai.cli import main
from hdl_monai.data import OverwriteError, load_case, load_datalist
from hdl_monai.transforms import myocardium_region
from test_pipeline import BORDER, make_tiny_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    return make_tiny_setup(tmp_path_factory.mktemp("evaluate_phase"))


def _test_case(setup):
    return load_case(setup["dataset"] / load_datalist(setup["dataset"])["test"][0]["case"])


def test_real_phase_as_synthetic_is_perfect(setup):
    from hdl_monai.evaluate_phase import case_evaluation, phase_metrics

    case = _test_case(setup)
    metrics = phase_metrics(case, case.phase)
    assert metrics["mse"] == 0.0 and metrics["msew1"] == 0.0 and metrics["msew2"] == 0.0
    assert metrics["mse_foreground"] == 0.0 and metrics["mse_myocardium"] == 0.0
    assert metrics["psnr"] == math.inf and metrics["ssim"] == pytest.approx(1.0, abs=1e-6)
    record, assessment = case_evaluation(case, case, exclude_border_px=BORDER)
    assert assessment is not None and record["velocity_error"] is None
    assert all(r == pytest.approx(1.0) for r in record["pearson_r"].values())
    assert set(record["pearson_r"]) == {"radial", "circumferential", "longitudinal", "all"}
    assert record["pearson_r_truth"]["all"] > 0.9  # the phantom's noisy phase follows its ground truth


def test_constant_error_known_answer(setup):
    """Real phase 2048 everywhere, synthetic 2048 + 204.8: the normalised error is 0.1 on every pixel."""
    from hdl_monai.evaluate_phase import phase_metrics
    from hdl_monai.transforms import foreground_mask, magnitude_scale, normalize_magnitude

    case = _test_case(setup)
    case.phase = {d: np.full(case.magnitude.shape, 2048.0, np.float32) for d in "xyz"}
    synthetic = {d: np.full(case.magnitude.shape, 2048.0 + 204.8, np.float32) for d in "xyz"}
    metrics = phase_metrics(case, synthetic, margin=5)
    w1 = np.where(myocardium_region(case.label, margin=5), 1.0, 0.1).mean()
    foreground = foreground_mask(normalize_magnitude(case.magnitude, magnitude_scale(case.magnitude))) > 0
    w2 = np.where(foreground, 1.0, 0.1).mean()
    assert metrics["mse"] == pytest.approx(0.01, rel=1e-5)
    assert metrics["msew1"] == pytest.approx(0.01 * w1, rel=1e-5)
    assert metrics["msew2"] == pytest.approx(0.01 * w2, rel=1e-5)
    assert metrics["psnr"] == pytest.approx(20 * math.log10(2.0) - 10 * math.log10(0.01), rel=1e-5)
    assert metrics["mse_foreground"] == pytest.approx(0.01, rel=1e-4)
    assert metrics["mse_myocardium"] == pytest.approx(0.01, rel=1e-4)
    # an error on the myocardium only: the myocardium MSE sees all of it, the foreground MSE a share
    myo = case.label == 1
    synthetic = {d: np.where(myo, 2048.0 + 204.8, 2048.0).astype(np.float32) for d in "xyz"}
    metrics = phase_metrics(case, synthetic, margin=5)
    assert metrics["mse_myocardium"] == pytest.approx(0.01, rel=1e-4)
    share = [(myo[..., t] & foreground[..., t]).sum() / foreground[..., t].sum() for t in range(case.frames)]
    assert metrics["mse_foreground"] == pytest.approx(0.01 * np.mean(share), rel=1e-4)


def test_evaluate_phase_command_writes_tables_that_match_a_recomputation(setup, tmp_path, capsys):
    from hdl_monai.evaluate_phase import case_evaluation, phase_metrics
    from hdl_monai.phase_synthesis import DEFAULT_WINDOW_SHIFT, synthesize_phase
    from hdl_monai.pipeline import build_twin

    out = tmp_path / "phase_eval"
    main(["evaluate-phase", str(setup["dataset"]), "--out", str(out), "--k", "0,3,6",
          "--phase_model", str(setup["phase"]), "--vanilla_model", str(setup["vanilla"]),
          "--interpolation_model", str(setup["interpolation"]), "--exclude_border_px", str(BORDER)])
    assert "written to" in capsys.readouterr().out
    case = _test_case(setup)
    for name in ("evaluate_phase.json", "evaluate_phase.md", "table1_phase_metrics.md", "table2_velocity.md",
                 "velocity_boxplots.png", f"velocity_curves_{case.case_id}.png", f"phase_examples_{case.case_id}.png"):
        assert (out / name).is_file(), name

    table1 = (out / "table1_phase_metrics.md").read_text().splitlines()
    assert table1[0] == ("| K | method | MSE x100 | MSEW1 x10 | MSEW2 x100 | PSNR (dB) | SSIM | MSE foreground x100 "
                         "| MSE myocardium x100 |")
    assert [row.split(" | ")[:2] for row in table1[2:]] == [
        [f"| {K}", method] for K in (0, 3, 6) for method in ("proposed", "vanilla")
    ]
    table2 = (out / "table2_velocity.md").read_text()
    header = table2.splitlines()[0]
    for column in ("ground truth (n = 1)", "real (n = 1)", "K=0 proposed", "K=3 vanilla", "K=6 proposed"):
        assert column in header
    assert "| radial | PSV (mm/s) |" in table2 and "| longitudinal | Mean (mm/s) |" in table2
    assert "r pooled (all directions)" in table2 and "| 3 | proposed |" in table2

    payload = json.loads((out / "evaluate_phase.json").read_text())
    assert payload["cases"] == [case.case_id] and payload["ks"] == [0, 3, 6]
    assert payload["methods"] == ["proposed", "vanilla"] and payload["schemes"]["vanilla"] == "vanilla"
    assert payload["window_shift"] == DEFAULT_WINDOW_SHIFT and isinstance(payload["artefact_warnings"], list)
    report = (out / "evaluate_phase.md").read_text()
    assert "(scheme foreground_background)" in report and "(scheme vanilla)" in report
    # the error budget: shares add up, and pixel share x region MSE adds up to the full-image MSE
    for method in ("proposed", "vanilla"):
        budget = payload["error_budget"]["3"][method]
        assert sum(v["error_share"] for v in budget.values()) == pytest.approx(1.0)
        full = sum(v["pixel_share"] * v["mse"] for v in budget.values() if v["pixel_share"] > 0)
        assert full == pytest.approx(payload["table1"]["3"][method]["mse"]["mean"], rel=1e-5)
    assert payload["background_floor"]["gaussian_draw"] > payload["background_floor"]["mean_predictor"] > 0
    # the zero-phase output: its full-image MSE is the real phase's mean square, its regions add up to it
    real = [np.asarray(case.phase[d], np.float64) / 2048 - 1 for d in "xyz"]
    zero = payload["zero_phase"]
    assert zero["mse"] == pytest.approx(np.mean([(r ** 2).mean() for r in real]), rel=1e-6)
    assert sum(v["pixel_share"] * v["mse"] for v in zero["error_budget"].values() if v["pixel_share"] > 0) == pytest.approx(
        zero["mse"], rel=1e-6)
    assert f"Zero phase (no generator: every pixel at zero velocity) scores full-image MSE x100 {100 * zero['mse']:.3f}" in (
        out / "error_budget.md").read_text()
    assert "| 0 | proposed | background |" in (out / "error_budget.md").read_text()
    assert "mean predictor" in report and "## Where the squared error lies" in report
    assert (out / "error_budget.png").stat().st_size > 0 and "![error_budget.png](error_budget.png)" in report
    # a direct recomputation of the K = 3 twin, both methods, matches the written numbers
    twin = build_twin(case, 3, setup["interpolation"], setup["phase"], seed=0)
    written = payload["per_case"][0]["K"]["3"]
    for method, phase in (("proposed", twin.phase), ("vanilla", synthesize_phase(twin, setup["vanilla"], seed=0))):
        expected = phase_metrics(case, phase)
        for metric, value in expected.items():
            assert written[method]["metrics"][metric] == pytest.approx(value, rel=1e-6), (method, metric)
            assert payload["table1"]["3"][method][metric]["mean"] == pytest.approx(value, rel=1e-6)
    record, _ = case_evaluation(case, twin, exclude_border_px=BORDER)
    for direction, r in record["pearson_r"].items():
        assert written["proposed"]["pearson_r"][direction] == pytest.approx(r, abs=1e-9)
        # one case: the pooled r is that case's r
        assert payload["pearson_r"]["3"]["proposed"]["pooled"][direction] == pytest.approx(r, abs=1e-9)
    assert payload["pearson_r_truth"]["real"]["pooled"]["all"] > 0.9
    assert payload["table2"]["real"]["radial"]["psv_mm_s"]["mean"] == pytest.approx(
        payload["per_case"][0]["real_indices"]["radial"]["psv_mm_s"])

    with pytest.raises(OverwriteError, match="exists"):
        from hdl_monai.evaluate_phase import evaluate_phase

        evaluate_phase(setup["dataset"], out, ks=(0,), phase_model=setup["phase"], progress=False)


def test_artefact_warnings_name_tissue_regions_over_the_threshold():
    from hdl_monai.evaluate_phase import ARTEFACT_GROSS_SHARE, REGIONS, artefact_warnings

    def regions(**shares):
        return {r: {"gross_share": shares.get(r, 0.0), "gross_error_share": 0.5} for r in REGIONS}

    quiet = {"0": {"proposed": regions(other_foreground=ARTEFACT_GROSS_SHARE / 2, rv_blood_pool=0.05,
                                       background=0.04)}}
    assert artefact_warnings(quiet) == []  # blood flows and air is noise: neither is checked
    loud = {"0": {"proposed": regions(other_foreground=0.008), "vanilla": regions()},
            "3": {"proposed": regions(lv_myocardium=2 * ARTEFACT_GROSS_SHARE)}}
    messages = artefact_warnings(loud)
    assert len(messages) == 2
    assert messages[0].startswith("K=0 proposed: 0.80 % of the other foreground values")
    assert messages[1].startswith("K=3 proposed: 0.20 % of the lv myocardium values") and "--window_shift" in messages[1]


def test_region_errors_add_up_to_the_image_and_land_where_the_error_is(setup):
    from hdl_monai.evaluate_phase import REGIONS, error_budget, phase_metrics, region_errors, region_masks

    case = _test_case(setup)
    myo = case.label == 1
    synthetic = {d: np.where(myo, case.phase[d] + 204.8, case.phase[d]).astype(np.float32) for d in "xyz"}
    regions = region_errors(case, synthetic)
    assert set(regions) == set(REGIONS)
    assert sum(v["pixels"] for v in regions.values()) == case.label.size  # disjoint and covering
    assert regions["lv_myocardium"]["pixels"] == int(myo.sum())
    assert regions["lv_myocardium"]["squared_error"] == pytest.approx(3 * 0.01 * myo.sum(), rel=1e-4)
    assert all(regions[r]["squared_error"] < 1e-6 for r in REGIONS if r != "lv_myocardium")
    assert all(v["gross_values"] == 0 for v in regions.values())  # 0.1 is a blur, not a gross error
    # a line of x values off by 0.9 (a generator's edge artefact) is gross, where it lies, with its size
    line = np.zeros(case.label.shape, dtype=bool)
    line[:, -2] = True
    line &= region_masks(case)["other_foreground"]
    assert line.sum() > 0
    edged = dict(synthetic, x=np.where(line, case.phase["x"] + 0.9 * 2048, synthetic["x"]).astype(np.float32))
    gross = region_errors(case, edged)
    assert gross["other_foreground"]["gross_values"] == int(line.sum())
    assert gross["other_foreground"]["gross_squared_error"] == pytest.approx(0.81 * line.sum(), rel=1e-3)
    assert sum(v["gross_values"] for v in gross.values()) == int(line.sum())
    budget = error_budget([gross])["other_foreground"]
    assert budget["gross_share"] == pytest.approx(line.sum() / (3 * gross["other_foreground"]["pixels"]))
    assert budget["gross_error_share"] == pytest.approx(1.0, abs=1e-3)  # the only error in that region
    # outside the generator's ROI (painted False) the same line is drawn noise, not a gross error
    painted = np.ones(case.label.shape[:2], dtype=bool)
    painted[:, -3:] = False
    outside = region_errors(case, edged, painted=painted)
    assert outside["other_foreground"]["gross_values"] == 0
    assert outside["other_foreground"]["squared_error"] == pytest.approx(gross["other_foreground"]["squared_error"])
    painted[:, -3:] = True
    assert region_errors(case, edged, painted=painted)["other_foreground"]["gross_values"] == int(line.sum())
    # the same error where the real tissue moves (|real| >= STILL_PHASE: flow, say) is not gross
    still_x = case.phase["x"]
    case.phase["x"] = np.where(line, 2048 + 0.3 * 2048, still_x).astype(np.float32)
    flowing = dict(synthetic, x=np.where(line, case.phase["x"] - 0.9 * 2048, synthetic["x"]).astype(np.float32))
    assert region_errors(case, flowing)["other_foreground"]["gross_values"] == 0
    case.phase["x"] = still_x
    # noise everywhere: the regions' squared errors add up to the full-image MSE
    rng = np.random.default_rng(0)
    noisy = {d: (case.phase[d] + rng.normal(0, 100, case.phase[d].shape)).astype(np.float32) for d in "xyz"}
    total = sum(v["squared_error"] for v in region_errors(case, noisy).values())
    assert total / (3 * case.label.size) == pytest.approx(phase_metrics(case, noisy)["mse"], rel=1e-4)
    # a label beyond 1-3 (a user's own) still lands in exactly one region
    case.label[:4, :4] = 4
    assert sum(v["pixels"] for v in region_errors(case, noisy).values()) == case.label.size


def test_mismatched_synthetic_phase_is_a_clear_error(setup):
    from hdl_monai.data import CaseError
    from hdl_monai.evaluate_phase import phase_metrics, region_errors

    case = _test_case(setup)
    short = {d: case.phase[d][..., :2] for d in "xyz"}
    for function in (phase_metrics, region_errors):
        with pytest.raises(CaseError, match=r"synthetic phase shape differs from the real .*x \("):
            function(case, short)
        with pytest.raises(CaseError, match=r"phase \['z'\] missing"):
            function(case, {d: case.phase[d] for d in "xy"})


def test_background_floor_known_answers(setup):
    """Constant air phase a_d: variance 0, so the mean predictor's floor is 0 and a Gaussian draw expects
    sd_d^2 + (a_d - m_d)^2; noisy air phase: the measured background MSE of a draw matches the expectation."""
    import torch

    from hdl_monai.evaluate_phase import background_floor, error_budget, region_errors
    from hdl_monai.phase_synthesis import sample_background

    case = _test_case(setup)
    stats = {"mean": {"x": 0.0, "y": 0.1, "z": -0.1}, "std": {"x": 0.05, "y": 0.05, "z": 0.2}}
    level = {"x": 0.2, "y": 0.1, "z": 0.0}
    case.phase = {d: np.full(case.magnitude.shape, 2048.0 * (1 + level[d]), np.float32) for d in "xyz"}
    floor = background_floor([case], stats)
    assert floor["mean_predictor"] == pytest.approx(0.0, abs=1e-9)
    expected = np.mean([stats["std"][d] ** 2 + (level[d] - stats["mean"][d]) ** 2 for d in "xyz"])
    assert floor["gaussian_draw"] == pytest.approx(expected, rel=1e-5)
    assert background_floor([case], None)["gaussian_draw"] is None

    rng = np.random.default_rng(1)
    real_std = 0.05
    case.phase = {d: (2048.0 * (1 + level[d] + rng.normal(0, real_std, case.magnitude.shape))).astype(np.float32)
                  for d in "xyz"}
    floor = background_floor([case], stats)
    assert floor["mean_predictor"] == pytest.approx(real_std ** 2, rel=0.05)
    phase = torch.from_numpy(np.stack([case.phase[d] for d in "xyz"])).permute(3, 0, 1, 2)  # (T, 3, X, Y)
    draw = sample_background(phase, stats, torch.Generator().manual_seed(0)).permute(1, 2, 3, 0).numpy()
    synthetic = {d: (2048.0 * (1 + draw[i])).astype(np.float32) for i, d in enumerate("xyz")}
    measured = error_budget([region_errors(case, synthetic)])["background"]["mse"]
    assert measured == pytest.approx(floor["gaussian_draw"], rel=0.05)
    assert measured > 1.5 * floor["mean_predictor"]  # a draw pays the noise at least twice here


def test_error_budget_bars_add_up_to_the_mse():
    from hdl_monai.evaluate_phase import REGIONS, plot_error_budget

    def regions(mse):
        share = dict(zip(REGIONS, (0.5, 0.2, 0.1, 0.1, 0.1)))
        return {r: {"pixel_share": share[r], "mse": m, "error_share": 0.0} for r, m in zip(REGIONS, mse)}

    budget = {"0": {"proposed": regions((0.02, 0.01, 0.004, 0.05, 0.06)),
                    "vanilla": regions((0.01, 0.01, 0.008, 0.05, 0.06))}}
    fig = plot_error_budget(budget, {"mean_predictor": 0.008})
    ax = fig.axes[0]
    for row, method in enumerate(("proposed", "vanilla")):
        widths = [b.get_width() for b in ax.patches if abs(b.get_y() + b.get_height() / 2 - row) < 1e-9]
        assert len(widths) == len(REGIONS)
        expected = 100 * sum(v["pixel_share"] * v["mse"] for v in budget["0"][method].values())
        assert sum(widths) == pytest.approx(expected)
        assert widths[0] == pytest.approx(100 * 0.5 * budget["0"][method]["background"]["mse"])
    ticks = [line.get_xdata()[0] for line in ax.lines]
    assert ticks == pytest.approx([100 * 0.5 * 0.008] * 2)  # background share x the floor, on each bar
    assert [t.get_text() for t in ax.get_yticklabels()] == ["K=0 proposed", "K=0 vanilla"]

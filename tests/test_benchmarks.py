"""Benchmark scripts: the Table I comparison pools runs only when they were scored on the same data;
the speed script runs (without timing anything in the test)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compare():
    return _load("phase_table1_compare")


def test_floor_pools_the_draw_over_runs(compare):
    floors = [("a", {"mean_predictor": 0.002, "gaussian_draw": 0.004}),
              ("b", {"mean_predictor": 0.002, "gaussian_draw": 0.006}),
              ("c", {"mean_predictor": 0.002, "gaussian_draw": None})]
    floor = compare.pooled_floor(floors)
    assert floor["mean_predictor"] == 0.002
    assert floor["gaussian_draw"] == pytest.approx(0.005)
    assert compare.pooled_floor([]) is None


def test_floor_from_other_data_is_an_error_naming_the_run(compare):
    floors = [("runs/a", {"mean_predictor": 0.002}), ("runs/b", {"mean_predictor": 0.003})]
    with pytest.raises(ValueError, match="runs/b.*runs/a"):
        compare.pooled_floor(floors)


def test_missing_evaluation_names_the_directory(compare, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        compare.read_row(tmp_path / "nowhere", "proposed", 0)


def test_phase_speed_runs_and_reports_its_device():
    speed = _load("phase_speed")
    result = speed.run([4, 8], roi=32, batch=1, d_channels=4, iterations=1, warmup=1, seed=0)
    assert result["config"]["device"] == "cpu" and result["config"]["amp"] is False
    assert result["train"]["iterations_per_s"] > 0 and result["machine"]["gpu"] is None
    assert "on the CPU" in speed.markdown(result)
    assert set(speed.PRESETS["paper"]) == set(speed.PRESETS["small"])


def _evaluation(path, mse, draw, vanilla=None):
    """A minimal evaluate_phase.json: proposed and vanilla rows at K = 0 over three cases; ``mse`` and
    ``vanilla`` are the per-case MSEs (vanilla defaults to proposed's), PSNR follows MSE."""
    mse = [mse] * 3 if np.isscalar(mse) else list(mse)
    vanilla = mse if vanilla is None else list(vanilla)
    budget = {"background": {"pixel_share": 0.4, "mse": float(np.mean(mse)), "error_share": 0.5},
              "other_foreground": {"pixel_share": 0.6, "mse": float(np.mean(mse)) / 2, "error_share": 0.5}}

    def rows(values):
        out = {key: {"mean": float(np.mean(values)), "values": values} for key in ("mse", "msew1", "msew2")}
        psnr = [10 * np.log10(4 / v) for v in values]
        out["psnr"] = {"mean": float(np.mean(psnr)), "values": psnr}
        out["ssim"] = {"mean": 0.5, "values": [0.5] * len(values)}
        return out

    payload = {
        "cases": ["a", "b", "c"],
        "table1": {"0": {"proposed": rows(mse), "vanilla": rows(vanilla)}},
        "pearson_r_truth": {"0": {m: {"pooled": {"all": 0.9}} for m in ("proposed", "vanilla")}},
        "schemes": {"proposed": "foreground_background", "vanilla": "pix2pix"},
        "error_budget": {"0": {"proposed": budget, "vanilla": budget}},
        "background_floor": {"mean_predictor": 0.002, "gaussian_draw": draw},
    }
    path.mkdir(parents=True)
    (path / "evaluate_phase.json").write_text(json.dumps(payload))
    return path


def _compare(compare, monkeypatch, out, name, runs):
    argv = ["compare", "--k", "0", "--name", name, "--title", "t", "--out", str(out)]
    for run in runs:
        argv += ["--run", *run]
    monkeypatch.setattr(sys, "argv", argv)
    compare.main()
    return json.loads((out / f"{name}.json").read_text())


def test_results_file_pools_with_new_runs(compare, tmp_path, monkeypatch):
    """A results JSON written by the script stands in for its runs: pooling it with a new seed gives the
    same table as pooling the two evaluation directories."""
    one = _evaluation(tmp_path / "eval1", 0.010, 0.004)
    two = _evaluation(tmp_path / "eval2", 0.006, 0.002)
    out = tmp_path / "results"
    first = _compare(compare, monkeypatch, out, "seed1",
                     [("proposed", "1", str(one), "proposed"), ("vanilla", "1", str(one), "vanilla")])
    direct = _compare(compare, monkeypatch, out, "direct",
                      [("proposed", "1", str(one), "proposed"), ("proposed", "2", str(two), "proposed"),
                       ("vanilla", "1", str(one), "vanilla"), ("vanilla", "2", str(two), "vanilla")])
    pooled = _compare(compare, monkeypatch, out, "pooled",
                      [("proposed", "1", str(out / "seed1.json"), "proposed"), ("proposed", "2", str(two), "proposed"),
                       ("vanilla", "1", str(out / "seed1.json"), "vanilla"), ("vanilla", "2", str(two), "vanilla")])
    assert first["per_seed"]["proposed"]["1"]["mse"] == pytest.approx(0.010)
    assert pooled["summary"] == direct["summary"]
    assert pooled["summary"]["proposed"]["mse"]["mean"] == pytest.approx(0.008)
    assert pooled["error_budget"] == direct["error_budget"]
    assert pooled["error_budget"]["background_floor"]["gaussian_draw"] == pytest.approx(0.003)


def test_results_file_without_per_run_budgets_still_pools(compare):
    """Results files written before the per-run record: the seed-1 jitter measurement's own rows and budget."""
    path = BENCHMARKS / "results" / "phase_table1_scratch_jitter_paper_background.json"
    row, scheme, budget, floor, cases = compare.read_row(path, "proposed, 1 window", 0, "1")
    assert scheme == "foreground_background"
    assert 100 * row["mse"] == pytest.approx(0.732, abs=5e-4)
    assert sum(v["pixel_share"] * v["mse"] for v in budget.values()) == pytest.approx(row["mse"], rel=1e-6)
    assert floor["mean_predictor"] > 0 and floor["gaussian_draw"] > floor["mean_predictor"]
    assert cases is None  # that file kept no per-case values


def test_results_file_errors_name_the_file_and_the_missing_run(compare, tmp_path):
    path = BENCHMARKS / "results" / "phase_table1_scratch_jitter_paper_background.json"
    with pytest.raises(KeyError, match="proposed.*no seed '2'.*'1'"):
        compare.read_row(path, "proposed, 1 window", 0, "2")
    with pytest.raises(KeyError, match="no label 'proposed'"):
        compare.read_row(path, "proposed", 0, "1")
    with pytest.raises(ValueError, match=f"{path.name}.*K = 0, not K = 3"):
        compare.read_row(path, "proposed, 1 window", 3, "1")


def test_case_by_case_wins_pair_cases_within_a_seed(compare, tmp_path, monkeypatch):
    """Seed 1: proposed better on cases a and b; seed 2: on a, b and c; pooled 5 of 6, and the results
    file keeps the cases so that pooling it again gives the same counts."""
    one = _evaluation(tmp_path / "eval1", [0.01, 0.02, 0.03], 0.004, vanilla=[0.02, 0.03, 0.01])
    two = _evaluation(tmp_path / "eval2", [0.01, 0.01, 0.01], 0.004, vanilla=[0.02, 0.02, 0.02])
    out = tmp_path / "results"
    runs = [("proposed", "1", str(one), "proposed"), ("proposed", "2", str(two), "proposed"),
            ("vanilla", "1", str(one), "vanilla"), ("vanilla", "2", str(two), "vanilla")]
    result = _compare(compare, monkeypatch, out, "paired", runs)
    mse = result["first_beats_other_cases"]["vanilla"]["mse"]
    assert mse["per_seed"] == {"1": {"wins": 2, "cases": 3}, "2": {"wins": 3, "cases": 3}}
    assert (mse["wins"], mse["cases"]) == (5, 6) and mse["sign_test_p"] == pytest.approx(14 / 64)
    psnr = result["first_beats_other_cases"]["vanilla"]["psnr"]  # higher is better: the same cases win
    assert (psnr["wins"], psnr["cases"]) == (5, 6)
    assert result["first_beats_other_cases"]["vanilla"].get("ssim") is None  # all ties: nothing to count
    assert "mse 5/6 (p 0.22)" in (out / "paired.md").read_text()
    assert result["first_beats_other_seeds"]["vanilla"]["mse"] == 1  # seed 1's means tie (0.02): not a win
    again = _compare(compare, monkeypatch, out, "again", [(r[0], r[1], str(out / "paired.json"), r[0]) for r in runs])
    assert again["first_beats_other_cases"] == result["first_beats_other_cases"]


def test_sign_test_known_values(compare):
    assert compare.sign_test(11, 12) == pytest.approx(2 * 13 / 4096)
    assert compare.sign_test(1, 12) == compare.sign_test(11, 12)
    assert compare.sign_test(3, 6) == 1.0 and compare.sign_test(0, 0) == 1.0


def test_region_budget_adds_up_to_the_full_image_mse(tmp_path):
    """The regions of each run add up to the full-image MSE recomputed directly from the synthesis, the
    zero-phase row is the real phase's mean square, and a model against itself wins no case."""
    from hdl_monai.data import load_case, load_datalist
    from hdl_monai.evaluate_phase import _normalised_phases
    from hdl_monai.phase_synthesis import synthesize_phase
    from test_pipeline import make_tiny_setup

    budget = _load("phase_region_budget")
    setup = make_tiny_setup(tmp_path / "tiny")
    runs = ["--run", "proposed", "0", str(setup["phase"]), "--run", "vanilla", "0", str(setup["vanilla"]),
            "--run", "proposed", "1", str(setup["phase"]), "--run", "copy", "1", str(setup["phase"])]
    payload = budget.main([str(setup["dataset"]), "--name", "tiny", "--out", str(tmp_path / "out"), *runs])
    assert (tmp_path / "out" / "tiny.md").is_file() and (tmp_path / "out" / "tiny.json").is_file()
    dataset = setup["dataset"]
    cases = [load_case(dataset / item["case"]) for item in load_datalist(dataset)["test"]]
    assert list(payload["per_case"]) == [c.case_id for c in cases]
    means = payload["summary"]["means"]
    for key, model in (("proposed|0", setup["phase"]), ("vanilla|0", setup["vanilla"])):
        direct = np.mean([np.mean([((f - r) ** 2).mean() for r, f in zip(*_normalised_phases(c, synthesize_phase(c, model, seed=0)))])
                          for c in cases])
        assert means[key]["full_image"] == pytest.approx(direct, rel=1e-5)
    zero = np.mean([np.mean([(r ** 2).mean() for r in _normalised_phases(c, c.phase)[0]]) for c in cases])
    assert means["zero phase"]["full_image"] == pytest.approx(zero, rel=1e-5)
    assert sum(payload["pixel_share_percent"].values()) == pytest.approx(100.0)
    assert means["proposed|0"]["lv_myocardium"] > 0 and means["vanilla|0"]["air"] != means["proposed|0"]["air"]
    copy = payload["summary"]["first_minus"]["copy"]["per_seed"]["1"]
    assert copy["full_image"] == 0 and copy["cases_won"]["full_image"] == 0  # a tie is not a win
    assert list(payload["summary"]["first_minus"]["vanilla"]["per_seed"]) == ["0"]


def test_region_budget_refuses_cases_that_are_not_phantoms(tmp_path):
    from hdl_monai.data import CaseError
    from conftest import make_case

    budget = _load("phase_region_budget")
    case = make_case()
    case.path = str(tmp_path)  # a case without phantom parameters in case.extra
    with pytest.raises(CaseError, match=f"{tmp_path}.*not a phantom case"):
        budget.case_regions(case)


def test_unwrapping_benchmark_scores_the_aliased_copies_against_the_original(tmp_path):
    """At the case's own venc nothing is aliased, so leaving the phase alone is exact; the default
    unwrapping leaves it exact too, and the report names every method it compared."""
    bench = _load("velocity_unwrapping")
    payload = bench.main(["--subjects", "1", "--slices", "1", "--size", "96", "--frames", "30", "--scales", "1,0.4",
                          "--borders", "2", "--name", "tiny", "--out", str(tmp_path)])
    assert (tmp_path / "tiny.md").is_file() and json.loads((tmp_path / "tiny.json").read_text())["cases"] == 1
    exact = payload["summary"]["1"]
    assert list(exact) == ["none", bench.PREVIOUS, "unwrapped, border 2"]
    for method in ("none", "unwrapped, border 2"):
        assert exact[method]["values_wrong_share"] == 0 and exact[method]["cases_exact"] == 1
    low = payload["summary"]["0.4"]
    assert low["unwrapped, border 2"]["values_wrong_share"] <= low["none"]["values_wrong_share"]

"""Benchmark scripts: the Table I comparison pools runs only when they were scored on the same data;
the speed script runs (without timing anything in the test)."""

import importlib.util
from pathlib import Path

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

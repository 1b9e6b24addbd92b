"""The Table I comparison script pools runs only when they were scored on the same data."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "phase_table1_compare.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("phase_table1_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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

"""`hdl-monai demo` end to end at a tiny size: every output exists and the report quotes this run."""

from __future__ import annotations

import json

import pytest

from hdl_monai.data.atomic import OverwriteError
from hdl_monai.demo import run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(out, subjects=3, slices=1, size=64, frames=20, seed=3, ks=(1, 2))
    text = report.read_text()
    for path in ("phantom/datalist.json", "velocity/summary.md", "velocity_vs_truth/comparison.json",
                 "interpolation/interpolation_metrics.json", "interpolation/metrics_vs_k.png"):
        assert (out / path).is_file(), path
    metrics = json.loads((out / "interpolation" / "interpolation_metrics.json").read_text())["results"]
    dice = metrics["2"]["linear"]["dice"]["mean"]
    assert f"{dice:.3f}" in text  # the table in the report is this run's
    pooled = json.loads((out / "velocity_vs_truth" / "comparison.json").read_text())["summary"]["pooled_pearson_r"]
    assert pooled["longitudinal"] > 0.95 and f"longitudinal {pooled['longitudinal']:.4f}" in text
    with pytest.raises(OverwriteError, match="--overwrite"):
        run_demo(out, subjects=3, slices=1, size=64, frames=20)

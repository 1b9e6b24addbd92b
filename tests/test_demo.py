"""`hdl-monai demo` end to end at a tiny size with tiny untrained models: every output exists, report.html
quotes this run's JSON results, an existing output is refused and a missing model stops the demo early.

The models are untrained (shapes and flow only): numbers are not judged here, only that the report
shows the numbers the run measured.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from hdl_monai.data.atomic import OverwriteError
from hdl_monai.demo import DemoModelError, run_demo

ROI = 32
TINY = dict(subjects=3, slices=1, size=64, frames=20, seed=3)
KS = dict(twin_ks=(0, 3), interpolation_ks=(1, 3), phase_ks=(0, 3), overlay_ks=(3,), exclude_border_px=0)


def _tiny_models(root: Path) -> dict[str, Path]:
    """An HDL interpolation model (channels (4, 8)) and a foreground-background phase model (R2U-Net (4, 8))
    with its background Gaussian and Fig. 4 histogram, saved in the bundles' formats."""
    from hdl_monai.data.phantom import generate_phantom
    from hdl_monai.engines.interpolation import InterpolationModelSpec, save_interpolation_model
    from hdl_monai.networks import R2UNet
    from hdl_monai.phase_synthesis import fit_background_stats, save_phase_model

    torch.manual_seed(0)
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8], "recurrence": 1}, roi_size=(ROI, ROI))
    interpolation = save_interpolation_model(root / "interpolation" / "model.pt", spec.build_network(), spec)
    background = generate_phantom(root / "background", subjects=3, slices=1, size=48, frames=8, seed=1, progress=False)
    stats = fit_background_stats(background, figure_path=root / "phase" / "background_histogram.png")
    config = dict(spatial_dims=2, in_channels=3, out_channels=3, channels=(4, 8), recurrence=1, out_act="tanh")
    phase = save_phase_model(root / "phase", R2UNet(**config), config, roi_size=ROI, background_stats=stats)
    return {"interpolation": interpolation, "phase": phase}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return _tiny_models(tmp_path_factory.mktemp("demo_models"))


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, models):
    out = tmp_path / "demo"
    report = run_demo(out, **TINY, **KS, interpolation_model=models["interpolation"], phase_model=models["phase"].parent,
                      progress=False)
    assert report == out / "report.html"
    html = report.read_text()
    run = json.loads((out / "demo.json").read_text())
    case = run["example_case"]
    for path in (
        "report.html", "report.md", "demo.json", "phantom/datalist.json",
        "twin/K0/twin.json", "twin/K0/compare/comparison.json", "twin/K0/compare_truth/comparison.json",
        "twin/K3/twin.json", "twin/K3/compare/comparison.json", "twin/K3/compare_truth/comparison.json",
        "interpolation/interpolation_metrics.json", "interpolation/metrics_vs_k.png",
        "phase/evaluate_phase.json", "phase/velocity_boxplots.png",
        f"phase/velocity_curves_{case}.png", f"phase/phase_examples_{case}.png",
        "figures/error_maps.png", "figures/segmentation_overlays.png", "figures/background_histogram.png",
    ):
        assert (out / path).is_file(), path
    # every figure the page shows exists, by its relative path
    for src in [s.split('"')[0] for s in html.split('<img src="')[1:]]:
        assert (out / src).is_file(), src
    # the tables are this run's JSON results
    interp = json.loads((out / "interpolation" / "interpolation_metrics.json").read_text())["results"]
    assert set(interp) == {"1", "3"} and set(interp["3"]) == {"hdl", "linear", "optical_flow"}
    for method in ("hdl", "linear"):
        dice = interp["3"][method]["dice"]
        assert f">{dice['mean']:.3f} ({dice['std']:.3f})<" in html, method
    phase = json.loads((out / "phase" / "evaluate_phase.json").read_text())
    r = phase["pearson_r"]["3"]["proposed"]["pooled"]["all"]
    assert f">{r:.3f}<" in html
    mse = phase["table1"]["0"]["proposed"]["mse"]
    assert f">{mse['mean'] * 100:.3f} ({mse['std'] * 100:.3f})<" in html
    truth = json.loads((out / "twin" / "K3" / "compare_truth" / "comparison.json").read_text())["summary"]
    assert f">{truth['pooled_pearson_r']['longitudinal']:.3f}<" in html
    # every table row has as many cells as its header (Table I once had two unlabelled columns)
    for table in re.findall(r"<table>(.*?)</table>", html, flags=re.S):
        head, body = table.split("</thead>")
        width = len(re.findall(r"<th[ >]", head))
        assert all(len(re.findall(r"<td[ >]", row)) == width for row in body.split("</tr>")[:-1]), head
    # the paper's numbers are there, labelled as the paper's
    assert "paper: HDL" in html and ">0.92<" in html and "its real data" in html
    assert f"{r:.3f}" in (out / "report.md").read_text()
    assert set(run["timings_s"]) >= {"1. phantom", "2. twin K=0", "3. evaluate interpolation", "4. evaluate phase"}
    with pytest.raises(OverwriteError, match="--overwrite"):
        run_demo(out, **TINY, interpolation_model=models["interpolation"], phase_model=models["phase"])


def test_demo_without_models_says_how_to_train(tmp_path, models):
    out = tmp_path / "demo"
    with pytest.raises(DemoModelError, match="hdl-monai train interpolation"):
        run_demo(out, **TINY, interpolation_model=tmp_path / "missing.pt", phase_model=models["phase"])
    with pytest.raises(FileNotFoundError, match="hdl-monai train phase"):
        run_demo(out, **TINY, interpolation_model=models["interpolation"], phase_model=tmp_path / "nothing")
    assert not out.exists()

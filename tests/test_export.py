"""Export of both networks: TorchScript through the real ``python -m monai.bundle ckpt_export`` (the
bundle's inference.json as config, the model file's weights through ``--key_in_ckpt``), loaded back and
compared with the eager network; ONNX through torch.onnx (dynamo) and onnxruntime where installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdl_monai.bundles import get_bundle
from hdl_monai.engines.interpolation import InterpolationModelSpec, save_interpolation_model
from hdl_monai.export import (
    checkpoint_key,
    ckpt_export_args,
    export_onnx,
    input_shape,
    load_torchscript,
    model_kind,
    network_from_model_file,
    onnx_available,
    run_onnx,
)
from hdl_monai.networks import R2UNet
from hdl_monai.phase_synthesis import save_phase_model

SIZE = 32
G_CONFIG = {"spatial_dims": 2, "in_channels": 3, "out_channels": 3, "channels": [4, 8, 16], "recurrence": 1,
            "out_act": "tanh"}  # fmt: skip
STATS = {"mean": {"x": 0.0, "y": 0.0, "z": 0.0}, "std": {"x": 0.1, "y": 0.1, "z": 0.1}}


def _randomise_batchnorm(net: torch.nn.Module) -> None:
    """Non-trivial running statistics, so eval-mode export is checked for real."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8, 16], "recurrence": 1}, roi_size=[SIZE, SIZE])
    net = spec.build_network()
    _randomise_batchnorm(net)
    interp = save_interpolation_model(root / "interp" / "model.pt", net, spec)
    g = R2UNet(**G_CONFIG)
    _randomise_batchnorm(g)
    phase = save_phase_model(root / "phase", g, G_CONFIG, SIZE, background_stats=STATS)
    return {"hdl_temporal_interpolation": interp, "hdl_phase_synthesis": phase}


def test_model_file_helpers(models):
    interp, phase = models["hdl_temporal_interpolation"], models["hdl_phase_synthesis"]
    assert (model_kind(interp), checkpoint_key(interp), input_shape(interp)) == ("interpolation", "state_dict", [1, 7, SIZE, SIZE])
    assert (model_kind(phase), checkpoint_key(phase), input_shape(phase, 4)) == ("phase", "generator", [4, 3, SIZE, SIZE])
    with pytest.raises(FileNotFoundError):
        model_kind(interp.parent / "missing.pt")


@pytest.mark.parametrize("name", ["hdl_temporal_interpolation", "hdl_phase_synthesis"])
def test_ckpt_export_cli_torchscript_matches_eager(name, models, tmp_path):
    model_path = models[name]
    ts_path = tmp_path / "model.ts"
    cmd = [sys.executable, "-m", "monai.bundle", *ckpt_export_args(get_bundle(name).root, model_path, ts_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    module, meta, extra = load_torchscript(ts_path)
    assert meta["version"] == json.loads(get_bundle(name).metadata.read_text())["version"]
    assert "network_def" in json.loads(extra["inference.json"])
    eager = network_from_model_file(model_path)
    g = torch.Generator().manual_seed(1)
    for shape in (input_shape(model_path, batch=3), [2, input_shape(model_path)[1], 2 * SIZE, SIZE]):
        x = torch.rand(shape, generator=g) * 2 - 1
        if name == "hdl_temporal_interpolation":
            x[:, 2:4] = (x[:, 2:4] > 0).float()  # masks
            x[:, 4:] = (x[:, 4:] + 1) / 2  # condition planes in [0, 1]
        with torch.no_grad():
            torch.testing.assert_close(module(x), eager(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["hdl_temporal_interpolation", "hdl_phase_synthesis"])
def test_onnx_export_matches_eager(name, models, tmp_path):
    ok, why = onnx_available()
    if not ok:
        pytest.skip(why)
    model_path = models[name]
    onnx_path = export_onnx(model_path, tmp_path / "model.onnx")
    eager = network_from_model_file(model_path)
    x = torch.rand(input_shape(model_path, batch=3), generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(run_onnx(onnx_path, x), eager(x), rtol=1e-3, atol=1e-4)

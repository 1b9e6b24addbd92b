"""The temporal-interpolation bundle (train / resume / evaluate / inference / multi-GPU config) and
model-based interpolation (``hdl_monai.engines.interpolation``), on a tiny phantom with tiny networks."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow
from monai.data import list_data_collate

from hdl_monai.data import load_case
from hdl_monai.data.loading import datalist_items
from hdl_monai.data.phantom import generate_phantom
from hdl_monai.engines.interpolation import (
    InterpolationGridSampled,
    InterpolationModelError,
    InterpolationModelSpec,
    InterpolationOutput,
    InterpolationPrepareBatch,
    PackedInterpolationLoss,
    check_checkpoint,
    interpolate_with_model,
    label_from_segmentation,
    load_interpolation_model,
    resolve_timing,
    validation_grid,
)
from hdl_monai.losses import InterpolationLoss
from hdl_monai.networks import MultiHeadMultiTailR2UNet, R2UNet
from hdl_monai.transforms import interpolation_estimate, kept_frames

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "hdl_temporal_interpolation" / "configs"
TRAIN, EVALUATE = str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")
INFERENCE, MULTI_GPU = str(CONFIGS / "inference.json"), str(CONFIGS / "multi_gpu_train.json")
FRAMES, SIZE = 12, 32
# 3 subjects x 2 slices: 2 training cases; batch_size 1 case (x 2 samples) = 2 iterations per epoch
TINY = {
    "roi_size": [SIZE, SIZE],
    "channels": [4, 8],
    "recurrence": 1,
    "batch_size": 1,
    "samples_per_case": 2,
    "progress": False,
    "device": "cpu",
    "amp": False,
}
ITERATIONS_PER_EPOCH = 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("interp") / "phantom"
    generate_phantom(out, subjects=3, slices=2, size=SIZE, frames=FRAMES, seed=3, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    """One epoch through the exact CLI: python -m monai.bundle run training --config_file ... ."""
    out = tmp_path_factory.mktemp("interp") / "run"
    overrides = []
    for key, value in TINY.items():
        if key not in ("device", "amp"):  # the CLI run keeps the config's own device / AMP choice
            overrides += [f"--{key}", json.dumps(value) if isinstance(value, list) else str(value)]
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", TRAIN,
           "--dataset_dir", str(dataset), "--output_dir", str(out), "--max_epochs", "1", *overrides]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _workflow(config_file, **override) -> ConfigWorkflow:
    meta = str(CONFIGS / "metadata.json")
    wf = ConfigWorkflow(config_file=config_file, meta_file=meta, logging_file=False, workflow_type=None, **override)
    wf.initialize()
    return wf


# ------------------------------------------------------------------------------------------ engine pieces


def test_prepare_batch_packs_input_and_target_and_loss_unpacks_them():
    g = torch.Generator().manual_seed(0)
    batch = {
        "magnitude_pair": torch.rand(3, 2, 8, 8, generator=g),
        "mask_pair": (torch.rand(3, 2, 8, 8, generator=g) > 0.5).float(),
        "condition": torch.rand(3, 3, 8, 8, generator=g),
        "magnitude_target": torch.rand(3, 1, 8, 8, generator=g),
        "mask_target": (torch.rand(3, 1, 8, 8, generator=g) > 0.5).float(),
        "w1": torch.rand(3, 1, 8, 8, generator=g),
        "w2": torch.rand(3, 1, 8, 8, generator=g),
    }
    inputs, target = InterpolationPrepareBatch()(batch, "cpu")
    assert inputs.shape == (3, 7, 8, 8) and target.shape == (3, 4, 8, 8)
    assert torch.equal(inputs[:, 4:], batch["condition"])
    pred = torch.randn(3, 2, 8, 8, generator=g)
    expected = InterpolationLoss()(pred, target[:, :2], batch["w1"], batch["w2"])
    assert torch.allclose(PackedInterpolationLoss()(pred, target), expected)
    with pytest.raises(ValueError, match="packed target needs 4 channels"):
        PackedInterpolationLoss()(pred, target[:, :3])
    output = {"pred": pred, "label": target}
    p, y, w = InterpolationOutput("w2")(output)
    assert torch.equal(w, batch["w2"]) and torch.equal(y, batch["magnitude_target"])
    mask, truth = InterpolationOutput("mask")([{"pred": a, "label": b} for a, b in zip(pred, target)])
    assert torch.equal(mask, (torch.sigmoid(pred[:, 1:2]) > 0.5).float()) and torch.equal(truth, batch["mask_target"])
    assert InterpolationPrepareBatch()({k: batch[k] for k in ("magnitude_pair", "mask_pair", "condition")})[1] is None


def test_validation_grid_is_fixed_and_skips_K_that_do_not_fit():
    assert validation_grid(12, (1, 3, 6), 2) == [(0, 1, 1), (6, 1, 1), (0, 3, 2), (6, 3, 2)]
    with pytest.raises(ValueError, match="does not fit"):
        validation_grid(6, (3,), 2)
    T = 12
    data = {"magnitude": np.random.rand(16, 16, T).astype(np.float32), "label": np.zeros((16, 16, T), np.uint8)}
    samples = InterpolationGridSampled(Ks=(1, 2), taus_per_K=3)(data)
    assert [(s["tau"], s["K"], s["k"]) for s in samples] == [(0, 1, 1), (4, 1, 1), (8, 1, 1), (0, 2, 1), (4, 2, 1), (8, 2, 1)]
    assert "magnitude" not in samples[0] and samples[0]["condition"].shape == (3, 16, 16)


def test_label_from_segmentation_fills_the_cavity_and_keeps_the_largest_ring():
    x, y = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    r = np.hypot(x - 15.5, y - 15.5)
    prob = ((r > 5) & (r < 9)).astype(float)
    prob[0:2, 0:2] = 0.9  # a speck to be dropped
    label = label_from_segmentation(prob)
    assert set(np.unique(label)) == {0, 1, 2}
    assert (label[r <= 4.5] == 2).all() and (label[(r > 5.5) & (r < 8.5)] == 1).all() and label[0, 0] == 0
    assert label_from_segmentation(prob, largest_component=False)[0, 0] == 1


# ------------------------------------------------------------------------------------------ bundle


def test_cli_training_writes_checkpoints_and_the_model_file(trained):
    for name in ("model.pt", "model_best.pt", "checkpoints/checkpoint_epoch=1.pt", "checkpoints/checkpoint_final.pt"):
        assert (trained / name).is_file(), name
    assert list((trained / "tensorboard").iterdir())
    model = load_interpolation_model(trained / "model.pt")
    assert isinstance(model.network, MultiHeadMultiTailR2UNet)
    assert model.spec.method == "hdl" and model.spec.roi_size == [SIZE, SIZE] and model.spec.K_range == [1, 6]
    assert model.spec.network_kwargs["channels"] == [4, 8]
    raw = torch.load(trained / "model.pt", weights_only=True)
    assert raw["format"] == "hdl_monai.interpolation_model" and "state_dict" in raw and "spec" in raw


def test_resume_continues_epoch_iteration_and_optimizer_state(trained, dataset, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    wf = _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(out), max_epochs=2, resume=True, **TINY)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert wf.parser.get_parsed_content("ckpt_path").endswith("checkpoint_final.pt")
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append((e.state.epoch, e.state.iteration)))
    wf.run()
    assert seen[0] == (2, ITERATIONS_PER_EPOCH + 1)  # continues, not restarts
    assert trainer.state.epoch == 2 and trainer.state.iteration == 2 * ITERATIONS_PER_EPOCH
    optimizer = wf.parser.get_parsed_content("optimizer")
    steps = {int(s["step"]) for s in optimizer.state.values()}
    assert steps == {2 * ITERATIONS_PER_EPOCH}  # Adam moments restored, then stepped on
    scheduler = wf.parser.get_parsed_content("lr_scheduler")
    assert scheduler.last_epoch == 2  # the cosine schedule continued from the checkpoint's epoch 1
    assert optimizer.param_groups[0]["lr"] == pytest.approx(scheduler.get_last_lr()[0])
    assert (out / "checkpoints" / "checkpoint_epoch=2.pt").is_file()


def test_resume_with_another_network_gives_a_clear_error(trained, dataset, tmp_path):
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8, 16], "recurrence": 1, "dropout": 0.0},
                                  roi_size=SIZE)
    ckpt = trained / "checkpoints" / "checkpoint_final.pt"
    with pytest.raises(InterpolationModelError, match=r"was trained for channels=\[4, 8\], config says channels=\[4, 8, 16\]"):
        check_checkpoint(ckpt, spec)
    assert check_checkpoint(tmp_path / "absent.pt", spec) is False
    with pytest.raises(RuntimeError) as err:  # the config parser wraps the error of the initialize expression
        _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(trained), resume=True, **{**TINY, "channels": [4, 8, 16]})
    assert "checkpoint_final.pt was trained for channels=[4, 8], config says channels=[4, 8, 16]" in str(err.value.__cause__)


def test_r2unet_switch_trains_the_plain_network(dataset, tmp_path):
    wf = _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(tmp_path / "r2"), method="r2unet", max_epochs=1,
                   K_range=[1, 2], **TINY)
    net = wf.parser.get_parsed_content("network_def")
    assert isinstance(net, R2UNet) and not isinstance(net, MultiHeadMultiTailR2UNet)
    assert net(torch.zeros(1, 7, SIZE, SIZE)).shape == (1, 2, SIZE, SIZE)
    wf.run()
    model = load_interpolation_model(tmp_path / "r2" / "model.pt")
    assert model.spec.method == "r2unet" and isinstance(model.network, R2UNet)
    assert not (tmp_path / "r2" / "timing_prior.json").exists()  # no flow guess: nothing to time
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    with pytest.raises(ValueError, match=r"K=3 outside the range the model was trained for"):
        interpolate_with_model(case, 3, model)
    magnitude, label = interpolate_with_model(case, 2, model)
    assert magnitude.shape == case.magnitude.shape


def test_hybrid_estimate_switch_starts_at_the_flow_guess_and_trains(dataset, tmp_path):
    wf = _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(tmp_path / "hyb"), estimate="optical_flow",
                   max_epochs=1, **TINY)
    net = wf.parser.get_parsed_content("network_def")
    assert isinstance(net, MultiHeadMultiTailR2UNet) and net.in_channels == 9
    samples = wf.parser.get_parsed_content("validate#dataset")[0]
    x, _ = wf.parser.get_parsed_content("prepare_batch")(list_data_collate(samples), "cpu")
    guess = np.stack([s["estimate"] for s in samples])
    np.testing.assert_array_equal(x[:, 7:].numpy(), guess)
    s0 = samples[0]  # the guess is Horn-Schunck between the pair at k / (K + 1)
    alpha = s0["k"] / (s0["K"] + 1)
    expected = interpolation_estimate("optical_flow", s0["magnitude_pair"][0], s0["magnitude_pair"][1], alpha,
                                      s0["mask_pair"][0], s0["mask_pair"][1])
    np.testing.assert_allclose(guess[0], expected, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x)[:, :1], x[:, 7:8])  # untrained: the flow guess
    wf.run()
    model = load_interpolation_model(tmp_path / "hyb" / "model.pt")
    assert model.spec.estimate == "optical_flow" and model.spec.in_channels == 9
    # training ends by fitting the timing prior beside the model, so its default timing is the learned one
    assert (tmp_path / "hyb" / "timing_prior.json").is_file() and model.timing_prior is not None
    assert model.timing_prior.frames == FRAMES and resolve_timing(model, None) == "learned"
    with pytest.raises(InterpolationModelError, match=r"estimate='optical_flow', config says estimate=None"):
        load_interpolation_model(tmp_path / "hyb" / "model.pt", expect={"estimate": None})
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    magnitude, label = interpolate_with_model(case, 2, model)
    kept = kept_frames(FRAMES, 2)
    np.testing.assert_array_equal(magnitude[..., kept], case.magnitude[..., kept])
    assert np.isfinite(magnitude).all() and set(np.unique(label)) <= {0, 1, 2, 3}


def test_train_timing_reaches_the_training_and_validation_samplers(dataset, tmp_path):
    wf = _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(tmp_path / "cub"), estimate="optical_flow",
                   train_timing="cubic", max_epochs=1, **TINY)
    assert wf.parser.get_parsed_content("train#sampling").sampler.timing == "cubic"
    assert wf.parser.get_parsed_content("validate#sampling").sampler.timing == "cubic"
    s0 = wf.parser.get_parsed_content("validate#dataset")[0][0]
    linear = interpolation_estimate("optical_flow", s0["magnitude_pair"][0], s0["magnitude_pair"][1],
                                    s0["k"] / (s0["K"] + 1), s0["mask_pair"][0], s0["mask_pair"][1])
    assert np.abs(np.asarray(s0["estimate"]) - linear).max() > 0  # placed by the Hermite timing instead


def test_specs_written_before_the_estimate_setting_read_as_none():
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8]})
    old = spec.to_dict()
    del old["estimate"]
    assert InterpolationModelSpec.from_dict(old).estimate is None and spec.in_channels == 7
    with pytest.raises(ValueError, match="estimate must be None or one of"):
        InterpolationModelSpec(estimate="farneback")


def test_evaluate_json_layers_over_train_json_and_writes_metrics(trained, dataset):
    wf = _workflow([TRAIN, EVALUATE], dataset_dir=str(dataset), output_dir=str(trained), device="cpu", amp=False)
    wf.run()
    payload = json.loads((trained / "eval" / "metrics_test.json").read_text())
    assert set(payload["metrics"]) == {"val_psnr", "val_ssim", "val_mse", "val_msew1", "val_msew2", "val_dice"}
    # 2 test cases; T = 12: K = 1..5 fit, 4 taus each
    assert payload["samples"] == 2 * 5 * 4 and payload["split"] == "test"


def test_inference_json_writes_interpolated_cases(trained, dataset, tmp_path):
    out = tmp_path / "interpolated"
    wf = _workflow(INFERENCE, dataset_dir=str(dataset), output_dir=str(out), model_path=str(trained / "model.pt"), K=2,
                   splits=["test"], device="cpu")
    wf.run()
    case_id = Path(datalist_items(dataset, "test")[0]["case"]).name
    rebuilt = load_case(out / "cases" / case_id)
    assert rebuilt.extra["interpolation"]["K"] == 2 and rebuilt.source == "interpolation-hdl"
    assert (out / "datalist.json").is_file()


# ------------------------------------------------------------------------------------------ inference


def test_interpolate_with_model_keeps_kept_frames_and_labels(trained, dataset):
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    model = load_interpolation_model(trained / "model.pt")
    K = 2
    magnitude, label = interpolate_with_model(case, K, trained / "model.pt")
    assert magnitude.shape == case.magnitude.shape and magnitude.dtype == np.float32
    assert label.shape == case.label.shape and label.dtype == np.uint8
    kept = kept_frames(FRAMES, K)
    missing = [t for t in range(FRAMES) if t not in kept]
    np.testing.assert_array_equal(magnitude[..., kept], case.magnitude[..., kept])
    np.testing.assert_array_equal(label[..., kept], case.label[..., kept])
    assert set(np.unique(label[..., missing])) <= {0, 1, 2}
    assert np.isfinite(magnitude).all() and magnitude.min() >= 0
    # batching does not change predictions; the non-kept input frames are never read
    broken = load_case(datalist_items(dataset, "test")[0]["case"])
    broken.magnitude[..., missing] = -1e6
    broken.label[..., missing] = 3
    mag1, lab1 = interpolate_with_model(broken, K, model, batch_size=1)
    np.testing.assert_allclose(mag1, magnitude, rtol=1e-4, atol=1e-2)
    np.testing.assert_array_equal(lab1, label)


def test_model_mismatch_and_bad_K_raise_clear_errors(trained, dataset, tmp_path):
    path = trained / "model.pt"
    with pytest.raises(InterpolationModelError, match=rf"checkpoint {path} was trained for method='hdl', config says method='r2unet'"):
        load_interpolation_model(path, expect={"method": "r2unet"})
    with pytest.raises(InterpolationModelError, match=r"roi_size=\[32, 32\], config says roi_size=\[64, 64\]"):
        load_interpolation_model(path, expect={"roi_size": [64, 64]})
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": torch.zeros(1)}, bogus)
    with pytest.raises(InterpolationModelError, match="not an hdl-monai interpolation model"):
        load_interpolation_model(bogus)
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    with pytest.raises(ValueError, match=r"K=6 does not fit a series of T=12 frames"):
        interpolate_with_model(case, 6, path)
    with pytest.raises(ValueError, match="does not fit"):
        interpolate_with_model(case, 0, path)


# ------------------------------------------------------------------------------------------ multi-GPU config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_gpu_config_builds_ddp_and_runs_one_process_with_gloo(dataset, tmp_path, monkeypatch):
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "WORLD_SIZE": "1",
                       "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    overrides = {k: v for k, v in TINY.items() if k != "device"}
    wf = _workflow([TRAIN, MULTI_GPU], dataset_dir=str(dataset), output_dir=str(tmp_path / "ddp"), max_epochs=1, **overrides)
    try:
        assert isinstance(wf.parser.get_parsed_content("network"), torch.nn.parallel.DistributedDataParallel)
        wf.run()
        assert load_interpolation_model(tmp_path / "ddp" / "model.pt").spec.network_kwargs["channels"] == [4, 8]
    finally:
        wf.finalize()

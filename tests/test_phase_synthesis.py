"""Phase synthesis: pix2pix trainer, foreground-background scheme, saved model, synthesize_phase, bundle."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.transforms import Compose

from hdl_monai.data.case import CaseError, load_case
from hdl_monai.data.loading import LoadCased, datalist_items
from hdl_monai.data.phantom import generate_phantom
from hdl_monai.engines.pix2pix import (
    Pix2PixTrainer,
    build_patch_discriminator,
    checkpoint_dict,
    patch_logits,
    paints_whole_image,
    phase_l1_loss,
)
from hdl_monai.networks.r2unet import R2UNet
from hdl_monai.phase_synthesis import (
    ForegroundBackgroundInferer,
    PhaseFrameSamplesd,
    composite,
    fit_background_stats,
    generator_roi,
    load_background_stats,
    load_phase_model,
    sample_background,
    save_phase_model,
    synthesize_phase,
)
from hdl_monai.transforms.array import (
    PhaseSample,
    ROIWindow,
    cycle_planes,
    jitter_crop_size,
    motion_planes,
    window_offsets,
)
from hdl_monai.velocity.assessment import assess_velocity
from hdl_monai.transforms.dictionary import (
    CropLVROId,
    MotionPlanesd,
    NormalizeMagnituded,
    NormalizePhased,
    RandROIWindowd,
    ROIWindowd,
    WeightMapsd,
)
from conftest import make_case

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundle" / "hdl_phase_synthesis" / "configs"
ROI = 32
G_CONFIG = {"spatial_dims": 2, "in_channels": 3, "out_channels": 3, "channels": [4, 8], "recurrence": 2, "out_act": "tanh"}
PAPER_STATS = {"mean": {d: 0.034 for d in "xyz"}, "std": {d: 0.034 for d in "xyz"}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phase") / "phantom"
    return generate_phantom(out, subjects=3, slices=1, size=40, frames=12, seed=3, progress=False)


@pytest.fixture(scope="module")
def batch(dataset) -> dict[str, torch.Tensor]:
    """Four frames of one training case, preprocessed as in the bundle, collated."""
    pipeline = Compose(
        [
            LoadCased(phase=True),
            CropLVROId(keys=["magnitude", "phase_x", "phase_y", "phase_z", "label"], roi_size=ROI),
            NormalizeMagnituded("magnitude"),
            NormalizePhased(["phase_x", "phase_y", "phase_z"]),
            WeightMapsd(),
            PhaseFrameSamplesd(stride=3),
        ]
    )
    samples = pipeline(datalist_items(dataset, "training")[0])
    keys = ("magnitude_triplet", "phase", "w1", "w2", "foreground")
    return {k: torch.stack([torch.as_tensor(s[k], dtype=torch.float32) for s in samples]) for k in keys}


def _trainer(batch, steps=1, scheme="foreground_background", seed=0, lr=0.002, **kwargs) -> Pix2PixTrainer:
    torch.manual_seed(seed)
    G = R2UNet(**G_CONFIG)
    D = build_patch_discriminator(channels=4)
    return Pix2PixTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=[batch] * steps,
        generator=G,
        discriminator=D,
        g_optimizer=torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999)),
        d_optimizer=torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)),
        scheme=scheme,
        **kwargs,
    )


def _l1(trainer, batch, foreground=True) -> float:
    with torch.no_grad():
        fake = trainer.generator(batch["magnitude_triplet"])
        fg = batch["foreground"] if foreground else None
        return float(phase_l1_loss(fake, batch["phase"], batch["w1"], batch["w2"], fg))


def test_discriminator_scores_a_16x16_grid_at_256():
    D = build_patch_discriminator(channels=2)
    assert patch_logits(D(torch.zeros(1, 6, 256, 256))).shape == (1, 1, 16, 16)
    assert patch_logits(D(torch.zeros(1, 6, 128, 128))).shape == (1, 1, 8, 8)


def test_training_updates_both_networks_and_lowers_l1(batch):
    trainer = _trainer(batch, steps=15)
    g0 = [p.detach().clone() for p in trainer.generator.parameters()]
    d0 = [p.detach().clone() for p in trainer.discriminator.parameters()]
    before = _l1(trainer, batch)
    trainer.run()
    after = _l1(trainer, batch)
    assert trainer.state.iteration == 15
    assert any(not torch.equal(a, b) for a, b in zip(g0, trainer.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, trainer.discriminator.parameters()))
    assert after < 0.8 * before, (before, after)
    out = trainer.state.output
    assert {"g_loss", "d_loss", "l1", "adv", "loss"} <= set(out)
    assert all(torch.isfinite(out[k]) for k in ("g_loss", "d_loss", "l1"))
    assert torch.allclose(out["g_loss"], out["adv"] + 100.0 * out["l1"])


@pytest.mark.parametrize("scheme", ["foreground_background", "vanilla"])
def test_scheme_decides_where_l1_looks(batch, scheme):
    seen = []

    def spy(pred, target, w1, w2):
        seen.append((w1.detach(), w2.detach()))
        return (w1 * (pred - target).abs()).mean() + (w2 * (pred - target).abs()).mean()

    trainer = _trainer(batch, steps=2, scheme=scheme, l1_loss=spy)
    trainer.run()
    background = batch["foreground"] == 0
    assert background.any() and len(seen) == 2
    w1, w2 = seen[0]
    if scheme == "vanilla":  # whole image: background still weighted 0.1
        assert torch.allclose(w2[background], torch.tensor(0.1)) and torch.all(w1[background] > 0)
    else:  # foreground only
        assert torch.all(w1[background] == 0) and torch.all(w2[background] == 0)
    assert torch.isfinite(trainer.state.output["g_loss"])


def test_pix2pix_scheme_is_plain_l1_on_the_whole_image(batch):
    """The paper's vanilla pix2pix: no weight maps, no split; L1 = mean |fake - phase| over every pixel."""
    called, seen_by_d = [], []

    def spy(pred, target, w1, w2):
        called.append(True)
        return (pred - target).abs().mean()

    trainer = _trainer(batch, steps=1, scheme="pix2pix", l1_loss=spy)
    discriminate = trainer.discriminate

    def watch(phase, condition, foreground):
        seen_by_d.append(foreground)
        return discriminate(phase, condition, foreground)

    trainer.discriminate = watch
    trainer.run()
    out = trainer.state.output
    assert not called  # the weighted MAE is not used
    assert torch.allclose(out["l1"], (out["pred"] - out["label"]).abs().mean())
    assert seen_by_d and all(fg is None for fg in seen_by_d)  # D sees the background too
    background = batch["foreground"] == 0
    fake = torch.rand_like(out["pred"])
    assert torch.equal(ForegroundBackgroundInferer(None, scheme="pix2pix")(batch["magnitude_triplet"], lambda x: fake), fake)
    assert background.any() and paints_whole_image("pix2pix") and not paints_whole_image("foreground_background")


def test_background_stats_fit_save_reload(dataset, tmp_path):
    stats = fit_background_stats(
        dataset, json_path=tmp_path / "background_stats.json", figure_path=tmp_path / "hist.png"
    )
    assert (tmp_path / "hist.png").stat().st_size > 1000
    assert load_background_stats(tmp_path) == stats  # identical after the JSON round trip
    assert stats["cases"] == 1 and stats["pixels"] > 0
    assert set(stats["mean"]) == set(stats["std"]) == {"x", "y", "z"}
    assert sum(stats["histogram"]["counts"]["x"]) == stats["pixels"]

    # known answer: background phase drawn from N(0.034, 0.034) (normalised) is recovered
    case = make_case(size=32, frames=8)
    rng = np.random.default_rng(1)
    background = np.zeros(case.magnitude.shape, dtype=bool)
    background[:6] = True
    case.magnitude[background] = 0.0
    for d in "xyz":
        values = (rng.normal(0.034, 0.034, size=int(background.sum())) + 1.0) * 2048.0
        case.phase[d][background] = values.astype(np.float32)
    known = fit_background_stats([case])
    assert known["pixels"] == int(background.sum())
    for d in "xyz":
        assert known["mean"][d] == pytest.approx(0.034, abs=0.003)
        assert known["std"][d] == pytest.approx(0.034, rel=0.05)


def test_composite_keeps_generator_pixels_and_fills_noise():
    generator = torch.Generator().manual_seed(0)
    fake = torch.rand(4, 3, 48, 48, generator=generator) * 2 - 1
    foreground = (torch.rand(4, 1, 48, 48, generator=generator) > 0.5).float()
    stats = {"mean": {"x": 0.034, "y": -0.2, "z": 0.1}, "std": {"x": 0.034, "y": 0.05, "z": 0.02}}
    out = composite(fake, foreground, sample_background(fake, stats, torch.Generator().manual_seed(1)))
    fg = foreground.expand_as(fake).bool()
    assert torch.equal(out[fg], fake[fg])
    for c, d in enumerate("xyz"):
        noise = out[:, c][~fg[:, c]]
        n = noise.numel()
        assert abs(float(noise.mean()) - stats["mean"][d]) < 4 * stats["std"][d] / n**0.5
        assert float(noise.std()) == pytest.approx(stats["std"][d], rel=0.05)

    # the inferer: the condition's middle frame decides the foreground; vanilla returns the raw output
    magnitude = torch.where(foreground > 0, 0.5, -1.0).repeat(1, 3, 1, 1)
    net = lambda x: fake  # noqa: E731
    out = ForegroundBackgroundInferer(stats, seed=2)(magnitude, net)
    assert torch.equal(out[fg], fake[fg]) and not torch.equal(out[~fg], fake[~fg])
    assert torch.equal(ForegroundBackgroundInferer(stats, scheme="vanilla")(magnitude, net), fake)


def test_resume_restores_networks_optimisers_and_iteration(batch, tmp_path):
    first = _trainer(batch, steps=3)
    CheckpointSaver(str(tmp_path), checkpoint_dict(first), save_final=True, final_filename="last.pt").attach(first)
    first.run()
    second = _trainer(batch, steps=3, seed=1)
    second.state.max_epochs = 2
    loader = CheckpointLoader(str(tmp_path / "last.pt"), checkpoint_dict(second))
    loader(second)
    assert second.state.iteration == 3 and second.state.epoch == 1
    for name in ("g_optimizer", "d_optimizer"):
        want, got = getattr(first, name).state_dict(), getattr(second, name).state_dict()
        assert want["param_groups"] == got["param_groups"]
        assert len(want["state"]) == len(got["state"]) > 0
        for key in want["state"]:
            for field, value in want["state"][key].items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(got["state"][key][field]))
    for name in ("generator", "discriminator"):
        for a, b in zip(getattr(first, name).state_dict().values(), getattr(second, name).state_dict().values()):
            assert torch.equal(a, b)
    loader.attach(second)
    second.run()  # continues with epoch 2
    assert second.state.iteration == 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, dataset) -> Path:
    out = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    save_phase_model(out, R2UNet(**G_CONFIG), G_CONFIG, ROI, background_stats={**PAPER_STATS, "pixels": 1})
    return out


def test_synthesize_phase_shapes_range_and_foreground(dataset, model_dir):
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    out = synthesize_phase(case, model_dir, seed=0)
    assert set(out) == {"x", "y", "z"}
    for d in "xyz":
        assert out[d].shape == case.magnitude.shape and out[d].dtype == np.float32
        assert out[d].min() >= 0 and out[d].max() <= 4096
    again = synthesize_phase(case, model_dir, seed=0)
    assert all(np.array_equal(out[d], again[d]) for d in "xyz")
    # the image corner lies outside the 32-pixel ROI of a 40-pixel image around the LV: noise there
    corner = (out["x"][:2, :2] / 2048.0 - 1.0).ravel()
    assert abs(corner.mean() - 0.034) < 0.05


def test_synthesize_phase_errors(dataset, model_dir, tmp_path):
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    case.label = None
    with pytest.raises(CaseError, match=str(case.path)):
        synthesize_phase(case, model_dir)
    bad = dict(G_CONFIG, channels=[4, 8, 16])
    save_phase_model(tmp_path, R2UNet(**G_CONFIG), bad, ROI, background_stats={**PAPER_STATS})
    with pytest.raises(ValueError, match="do not match"):
        load_phase_model(tmp_path)


class _PointwiseGenerator(torch.nn.Module):
    """A stand-in generator whose phase at a pixel depends on that pixel's M_t alone (so every window agrees
    on it), plus, with ``edge_line``, a value of 0.9 painted on its window's last three rows in y."""

    def __init__(self, edge_line: bool = False):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.edge_line = edge_line

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0.5 * torch.tanh(x[:, 1:2]).repeat(1, 3, 1, 1)
        if self.edge_line:
            out[..., -3:] = 0.9
        return out


def _roi_foreground(case, model):
    """(X, Y, T) mask of the ROI pixels synthesize_phase takes from the generator, and the ROI box."""
    from hdl_monai.transforms.array import foreground_mask, lv_center, magnitude_scale, normalize_magnitude, roi_box

    box = roi_box(lv_center(case.label), model.roi_size, case.magnitude.shape[:2])
    inside = generator_roi(case, model)
    assert inside.shape == case.magnitude.shape[:2]
    assert inside[max(box.start[0], 0) : box.end[0], max(box.start[1], 0) : box.end[1]].all()
    assert inside.sum() == (min(box.end[0], 40) - max(box.start[0], 0)) * (min(box.end[1], 40) - max(box.start[1], 0))
    m = normalize_magnitude(case.magnitude, magnitude_scale(case.magnitude, model.magnitude_percentile))
    return inside[..., None] & (foreground_mask(m, model.threshold) > 0.5), box


def test_window_blend_equals_one_window_where_windows_agree(dataset, model_dir):
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    model = load_phase_model(model_dir)
    model.generator = _PointwiseGenerator()
    keep, _ = _roi_foreground(case, model)
    one = synthesize_phase(case, model, seed=0, window_shift=0)
    four = synthesize_phase(case, model, seed=0, window_shift=4)
    assert keep.sum() > 500
    for d in "xyz":
        # the ROI's foreground: the same values; everywhere else: the same seeded noise
        np.testing.assert_allclose(four[d][keep], one[d][keep], atol=2048 * 1e-5)
        assert np.array_equal(four[d][~keep], one[d][~keep])


def test_window_blend_keeps_a_window_edge_artefact_out(dataset, model_dir):
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    model = load_phase_model(model_dir)
    model.generator = _PointwiseGenerator()
    clean = synthesize_phase(case, model, window_shift=0)
    model.generator = _PointwiseGenerator(edge_line=True)
    keep, box = _roi_foreground(case, model)
    edge = np.zeros_like(keep)
    edge[:, box.end[1] - 3 : box.end[1]] = True  # the ROI's last three rows in y
    edge &= keep
    assert edge.sum() > 20
    one = synthesize_phase(case, model, window_shift=0)
    four = synthesize_phase(case, model, window_shift=4)
    for d in "xyz":
        err_one = np.abs(one[d] - clean[d]) / 2048.0
        err_four = np.abs(four[d] - clean[d]) / 2048.0
        assert err_one[edge].min() > 0.3  # one window: the line is in the output
        assert err_four[keep].max() < 0.02  # four windows: it lands outside the ROI or under a ~1 % weight


def test_window_shift_must_fit_the_roi(dataset, model_dir):
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    for bad in (-1, ROI // 2):
        with pytest.raises(ValueError, match="window_shift"):
            synthesize_phase(case, model_dir, window_shift=bad)


def test_training_windows_are_the_windows_synthesis_blends(dataset):
    """roi_jitter training: each window cut from the grown crop (and its motion planes) is exactly the
    crop of the ROI moved by that offset, planes computed on that crop alone, as synthesize_phase runs it."""
    from hdl_monai.transforms.array import RoiBox, crop_roi, lv_center, roi_box

    jitter, keys = 3, ["magnitude", "phase_x", "label"]
    item = LoadCased(phase=True)(datalist_items(dataset, "test")[0])
    grown = Compose(
        [
            CropLVROId(keys=keys, roi_size=jitter_crop_size(ROI, jitter), pad_value=["min", 2048.0, "min"]),
            MotionPlanesd(window_size=ROI, jitter=jitter),
        ]
    )(item)
    assert grown["motion_windows"].shape == (5, 2, ROI, ROI, item["magnitude"].shape[-1])
    box = roi_box(lv_center(item["label"]), (ROI, ROI), item["label"].shape[:2])
    args = (item["pixel_spacing_mm"], float(item["rr_interval_ms"]), item["venc_cm_s"])
    assert window_offsets(jitter)[0] == (0, 0) and sorted(window_offsets(jitter)[1:]) == [(-3, -3), (-3, 3), (3, -3), (3, 3)]
    for index, (dx, dy) in enumerate(window_offsets(jitter)):
        window = ROIWindowd(keys, ROI, jitter, index=index)(grown)
        moved = RoiBox((box.start[0] + dx, box.start[1] + dy), (box.end[0] + dx, box.end[1] + dy), box.spatial_shape)
        for key, pad in zip(keys, ("min", 2048.0, "min")):
            assert np.array_equal(window[key], crop_roi(item[key], moved, pad)), (index, key)
        direct = motion_planes(crop_roi(item["magnitude"], moved, "min"), *args)
        np.testing.assert_allclose(window["motion"], direct, rtol=1e-6, atol=1e-7)
        assert "motion_windows" not in window
    # jitter 0: the dict passes unchanged
    plain = CropLVROId(keys=keys, roi_size=ROI)(item)
    assert ROIWindowd(keys, ROI, 0)(plain)["magnitude"] is plain["magnitude"]


def test_random_training_window_draws_all_five_reproducibly(dataset):
    series = np.random.default_rng(0).normal(size=(ROI + 8, ROI + 8, 4))
    draw = RandROIWindowd(["m"], ROI, 4)

    def corners(seed):
        draw.set_random_state(seed)
        return [float(draw({"m": series})["m"][0, 0, 0]) for _ in range(40)]

    first = corners(7)
    assert first == corners(7)
    starts = {float(series[4 + dx, 4 + dy, 0]) for dx, dy in window_offsets(4)}
    assert set(first) == starts  # every window, and only those


def test_training_window_errors_name_the_case():
    with pytest.raises(ValueError, match=r"case c7: 'm' is \(30, 30\).*expected.*\(40, 40\)"):
        ROIWindowd(["m"], 32, 4)({"m": np.zeros((30, 30, 5)), "case_id": "c7"})
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="jitter"):
            ROIWindowd(["m"], 32, bad)
    with pytest.raises(ValueError, match="index"):
        ROIWindowd(["m"], 32, 2, index=5)
    with pytest.raises(ValueError, match="window_size"):
        MotionPlanesd(jitter=2)
    with pytest.raises(ValueError, match="beyond jitter"):
        ROIWindow(32, 2)(np.zeros((36, 36, 5)), (3, 0))


def test_bundle_train_command_runs_one_epoch(dataset, tmp_path):
    out = tmp_path / "run"
    # `hdl-monai train phase` runs `python -m monai.bundle run training --config_file .../train.json ...`
    cmd = [
        sys.executable, "-m", "hdl_monai.cli", "train", "phase",
        "--dataset_dir", str(dataset), "--output_dir", str(out),
        "--roi_size", str(ROI), "--channels", "[4,8]", "--d_channels", "4",
        "--batch_size", "2", "--samples_per_case", "2", "--max_epochs", "1", "--val_frame_stride", "6",
        "--velocity_val_interval", "1", "--velocity_val_reference", "phase", "--velocity_val_exclude_border_px", "0",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert (out / "background_stats.json").is_file() and (out / "background_histogram.png").is_file()
    # velocity validation ran on the validation split and kept its best generator as a whole phase model
    history = json.loads((out / "velocity_validation.json").read_text())
    assert history["best_epoch"] == 1 and -1.0 <= history["history"][0]["K"]["0"]["r_pooled"] <= 1.0
    assert load_phase_model(out / "best_velocity").motion
    assert "velocity validation: K=0: r pooled" in result.stdout + result.stderr
    assert (out / "checkpoints" / "checkpoint_final.pt").is_file()
    assert (out / "checkpoints" / "best_generator.pt").is_file()
    model = load_phase_model(out)
    assert model.roi_size == (ROI, ROI) and model.generator_config["channels"] == [4, 8]
    # the bundle's defaults: cardiac-phase planes, motion planes, instance norm
    assert model.cycle and model.motion and model.generator_config["in_channels"] == 7
    assert model.generator_config["norm"] == "instance"
    saved = json.loads((out / "background_stats.json").read_text())
    assert saved == model.background_stats
    # the model synthesises a case end to end (it builds the same 7-channel input as training)
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    assert synthesize_phase(case, model)["z"].shape == case.magnitude.shape


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_gpu_config_builds_with_one_cpu_process(dataset, tmp_path, monkeypatch):
    from monai.bundle import ConfigParser

    for key, value in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "train.json"), str(BUNDLE / "multi_gpu_train.json")])
    parser.update({"dataset_dir": str(dataset), "output_dir": str(tmp_path), "roi_size": ROI, "channels": [4, 8],
                   "d_channels": 4, "batch_size": 2})  # fmt: skip
    try:
        parser.get_parsed_content("initialize")
        trainer = parser.get_parsed_content("train#trainer")
        handlers = parser.get_parsed_content("train#handlers")
        assert isinstance(trainer.generator, torch.nn.parallel.DistributedDataParallel)
        assert isinstance(trainer.discriminator, torch.nn.parallel.DistributedDataParallel)
        assert type(parser.get_parsed_content("train#dataloader").sampler).__name__ == "DistributedSampler"
        assert len(handlers) == 7  # the two CheckpointLoaders are off
    finally:
        parser.get_parsed_content("finalize")
    assert not torch.distributed.is_initialized()


def test_cycle_planes_encode_the_cardiac_phase_continuously():
    planes = cycle_planes(3, 12, (4, 5))
    assert planes.shape == (2, 4, 5) and planes.dtype == np.float32
    np.testing.assert_allclose(planes[:, 0, 0], [0.0, 1.0], atol=1e-6)  # a quarter cycle: cos 0, sin 1
    np.testing.assert_allclose(cycle_planes(12, 12, (1, 1)), cycle_planes(0, 12, (1, 1)))  # cyclic
    assert np.all(planes == planes[:, :1, :1])  # constant planes
    sample = PhaseSample(cycle=True)(np.random.rand(4, 5, 12).astype(np.float32), t=3)
    assert sample["magnitude_triplet"].shape == (5, 4, 5)
    np.testing.assert_allclose(sample["magnitude_triplet"][3:], planes)
    with pytest.raises(ValueError, match="T must be >= 1"):
        cycle_planes(0, 0, (1, 1))


def test_cycle_model_round_trip_and_mismatch(tmp_path):
    config = dict(G_CONFIG, in_channels=5)
    save_phase_model(tmp_path / "cyc", R2UNet(**config), config, ROI, background_stats=PAPER_STATS, cycle=True)
    assert load_phase_model(tmp_path / "cyc").cycle
    assert load_phase_model(tmp_path / "cyc").roi_jitter == 0
    # a model saved before roi_jitter existed loads as trained without it
    payload = torch.load(tmp_path / "cyc" / "model.pt", weights_only=True)
    (tmp_path / "old").mkdir()
    torch.save({k: v for k, v in payload.items() if k != "roi_jitter"}, tmp_path / "old" / "model.pt")
    (tmp_path / "old" / "background_stats.json").write_text((tmp_path / "cyc" / "background_stats.json").read_text())
    assert load_phase_model(tmp_path / "old").roi_jitter == 0
    # 5 input channels without the cycle flag is not a phase generator this code can feed: saving refuses it
    with pytest.raises(ValueError, match="takes 5 input channels but cycle=False, motion=False give 3"):
        save_phase_model(tmp_path / "bad", R2UNet(**config), config, ROI, background_stats=PAPER_STATS)
    assert not (tmp_path / "bad").exists()
    # and a file edited (or written elsewhere) to say so is refused on loading
    payload = torch.load(tmp_path / "cyc" / "model.pt", weights_only=True)
    (tmp_path / "bad").mkdir()
    torch.save({**payload, "cycle": False}, tmp_path / "bad" / "model.pt")
    with pytest.raises(ValueError, match="in_channels=5, a phase generator has 3"):
        load_phase_model(tmp_path / "bad")


def test_myocardium_weight_adds_the_myocardium_l1(batch):
    myo = torch.zeros_like(batch["w1"])
    myo[..., 10:20, 10:20] = 1.0
    with_myo = dict(batch, myocardium=myo)
    plain = _trainer(with_myo, steps=1, lambda_l1=1.0)
    plain.run()
    weighted = _trainer(with_myo, steps=1, lambda_l1=1.0, myocardium_weight=5.0)
    weighted.run()
    # same seed, same first forward pass: the difference is exactly the extra term
    fake = plain.state.output["pred"]
    extra = 5.0 * (myo * (fake - batch["phase"]).abs()).mean()
    torch.testing.assert_close(weighted.state.output["l1"], plain.state.output["l1"] + extra)
    with pytest.raises(KeyError, match="'myocardium'"):
        _trainer(batch, steps=1, myocardium_weight=1.0).run()
    with pytest.raises(ValueError, match="myocardium_weight must be >= 0"):
        _trainer(batch, myocardium_weight=-1.0)


def test_motion_planes_recover_the_phantom_in_plane_velocity(dataset):
    """Optical flow between t-1 and t+1, in units of venc, follows the phantom's true in-plane velocity."""
    case = load_case(datalist_items(dataset, "training")[0]["case"])
    planes = motion_planes(case.magnitude, case.pixel_spacing_mm, case.rr_interval_ms, case.venc_cm_s)
    assert planes.shape == (2,) + case.magnitude.shape and planes.dtype == np.float32
    assert np.abs(planes).max() <= 1.0
    # radial velocity about the LV centre (Cartesian means cancel over the ring)
    geometry = dict(rr_interval_ms=case.rr_interval_ms, pixel_spacing_mm=case.pixel_spacing_mm, exclude_border_px=0)
    zero = np.zeros_like(case.magnitude)
    truth = assess_velocity(case.velocity["x"], case.velocity["y"], zero, case.label, **geometry)
    guess = assess_velocity(planes[0] * case.venc_cm_s["x"], planes[1] * case.venc_cm_s["y"], zero, case.label, **geometry)
    want, got = truth.curves_mm_s["radial"], guess.curves_mm_s["radial"]
    assert np.corrcoef(want, got)[0, 1] > 0.85, (want.round(1), got.round(1))  # 0.90 measured (40 px, 12 frames)
    assert 0.5 < np.abs(got).max() / np.abs(want).max() < 1.5
    # the planes are frame t of a 7-channel sample, after the cycle planes
    sample = PhaseSample(cycle=True, motion=True)(case.magnitude, t=4, motion=planes)
    assert sample["magnitude_triplet"].shape == (7,) + case.magnitude.shape[:2]
    np.testing.assert_array_equal(sample["magnitude_triplet"][5:], planes[..., 4])
    with pytest.raises(ValueError, match="needs the motion planes"):
        PhaseSample(motion=True)(case.magnitude, t=4)
    with pytest.raises(ValueError, match="venc_cm_s needs positive x and y"):
        motion_planes(case.magnitude, case.pixel_spacing_mm, case.rr_interval_ms, {"x": 0.0, "y": 20.0})


def test_bundle_motion_switch_trains_and_synthesises_with_the_flow_planes(dataset, tmp_path):
    out = tmp_path / "motion"
    cmd = [
        sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(BUNDLE / "train.json"),
        "--dataset_dir", str(dataset), "--output_dir", str(out), "--motion", "True", "--roi_jitter", "2",
        "--roi_size", str(ROI), "--channels", "[4,8]", "--d_channels", "4", "--progress", "False",
        "--batch_size", "2", "--samples_per_case", "2", "--max_epochs", "1", "--val_frame_stride", "6",
        "--cache_dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    # the loaded, cropped, flow-annotated cases went to disk: training (grown crops, five windows) and
    # validation (the ROI) are two pipelines, one file per case each
    cached = {d.name: sorted(f.name.split("-")[0] for f in d.glob("*.pt")) for d in (tmp_path / "cache").iterdir()}
    want = sorted(Path(i["case"]).name for i in datalist_items(dataset, "training")), sorted(
        Path(i["case"]).name for i in datalist_items(dataset, "validation"))
    assert sorted(cached.values()) == sorted(want), cached
    # a second run reads those files instead of computing them, and trains to the same weights
    rerun = subprocess.run([*cmd[:cmd.index("--output_dir") + 1], str(tmp_path / "warm"), *cmd[cmd.index("--output_dir") + 2:]],
                           capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert sum(1 for _ in (tmp_path / "cache").rglob("*.pt")) == sum(map(len, want))
    cold, warm = load_phase_model(out).generator.state_dict(), load_phase_model(tmp_path / "warm").generator.state_dict()
    assert all(torch.equal(cold[k], warm[k]) for k in cold)
    model = load_phase_model(out)
    assert model.motion and model.cycle and model.generator_config["in_channels"] == 7
    assert model.roi_jitter == 2 and model.roi_size == (ROI, ROI)  # trained on moved windows, saved at the ROI
    case = load_case(datalist_items(dataset, "test")[0]["case"])
    assert synthesize_phase(case, model)["x"].shape == case.magnitude.shape
    case.venc_cm_s = None
    with pytest.raises(CaseError, match="no venc_cm_s"):
        synthesize_phase(case, model)
    # the twin of a cine without venc synthesises at the paper's default venc, which the motion planes use
    from hdl_monai.pipeline import build_twin

    twin = build_twin(case, 0, phase_model=model)
    assert twin.venc_cm_s == {"x": 20.0, "y": 20.0, "z": 30.0} and twin.phase["x"].shape == case.magnitude.shape

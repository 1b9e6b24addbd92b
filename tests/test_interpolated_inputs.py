"""Interpolated-input training cases (``hdl_monai.interpolated_inputs``) and the phase bundle's use of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from hdl_monai.cli import main
from hdl_monai.data import OverwriteError, load_case, load_datalist
from hdl_monai.data.datalist import validate_dataset
from hdl_monai.data.loading import datalist_items
from hdl_monai.interpolated_inputs import interpolated_case_id, interpolated_inputs
from hdl_monai.interpolation import interpolate_case
from hdl_monai.transforms import kept_frames
from test_pipeline import make_tiny_setup

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundle" / "hdl_phase_synthesis" / "configs"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    return make_tiny_setup(tmp_path_factory.mktemp("interpolated_inputs"))


@pytest.fixture(scope="module")
def written(setup, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("written") / "interp"
    return interpolated_inputs(setup["dataset"], out, ks=[3, 1], interpolation_model=setup["interpolation"])


def test_copies_replace_only_the_magnitude(setup, written):
    sources = load_datalist(setup["dataset"])["training"]
    items = load_datalist(written)
    assert items["validation"] == [] and items["test"] == []
    assert [(i["source_case"], i["K"]) for i in items["training"]] == [
        (Path(s["case"]).name, K) for s in sources for K in (1, 3)
    ]
    assert validate_dataset(written) == []
    for item in items["training"]:
        source = load_case(setup["dataset"] / "cases" / item["source_case"])
        copy = load_case(written / item["case"])
        K = item["K"]
        assert copy.case_id == interpolated_case_id(source.case_id, K) == f"{source.case_id}_K{K}"
        assert item["subject"] == source.subject
        # the magnitude is exactly what the twin's interpolation step makes; kept frames are the source's
        expected = interpolate_case(source, K, "hdl", model=setup["interpolation"]).magnitude
        np.testing.assert_allclose(copy.magnitude, expected, rtol=1e-6, atol=1e-3)
        kept = kept_frames(source.frames, K)
        np.testing.assert_allclose(copy.magnitude[..., kept], source.magnitude[..., kept], rtol=1e-6)
        dropped = sorted(set(range(source.frames)) - set(kept))
        assert not np.allclose(copy.magnitude[..., dropped], source.magnitude[..., dropped])
        # the target and the loss weights stay real
        np.testing.assert_array_equal(copy.label, source.label)
        for d in "xyz":
            np.testing.assert_array_equal(copy.phase[d], source.phase[d])
            np.testing.assert_array_equal(copy.velocity[d], source.velocity[d])
        assert copy.venc_cm_s == source.venc_cm_s and copy.rr_interval_ms == source.rr_interval_ms
        record = copy.extra["interpolated_input"]
        assert record["K"] == K and record["kept_frames"] == kept and record["source_case"] == source.case_id


def test_bad_arguments_are_refused_before_writing(setup, written, tmp_path):
    dataset, model = setup["dataset"], setup["interpolation"]
    with pytest.raises(OverwriteError, match="exists"):
        interpolated_inputs(dataset, written, ks=[1], interpolation_model=model)
    with pytest.raises(OverwriteError, match="source dataset"):
        interpolated_inputs(dataset, dataset, ks=[1], interpolation_model=model, overwrite=True)
    with pytest.raises(ValueError, match="Ks >= 1"):
        interpolated_inputs(dataset, tmp_path / "a", ks=[0, 3], interpolation_model=model)
    with pytest.raises(ValueError, match=r"K \[7\] outside the interpolation model's K_range \[1, 6\]"):
        interpolated_inputs(dataset, tmp_path / "b", ks=[7], interpolation_model=model)
    with pytest.raises(FileNotFoundError):
        interpolated_inputs(dataset, tmp_path / "c", ks=[1], interpolation_model=tmp_path / "absent.pt")
    assert not any(tmp_path.iterdir())


def test_command_writes_the_dataset(setup, tmp_path, capsys):
    out = tmp_path / "cli"
    main(["interpolated-inputs", str(setup["dataset"]), "--out", str(out), "--k", "2",
          "--interpolation_model", str(setup["interpolation"])])  # fmt: skip
    assert "written to" in capsys.readouterr().out
    assert {i["K"] for i in load_datalist(out)["training"]} == {2}
    with pytest.raises(SystemExit):  # exists: one clear line, no traceback
        main(["interpolated-inputs", str(setup["dataset"]), "--out", str(out), "--k", "2",
              "--interpolation_model", str(setup["interpolation"])])  # fmt: skip
    assert "exists" in capsys.readouterr().err


def _parser(setup, tmp_path, **update) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "train.json"))
    parser.update({"dataset_dir": str(setup["dataset"]), "output_dir": str(tmp_path / "run"), "roi_size": 32,
                   "channels": [4, 8], "d_channels": 4, "batch_size": 2, **update})  # fmt: skip
    return parser


def test_train_config_adds_the_extra_datasets_and_initialises_from_a_checkpoint(setup, written, tmp_path):
    plain = _parser(setup, tmp_path).get_parsed_content("train#items")
    extra = _parser(setup, tmp_path, extra_training_datasets=[str(written)]).get_parsed_content("train#items")
    assert extra == plain + datalist_items(written, "training")

    # init_from loads the two networks' weights (a fine-tuning start), not the optimisers or the epoch
    parser = _parser(setup, tmp_path)
    generator, discriminator = parser.get_parsed_content("generator"), parser.get_parsed_content("discriminator")
    with torch.no_grad():
        for p in list(generator.parameters()) + list(discriminator.parameters()):
            p.fill_(0.25)
    ckpt = tmp_path / "start.pt"
    torch.save({"generator": generator.state_dict(), "discriminator": discriminator.state_dict()}, ckpt)
    parser = _parser(setup, tmp_path, init_from=str(ckpt))
    trainer = parser.get_parsed_content("train#trainer")
    loader = parser.get_parsed_content("train#handlers")[0]
    assert type(loader).__name__ == "CheckpointLoader"
    before = next(parser.get_parsed_content("generator").parameters()).detach().clone()
    assert not torch.all(before == 0.25)
    loader(trainer)
    for net in ("generator", "discriminator"):
        assert all(torch.all(p == 0.25) for p in parser.get_parsed_content(net).parameters())
    assert trainer.state.epoch == 0

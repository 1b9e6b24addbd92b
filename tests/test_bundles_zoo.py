"""Model Zoo conformance of every bundle: metadata keys against the MONAI Bundle Specification's text,
``monai.bundle verify_metadata`` offline against the locally written schema, the bundle files, and the
train / inference config properties of ``monai/bundle/properties.py`` (checked by ``ConfigWorkflow``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from hdl_monai.bundles import BUNDLES, get_bundle, train_command, verify_bundle_metadata
from hdl_monai.data.phantom import generate_phantom
from hdl_monai.engines.interpolation import InterpolationModelSpec, save_interpolation_model
from hdl_monai.networks import R2UNet
from hdl_monai.phase_synthesis import save_phase_model
from hdl_monai.schema import METADATA_SCHEMA

REPO = Path(__file__).resolve().parents[1]

# The MONAI Bundle Specification, "metadata.json File" section (docs/source/mb_specification.rst, MONAI
# >= 1.2, where required_packages_version replaced optional_packages_version as mandatory), abridged to the
# key list; the tests below parse the **key** names out of this text.
SPEC_MANDATORY = """
The mandatory keys are as follows:
* **version**: version of the stored model.
* **monai_version**: version of MONAI the bundle was generated on.
* **pytorch_version**: version of Pytorch the bundle was generated on.
* **numpy_version**: version of Numpy the bundle was generated on.
* **required_packages_version**: dictionary relating required package names to their versions.
* **task**: plain-language description of what the model is meant to do.
* **description**: longer form plain-language description of what the model is.
* **authors**: state author(s) of the model.
* **copyright**: state model copyright.
* **network_data_format**: defines the format, shape, and meaning of inputs and outputs to the model,
  contains keys "inputs" and "outputs".
"""
SPEC_TENSOR = """
Tensor format specifiers ... must be a dictionary containing at least these keys:
* **type** * **format** * **modality** * **num_channels** * **spatial_shape** * **dtype**
* **value_range** * **is_patch_data** * **channel_def**
"""
SPEC_OPTIONAL = """
Optional keys: * **changelog** * **intended_use** * **data_source** * **data_type** * **references**
"""
# issue #7 asks for these optional ones too (the Model Zoo reviews them)
WANTED_OPTIONAL = ("changelog", "intended_use", "data_source", "references")


def _keys(text: str) -> list[str]:
    return re.findall(r"\*\*([a-z_]+)\*\*", text)


def _meta(name: str) -> dict:
    return json.loads(get_bundle(name).metadata.read_text())


def test_spec_text_parses_to_the_expected_key_lists():
    assert len(_keys(SPEC_MANDATORY)) == 10 and "required_packages_version" in _keys(SPEC_MANDATORY)
    assert len(_keys(SPEC_TENSOR)) == 9
    assert set(WANTED_OPTIONAL) <= set(_keys(SPEC_OPTIONAL))


@pytest.mark.parametrize("name", list(BUNDLES))
def test_metadata_has_every_specified_key(name):
    meta = _meta(name)
    missing = [k for k in _keys(SPEC_MANDATORY) + list(WANTED_OPTIONAL) if k not in meta]
    assert not missing, f"{name}: metadata.json lacks {missing}"
    assert meta["version"] in meta["changelog"]
    assert meta["monai_version"] and meta["pytorch_version"] and meta["numpy_version"]
    fmt = meta["network_data_format"]
    assert set(fmt) >= {"inputs", "outputs"} and fmt["inputs"] and fmt["outputs"]
    for where in ("inputs", "outputs"):
        for tensor_name, tensor in fmt[where].items():
            lacking = [k for k in _keys(SPEC_TENSOR) if k not in tensor]
            assert not lacking, f"{name}: {where}/{tensor_name} lacks {lacking}"
            assert len(tensor["channel_def"]) == tensor["num_channels"]


@pytest.mark.parametrize("name", list(BUNDLES))
def test_bundle_files(name):
    root = get_bundle(name).root
    assert (root / "LICENSE").is_file() and (root / "docs" / "README.md").is_file()
    assert (root / "configs" / "inference.json").is_file()
    if get_bundle(name).trainable:
        assert (root / "configs" / "train.json").is_file() and (root / "configs" / "multi_gpu_train.json").is_file()


def test_verify_metadata_cli_offline_with_the_local_schema():
    """The real ``python -m monai.bundle verify_metadata``: the schema URL is never fetched because
    ``--filepath`` (where MONAI stores the download) already holds our schema."""
    metas = [str(get_bundle(n).metadata) for n in BUNDLES]
    one = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "verify_metadata", "--meta_file", metas[0], "--filepath", str(METADATA_SCHEMA)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert one.returncode == 0 and "metadata is verified with no error" in one.stdout + one.stderr
    assert "skipped downloading" in one.stdout + one.stderr


@pytest.mark.parametrize("name", list(BUNDLES))
def test_verify_metadata_in_process(name):
    verify_bundle_metadata(name)


def test_verify_metadata_rejects_missing_keys(tmp_path):
    meta = _meta("hdl_temporal_interpolation")
    del meta["task"]
    del meta["network_data_format"]["inputs"]["image"]["modality"]
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(meta))
    from monai.bundle import verify_metadata

    with pytest.raises(ValueError, match="required property"):
        verify_metadata(meta_file=str(bad), filepath=str(METADATA_SCHEMA))


def test_train_command_names_every_config():
    cmd = train_command("interpolation", "/data", "/out", max_epochs=2, channels=[4, 8])
    assert cmd[1:5] == ["-m", "monai.bundle", "run", "training"]
    assert cmd[cmd.index("--config_file") + 1].endswith("hdl_temporal_interpolation/configs/train.json")
    assert cmd[-4:] == ["--max_epochs", "2", "--channels", "[4, 8]"]
    ddp = train_command("phase", "/data", "/out", nproc_per_node=2)
    assert "torch.distributed.run" in ddp and "--nproc_per_node=2" in ddp
    assert json.loads(ddp[ddp.index("--config_file") + 1])[1].endswith("multi_gpu_train.json")
    with pytest.raises(ValueError, match="no network"):
        train_command("velocity", "/data", "/out")
    with pytest.raises(KeyError, match="unknown bundle"):
        train_command("nope", "/data", "/out")


# ------------------------------------------------------------------ properties (monai/bundle/properties.py)

SIZE, FRAMES = 32, 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    generate_phantom(root / "data", subjects=3, slices=1, size=SIZE, frames=FRAMES, seed=2, progress=False)
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8], "recurrence": 1}, roi_size=[SIZE, SIZE])
    save_interpolation_model(root / "interp" / "model.pt", spec.build_network(), spec)
    g = {"spatial_dims": 2, "in_channels": 3, "out_channels": 3, "channels": [4, 8], "recurrence": 1, "out_act": "tanh"}
    stats = {"mean": {"x": 0.0, "y": 0.0, "z": 0.0}, "std": {"x": 0.1, "y": 0.1, "z": 0.1}}
    save_phase_model(root / "phase", R2UNet(**g), g, SIZE, background_stats=stats)
    return root


TRAIN_OVERRIDES = {
    "hdl_temporal_interpolation": {"roi_size": [SIZE, SIZE], "channels": [4, 8], "recurrence": 1, "batch_size": 1,
                                   "samples_per_case": 1, "progress": False, "device": "cpu", "amp": False},
    "hdl_phase_synthesis": {"roi_size": SIZE, "channels": [4, 8], "d_channels": 4, "batch_size": 2,
                            "samples_per_case": 2, "device": "cpu"},
}  # fmt: skip


def _workflow(name, kind, **override) -> ConfigWorkflow:
    bundle = get_bundle(name)
    wf = ConfigWorkflow(config_file=str(bundle.config("train" if kind == "train" else "inference")),
                        meta_file=str(bundle.metadata), logging_file=False, workflow_type=kind, **override)  # fmt: skip
    wf.initialize()
    return wf


@pytest.mark.parametrize("name", list(TRAIN_OVERRIDES))
def test_train_config_has_every_required_property(name, tiny, tmp_path):
    wf = _workflow(name, "train", dataset_dir=str(tiny / "data"), output_dir=str(tmp_path), **TRAIN_OVERRIDES[name])
    assert wf.check_properties() == []
    assert wf.train_inferer is not None and wf.max_epochs > 0 and len(wf.train_dataset) > 0


@pytest.mark.parametrize("name,model", [("hdl_temporal_interpolation", "interp/model.pt"),
                                        ("hdl_phase_synthesis", "phase/model.pt")])  # fmt: skip
def test_inference_config_has_every_required_property_and_its_evaluator_runs(name, model, tiny, tmp_path):
    wf = _workflow(name, "infer", dataset_dir=str(tiny / "data"), model_path=str(tiny / model),
                   output_dir=str(tmp_path), device="cpu")  # fmt: skip
    assert wf.check_properties() == []
    assert isinstance(wf.network_def, torch.nn.Module) and len(wf.dataset) > 0
    outputs = []
    wf.evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(e.state.output["pred"]))
    wf.evaluator.run()
    pred = torch.cat(outputs)
    assert pred.shape[1:] == ((2, SIZE, SIZE) if "interpolation" in name else (3, SIZE, SIZE))
    assert torch.isfinite(pred).all()


def test_velocity_inference_config_keeps_its_own_run(tiny):
    """The velocity bundle has no network: its inference.json is a report workflow (no evaluator)."""
    meta = _meta("hdl_velocity_assessment")
    assert "no network" in meta["pred_classes"].lower() or "no network" in meta["description"].lower()


def test_override_args_reach_monai_bundle_with_their_types():
    import fire

    from hdl_monai.bundles import override_args

    args = override_args({"resume": False, "amp": True, "ckpt_path": None, "channels": (4, 8), "roi_size": [96, 96]})
    parsed = fire.Fire(lambda **kw: kw, command=args)  # monai.bundle parses its CLI with python-fire
    assert parsed == {"resume": False, "amp": True, "ckpt_path": None, "channels": [4, 8], "roi_size": [96, 96]}
    assert parsed["resume"] is False

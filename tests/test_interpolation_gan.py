"""The GAN variant of the temporal-interpolation network (Table III "GAN" rows): adversarial training
through the bundle's ``gan`` switch, resume of both optimisers, the model file's ``adversarial`` flag and
the methods that refuse a model trained for another, on a tiny phantom with tiny networks."""

from __future__ import annotations

import copy
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from test_interpolation_bundle import (  # noqa: F401 (dataset: the tiny phantom fixture)
    ITERATIONS_PER_EPOCH,
    SIZE,
    TINY,
    TRAIN,
    _workflow,
    dataset,
)

from hdl_monai.cli import main
from hdl_monai.data import load_case
from hdl_monai.data.loading import datalist_items
from hdl_monai.engines.interpolation import (
    InterpolationModelError,
    InterpolationModelSpec,
    InterpolationPrepareBatch,
    InterpolationRunner,
    PackedInterpolationLoss,
    check_checkpoint,
    load_interpolation_model,
    save_interpolation_model,
)
from hdl_monai.engines.interpolation_gan import InterpolationGANTrainer, build_interpolation_discriminator
from hdl_monai.interpolation import interpolate_case

GAN = {**TINY, "gan": True, "d_channels": 4, "d_num_layers": 2}


def _weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in after.items() if v.is_floating_point() and not torch.equal(v, before[k])]


@pytest.fixture(scope="module")
def gan_run(dataset, tmp_path_factory) -> SimpleNamespace:
    """One epoch (two iterations) of bundle training with ``gan True``; weights before and after, outputs."""
    out = tmp_path_factory.mktemp("gan") / "run"
    wf = _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(out), max_epochs=1, **GAN)
    G, D = wf.parser.get_parsed_content("network"), wf.parser.get_parsed_content("discriminator")
    trainer = wf.parser.get_parsed_content("train#trainer")
    before = {"G": _weights(G), "D": _weights(D)}
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(dict(e.state.output)))
    wf.run()
    return SimpleNamespace(out=out, trainer=trainer, before=before, after={"G": _weights(G), "D": _weights(D)},
                           outputs=outputs)


def _test_case(dataset: Path):
    return load_case(datalist_items(dataset, "test")[0]["case"])


# ------------------------------------------------------------------------------------------ training


def test_gan_switch_trains_generator_and_discriminator(gan_run):
    assert isinstance(gan_run.trainer, InterpolationGANTrainer) and gan_run.trainer.discriminator is not None
    assert len(gan_run.outputs) == ITERATIONS_PER_EPOCH
    for net in ("G", "D"):
        assert _changed(gan_run.before[net], gan_run.after[net]), f"{net}: no parameter changed"
    for output in gan_run.outputs:
        assert {"loss", "pred", "label", "supervised", "adv", "d_loss"} <= set(output)
        assert torch.isfinite(output["adv"]) and torch.isfinite(output["d_loss"])
        expected = output["supervised"] + gan_run.trainer.adv_weight * output["adv"]
        assert torch.allclose(output["loss"], expected)
        assert output["pred"].shape == (2, 2, SIZE, SIZE)  # 1 case x 2 samples; magnitude + mask logit
    ckpt = torch.load(gan_run.out / "checkpoints" / "checkpoint_final.pt", weights_only=True)
    assert {"model_spec", "network", "optimizer", "discriminator", "d_optimizer", "trainer", "lr_scheduler"} == set(ckpt)
    assert ckpt["model_spec"]["adversarial"] is True


def test_plain_training_keeps_the_discriminator_out(dataset, tmp_path):
    wf = _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(tmp_path), max_epochs=1, **TINY)
    assert wf.parser.get_parsed_content("discriminator") is None
    assert wf.parser.get_parsed_content("train#trainer").discriminator is None
    assert set(wf.parser.get_parsed_content("train#checkpoint_saver").save_dict) == {
        "model_spec", "network", "optimizer", "trainer", "lr_scheduler"
    }
    assert wf.parser.get_parsed_content("model_spec").adversarial is False


def test_resume_restores_both_optimisers(gan_run, dataset, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(gan_run.out, out)
    wf = _workflow(TRAIN, dataset_dir=str(dataset), output_dir=str(out), max_epochs=2, resume=True, **GAN)
    trainer = wf.parser.get_parsed_content("train#trainer")
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append((e.state.epoch, e.state.iteration)))
    wf.run()
    assert seen[0] == (2, ITERATIONS_PER_EPOCH + 1)
    for name in ("optimizer", "d_optimizer"):
        steps = {int(s["step"]) for s in wf.parser.get_parsed_content(name).state.values()}
        assert steps == {2 * ITERATIONS_PER_EPOCH}, name  # Adam state restored, then stepped on


def test_resume_refuses_a_checkpoint_of_the_other_kind(gan_run, dataset):
    ckpt = gan_run.out / "checkpoints" / "checkpoint_final.pt"
    plain = InterpolationModelSpec.from_dict(torch.load(ckpt, weights_only=True)["model_spec"])
    plain.adversarial = False
    with pytest.raises(InterpolationModelError, match=r"was trained for adversarial=True, config says adversarial=False"):
        check_checkpoint(ckpt, plain)


# ------------------------------------------------------------------------------------------ trainer


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rand = lambda c: torch.rand(2, c, 16, 16, generator=g)  # noqa: E731
    return {"magnitude_pair": rand(2) * 2 - 1, "mask_pair": (rand(2) > 0.5).float(), "condition": rand(3),
            "magnitude_target": rand(1) * 2 - 1, "mask_target": (rand(1) > 0.5).float(), "w1": rand(1), "w2": rand(1)}


def _train_once(cls, network: torch.nn.Module, **kwargs) -> dict:
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    trainer = cls(device="cpu", max_epochs=1, train_data_loader=[_batch()], network=network, optimizer=optimizer,
                  loss_function=PackedInterpolationLoss(), prepare_batch=InterpolationPrepareBatch(), decollate=False,
                  **kwargs)
    trainer.run()
    return trainer.state.output


def test_trainer_without_discriminator_is_the_supervised_trainer():
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8], "recurrence": 1}, roi_size=16)
    torch.manual_seed(0)
    plain = spec.build_network()
    mine = copy.deepcopy(plain)
    expected, got = _train_once(SupervisedTrainer, plain), _train_once(InterpolationGANTrainer, mine)
    assert set(got) == set(expected) and torch.equal(got["loss"], expected["loss"])
    for (name, a), b in zip(plain.state_dict().items(), mine.state_dict().values()):
        assert torch.equal(a, b), name


def test_trainer_conditions_the_discriminator_on_magnitudes_and_condition_planes():
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8], "recurrence": 1}, roi_size=16)
    D = build_interpolation_discriminator(spec, channels=4, num_layers_d=2)
    seen = []
    D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    output = _train_once(InterpolationGANTrainer, spec.build_network(), discriminator=D,
                         d_optimizer=torch.optim.Adam(D.parameters()))
    batch = _batch()
    real = torch.cat([batch["magnitude_target"], batch["magnitude_pair"], batch["condition"]], dim=1)
    assert len(seen) == 3 and torch.equal(seen[1], real)  # G step (fake), D step: real, then fake
    assert torch.equal(seen[0][:, 1:], real[:, 1:]) and torch.equal(seen[2], seen[0])
    assert torch.equal(seen[0][:, :1], output["pred"][:, :1])
    with pytest.raises(ValueError, match="needs its d_optimizer"):
        InterpolationGANTrainer("cpu", 1, [], spec.build_network(), torch.optim.SGD([torch.zeros(1)], lr=1),
                                PackedInterpolationLoss(), discriminator=D)


# ------------------------------------------------------------------------------------------ model file and methods


def test_spec_records_adversarial_and_reads_older_files_as_plain():
    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8]}, adversarial=True)
    d = spec.to_dict()
    assert d["adversarial"] is True and InterpolationModelSpec.from_dict(d) == spec
    del d["adversarial"]  # a model file written before the GAN variant
    assert InterpolationModelSpec.from_dict(d).adversarial is False
    assert spec.differences(d) == {"adversarial": (True, False)}
    with pytest.raises(ValueError, match="GAN variant trains the 'hdl' network"):
        InterpolationModelSpec(method="r2unet", adversarial=True)


def test_methods_hdl_and_gan_refuse_each_others_models(gan_run, dataset, tmp_path, capsys):
    gan_path = gan_run.out / "model.pt"
    model = load_interpolation_model(gan_path)
    assert model.spec.adversarial is True and model.spec.method == "hdl"
    plain_path = save_interpolation_model(tmp_path / "plain.pt", model.network, replace(model.spec, adversarial=False))
    case = _test_case(dataset)

    rebuilt = interpolate_case(case, 2, "gan", model=gan_path)
    assert rebuilt.source == "interpolation-gan" and rebuilt.magnitude.shape == case.magnitude.shape
    assert rebuilt.extra["interpolation"]["model"] == str(gan_path)
    with pytest.raises(InterpolationModelError, match=rf"model {gan_path} is for method 'gan' .*, not 'hdl'"):
        interpolate_case(case, 2, "hdl", model=model)
    with pytest.raises(InterpolationModelError, match=rf"model {plain_path} is for method 'hdl' .*, not 'gan'"):
        interpolate_case(case, 2, "gan", model=plain_path)

    case_dir = Path(datalist_items(dataset, "test")[0]["case"])
    main(["interpolate", str(case_dir), "--out", str(tmp_path / "twin"), "--k", "2", "--method", "gan",
          "--model", str(gan_path)])
    assert load_case(tmp_path / "twin").extra["interpolation"]["method"] == "gan"
    with pytest.raises(SystemExit) as stop:
        main(["interpolate", str(case_dir), "--out", str(tmp_path / "no"), "--k", "2", "--method", "hdl",
              "--model", str(gan_path)])
    assert stop.value.code == 2 and f"model {gan_path} is for method 'gan'" in capsys.readouterr().err


def test_inference_and_evaluation_take_the_gan_model_as_method_gan(gan_run, dataset, tmp_path):
    gan_path = gan_run.out / "model.pt"
    summary = InterpolationRunner(dataset, tmp_path / "interp", gan_path, K=1, splits=["test"]).run()
    case_id = Path(datalist_items(dataset, "test")[0]["case"]).name
    assert summary["spec"]["adversarial"] is True
    assert load_case(tmp_path / "interp" / "cases" / case_id).source == "interpolation-gan"
    with pytest.raises(InterpolationModelError, match="is for method 'gan'"):
        InterpolationRunner(dataset, tmp_path / "x", gan_path, K=1, splits=["test"], method="hdl").run()

    main(["evaluate-interpolation", str(dataset), "--out", str(tmp_path / "eval"), "--k", "1", "--methods", "gan,linear",
          "--gan_model", str(gan_path)])
    assert "| 1 | gan |" in (tmp_path / "eval" / "interpolation_metrics.md").read_text()
    with pytest.raises(SystemExit):
        main(["evaluate-interpolation", str(dataset), "--out", str(tmp_path / "eval2"), "--k", "1", "--methods", "hdl",
              "--model", str(gan_path)])

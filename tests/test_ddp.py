"""Multi-GPU configs for real: ``torchrun --nproc_per_node=2`` (via ``hdl_monai.bundles.train_command``)
runs each bundle's ``multi_gpu_train.json`` over ``train.json`` with DistributedDataParallel on the gloo
backend (CPU), for one short epoch on a tiny phantom; each rank then saves its parameters and the test
checks that both ranks hold identical weights that differ from the initial ones."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from hdl_monai.bundles import get_bundle, train_command
from hdl_monai.data.phantom import generate_phantom

SIZE, FRAMES = 32, 8

# 4 subjects x 2 slices: 4 training, 2 validation cases (validation needs >= 1 case per rank)
# per bundle: tiny overrides, and the DDP-wrapped networks whose parameters each rank saves
CASES = {
    "hdl_temporal_interpolation": (
        {"roi_size": [SIZE, SIZE], "channels": [4, 8], "recurrence": 1, "batch_size": 1, "samples_per_case": 2,
         "progress": False, "val_Ks": [1], "val_taus_per_K": 1, "max_epochs": 1},
        ["network"],
    ),
    "hdl_phase_synthesis": (
        {"roi_size": SIZE, "channels": [4, 8], "recurrence": 1, "d_channels": 4, "batch_size": 2,
         "samples_per_case": 2, "val_frame_stride": 8, "max_epochs": 1},
        ["generator", "discriminator"],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "phantom"
    generate_phantom(out, subjects=4, slices=2, size=SIZE, frames=FRAMES, seed=4, progress=False)
    return out


def _save_ranks_config(name: str, networks: list[str], path: Path) -> Path:
    """An extra config layered last: the bundle's own ``training`` steps, then (every rank) the initial
    parameters before ``trainer.run()`` and the final ones after it, as ``<output_dir>/rank<R>_<when>.pt``."""
    bundle = get_bundle(name)
    merged: dict = {}
    for config in ("train", "multi_gpu_train"):
        merged.update(json.loads(bundle.config(config).read_text()))
    steps = list(merged["training"])
    save = ("$torch.save({{n: {{k: v.detach().cpu().clone() for k, v in net.module.named_parameters()}} for n, net in "
            "zip({names}, [{refs}])}}, @output_dir + '/rank' + os.environ['RANK'] + '_{when}.pt')")  # fmt: skip
    names, refs = json.dumps(networks), ", ".join(f"@{n}" for n in networks)
    run_at = next(i for i, s in enumerate(steps) if "trainer.run()" in s)
    steps = steps[:run_at] + [save.format(names=names, refs=refs, when="init")] + steps[run_at:]
    steps.append(save.format(names=names, refs=refs, when="final"))
    path.write_text(json.dumps({"training": steps}))
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_torchrun_two_gloo_processes_keep_identical_weights(name, dataset, tmp_path):
    overrides, networks = CASES[name]
    extra = _save_ranks_config(name, networks, tmp_path / "save_ranks.json")
    out = tmp_path / "run"
    cmd = train_command(name, dataset, out, nproc_per_node=2, extra_configs=[extra], **overrides)
    assert "--nproc_per_node=2" in cmd
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ranks = [torch.load(out / f"rank{r}_final.pt", weights_only=True) for r in (0, 1)]
    init = torch.load(out / "rank0_init.pt", weights_only=True)
    for net in networks:
        assert ranks[0][net].keys() == ranks[1][net].keys() and ranks[0][net]
        for key, value in ranks[0][net].items():
            torch.testing.assert_close(ranks[1][net][key], value, rtol=0, atol=0, msg=f"{net}.{key} differs")
        changed = [k for k, v in ranks[0][net].items() if not torch.equal(v, init[net][k])]
        assert changed, f"{net}: no parameter changed: no optimisation step ran"

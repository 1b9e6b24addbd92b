"""The bundle registry: bundle names -> folders and config files, and the commands that run them.

``train_bundle("hdl_temporal_interpolation", dataset_dir, output_dir, max_epochs=2)`` is
``python -m monai.bundle run training --config_file .../configs/train.json --meta_file
.../configs/metadata.json --logging_file .../configs/logging.conf --bundle_root ... --dataset_dir ...
--output_dir ... --max_epochs 2`` in a subprocess (``nproc_per_node > 1``: the same under ``torchrun``
with ``multi_gpu_train.json`` layered over ``train.json``), so a user never types a config path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLE_ROOT",
    "Bundle",
    "BUNDLES",
    "bundle_names",
    "get_bundle",
    "override_args",
    "train_command",
    "train_bundle",
    "verify_bundle_metadata",
]

BUNDLE_ROOT = Path(__file__).resolve().parents[1] / "bundle"
"""Where the bundles live: ``<repository>/bundle`` (an editable install; set ``HDL_MONAI_BUNDLES`` otherwise)."""


@dataclass(frozen=True)
class Bundle:
    """One MONAI bundle of this project.

    Args:
        name: folder name under ``bundle/``.
        task: one line on what it does.
        trainable: whether it has ``train.json`` (the velocity assessment has no network).
    """

    name: str
    task: str
    trainable: bool = True

    @property
    def root(self) -> Path:
        return Path(os.environ.get("HDL_MONAI_BUNDLES", BUNDLE_ROOT)) / self.name

    def config(self, name: str) -> Path:
        """``configs/<name>.json`` (or ``logging.conf``); FileNotFoundError if the bundle has none."""
        path = self.root / "configs" / (name if "." in name else f"{name}.json")
        if not path.is_file():
            raise FileNotFoundError(f"bundle {self.name} has no {path.name} ({path})")
        return path

    @property
    def metadata(self) -> Path:
        return self.config("metadata")


BUNDLES: dict[str, Bundle] = {
    b.name: b
    for b in (
        Bundle("hdl_temporal_interpolation", "temporal interpolation of magnitude frames and LV masks (module 1)"),
        Bundle("hdl_phase_synthesis", "pix2pix synthesis of phase x, y, z from magnitude frames (module 2)"),
        Bundle("hdl_velocity_assessment", "myocardial velocity curves and indices (module 3, no network)", False),
    )
}
_ALIASES = {"interpolation": "hdl_temporal_interpolation", "phase": "hdl_phase_synthesis",
            "velocity": "hdl_velocity_assessment"}  # fmt: skip


def bundle_names() -> list[str]:
    return list(BUNDLES)


def get_bundle(name: str) -> Bundle:
    """A bundle by folder name or short alias (``interpolation``, ``phase``, ``velocity``)."""
    key = _ALIASES.get(name, name)
    if key not in BUNDLES:
        raise KeyError(f"unknown bundle {name!r}; choose one of {bundle_names()} (or {sorted(_ALIASES)})")
    return BUNDLES[key]


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """``--key value`` pairs for ``monai.bundle``: lists / dicts / booleans / None as Python literals, the
    rest as str.

    ``monai.bundle`` reads its arguments with python-fire, which parses Python literals: JSON's ``false``
    would arrive as the (truthy) string "false", ``False`` arrives as the boolean.
    """
    args: list[str] = []
    for key, value in overrides.items():
        literal = isinstance(value, (list, tuple, dict, bool)) or value is None
        text = repr(list(value) if isinstance(value, tuple) else value) if literal else str(value)
        args += [f"--{key}", text]
    return args


def train_command(
    name: str,
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    nproc_per_node: int = 1,
    extra_configs: Sequence[str | os.PathLike] = (),
    **overrides: Any,
) -> list[str]:
    """The command line :func:`train_bundle` runs (see there)."""
    bundle = get_bundle(name)
    if not bundle.trainable:
        raise ValueError(f"bundle {bundle.name} has no network to train (run its inference.json instead)")
    configs = [str(bundle.config("train"))]
    if int(nproc_per_node) > 1:
        configs.append(str(bundle.config("multi_gpu_train")))
    configs += [str(c) for c in extra_configs]
    if int(nproc_per_node) > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={int(nproc_per_node)}",
                    "-m", "monai.bundle"]  # fmt: skip
    else:
        launcher = [sys.executable, "-m", "monai.bundle"]
    return [
        *launcher, "run", "training",
        "--config_file", json.dumps(configs) if len(configs) > 1 else configs[0],
        "--meta_file", str(bundle.metadata),
        "--logging_file", str(bundle.config("logging.conf")),
        "--bundle_root", str(bundle.root),
        "--dataset_dir", str(Path(dataset_dir).resolve()),
        "--output_dir", str(Path(output_dir).resolve()),
        *override_args(overrides),
    ]  # fmt: skip


def train_bundle(
    name: str,
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    nproc_per_node: int = 1,
    extra_configs: Sequence[str | os.PathLike] = (),
    check: bool = True,
    **overrides: Any,
) -> subprocess.CompletedProcess:
    """Train a bundle on a dataset: ``train BUNDLE --dataset_dir DIR [--output_dir OUT] [--key value ...]``.

    Runs ``python -m monai.bundle run training`` with the bundle's ``train.json``, ``metadata.json`` and
    ``logging.conf`` in a subprocess (output streams to this terminal), so the config paths never have to
    be typed. Every extra ``--key value`` overrides that config entry, exactly as on the ``monai.bundle``
    command line (``--max_epochs 5 --channels "[16, 32, 64]" --device cpu``). With ``nproc_per_node`` > 1
    the run is launched by ``torchrun --standalone`` with ``multi_gpu_train.json`` layered over
    ``train.json`` (DistributedDataParallel; NCCL on GPUs, gloo on the CPU).

    Args:
        name: ``hdl_temporal_interpolation`` / ``interpolation`` or ``hdl_phase_synthesis`` / ``phase``.
        dataset_dir: a dataset in the case format (``datalist.json`` + ``cases/``).
        output_dir: where the model (``model.pt``), checkpoints and TensorBoard logs go.
        nproc_per_node: processes (GPUs) for DistributedDataParallel; 1 = a plain run.
        extra_configs: more config files layered last (JSON / YAML), e.g. a site's own settings.
        check: raise ``subprocess.CalledProcessError`` on a non-zero exit.
        overrides: config entries to override.

    Returns:
        The finished process (``returncode``).

    Raises:
        KeyError: unknown bundle. ValueError: a bundle without a network. FileNotFoundError: no dataset.
    """
    if not (Path(dataset_dir) / "datalist.json").is_file():
        raise FileNotFoundError(f"{dataset_dir}: no datalist.json (a dataset in the hdl-monai case format is needed)")
    cmd = train_command(name, dataset_dir, output_dir, nproc_per_node, extra_configs, **overrides)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    return subprocess.run(cmd, check=check)


def verify_bundle_metadata(name: str, schema: str | os.PathLike | None = None) -> None:
    """``monai.bundle.verify_metadata`` of a bundle's ``metadata.json`` against the locally written schema
    (:data:`hdl_monai.schema.METADATA_SCHEMA`), offline: ``verify_metadata`` downloads the ``schema`` URL
    only when its ``filepath`` does not exist, and here it always does. Raises ValueError when invalid."""
    from monai.bundle import verify_metadata

    from hdl_monai.schema import METADATA_SCHEMA

    verify_metadata(meta_file=str(get_bundle(name).metadata), filepath=str(schema or METADATA_SCHEMA))

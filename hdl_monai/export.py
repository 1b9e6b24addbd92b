"""Export of the trained networks: TorchScript through MONAI's ``ckpt_export``, and ONNX.

Both networks take one tensor and return one tensor (batch first, channels second):

- interpolation (``hdl_temporal_interpolation``): input (N, 7, rx, ry) = magnitude pair (2, normalised to
  [-1, 1]) | LV myocardium mask pair (2, 0/1) | condition planes (tau / T, k / (K + 1), K / K_max; 6
  channels when the model was trained without the K plane); output (N, 2, rx, ry) = magnitude (normalised)
  | myocardium logit.
- phase synthesis (``hdl_phase_synthesis``): input (N, 3, rx, ry) = normalised magnitude frames t-1, t, t+1;
  output (N, 3, rx, ry) = normalised phase x, y, z at t in [-1, 1] (tanh). The foreground-background
  compositing (Gaussian background noise) is not part of the network and is not exported.

The networks are not scriptable as written (``FusionBlock`` takes ``*features``, the decoder a
``Sequence``), so TorchScript export *traces* them (``ckpt_export --use_trace True``); the traced graph is
fully convolutional and accepts any batch size and any spatial size divisible by 2 ** levels.

The model files hold more than a state dict (``{"format", "spec", "state_dict"}`` for interpolation,
``{"format", "generator", "generator_config", ...}`` for phase), so:

- :func:`network_from_model_file` rebuilds the architecture recorded in the file; the bundles'
  ``inference.json`` use it as ``network_def``, so ``ckpt_export`` needs no architecture overrides;
- :func:`checkpoint_key` names the weights entry, the ``--key_in_ckpt`` of ``ckpt_export``.

Command line (what :func:`export_torchscript` runs)::

    python -m monai.bundle ckpt_export network_def --bundle_root bundle/hdl_temporal_interpolation \\
        --config_file bundle/hdl_temporal_interpolation/configs/inference.json \\
        --meta_file bundle/hdl_temporal_interpolation/configs/metadata.json \\
        --ckpt_file runs/interp/model.pt --model_path runs/interp/model.pt --key_in_ckpt state_dict \\
        --use_trace True --input_shape "[1, 7, 128, 128]" --filepath runs/interp/model.ts
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "MODEL_KINDS",
    "model_kind",
    "checkpoint_key",
    "network_from_model_file",
    "input_shape",
    "ckpt_export_args",
    "export_torchscript",
    "load_torchscript",
    "onnx_available",
    "export_onnx",
    "run_onnx",
]

MODEL_KINDS = {"interpolation": "state_dict", "phase": "generator"}
"""Model kind -> key of the weights inside its model file (``ckpt_export --key_in_ckpt``)."""


def _read(path: str | os.PathLike) -> Mapping[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: not an hdl-monai model file (a {type(raw).__name__}, expected a dict)")
    return raw


def model_kind(path_or_payload: str | os.PathLike | Mapping[str, Any]) -> str:
    """``"interpolation"`` or ``"phase"`` for a model file (or its loaded dict); ValueError otherwise."""
    from hdl_monai.engines.interpolation import MODEL_FORMAT as INTERPOLATION_FORMAT
    from hdl_monai.phase_synthesis import MODEL_FORMAT as PHASE_FORMAT

    raw = path_or_payload if isinstance(path_or_payload, Mapping) else _read(path_or_payload)
    fmt = raw.get("format")
    if fmt == INTERPOLATION_FORMAT or ("model_spec" in raw and "network" in raw):
        return "interpolation"
    if fmt == PHASE_FORMAT or ("generator" in raw and "generator_config" in raw):
        return "phase"
    raise ValueError(f"not an hdl-monai model file: format {fmt!r}, keys {sorted(raw)[:8]}")


def checkpoint_key(path: str | os.PathLike) -> str:
    """The weights entry of a model file: ``"state_dict"`` (interpolation) or ``"generator"`` (phase);
    ``"network"`` for an interpolation resume checkpoint."""
    raw = _read(path)
    kind = model_kind(raw)
    if kind == "interpolation" and "state_dict" not in raw:
        return "network"
    return MODEL_KINDS[kind]


def network_from_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The trained network of a model file (architecture from the file, weights loaded, eval mode).

    Used as ``network_def`` by both bundles' ``inference.json`` (and so by ``ckpt_export``, which loads
    the same weights again through ``--key_in_ckpt``) and by the MONAI Label sample app.
    """
    kind = model_kind(path)
    if kind == "interpolation":
        from hdl_monai.engines.interpolation import load_interpolation_model

        return load_interpolation_model(path, device=device).network
    from hdl_monai.phase_synthesis import R2UNet

    raw = _read(path)
    network = R2UNet(**dict(raw["generator_config"]))
    network.load_state_dict(raw["generator"])
    return network.to(device).eval()


def input_shape(path: str | os.PathLike, batch: int = 1) -> list[int]:
    """``[batch, channels, rx, ry]`` of the network input recorded in a model file."""
    raw = _read(path)
    if model_kind(raw) == "interpolation":
        from hdl_monai.engines.interpolation import InterpolationModelSpec

        spec = InterpolationModelSpec.from_dict(raw["spec"] if "spec" in raw else raw["model_spec"])
        return [int(batch), spec.in_channels, *[int(r) for r in spec.roi_size]]
    roi = [int(r) for r in raw["roi_size"]]
    return [int(batch), int(raw["generator_config"].get("in_channels", 3)), *roi]


def ckpt_export_args(
    bundle_dir: str | os.PathLike, model_path: str | os.PathLike, filepath: str | os.PathLike
) -> list[str]:
    """The ``python -m monai.bundle ckpt_export ...`` arguments exporting ``model_path`` of a bundle."""
    bundle_dir, model_path = Path(bundle_dir), Path(model_path)
    return [
        "ckpt_export", "network_def",
        "--bundle_root", str(bundle_dir),
        "--config_file", str(bundle_dir / "configs" / "inference.json"),
        "--meta_file", str(bundle_dir / "configs" / "metadata.json"),
        "--ckpt_file", str(model_path),
        "--model_path", str(model_path),
        "--key_in_ckpt", checkpoint_key(model_path),
        "--use_trace", "True",
        "--input_shape", str(input_shape(model_path)),
        "--filepath", str(filepath),
    ]  # fmt: skip


def export_torchscript(
    bundle_dir: str | os.PathLike, model_path: str | os.PathLike, filepath: str | os.PathLike | None = None
) -> Path:
    """Run MONAI's ``ckpt_export`` in-process on a bundle's model file; returns the ``.ts`` path
    (default: next to the model file, ``model.ts``). The file embeds ``metadata.json`` and
    ``inference.json`` (read them back with :func:`load_torchscript`)."""
    from monai.bundle import ckpt_export

    model_path = Path(model_path)
    filepath = Path(filepath) if filepath is not None else model_path.with_suffix(".ts")
    args = ckpt_export_args(bundle_dir, model_path, filepath)[2:]
    kwargs = {args[i].lstrip("-"): args[i + 1] for i in range(0, len(args), 2)}
    kwargs["use_trace"] = True
    kwargs["input_shape"] = input_shape(model_path)
    ckpt_export("network_def", **kwargs)
    return filepath


def load_torchscript(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict[str, Any], dict[str, Any]]:
    """``(module (eval), metadata dict, {extra file name: content})`` of an exported ``.ts`` file."""
    from monai.data import load_net_with_metadata

    module, meta, extra = load_net_with_metadata(str(path), more_extra_files=("inference.json",))
    return module.eval(), meta, extra


def onnx_available() -> tuple[bool, str]:
    """(whether ONNX export + onnxruntime check can run here, the reason when not)."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        return False, f"ONNX export needs {', '.join(missing)} (pip install onnx onnxscript onnxruntime)"
    return True, ""


def export_onnx(
    model_path: str | os.PathLike, filepath: str | os.PathLike | None = None, dynamic_batch: bool = True
) -> Path:
    """Export a model file's network to ONNX with torch's ``torch.export``-based exporter (``dynamo=True``;
    the legacy TorchScript-based exporter fails on the adaptive pooling of the fusion blocks).

    Input name ``image``, output name ``pred``, shapes as :func:`input_shape`; with ``dynamic_batch`` the
    batch dimension is symbolic.
    """
    model_path = Path(model_path)
    filepath = Path(filepath) if filepath is not None else model_path.with_suffix(".onnx")
    network = network_from_model_file(model_path)
    example = torch.rand(input_shape(model_path, batch=2))
    dynamic_shapes: Any = None
    if dynamic_batch:
        dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}}
    filepath.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        network, (example,), str(filepath), dynamo=True, input_names=["image"], output_names=["pred"],
        dynamic_shapes=dynamic_shapes, verbose=False,
    )  # fmt: skip
    return filepath


def run_onnx(filepath: str | os.PathLike, inputs: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Run an exported ONNX model on the CPU with onnxruntime; returns the ``pred`` output as a tensor."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(filepath), providers=["CPUExecutionProvider"])
    array = torch.as_tensor(inputs, dtype=torch.float32).numpy()
    return torch.from_numpy(session.run(["pred"], {"image": array})[0])

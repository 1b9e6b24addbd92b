"""Temporal-interpolation engines: what the bundle configs need beyond MONAI, and model-based inference.

Training and evaluation use MONAI's ``SupervisedTrainer`` (as its subclass
:class:`~hdl_monai.engines.interpolation_gan.InterpolationGANTrainer`, which only differs with a
discriminator) and ``SupervisedEvaluator``; this module supplies the pieces that tie them to HDL's
samples (see ``hdl_monai.transforms`` for the sample keys):

- :class:`InterpolationPrepareBatch` builds the network input, ``cat(magnitude_pair, mask_pair,
  condition)`` = 7 channels (6 with ``include_K=False``), the same for the multi-head network and the
  plain R2U-Net baseline, and a *packed target* ``[magnitude_target | mask_target | w1 | w2]``
  (4 channels) so the weight maps travel with the label through MONAI's engines;
- :class:`PackedInterpolationLoss` unpacks w1 / w2 from that target and calls
  :class:`~hdl_monai.losses.InterpolationLoss` (weighted MAE on the magnitude + Dice on the mask);
- :class:`InterpolationOutput` is the ``output_transform`` of the metric handlers: the magnitude
  channel for PSNR / SSIM / MSE, plus w1 or w2 for MSEW1 / MSEW2, ``sigmoid(seg) > 0.5`` for Dice;
- :class:`InterpolationGridSampled` makes deterministic validation samples (fixed (tau, K, k) grid);
- :class:`InterpolationModelSpec` records everything needed to rebuild the network (method, class and
  kwargs, ROI size, condition encoding) and whether it was trained adversarially (the GAN variant, see
  :mod:`hdl_monai.engines.interpolation_gan`), and travels in every checkpoint;
  :class:`InterpolationModelExport` is the object a MONAI ``CheckpointSaver`` writes as the user-facing
  ``model.pt``; :data:`MODEL_METHODS` and :func:`check_model_method` tie a model file to the
  interpolation method it serves (``hdl``, ``r2unet`` or ``gan``);
- :func:`interpolate_with_model` rebuilds a down-sampled case with a trained model.

Value conventions: network magnitude channels are normalised to [-1, 1] with the per-series scale of
``hdl_monai.transforms.magnitude_scale`` (99.5th percentile) computed on the LV-centred ROI crop, as in
training; outputs are brought back to scanner units with the same scale. Segmentation outputs are
logits of the binary LV myocardium mask.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.engines.utils import PrepareBatch
from monai.utils import ensure_tuple, ensure_tuple_rep
from scipy import ndimage

from hdl_monai.baselines.optical_flow import (
    TIMINGS,
    hermite_fraction,
    hermite_timing,
    horn_schunck,
    prior_fraction,
    spline_knot_velocities,
)
from hdl_monai.baselines.timing_prior import (
    TIMING_PRIOR_FILE,
    TimingPrior,
    cycle_trajectories,
    fourier_resampler,
    periodic_positions,
)
from hdl_monai.baselines.series import rebuild_series
from hdl_monai.data.atomic import OverwriteError, atomic_write, atomic_write_json
from hdl_monai.data.case import Case, CaseError, load_case, save_case
from hdl_monai.data.datalist import SPLITS, case_dirs, load_datalist, save_datalist
from hdl_monai.losses.weighted import InterpolationLoss
from hdl_monai.networks import MultiHeadMultiTailR2UNet, R2UNet
from hdl_monai.transforms.array import (
    DEFAULT_K_MAX,
    ESTIMATES,
    MAGNITUDE_PERCENTILE,
    CropLVROI,
    check_gap,
    condition_maps,
    crop_roi,
    denormalize_magnitude,
    interpolation_estimate,
    interpolation_plan,
    kept_frames,
    magnitude_scale,
    mask_from_label,
    max_gap,
    normalize_magnitude,
    paste_roi,
)
from hdl_monai.transforms.dictionary import DEFAULT_EXTRA_KEYS, InterpolationSampled

__all__ = [
    "DEFAULT_TIMING",
    "METHODS",
    "MODEL_METHODS",
    "MODEL_FORMAT",
    "InterpolationModelError",
    "InterpolationModelSpec",
    "InterpolationModelExport",
    "InterpolationModel",
    "InterpolationPrepareBatch",
    "PackedInterpolationLoss",
    "InterpolationOutput",
    "InterpolationGridSampled",
    "validation_grid",
    "save_interpolation_model",
    "load_interpolation_model",
    "model_method",
    "check_model_method",
    "predict_batches",
    "estimate_planes",
    "resolve_timing",
    "case_cycle_trajectories",
    "fit_timing_prior",
    "TimingPriorFitter",
    "latest_checkpoint",
    "raise_on_mismatch",
    "check_checkpoint",
    "save_engine_metrics",
    "label_from_segmentation",
    "interpolate_with_model",
    "InterpolationRunner",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMING = "spline"
"""Where a hybrid model's flow guess places in-between frames at inference when its model has no timing prior
for the series (see :func:`estimate_planes` and :func:`resolve_timing`); with one (``timing_prior.json`` beside
the model file, learned at the series' frame count) the default is ``"learned"``."""

METHODS = ("hdl", "r2unet")
"""Network methods: ``"hdl"`` = multi-head multi-tail R2U-Net, ``"r2unet"`` = plain R2U-Net on the 7 channels."""
MODEL_METHODS = {
    "hdl": "the multi-head multi-tail R2U-Net trained without a discriminator",
    "r2unet": "the plain R2U-Net",
    "gan": "the multi-head multi-tail R2U-Net trained with a PatchGAN loss, train.json --gan True",
}
"""The interpolation methods served by a model file (Table III rows), and what each needs of the model."""
MODEL_FORMAT = "hdl_monai.interpolation_model"
MODEL_FORMAT_VERSION = 1
INPUT_KEYS = ("magnitude_pair", "mask_pair", "condition")
TARGET_KEYS = ("magnitude_target", "mask_target", "w1", "w2")
_NETWORK_CLASSES = {"hdl": MultiHeadMultiTailR2UNet, "r2unet": R2UNet}
_SPEC_CHECKED = (
    "method", "network", "roi_size", "K_max", "include_K", "mask_labels", "magnitude_percentile", "adversarial",
    "estimate",
)


class InterpolationModelError(ValueError):
    """A model file that is not an interpolation model, or that does not match what the caller expects."""


# --------------------------------------------------------------------------------------------- model spec


def _json_value(v: Any) -> Any:
    """Tuples to lists, recursively, so that a spec compares equal to its JSON / torch.load round trip."""
    if isinstance(v, (list, tuple)):
        return [_json_value(i) for i in v]
    if isinstance(v, Mapping):
        return {str(k): _json_value(i) for k, i in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass
class InterpolationModelSpec:
    """What a trained interpolation network is: enough to rebuild it and to feed it the right inputs.

    Args:
        method: ``"hdl"`` (:class:`~hdl_monai.networks.MultiHeadMultiTailR2UNet`) or ``"r2unet"``
            (:class:`~hdl_monai.networks.R2UNet` on the 7-channel ``"image"``, 2 output channels).
        network_kwargs: the free network arguments (``channels``, ``recurrence``, ``act``, ``norm``,
            ``dropout``, ...); the channel counts follow from ``method`` and ``include_K``.
        roi_size: (rx, ry) of the LV-centred crop the network sees, pixels.
        K_max: scale of the K condition plane (plane 2 = K / K_max).
        include_K: whether the K plane is an input (3 condition planes; False = the paper's 2).
        K_range: the K the model was trained on (inclusive); inference refuses other K.
        mask_labels: label values forming the binary mask input / output (default LV myocardium).
        magnitude_percentile: percentile of the cropped series mapped to +1 by normalisation.
        adversarial: trained with a PatchGAN discriminator (the GAN variant of Table III; ``method`` must be
            ``"hdl"``). The network is the same; the flag keeps ``hdl`` and ``gan`` models apart. Files
            written before the flag existed read as False.
        estimate: None, or a classical guess of the target frame given as two more input channels (one of
            ``hdl_monai.transforms.ESTIMATES``: ``"optical_flow"``); with ``method="hdl"`` the guess is
            also the input-to-output skip (the hybrid network, ``estimate_channels=2``). Files written
            before the setting existed read as None.
    """

    method: str = "hdl"
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    roi_size: Sequence[int] = (128, 128)
    K_max: int = DEFAULT_K_MAX
    include_K: bool = True
    K_range: Sequence[int] = (1, DEFAULT_K_MAX)
    mask_labels: Sequence[int] = (1,)
    magnitude_percentile: float = MAGNITUDE_PERCENTILE
    adversarial: bool = False
    estimate: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        self.network_kwargs = dict(_json_value(dict(self.network_kwargs)))
        self.roi_size = [int(s) for s in ensure_tuple_rep(self.roi_size, 2)]
        self.K_max = int(self.K_max)
        self.K_range = [int(k) for k in ensure_tuple(self.K_range)]
        self.mask_labels = [int(v) for v in ensure_tuple(self.mask_labels)]
        self.include_K = bool(self.include_K)
        self.magnitude_percentile = float(self.magnitude_percentile)
        self.adversarial = bool(self.adversarial)
        if self.estimate is not None and self.estimate not in ESTIMATES:
            raise ValueError(f"estimate must be None or one of {list(ESTIMATES)}, got {self.estimate!r}")
        if self.adversarial and self.method != "hdl":
            raise ValueError(f"the GAN variant trains the 'hdl' network; adversarial=True with method {self.method!r}")
        if len(self.K_range) != 2 or not 1 <= self.K_range[0] <= self.K_range[1]:
            raise ValueError(f"K_range must be [low, high] with 1 <= low <= high, got {self.K_range}")
        if self.include_K and self.K_range[1] > self.K_max:
            raise ValueError(f"K_range {self.K_range} exceeds K_max {self.K_max} (the K plane would leave [0, 1])")

    @property
    def condition_channels(self) -> int:
        return 3 if self.include_K else 2

    @property
    def estimate_channels(self) -> int:
        """Input channels of the classical guess: 2 ([magnitude, mask]) with ``estimate``, else 0."""
        return 0 if self.estimate is None else 2

    @property
    def in_channels(self) -> int:
        """Network input channels: magnitude pair 2 + mask pair 2 + condition planes (+ estimate 2)."""
        return 4 + self.condition_channels + self.estimate_channels

    def network_config(self) -> dict[str, Any]:
        """``{"class": dotted class name, "kwargs": full constructor arguments}``."""
        kwargs = {"spatial_dims": 2, **self.network_kwargs}
        if self.method == "hdl":
            kwargs.update(
                magnitude_channels=2, mask_channels=2, condition_channels=self.condition_channels, segmentation_channels=1
            )
            if self.estimate is not None:
                kwargs["estimate_channels"] = self.estimate_channels
        else:
            kwargs.update(in_channels=self.in_channels, out_channels=2)
        cls = _NETWORK_CLASSES[self.method]
        return {"class": f"{cls.__module__}.{cls.__qualname__}", "kwargs": _json_value(kwargs)}

    def build_network(self) -> nn.Module:
        """A freshly initialised network of this spec (input 7 (or 6) channels, output [magnitude | seg logit])."""
        return _build_from_config(self.network_config())

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "network": self.network_config(),
            "network_kwargs": dict(self.network_kwargs),
            "roi_size": list(self.roi_size),
            "K_max": self.K_max,
            "include_K": self.include_K,
            "K_range": list(self.K_range),
            "mask_labels": list(self.mask_labels),
            "magnitude_percentile": self.magnitude_percentile,
            "adversarial": self.adversarial,
            "estimate": self.estimate,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InterpolationModelSpec:
        return cls(
            method=d["method"],
            network_kwargs=dict(d.get("network_kwargs", {})),
            roi_size=d["roi_size"],
            K_max=d.get("K_max", DEFAULT_K_MAX),
            include_K=d.get("include_K", True),
            K_range=d.get("K_range", (1, DEFAULT_K_MAX)),
            mask_labels=d.get("mask_labels", (1,)),
            magnitude_percentile=d.get("magnitude_percentile", MAGNITUDE_PERCENTILE),
            adversarial=d.get("adversarial", False),
            estimate=d.get("estimate"),
        )

    def differences(self, other: Mapping[str, Any] | InterpolationModelSpec) -> dict[str, tuple[Any, Any]]:
        """``{setting: (this, other)}`` for every setting that changes the network, its inputs or how it is
        trained (``adversarial``); network arguments are compared one by one (``channels``, ``recurrence``,
        ...), the class as ``network``."""
        other = other if isinstance(other, InterpolationModelSpec) else InterpolationModelSpec.from_dict(other)
        mine, theirs = _flat_spec(self.to_dict()), _flat_spec(other.to_dict())
        return {k: (mine.get(k), theirs.get(k)) for k in dict.fromkeys([*mine, *theirs]) if mine.get(k) != theirs.get(k)}

    # ignite Checkpoint protocol: the spec is saved in every resume checkpoint
    def state_dict(self) -> dict[str, Any]:
        return self.to_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Refuse (InterpolationModelError) a saved spec that differs in what shapes the network."""
        raise_on_mismatch("checkpoint", InterpolationModelSpec.from_dict(state), self)


def _flat_spec(d: Mapping[str, Any]) -> dict[str, Any]:
    """The checked settings of a spec dict, with the network class and each network argument as its own key."""
    flat = {k: d[k] for k in _SPEC_CHECKED if k != "network"}
    flat["network"] = d["network"]["class"]
    flat.update({k: v for k, v in d["network"]["kwargs"].items()})
    return flat


def raise_on_mismatch(source: str, saved: InterpolationModelSpec, wanted: InterpolationModelSpec | Mapping[str, Any]) -> None:
    """Raise InterpolationModelError "<source> was trained for a=..., config says a=..." naming only the
    settings that differ between the ``saved`` spec and the ``wanted`` one (a spec, or a partial dict of
    flat settings such as ``{"method": "hdl", "roi_size": [128, 128], "channels": [8, 16]}``)."""
    have = _flat_spec(saved.to_dict())
    if isinstance(wanted, InterpolationModelSpec):
        want = _flat_spec(wanted.to_dict())
    else:
        unknown = sorted(set(wanted) - set(have) - {"K_range"})
        if unknown:
            raise ValueError(f"unknown model settings {unknown}; known: {sorted(have)}")
        want = {k: _json_value(v) for k, v in wanted.items()}
        have["K_range"] = list(saved.K_range)
    keys = [k for k in dict.fromkeys([*have, *want]) if k in want and have.get(k) != want[k]]
    if keys:
        trained = ", ".join(f"{k}={have.get(k)!r}" for k in keys)
        asked = ", ".join(f"{k}={want[k]!r}" for k in keys)
        raise InterpolationModelError(f"{source} was trained for {trained}, config says {asked}")


def _build_from_config(config: Mapping[str, Any]) -> nn.Module:
    name = config["class"]
    classes = {f"{c.__module__}.{c.__qualname__}": c for c in _NETWORK_CLASSES.values()}
    if name not in classes:
        raise InterpolationModelError(f"unknown interpolation network class {name!r}; expected one of {sorted(classes)}")
    return classes[name](**dict(config["kwargs"]))


def _unwrap(network: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper."""
    return network.module if isinstance(network, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else network


class InterpolationModelExport:
    """The user-facing model file as an object a MONAI ``CheckpointSaver`` can save (and a loader load).

    ``state_dict()`` = ``{"format", "format_version", "spec", "state_dict"}``: the network weights
    (without a DDP ``module.`` prefix) and the :class:`InterpolationModelSpec` as plain data, so
    ``torch.load(path, weights_only=True)`` reads it and :func:`load_interpolation_model` rebuilds the
    network without the bundle config. Saved alone by a ``CheckpointSaver``, this dict is the whole file.
    """

    def __init__(self, network: nn.Module, spec: InterpolationModelSpec) -> None:
        self.network, self.spec = network, spec

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "spec": self.spec.to_dict(),
            "state_dict": _unwrap(self.network).state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.spec.load_state_dict(state["spec"])
        _unwrap(self.network).load_state_dict(state["state_dict"])


def save_interpolation_model(path: str | os.PathLike, network: nn.Module, spec: InterpolationModelSpec) -> Path:
    """Write the model file (see :class:`InterpolationModelExport`) atomically."""
    state = InterpolationModelExport(network, spec).state_dict()
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


@dataclass
class InterpolationModel:
    """A loaded model: the network (eval mode, on its device), its spec and the file it came from."""

    network: nn.Module
    spec: InterpolationModelSpec
    path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    timing_prior: TimingPrior | None = None
    """The learned timing prior found beside the model file (``timing_prior.json``), if any."""


def load_interpolation_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", expect: Mapping[str, Any] | None = None
) -> InterpolationModel:
    """Rebuild a trained network from a model file.

    Reads the user format (``model.pt`` / ``model_best.pt``, see :class:`InterpolationModelExport`) and
    also a resume checkpoint of the bundle (``checkpoint_*.pt``: ``network`` + ``model_spec`` entries).

    Args:
        path: the file.
        device: where to put the network.
        expect: settings the caller relies on, e.g. ``{"method": "hdl", "roi_size": [128, 128]}`` (spec
            keys, network arguments such as ``channels``, or ``K_range``); any that differ from the file
            raise InterpolationModelError "checkpoint <path> was trained for ..., config says ...".

    Raises:
        FileNotFoundError: no such file. InterpolationModelError: not an interpolation model, or a mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (train one with the hdl_temporal_interpolation bundle)")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(raw, Mapping) and raw.get("format") == MODEL_FORMAT:
        spec_dict, weights = raw["spec"], raw["state_dict"]
    elif isinstance(raw, Mapping) and "model_spec" in raw and "network" in raw:
        spec_dict, weights = raw["model_spec"], raw["network"]
    else:
        keys = sorted(raw)[:8] if isinstance(raw, Mapping) else type(raw).__name__
        raise InterpolationModelError(
            f"{path}: not an hdl-monai interpolation model (expected format {MODEL_FORMAT!r} with 'spec' and "
            f"'state_dict', or a bundle checkpoint with 'network' and 'model_spec'; found {keys})"
        )
    spec = InterpolationModelSpec.from_dict(spec_dict)
    if expect:
        raise_on_mismatch(f"checkpoint {path}", spec, expect)
    network = spec.build_network()
    try:
        network.load_state_dict(weights)
    except RuntimeError as err:
        raise InterpolationModelError(f"{path}: weights do not fit the recorded network {spec.network_config()}: {err}")
    device = torch.device(device)
    network.to(device).eval()
    prior_path = path.parent / TIMING_PRIOR_FILE
    prior = TimingPrior.load(prior_path) if spec.estimate is not None and prior_path.is_file() else None
    return InterpolationModel(network, spec, path, device, prior)


def resolve_timing(model: InterpolationModel, timing: str | None, frames: int | None = None) -> str:
    """The timing a hybrid model's flow guess uses: ``timing`` when given; else ``"learned"`` when the model
    has a timing prior learned at the series' number of ``frames`` per cycle (any, when ``frames`` is None),
    and :data:`DEFAULT_TIMING` when not. A prior from series of another length comes from another protocol
    (the phantom's 50 frames, say, against a scanner's 20), where its cycle is not to be trusted by default;
    ``timing="learned"`` still uses it, resampled.

    Raises:
        ValueError: an unknown timing, or ``"learned"`` for a model without a prior (names the missing file).
    """
    prior = model.timing_prior
    if timing is None:
        fits = prior is not None and (frames is None or prior.frames == int(frames))
        return "learned" if fits else DEFAULT_TIMING
    if timing not in TIMINGS:
        raise ValueError(f"timing must be one of {list(TIMINGS)}, got {timing!r}")
    if timing == "learned" and prior is None and model.spec.estimate is not None:
        where = Path(model.path).parent / TIMING_PRIOR_FILE if model.path else TIMING_PRIOR_FILE
        raise ValueError(f"timing 'learned' needs a timing prior, and {where} does not exist "
                         "(make it with `hdl-monai fit-timing-prior DATASET MODEL`)")
    return timing


def model_method(spec: InterpolationModelSpec) -> str:
    """The interpolation method (a key of :data:`MODEL_METHODS`) a model of this spec serves: ``"gan"`` for
    an adversarially trained network, else ``spec.method``."""
    return "gan" if spec.adversarial else spec.method


def check_model_method(model: InterpolationModel, method: str) -> None:
    """Refuse a model that is not the one ``method`` needs, so that the Table III rows cannot be mixed up:
    ``"hdl"`` takes only networks trained without a discriminator, ``"gan"`` only adversarially trained ones.

    Raises:
        ValueError: ``method`` is not one of :data:`MODEL_METHODS`. InterpolationModelError: the model serves
            another method (the message names the file and both methods).
    """
    if method not in MODEL_METHODS:
        raise ValueError(f"method must be one of {list(MODEL_METHODS)}, got {method!r}")
    have = model_method(model.spec)
    if have != method:
        raise InterpolationModelError(
            f"model {model.path} is for method {have!r} ({MODEL_METHODS[have]}), "
            f"not {method!r} ({MODEL_METHODS[method]})"
        )


_EPOCH_FILE = re.compile(r"_epoch=(\d+)\.pt$")


def latest_checkpoint(ckpt_dir: str | os.PathLike, prefix: str = "checkpoint") -> str | None:
    """The newest resume checkpoint in ``ckpt_dir`` (``<prefix>_epoch=N.pt`` or ``<prefix>_final.pt``,
    whichever was written last), or None when there is none."""
    files = glob.glob(os.path.join(os.fspath(ckpt_dir), f"{glob.escape(prefix)}_epoch=*.pt"))
    files += glob.glob(os.path.join(os.fspath(ckpt_dir), f"{glob.escape(prefix)}_final.pt"))
    if not files:
        return None

    def order(f: str) -> tuple[float, int]:
        m = _EPOCH_FILE.search(f)
        return os.path.getmtime(f), int(m.group(1)) if m else 1 << 30

    return max(files, key=order)


def _saved_spec(raw: Any) -> Mapping[str, Any] | None:
    """The spec recorded in a model file (``spec``) or a resume checkpoint (``model_spec``), else None."""
    if not isinstance(raw, Mapping):
        return None
    if raw.get("format") == MODEL_FORMAT:
        return raw.get("spec")
    return raw.get("model_spec")


def check_checkpoint(
    ckpt_path: str | os.PathLike | None, spec: InterpolationModelSpec, required: bool = False
) -> bool:
    """True when ``ckpt_path`` exists and was trained for ``spec``; False when it is None or absent
    (unless ``required``). Reads model files and resume checkpoints alike.

    Raises:
        InterpolationModelError: the recorded spec differs in anything that shapes the network or its
            inputs (the message names the file, what it was trained for and what the config says), or the
            file records no spec. FileNotFoundError: ``required`` and no file.
    """
    if ckpt_path is None or not os.path.isfile(ckpt_path):
        if required:
            raise FileNotFoundError(f"checkpoint {ckpt_path}: no such file")
        return False
    saved = _saved_spec(torch.load(ckpt_path, map_location="cpu", weights_only=True))
    if saved is None:
        raise InterpolationModelError(f"checkpoint {ckpt_path} records no model spec; cannot check it against the config")
    raise_on_mismatch(f"checkpoint {ckpt_path}", InterpolationModelSpec.from_dict(saved), spec)
    return True


def save_engine_metrics(engine: Any, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> Path:
    """Write an evaluator's metrics (``engine.state.metrics``, means over samples) and per-sample values
    (``engine.state.metric_details``) to a JSON file; returns its path."""
    details = {}
    for name, values in (getattr(engine.state, "metric_details", None) or {}).items():
        details[name] = np.asarray(torch.as_tensor(values).float().cpu()).reshape(-1).tolist()
    payload = {
        "metrics": {k: float(v) for k, v in engine.state.metrics.items()},
        "samples": max((len(v) for v in details.values()), default=0),
        "per_sample": details,
        **dict(extra or {}),
    }
    return atomic_write_json(Path(path), _json_value(payload), overwrite=True)


# --------------------------------------------------------------------------------------------- engine glue


def _plain_tensor(x: Any) -> torch.Tensor:
    x = torch.as_tensor(x)
    as_tensor = getattr(x, "as_tensor", None)
    return as_tensor() if callable(as_tensor) else x


class InterpolationPrepareBatch(PrepareBatch):
    """``prepare_batch`` for MONAI engines: (network input, packed target) from a collated sample batch.

    input  = cat(``input_keys``) along channels, default magnitude_pair (2) | mask_pair (2) | condition (3);
    target = cat(``target_keys``), default magnitude_target (1) | mask_target (1) | w1 (1) | w2 (1).
    Without a target key in the batch (inference) the target is None.

    Args:
        input_keys: batch keys concatenated into the input (``("image",)`` gives the same 7 channels).
        target_keys: batch keys concatenated into the packed target.
        estimate: the model's ``estimate`` setting: when set, ``"estimate"`` (2 channels) is appended to
            ``input_keys``.
    """

    def __init__(
        self,
        input_keys: Sequence[str] = INPUT_KEYS,
        target_keys: Sequence[str] = TARGET_KEYS,
        estimate: str | None = None,
    ) -> None:
        self.input_keys = tuple(ensure_tuple(input_keys)) + (("estimate",) if estimate else ())
        self.target_keys = tuple(ensure_tuple(target_keys))

    def __call__(
        self, batchdata: Mapping[str, Any], device: str | torch.device | None = None, non_blocking: bool = False, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        missing = [k for k in self.input_keys if k not in batchdata]
        if missing:
            raise KeyError(f"InterpolationPrepareBatch: batch lacks input keys {missing}; has {sorted(batchdata)}")
        inputs = torch.cat([_plain_tensor(batchdata[k]).float() for k in self.input_keys], dim=1)
        inputs = inputs.to(device=device, non_blocking=non_blocking, **kwargs)
        if not all(k in batchdata for k in self.target_keys):
            return inputs, None
        targets = torch.cat([_plain_tensor(batchdata[k]).float() for k in self.target_keys], dim=1)
        return inputs, targets.to(device=device, non_blocking=non_blocking, **kwargs)


class PackedInterpolationLoss(InterpolationLoss):
    """:class:`~hdl_monai.losses.InterpolationLoss` on a packed target ``[magnitude | mask (S) | w1 | w2]``.

    ``pred`` has 1 + S channels (magnitude, S segmentation logits); the last two target channels are the
    weight maps w1 and w2 (paper eq. 1). Arguments as :class:`InterpolationLoss`.
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n = pred.shape[1]
        if target.shape[1] != n + 2:
            raise ValueError(
                f"packed target needs {n + 2} channels (magnitude, {n - 1} mask, w1, w2) for a {n}-channel "
                f"prediction, got {target.shape[1]}"
            )
        return super().forward(pred, target[:, :n], target[:, n : n + 1], target[:, n + 1 : n + 2])


def _batched(output: Any, key: str) -> torch.Tensor:
    """``output[key]`` as a batch-first tensor, from an engine output dict or a decollated list of dicts."""
    if isinstance(output, (list, tuple)):
        return torch.stack([_plain_tensor(o[key]) for o in output])
    return _plain_tensor(output[key])


class InterpolationOutput:
    """``output_transform`` for the metric handlers on engines fed by :class:`InterpolationPrepareBatch`.

    Args:
        part: ``"magnitude"`` -> (pred magnitude, target magnitude) for PSNR / SSIM / MSE;
            ``"w1"`` / ``"w2"`` -> (pred magnitude, target magnitude, weight map) for MSEW1 / MSEW2;
            ``"mask"`` -> (sigmoid(seg logit) > threshold as float, target mask) for Dice.
        threshold: mask probability threshold.
        pred_key, label_key: engine output keys (MONAI's ``"pred"`` and ``"label"``).

    Works with ``decollate`` True (a list of per-sample dicts) or False (one batch dict).
    """

    def __init__(self, part: str = "magnitude", threshold: float = 0.5, pred_key: str = "pred", label_key: str = "label"):
        if part not in ("magnitude", "w1", "w2", "mask"):
            raise ValueError(f"part must be 'magnitude', 'w1', 'w2' or 'mask', got {part!r}")
        self.part, self.threshold = part, float(threshold)
        self.pred_key, self.label_key = pred_key, label_key

    def __call__(self, output: Any) -> tuple[torch.Tensor, ...]:
        pred, label = _batched(output, self.pred_key).float(), _batched(output, self.label_key).float()
        n = pred.shape[1]
        if self.part == "mask":
            return (torch.sigmoid(pred[:, 1:2]) > self.threshold).float(), label[:, 1:2]
        if self.part == "magnitude":
            return pred[:, :1], label[:, :1]
        channel = n if self.part == "w1" else n + 1
        return pred[:, :1], label[:, :1], label[:, channel : channel + 1]


def validation_grid(T: int, Ks: Sequence[int] = (1, 3, 6), taus_per_K: int = 2) -> list[tuple[int, int, int]]:
    """Fixed (tau, K, k) queries for validation: for each K of ``Ks`` that fits T, ``taus_per_K`` evenly
    spaced tau (first at frame 0) with the middle target ``k = (K + 1) // 2`` (the farthest from both kept
    frames). K that do not fit T are skipped; ValueError when none fits."""
    out = []
    for K in Ks:
        if not 1 <= int(K) <= max_gap(T):
            continue
        for i in range(int(taus_per_K)):
            out.append((int(round(i * T / taus_per_K)) % T, int(K), (int(K) + 1) // 2))
    if not out:
        check_gap(min(int(k) for k in Ks), T)  # raises, naming K and T
    return out


class InterpolationGridSampled(InterpolationSampled):
    """Deterministic validation samples: one :class:`~hdl_monai.transforms.InterpolationSampled` sample per
    (tau, K, k) of :func:`validation_grid`; returns a list of dicts (flattened by MONAI's collate).

    Being deterministic, it is cached by ``CacheDataset``, and every validation sees the same queries.

    Args:
        Ks: gaps to validate on (those that do not fit a case's T are skipped).
        taus_per_K: start frames per K.
        others: as :class:`~hdl_monai.transforms.InterpolationSampled` (``keep_series`` defaults to False).
    """

    def __init__(
        self,
        Ks: Sequence[int] = (1, 3, 6),
        taus_per_K: int = 2,
        magnitude_key: str = "magnitude",
        label_key: str = "label",
        extra_keys: Sequence[str] = DEFAULT_EXTRA_KEYS,
        K_max: int = DEFAULT_K_MAX,
        mask_labels: Sequence[int] | int = (1,),
        include_K: bool = True,
        keep_series: bool = False,
        estimate: str | None = None,
        timing: str = "linear",
    ) -> None:
        super().__init__(
            0, 1, 1, magnitude_key, label_key, extra_keys, K_max, mask_labels, include_K, keep_series,
            estimate=estimate, timing=timing,
        )
        self.Ks = tuple(int(k) for k in ensure_tuple(Ks))
        self.taus_per_K = int(taus_per_K)

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:  # type: ignore[override]
        series = data[self.magnitude_key]
        T = int(series.shape[-1])
        return [self._sample(data, tau, K, k) for tau, K, k in validation_grid(T, self.Ks, self.taus_per_K)]


# --------------------------------------------------------------------------------------------- inference


def label_from_segmentation(probability: np.ndarray, threshold: float = 0.5, largest_component: bool = True) -> np.ndarray:
    """Label map (uint8) of one frame from the myocardium probability: 1 where ``probability > threshold``
    (the largest 8-connected component when ``largest_component``), 2 for the cavity it encloses
    (binary fill holes minus the myocardium), 0 elsewhere. The RV (label 3) is not predicted."""
    myo = np.asarray(probability) > threshold
    if largest_component and myo.any():
        components, n = ndimage.label(myo, structure=np.ones((3, 3), bool))
        if n > 1:
            sizes = ndimage.sum_labels(myo, components, index=np.arange(1, n + 1))
            myo = components == (1 + int(np.argmax(sizes)))
    cavity = ndimage.binary_fill_holes(myo) & ~myo
    label = np.zeros(myo.shape, np.uint8)
    label[myo] = 1
    label[cavity] = 2
    return label


def _check_case_for_model(case: Case, K: int, spec: InterpolationModelSpec) -> list[int]:
    T = case.frames
    try:
        check_gap(K, T)
    except ValueError as err:
        raise ValueError(f"{case.name}: {err}") from None
    lo, hi = spec.K_range
    if not lo <= int(K) <= hi:
        raise ValueError(f"{case.name}: K={K} outside the range the model was trained for, K_range {spec.K_range}")
    kept = kept_frames(T, K)
    if case.label is None:
        raise CaseError(f"{case.name}: no label.nii.gz; model interpolation needs the LV labels of the kept frames {kept}")
    if case.labelled_frames is not None:
        missing = sorted(set(kept) - set(case.labelled_frames))
        if missing:
            raise CaseError(f"{case.name}: labels missing on kept frames {missing} (labelled_frames {case.labelled_frames})")
    return kept


@torch.no_grad()
def predict_batches(model: InterpolationModel, inputs: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """Network outputs, float32 (N, C_out, rx, ry), for N inputs (C_in, rx, ry): eval mode, no gradient,
    ``batch_size`` inputs per forward pass on the model's device."""
    model.network.eval()
    batch = torch.from_numpy(np.stack(inputs))
    step = max(1, int(batch_size))
    outputs = [model.network(batch[i : i + step].to(model.device)).float().cpu() for i in range(0, len(batch), step)]
    return torch.cat(outputs).numpy()


def estimate_planes(
    spec: InterpolationModelSpec,
    roi: np.ndarray,
    roi_mask: np.ndarray | None,
    plan: Sequence[Any],
    timing: str = DEFAULT_TIMING,
    prior: TimingPrior | None = None,
) -> list[np.ndarray]:
    """The classical guesses (2, rx, ry) a model of ``spec`` takes, one per step of an ``interpolation_plan``
    (an empty list when ``spec.estimate`` is None). ``roi`` / ``roi_mask``: (rx, ry, T) normalised magnitude
    and binary mask series (only the steps' kept frames are read; ``roi_mask`` None: zero mask planes).
    The optical flow of each kept pair is computed once and shared by the steps between them.

    ``timing`` places each in-between frame along its gap's flow: ``"linear"`` at the constant-speed
    fraction k / (K + 1) (how the network was trained), ``"cubic"`` by
    :func:`~hdl_monai.baselines.optical_flow.hermite_timing` from the neighbouring gaps' flows (a gap that
    moves faster than its neighbours gets a slow-fast-slow S-curve, so a velocity peak between kept frames
    is not flattened; benchmarks/results/phase_sampling_bound.md), ``"spline"`` by the same Hermite
    fraction with the speeds at the kept frames of a periodic spline through all of them
    (:func:`~hdl_monai.baselines.optical_flow.spline_knot_velocities`), ``"learned"`` by the positions
    ``prior`` (a :class:`~hdl_monai.baselines.timing_prior.TimingPrior`, required then) predicts for every frame
    of the cycle from the kept frames' (the running sum of the gaps' flows, pixel by pixel): the frame is
    warped by the whole predicted displacement (``offset`` of
    :func:`~hdl_monai.baselines.optical_flow.interpolate_flow`), so a pixel's path may leave the straight line
    of its gap's flow (a rotation that starts as the wall moves in, a twist that reverses within the gap);
    the blend weights are that displacement projected on the gap's flow
    (:func:`~hdl_monai.baselines.optical_flow.prior_fraction`, within [0, 1]).
    """
    if timing not in TIMINGS:
        raise ValueError(f"timing must be one of {list(TIMINGS)}, got {timing!r}")
    if timing == "learned" and prior is None and spec.estimate is not None:
        raise ValueError("timing 'learned' needs a timing prior (prior=None)")
    if spec.estimate is None or not plan:
        return []
    T = roi.shape[-1]
    kept = kept_frames(T, max(step.K for step in plan))
    gaps = [((a, b % T), b - a) for a, b in zip(kept, kept[1:] + [T])]
    smooth = timing != "linear" and len(gaps) > 1  # one gap has no neighbours to take a speed from
    needed = {pair for pair, _ in gaps} if smooth else {(step.tau, (step.tau + step.K + 1) % T) for step in plan}
    flows = {pair: horn_schunck(roi[..., pair[0]], roi[..., pair[1]]) for pair in sorted(needed)}
    index = {pair: i for i, (pair, _) in enumerate(gaps)}
    if smooth and timing in ("spline", "learned"):  # both read the whole cycle's gaps
        gap_flows, gap_lengths = np.stack([flows[pair] for pair, _ in gaps]), [g for _, g in gaps]
    if smooth and timing == "spline":
        knots = spline_knot_velocities(gap_flows, gap_lengths)
    if smooth and timing == "learned":
        # the kept frames' positions (running sum of the gaps' flows, net drift out), pixel by pixel
        periodic, drift = periodic_positions(gap_flows, gap_lengths)
        track = np.tensordot(prior.weights(T, kept), periodic, axes=(1, 0))  # (T, 2, X, Y)
        track += np.arange(T, dtype=float)[:, None, None, None] * drift
    out = []
    for step in plan:
        pair = (step.tau, (step.tau + step.K + 1) % T)
        alpha: float | np.ndarray = step.k / (step.K + 1)
        offset = None
        if smooth:
            i, nxt = index[pair], (index[pair] + 1) % len(gaps)
            if timing == "spline":
                alpha = hermite_fraction(flows[pair], gaps[i][1], knots[i], knots[nxt], alpha)
            elif timing == "learned":
                offset = track[step.target] - track[step.tau]
                alpha = prior_fraction(flows[pair], offset, alpha)  # blend weights only
            else:
                (before, g0), (after, g1) = gaps[i - 1], gaps[nxt]
                alpha = hermite_timing(flows[pair], gaps[i][1], (flows[before], g0), (flows[after], g1), alpha)
        masks = (None, None) if roi_mask is None else (roi_mask[..., pair[0]], roi_mask[..., pair[1]])
        out.append(interpolation_estimate(spec.estimate, roi[..., pair[0]], roi[..., pair[1]], alpha, *masks,
                                          flow=flows[pair], offset=offset))
    return out


def case_cycle_trajectories(
    case: Case,
    spec: InterpolationModelSpec,
    pixels: int = 400,
    rng: np.random.Generator | int | None = 0,
    dilate_px: int = 2,
) -> np.ndarray:
    """Trajectories (2 P, T) of up to ``pixels`` pixels of one full-frame case, for a
    :class:`~hdl_monai.baselines.timing_prior.TimingPrior`: on the model's LV-centred ROI with its magnitude
    normalisation, Horn-Schunck flows between every pair of consecutive frames (the last back to frame 0),
    positions by :func:`~hdl_monai.baselines.timing_prior.cycle_trajectories`, at pixels of the mask
    (``spec.mask_labels``) of the first labelled frame that has any (frame 0 when every frame is labelled),
    grown by ``dilate_px`` and drawn at random with ``rng``.

    Raises:
        CaseError: no label, fewer than 3 frames, or no labelled frame with a pixel of the mask labels.
    """
    if case.label is None:
        raise CaseError(f"{case.name}: a timing prior needs a label.nii.gz (the mask {spec.mask_labels} of a frame)")
    T = case.frames
    if T < 3:
        raise CaseError(f"{case.name}: {T} frames; a cycle needs at least 3")
    labelled = sorted(case.labelled_frames) if case.labelled_frames else range(T)
    first = next((int(f) for f in labelled if np.isin(case.label[..., f], spec.mask_labels).any()), None)
    if first is None:
        raise CaseError(f"{case.name}: no labelled frame has a pixel with label {spec.mask_labels}")
    label = case.label[..., first : first + 1]
    box = CropLVROI(spec.roi_size, on_missing="image_center").compute_box(case.magnitude.shape[:2], label=label)
    roi_mag = crop_roi(case.magnitude, box, "min")
    roi = normalize_magnitude(roi_mag, magnitude_scale(roi_mag, spec.magnitude_percentile))
    mask = mask_from_label(crop_roi(label, box, 0), spec.mask_labels)[..., 0] > 0
    if dilate_px > 0:
        mask = ndimage.binary_dilation(mask, iterations=int(dilate_px))
    flows = np.stack([horn_schunck(roi[..., t], roi[..., (t + 1) % T]) for t in range(T)])
    rows = cycle_trajectories(flows, mask)  # (2 P_all, T): x rows then y rows
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    count = rows.shape[0] // 2
    chosen = np.sort(rng.choice(count, size=min(int(pixels), count), replace=False))
    return np.concatenate([rows[chosen], rows[count + chosen]])


def fit_timing_prior(
    dataset: str | os.PathLike,
    model: str | os.PathLike | InterpolationModel | InterpolationModelSpec,
    split: str = "training",
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    pixels: int = 400,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Learn the "learned" timing of a hybrid interpolation model from the full-frame cases of a split and
    write it (default: ``timing_prior.json`` beside the model file, where inference finds it; ``model`` may
    also be a bare spec, with ``out``).

    Every case gives :func:`case_cycle_trajectories` on the model's ROI settings; cases of another length
    than the most common one are resampled to it (periodic Fourier interpolation). Only magnitude and the
    labels of one frame are read, so any training set of the interpolation network serves (no velocity needed).

    Raises:
        FileNotFoundError: no dataset / model. OverwriteError: the output exists and not ``overwrite``.
        CaseError: a case that cannot give trajectories (named). ValueError: the split is empty.
    """
    from tqdm.auto import tqdm

    if isinstance(model, InterpolationModelSpec):
        if out is None:
            raise ValueError("fit_timing_prior: give out= when passing a model spec instead of a model file")
        spec = model
    else:
        loaded = model if isinstance(model, InterpolationModel) else load_interpolation_model(model)
        spec = loaded.spec
    target = Path(out) if out is not None else Path(loaded.path).parent / TIMING_PRIOR_FILE
    if target.exists() and not overwrite:
        raise OverwriteError(f"{target}: exists; pass overwrite=True (--overwrite) to replace it")
    dirs = case_dirs(dataset, [split])
    if not dirs:
        raise ValueError(f"{dataset}: no cases in split {split!r}")
    rng = np.random.default_rng(seed)
    per_case = []
    for case_dir in tqdm(dirs, desc=f"timing prior ({split})", unit="case", disable=not progress):
        per_case.append(case_cycle_trajectories(load_case(case_dir), spec, pixels, rng))
    lengths = [rows.shape[1] for rows in per_case]
    frames = max(set(lengths), key=lambda n: (lengths.count(n), n))
    rows = np.concatenate([r if r.shape[1] == frames else r @ fourier_resampler(r.shape[1], frames).T for r in per_case])
    prior = TimingPrior.fit(rows, cases=len(per_case), source=f"{Path(dataset)} split {split}, {pixels} pixels per case")
    return prior.save(target, overwrite=overwrite)


class TimingPriorFitter:
    """Ignite handler of the interpolation bundle's training: when training completes, fit the timing prior
    (:func:`fit_timing_prior`) on the training split of ``dataset_dir`` with ``spec``'s ROI settings and write
    ``output_dir/timing_prior.json`` beside ``model.pt``, so the trained model has its "learned" timing. Does
    nothing for a model without a flow guess (``spec.estimate`` None) or with ``enabled`` False; only rank 0
    writes under DDP. A case that cannot give trajectories is a logged error, not a failed training; a
    ``timing_prior.json`` an earlier run left in ``output_dir`` is then renamed ``timing_prior.json.stale``
    (kept, not deleted) so it does not pass as the new model's prior."""

    def __init__(self, dataset_dir: str | os.PathLike, output_dir: str | os.PathLike, spec: InterpolationModelSpec,
                 enabled: bool = True, split: str = "training", pixels: int = 400) -> None:
        self.dataset_dir, self.output_dir, self.spec = Path(dataset_dir), Path(output_dir), spec
        self.enabled, self.split, self.pixels = bool(enabled), split, int(pixels)

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine=None) -> Path | None:
        dist = torch.distributed
        if not self.enabled or self.spec.estimate is None or (dist.is_available() and dist.is_initialized()
                                                              and dist.get_rank() != 0):
            return None
        target = self.output_dir / TIMING_PRIOR_FILE
        try:
            path = fit_timing_prior(self.dataset_dir, self.spec, split=self.split, pixels=self.pixels,
                                    out=target, overwrite=True, progress=False)
        except (CaseError, ValueError, OSError) as err:
            logger.error("timing prior not written (%s); inference falls back to the spline timing", err)
            if target.is_file():
                aside = target.with_name(target.name + ".stale")
                os.replace(target, aside)
                logger.error("%s was from an earlier training, not this model's: moved to %s", target, aside)
            return None
        logger.info("timing prior written to %s", path)
        return path


@torch.no_grad()
def interpolate_with_model(
    case: Case,
    K: int,
    model_path: str | os.PathLike | InterpolationModel,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    threshold: float = 0.5,
    largest_component: bool = True,
    expect: Mapping[str, Any] | None = None,
    timing: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild a case down-sampled by K with a trained interpolation network (HDL module 1, inference).

    Frames ``kept_frames(T, K)`` (0, K+1, 2(K+1), ...) are copied unchanged (magnitude and label). Every
    other frame ``tau + k`` is predicted from the two kept frames around it, ``tau`` and
    ``tau + K + 1`` (cyclic; the wrap-around gap may be shorter, see ``interpolation_plan``), with
    condition maps ``(tau / T, k / (K + 1), K / K_max)``:

    - on the LV-centred ROI (``spec.roi_size``, centre = LV centroid of the kept frames' labels 1 and 2),
      magnitude normalised to [-1, 1] by the ROI series' own scale (99.5th percentile of the kept frames)
      and brought back to scanner units with it;
    - outside the ROI by linear interpolation (``hdl_monai.baselines.interpolate_linear``);
    - labels of predicted frames: 1 = sigmoid(seg) > ``threshold`` (largest component), 2 = the cavity it
      encloses, 0 elsewhere - the network predicts the LV myocardium only, so RV (3) is absent there.

    All predictions of a case run in batches of ``batch_size`` (no gradient, eval mode). Only the kept
    frames of ``case.magnitude`` and ``case.label`` are read.

    Args:
        case: the case (full length T; its non-kept frames are ignored).
        K: frames dropped between kept frames (must fit T and the model's ``K_range``).
        model_path: a model file (``model.pt``) or an already loaded :class:`InterpolationModel`.
        device: torch device for the network (ignored for a loaded model).
        expect: settings the caller relies on (see :func:`load_interpolation_model`).
        timing: for a hybrid model (``spec.estimate``), where its flow guess places the in-between frames:
            "learned" (the model's timing prior, ``timing_prior.json`` beside its file: positions at every
            frame predicted from the kept frames' as in the training cycles), "spline" (speeds at the kept
            frames from a periodic spline through all of them), "cubic" (speeds from the two neighbouring
            gaps) or "linear" (constant speed within each gap, as in training); None: "learned" when the
            model has a prior learned at the case's frame count, else "spline" (:func:`resolve_timing`,
            :func:`estimate_planes`).

    Returns:
        (magnitude (X, Y, T) float32 in scanner units, label (X, Y, T) uint8).

    Raises:
        ValueError: K does not fit T or the model's K_range. CaseError: labels missing on kept frames.
        InterpolationModelError: not a model file, or a mismatch with ``expect``.
    """
    model = (
        model_path
        if isinstance(model_path, InterpolationModel)
        else load_interpolation_model(model_path, device=device, expect=expect)
    )
    spec, network = model.spec, model.network
    network.eval()
    timing = resolve_timing(model, timing, case.frames)
    K, T = int(K), case.frames
    kept = _check_case_for_model(case, K, spec)
    plan = interpolation_plan(T, K)

    # linear interpolation everywhere: the answer outside the ROI
    linear_mag, _ = rebuild_series(case.magnitude, None, K, "linear")
    magnitude = linear_mag.astype(np.float32)
    label = np.zeros(case.label.shape, np.uint8)
    magnitude[..., kept] = case.magnitude[..., kept]
    label[..., kept] = case.label[..., kept]
    if not plan:
        return magnitude, label

    kept_label = case.label[..., kept]
    box = CropLVROI(spec.roi_size, on_missing="image_center").compute_box(case.magnitude.shape[:2], label=kept_label)
    roi_mag = crop_roi(case.magnitude[..., kept], box, "min")
    scale = magnitude_scale(roi_mag, spec.magnitude_percentile)
    roi = np.zeros(tuple(spec.roi_size) + (T,), np.float32)  # only kept columns are filled and read
    roi[..., kept] = normalize_magnitude(roi_mag, scale)
    roi_mask = np.zeros_like(roi)
    roi_mask[..., kept] = mask_from_label(crop_roi(kept_label, box, 0), spec.mask_labels)

    inputs = []
    guesses = estimate_planes(spec, roi, roi_mask, plan, timing, model.timing_prior)
    for i, step in enumerate(plan):
        b = (step.tau + step.K + 1) % T
        cond = condition_maps(step.tau, step.k, step.K, T, spec.roi_size, spec.K_max, spec.include_K)
        inputs.append(np.concatenate([roi[None, ..., step.tau], roi[None, ..., b], roi_mask[None, ..., step.tau],
                                      roi_mask[None, ..., b], cond, *guesses[i:i + 1]]))
    pred = predict_batches(model, inputs, batch_size)  # (N, 2, rx, ry)

    targets = [step.target for step in plan]
    pred_mag = denormalize_magnitude(np.moveaxis(pred[:, 0], 0, -1), scale)  # (rx, ry, N), scanner units
    magnitude[..., targets] = paste_roi(pred_mag.astype(np.float32), box, magnitude[..., targets])
    probability = 1.0 / (1.0 + np.exp(-pred[:, 1].astype(np.float64)))
    roi_labels = np.stack([label_from_segmentation(p, threshold, largest_component) for p in probability], axis=-1)
    label[..., targets] = paste_roi(roi_labels, box, 0)
    return magnitude, label


class InterpolationRunner:
    """Interpolate every case of a dataset (or one case folder) with a trained model; write a dataset.

    Output: ``<output_dir>/cases/<case_id>/`` in the case format (magnitude + label, no phase) and
    ``<output_dir>/datalist.json`` listing the written cases under their original splits, plus
    ``<output_dir>/inference.json`` (model, K, timings).

    Args:
        dataset_dir: a dataset (datalist.json) or a single case folder.
        output_dir: where to write.
        model_path: the model file (``model.pt``).
        K: frames dropped between kept frames.
        splits: datalist splits to run (None: all).
        device: torch device. batch_size: predictions per forward pass.
        expect: settings checked against the model (e.g. ``{"roi_size": [128, 128]}``).
        overwrite: replace existing output cases / datalist.
        largest_component: keep only the largest myocardium component of each predicted mask.
        method: the interpolation method the model must serve (``hdl``, ``r2unet`` or ``gan``, see
            :func:`check_model_method`; None: whatever the model serves).
        roi_size: shortcut for ``expect`` (None: whatever the model was trained with).
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        output_dir: str | os.PathLike,
        model_path: str | os.PathLike,
        K: int,
        splits: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        expect: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        largest_component: bool = True,
        method: str | None = None,
        roi_size: Sequence[int] | None = None,
    ) -> None:
        self.dataset_dir, self.output_dir = Path(dataset_dir), Path(output_dir)
        self.model_path, self.K = model_path, int(K)
        self.splits = None if splits is None else list(ensure_tuple(splits))
        self.device, self.batch_size = device, int(batch_size)
        self.expect = dict(expect or {})
        self.method = method
        if roi_size is not None:
            self.expect["roi_size"] = [int(r) for r in ensure_tuple_rep(roi_size, 2)]
        self.overwrite, self.largest_component = bool(overwrite), bool(largest_component)

    def _jobs(self) -> list[tuple[str | None, Path]]:
        if (self.dataset_dir / "case.json").is_file():
            return [(None, self.dataset_dir)]
        load_datalist(self.dataset_dir)  # a clear error when the folder is neither a case nor a dataset
        splits = self.splits or list(SPLITS)
        return [(s, d) for s in splits for d in case_dirs(self.dataset_dir, [s])]

    def run(self) -> dict[str, Any]:
        model = load_interpolation_model(self.model_path, self.device, self.expect)
        method = model_method(model.spec)
        if self.method is not None:
            check_model_method(model, self.method)
        out_list: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        timings = {}
        from hdl_monai.interpolation import interpolate_case

        for split, case_dir in self._jobs():
            case = load_case(case_dir, skip=("phase", "velocity"))
            start = time.perf_counter()
            rebuilt = interpolate_case(
                case, self.K, method, model=model, batch_size=self.batch_size,
                largest_component=self.largest_component,
            )
            timings[case.case_id] = time.perf_counter() - start
            save_case(rebuilt, self.output_dir / "cases" / case.case_id, overwrite=self.overwrite)
            out_list[split or "test"].append({"case": f"cases/{case.case_id}", "subject": case.subject})
            logger.info("interpolated %s (K=%d) in %.2f s", case.case_id, self.K, timings[case.case_id])
        save_datalist(self.output_dir, out_list, overwrite=self.overwrite)
        summary = {
            "model": str(model.path),
            "spec": model.spec.to_dict(),
            "K": self.K,
            "cases": len(timings),
            "seconds_per_case": timings,
        }
        atomic_write_json(self.output_dir / "inference.json", summary, overwrite=True)
        return summary

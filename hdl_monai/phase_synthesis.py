"""Phase synthesis (HDL module 2, Xing et al. 2022, section III-B): the foreground-background scheme,
the saved-model format and :func:`synthesize_phase`.

Foreground-background scheme
----------------------------
A pixel of frame t is **foreground** when the normalised magnitude M_t is above -0.95 (tissue, blood);
the rest is **background** (air), whose phase is noise. The generator paints the foreground; the
background is drawn from a Gaussian fitted on the training set's background phase values:
:func:`fit_background_stats` pools, per direction x/y/z, the normalised phase (``p / 2048 - 1``, [-1, 1])
of every background pixel of every frame of every training case (whole images, not just the ROI) and
stores mean and standard deviation (the paper found mu = 0.034, sigma = 0.034 on its data, Fig. 4) with a
histogram (:func:`plot_background_histogram` draws Fig. 4). The composite (:func:`composite`) keeps the
generator's pixels exactly on the foreground and noise, ``clip(N(mu_d, sigma_d), -1, 1)``, elsewhere.

Saved model (``<output_dir>/model.pt``, :func:`save_phase_model`), a ``torch.save`` dict:

- ``"format"``: ``"hdl_monai.phase_synthesis/1"``;
- ``"generator"``: the R2U-Net state dict; ``"generator_config"``: the R2UNet keyword arguments
  (``spatial_dims``, ``in_channels`` 3 or 5, ``out_channels`` 3, ``channels``, ``recurrence``, ``out_act``);
- ``"cycle"``: whether the generator also sees the cardiac-phase planes ``cos, sin(2 pi t / T)`` of the
  frame (:func:`~hdl_monai.transforms.cycle_planes`; in_channels 5); absent in older files = False;
- ``"motion"``: whether the generator also sees the in-plane velocity guess of optical flow
  (:func:`~hdl_monai.transforms.motion_planes`, 2 more input channels, after the cycle planes); absent = False;
- ``"roi_size"``: [rx, ry] pixels of the LV-centred crop the generator works on;
- ``"roi_jitter"``: pixels by which training moved that crop (train.json ``roi_jitter``; absent = 0);
- ``"scheme"``: ``"foreground_background"``, ``"vanilla"`` or ``"pix2pix"``; ``"threshold"``: -0.95;
- ``"magnitude_percentile"``: 99.5 (the per-series magnitude scale);
- ``"background_stats_file"``: ``"background_stats.json"``, the fitted Gaussian, next to ``model.pt``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.inferers import Inferer
from monai.transforms import MapTransform

from hdl_monai.data.atomic import atomic_write, atomic_write_json
from hdl_monai.data.case import DIRECTIONS, Case, CaseError, load_case, save_case
from hdl_monai.data.datalist import SPLITS, case_dirs, load_datalist, save_datalist
from hdl_monai.engines.pix2pix import check_scheme, paints_whole_image
from hdl_monai.networks.r2unet import R2UNet
from hdl_monai.transforms.array import (
    FOREGROUND_THRESHOLD,
    MAGNITUDE_PERCENTILE,
    CYCLE_PLANES,
    MOTION_PLANES,
    RoiBox,
    PhaseSample,
    crop_roi,
    denormalize_phase,
    foreground_mask,
    lv_center,
    magnitude_scale,
    motion_planes,
    normalize_magnitude,
    normalize_phase,
    paste_roi,
    roi_box,
    window_offsets,
)
from hdl_monai.transforms.dictionary import MOTION_KEY, motion_series

__all__ = [
    "MODEL_FILE",
    "BACKGROUND_STATS_FILE",
    "HISTOGRAM_FILE",
    "MODEL_FORMAT",
    "iter_cases",
    "fit_background_stats",
    "save_background_stats",
    "load_background_stats",
    "plot_background_histogram",
    "sample_background",
    "composite",
    "ForegroundBackgroundInferer",
    "PhaseFrameSamplesd",
    "roi_pair",
    "save_phase_model",
    "load_phase_model",
    "PhaseModel",
    "ExportPhaseModel",
    "DEFAULT_WINDOW_SHIFT",
    "generator_roi",
    "synthesize_phase",
    "PhaseSynthesizer",
]

MODEL_FILE = "model.pt"
BACKGROUND_STATS_FILE = "background_stats.json"
HISTOGRAM_FILE = "background_histogram.png"
MODEL_FORMAT = "hdl_monai.phase_synthesis/1"
_STATS_FORMAT = "hdl_monai.phase_background/1"
_HIST_BINS = 200
DEFAULT_WINDOW_SHIFT = 0
"""Pixels by which :func:`synthesize_phase` shifts its four blended generator windows off the LV-centred ROI
(0: one window, the ROI itself)."""


# --------------------------------------------------------------------------------------------- background Gaussian


def iter_cases(source: Any, splits: Sequence[str] | None = ("training",)) -> Iterable[Case]:
    """Cases from a dataset folder (``splits`` of its datalist), a case folder, datalist items
    (``{"case": folder}``), case folders or :class:`Case` objects. Velocities are not read."""
    if isinstance(source, (str, os.PathLike)):
        for folder in case_dirs(source, splits):
            yield load_case(folder, skip=("velocity",))
        return
    for item in source:
        if isinstance(item, Case):
            yield item
        elif isinstance(item, Mapping) and "case" in item and not isinstance(item["case"], Case):
            yield load_case(item["case"], skip=("velocity",))
        elif isinstance(item, (str, os.PathLike)):
            yield load_case(item, skip=("velocity",))
        else:
            raise TypeError(f"iter_cases: cannot read a case from {type(item).__name__}")


def _normalised_arrays(case: Case | Mapping[str, Any], percentile: float) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """(normalised magnitude, normalised phase per direction, name) of a Case or a loaded dict."""
    if isinstance(case, Case):
        magnitude, phase, name = case.magnitude, case.phase, case.name
    else:
        magnitude = case["magnitude"]
        phase = {d: case[f"phase_{d}"] for d in DIRECTIONS if f"phase_{d}" in case}
        name = str(case.get("case_id", case.get("case", "case")))
    if len(phase) != 3:
        raise CaseError(f"{name}: background statistics need phase_x, phase_y and phase_z")
    magnitude = np.asarray(magnitude, dtype=np.float32)
    m = normalize_magnitude(magnitude, magnitude_scale(magnitude, percentile))
    return m, {d: normalize_phase(np.asarray(phase[d], dtype=np.float32)) for d in DIRECTIONS}, name


def fit_background_stats(
    cases: Any,
    threshold: float = FOREGROUND_THRESHOLD,
    percentile: float = MAGNITUDE_PERCENTILE,
    bins: int = _HIST_BINS,
    json_path: str | os.PathLike | None = None,
    figure_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Fit the background Gaussian per direction on a training set (see the module docstring).

    Args:
        cases: anything :func:`iter_cases` accepts (a dataset folder uses its training split), or loaded
            dicts with ``"magnitude"`` and ``"phase_x/y/z"`` in scanner units.
        threshold: background = normalised magnitude <= ``threshold`` (frame by frame).
        percentile: magnitude normalisation percentile (per series).
        bins: histogram bins over [-1, 1].
        json_path: when given, the result is written there (:func:`save_background_stats`).
        figure_path: when given, the Fig. 4-style histogram PNG is written there.

    Returns:
        ``{"mean": {x, y, z}, "std": {x, y, z}, "pooled": {"mean", "std"}, "pixels", "cases", "threshold",
        "units", "histogram": {"edges", "counts": {x, y, z}}, "format"}``; means and stds in normalised phase
        units (scanner units: ``(v + 1) * 2048``).

    Raises:
        ValueError: when no case has a background pixel.
    """
    edges = np.linspace(-1.0, 1.0, int(bins) + 1)
    sums = {d: 0.0 for d in DIRECTIONS}
    squares = {d: 0.0 for d in DIRECTIONS}
    counts = {d: np.zeros(int(bins), dtype=np.int64) for d in DIRECTIONS}
    pixels = n_cases = 0
    items = iter_cases(cases) if isinstance(cases, (str, os.PathLike)) else cases
    for item in items:
        if isinstance(item, (str, os.PathLike)) or (isinstance(item, Mapping) and "magnitude" not in item):
            item = next(iter(iter_cases([item])))
        m, phase, _ = _normalised_arrays(item, percentile)
        background = foreground_mask(m, threshold) == 0
        n_cases += 1
        pixels += int(background.sum())
        for d in DIRECTIONS:
            values = phase[d][background].astype(np.float64)
            sums[d] += float(values.sum())
            squares[d] += float((values * values).sum())
            counts[d] += np.histogram(values, bins=edges)[0]
    if pixels == 0:
        raise ValueError("fit_background_stats: no background pixel (normalised magnitude <= threshold) in the cases")
    mean = {d: sums[d] / pixels for d in DIRECTIONS}
    std = {d: float(np.sqrt(max(squares[d] / pixels - mean[d] ** 2, 0.0))) for d in DIRECTIONS}
    pooled_mean = sum(sums.values()) / (3 * pixels)
    pooled_std = float(np.sqrt(max(sum(squares.values()) / (3 * pixels) - pooled_mean**2, 0.0)))
    stats = {
        "format": _STATS_FORMAT,
        "units": "normalised phase p / 2048 - 1, in [-1, 1]",
        "threshold": float(threshold),
        "magnitude_percentile": float(percentile),
        "cases": n_cases,
        "pixels": pixels,
        "mean": mean,
        "std": std,
        "pooled": {"mean": pooled_mean, "std": pooled_std},
        "histogram": {"edges": edges.tolist(), "counts": {d: counts[d].tolist() for d in DIRECTIONS}},
    }
    if json_path is not None:
        save_background_stats(stats, json_path)
    if figure_path is not None:
        plot_background_histogram(stats, figure_path)
    return stats


def save_background_stats(stats: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the statistics as JSON (atomically); ``path`` may be a folder (then ``background_stats.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / BACKGROUND_STATS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, dict(stats))


def load_background_stats(path: str | os.PathLike) -> dict[str, Any]:
    """Read statistics written by :func:`save_background_stats`; ``path`` may be the JSON file, its folder
    or a ``model.pt`` next to it."""
    path = Path(path)
    if path.is_dir():
        path = path / BACKGROUND_STATS_FILE
    elif path.suffix != ".json":
        path = path.with_name(BACKGROUND_STATS_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no background statistics (fit_background_stats writes them at training)")
    stats = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in ("mean", "std") if not isinstance(stats.get(k), Mapping) or set(stats[k]) != set(DIRECTIONS)]
    if missing:
        raise ValueError(f"{path}: not background statistics (needs 'mean' and 'std' for x, y, z)")
    return stats


def plot_background_histogram(stats: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Fig. 4 of the paper: the background phase histogram per direction with the fitted Gaussian (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.asarray(stats["histogram"]["edges"])
    centres, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=False)
    grid = np.linspace(-1, 1, 801)
    for ax, d in zip(axes, DIRECTIONS):
        counts = np.asarray(stats["histogram"]["counts"][d], dtype=np.float64)
        density = counts / max(counts.sum(), 1) / width
        mu, sigma = float(stats["mean"][d]), float(stats["std"][d])
        ax.bar(centres, density, width=width, color="tab:blue", alpha=0.6, label="background phase")
        if sigma > 0:
            ax.plot(grid, np.exp(-0.5 * ((grid - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)), "r-",
                    label=f"N({mu:.3f}, {sigma:.3f}$^2$)")
        ax.set_title(f"phase {d}")
        ax.set_xlabel("normalised phase")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("density")
    fig.suptitle(f"background phase, {stats['pixels']} pixels x 3 directions, {stats['cases']} cases")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _direction_tensor(stats: Mapping[str, Any], key: str, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([float(stats[key][d]) for d in DIRECTIONS], dtype=like.dtype, device=like.device)


def sample_background(
    like: torch.Tensor, stats: Mapping[str, Any], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian background noise shaped like ``like`` (B, 3, X, Y): channel d ~ N(mean_d, std_d), clipped
    to [-1, 1] (normalised phase). Drawn on the CPU with ``generator`` (reproducible), moved to ``like``."""
    if like.ndim < 2 or like.shape[1] != 3:
        raise ValueError(f"sample_background: expected (B, 3, ...) phase, got {tuple(like.shape)}")
    shape = (like.shape[0], 3) + (1,) * (like.ndim - 2)
    noise = torch.randn(tuple(like.shape), generator=generator, dtype=torch.float32).to(like.device, like.dtype)
    mean = _direction_tensor(stats, "mean", like).reshape(shape[1:])
    std = _direction_tensor(stats, "std", like).reshape(shape[1:])
    return (noise * std + mean).clamp(-1.0, 1.0)


def composite(fake: torch.Tensor, foreground: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``fake`` where ``foreground`` (> 0.5, broadcast over channels), ``background`` elsewhere; exact copies."""
    return torch.where(foreground.to(fake.device) > 0.5, fake, background.to(device=fake.device, dtype=fake.dtype))


class ForegroundBackgroundInferer(Inferer):
    """Inferer for the phase generator: ``network(inputs)`` composited with background noise.

    ``inputs`` is the magnitude triplet (B, 3, X, Y); its middle frame (M_t) decides the foreground
    (> ``threshold``). With ``scheme="vanilla"`` or ``"pix2pix"`` the raw generator output is returned (no split).

    Args:
        background_stats: the fitted Gaussian (:func:`fit_background_stats`).
        scheme: ``"foreground_background"``, ``"vanilla"`` or ``"pix2pix"``.
        threshold: foreground threshold (-0.95).
        seed: seed of the noise; :meth:`reset` restarts the sequence.
    """

    def __init__(
        self,
        background_stats: Mapping[str, Any] | None,
        scheme: str = "foreground_background",
        threshold: float = FOREGROUND_THRESHOLD,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.scheme = check_scheme(scheme)
        if self.scheme == "foreground_background" and background_stats is None:
            raise ValueError("the foreground-background scheme needs background statistics")
        self.background_stats = background_stats
        self.threshold = float(threshold)
        self.seed = int(seed)
        self.reset()

    def reset(self) -> None:
        """Restart the noise sequence from ``seed``."""
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any) -> torch.Tensor:
        fake = network(inputs, *args, **kwargs)
        if paints_whole_image(self.scheme):
            return fake
        foreground = inputs[:, 1:2] > self.threshold
        return composite(fake, foreground, sample_background(fake, self.background_stats, self.generator))


class PhaseFrameSamplesd(MapTransform):
    """Phase samples of every ``stride``-th frame of a series dict (a list of dicts, as
    :class:`~hdl_monai.transforms.dictionary.PhaseSampled` makes one), for deterministic validation.

    Each sample holds ``"magnitude_triplet"`` (with the cardiac-phase planes when ``cycle``), ``"phase"``
    (if the phase keys are present), the (1, X, Y) frame of each ``extra_keys`` series, ``"t"``,
    ``"frames"`` and the given ``copy_keys``.
    """

    def __init__(
        self,
        stride: int = 1,
        magnitude_key: str = "magnitude",
        phase_keys: Sequence[str] = ("phase_x", "phase_y", "phase_z"),
        extra_keys: Sequence[str] = ("w1", "w2", "foreground"),
        copy_keys: Sequence[str] = ("case_id",),
        cycle: bool = False,
        motion: bool = False,
        motion_key: str = MOTION_KEY,
    ) -> None:
        super().__init__((magnitude_key,))
        if int(stride) < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride = int(stride)
        self.magnitude_key, self.phase_keys = magnitude_key, tuple(phase_keys)
        self.extra_keys, self.copy_keys = tuple(extra_keys), tuple(copy_keys)
        self.motion_key = motion_key
        self.sampler = PhaseSample(cycle=cycle, motion=motion)

    def __call__(self, data: Mapping[Hashable, Any]) -> list[dict[Hashable, Any]]:
        d = dict(data)
        magnitude = d[self.magnitude_key]
        T = int(magnitude.shape[-1])
        phase = [d[k] for k in self.phase_keys] if all(k in d for k in self.phase_keys) else None
        extras = {k: d[k] for k in self.extra_keys if k in d}
        motion = motion_series(d, self.sampler.motion, self.motion_key, "PhaseFrameSamplesd")
        out = []
        for t in range(0, T, self.stride):
            sample = self.sampler(magnitude, phase, extras, t=t, motion=motion)
            sample.update({k: d[k] for k in self.copy_keys if k in d})
            out.append(sample)
        return out


# --------------------------------------------------------------------------------------------- saved model


def _plain_module(network: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel/DataParallel wrapper (or the network itself)."""
    return getattr(network, "module", network)


def save_phase_model(
    output_dir: str | os.PathLike,
    generator: nn.Module,
    generator_config: Mapping[str, Any],
    roi_size: int | Sequence[int],
    scheme: str = "foreground_background",
    background_stats: Mapping[str, Any] | None = None,
    threshold: float = FOREGROUND_THRESHOLD,
    cycle: bool = False,
    motion: bool = False,
    roi_jitter: int = 0,
) -> Path:
    """Write ``<output_dir>/model.pt`` (format in the module docstring) and, when given,
    ``<output_dir>/background_stats.json``. Returns the model path. ``roi_jitter`` records the training
    windows' shift (train.json ``roi_jitter``): ``synthesize_phase`` with ``window_shift`` equal to it runs
    only windows the generator was trained on."""
    inputs = 3 + (CYCLE_PLANES if cycle else 0) + (MOTION_PLANES if motion else 0)
    if "in_channels" in generator_config and int(generator_config["in_channels"]) != inputs:
        raise ValueError(
            f"{output_dir}: the generator takes {generator_config['in_channels']} input channels but cycle={bool(cycle)}, "
            f"motion={bool(motion)} give {inputs}; pass the cycle / motion settings the generator was trained with")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    roi = roi_pair(roi_size)
    state = {k: v.detach().cpu() for k, v in _plain_module(generator).state_dict().items()}
    payload = {
        "format": MODEL_FORMAT,
        "generator": state,
        "generator_config": _json_config(generator_config),
        "roi_size": roi,
        "scheme": check_scheme(scheme),
        "cycle": bool(cycle),
        "motion": bool(motion),
        "roi_jitter": int(roi_jitter),
        "threshold": float(threshold),
        "magnitude_percentile": MAGNITUDE_PERCENTILE,
        "background_stats_file": BACKGROUND_STATS_FILE,
    }
    if background_stats is not None:
        save_background_stats(background_stats, output_dir / BACKGROUND_STATS_FILE)
    return atomic_write(output_dir / MODEL_FILE, lambda tmp: torch.save(payload, tmp))


def roi_pair(roi_size: int | Sequence[int]) -> list[int]:
    """[rx, ry] of an ROI size given as one int or a pair."""
    return [int(roi_size)] * 2 if isinstance(roi_size, (int, np.integer)) else [int(r) for r in roi_size]


def _json_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Plain-Python (weights_only-loadable) copy of a generator config."""
    out: dict[str, Any] = {}
    for k, v in dict(config).items():
        out[str(k)] = [int(c) for c in v] if isinstance(v, (list, tuple)) else v
    return out


class PhaseModel:
    """A loaded phase model: ``generator`` (eval mode, on ``device``) and the saved settings."""

    def __init__(self, generator: nn.Module, payload: Mapping[str, Any], background_stats: Mapping[str, Any], path: Path):
        self.generator = generator
        self.generator_config = dict(payload["generator_config"])
        self.roi_size = tuple(int(r) for r in payload["roi_size"])
        self.scheme = str(payload["scheme"])
        self.cycle = bool(payload.get("cycle", False))
        self.motion = bool(payload.get("motion", False))
        self.roi_jitter = int(payload.get("roi_jitter", 0))
        self.threshold = float(payload.get("threshold", FOREGROUND_THRESHOLD))
        self.magnitude_percentile = float(payload.get("magnitude_percentile", MAGNITUDE_PERCENTILE))
        self.background_stats = dict(background_stats)
        self.path = path


def load_phase_model(model_path: str | os.PathLike, device: str | torch.device = "cpu") -> PhaseModel:
    """Load ``model.pt`` (or the folder holding it) and its ``background_stats.json``.

    Raises:
        FileNotFoundError: missing model or statistics. ValueError: not a phase model, or weights that do
        not fit the saved generator config.
    """
    path = Path(model_path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no phase model (training writes <output_dir>/{MODEL_FILE})")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in ("generator", "generator_config", "roi_size", "scheme") if k not in payload]
    if not isinstance(payload, Mapping) or missing:
        raise ValueError(f"{path}: not an hdl_monai phase model (missing {missing or 'everything'})")
    config = dict(payload["generator_config"])
    inputs = 3 + (CYCLE_PLANES if payload.get("cycle", False) else 0) + (MOTION_PLANES if payload.get("motion", False) else 0)
    for key, want in (("in_channels", inputs), ("out_channels", 3)):
        if int(config.get(key, want)) != want:
            raise ValueError(f"{path}: generator config {key}={config.get(key)}, a phase generator has {want}")
    try:
        generator = R2UNet(**config)
        generator.load_state_dict(payload["generator"])
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{path}: the weights do not match the saved generator config {config}: {err}") from err
    stats = load_background_stats(path.with_name(str(payload.get("background_stats_file", BACKGROUND_STATS_FILE))))
    return PhaseModel(generator.to(device).eval(), payload, stats, path)


class ExportPhaseModel:
    """Ignite handler writing ``model.pt`` (+ ``background_stats.json``) when the trainer completes.

    Only rank 0 writes under ``torch.distributed``. Args as :func:`save_phase_model`.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        generator: nn.Module,
        generator_config: Mapping[str, Any],
        roi_size: int | Sequence[int],
        scheme: str = "foreground_background",
        background_stats: Mapping[str, Any] | None = None,
        cycle: bool = False,
        motion: bool = False,
        roi_jitter: int = 0,
    ) -> None:
        self.output_dir, self.generator, self.generator_config = output_dir, generator, generator_config
        self.roi_size, self.scheme, self.background_stats = roi_size, check_scheme(scheme), background_stats
        self.cycle, self.motion, self.roi_jitter = bool(cycle), bool(motion), int(roi_jitter)

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Any = None) -> Path | None:
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
            return None
        return save_phase_model(
            self.output_dir, self.generator, self.generator_config, self.roi_size, self.scheme, self.background_stats,
            cycle=self.cycle, motion=self.motion, roi_jitter=self.roi_jitter,
        )


# --------------------------------------------------------------------------------------------- inference


def synthesize_phase(
    case: Case,
    model_path: str | os.PathLike | PhaseModel,
    device: str | torch.device = "cpu",
    seed: int = 0,
    batch_size: int = 16,
    window_shift: int = DEFAULT_WINDOW_SHIFT,
) -> dict[str, np.ndarray]:
    """Synthesise the three phase series of a case from its magnitude series.

    For every frame t the generator sees frames (t-1, t, t+1) (cyclic) of the magnitude (and, for a model
    trained with ``cycle``, the cardiac-phase planes of t/T; with ``motion``, the in-plane velocity guess of
    :func:`~hdl_monai.transforms.motion_planes` from the ROI, the case's pixel spacing, RR interval and
    venc), normalised with the
    case's own scale (99.5th percentile of the series), cropped to the saved ROI size around the LV centre
    (centroid of labels 1 and 2 over all frames, as in training). Foreground pixels (normalised M_t > -0.95)
    inside the ROI take the generator's output; every other pixel (background, and everything outside the
    ROI) takes Gaussian background noise (fitted mean/std per direction, ``seed``). A ``"vanilla"`` or
    ``"pix2pix"`` model's output is used on the whole ROI. Frames are run ``batch_size`` at a time.

    With ``window_shift`` s > 0 the generator runs on four ROI-sized windows, the ROI moved by (+-s, +-s)
    pixels (each with its own inputs, motion planes included, as in training), and their outputs are
    blended on the ROI with Gaussian weights (sigma = window / 8 about each window's centre). A pixel then
    takes its value mostly from windows in which it lies away from the edges, so a GAN artefact along a
    window's border (a generator may paint one, see docs/phase_synthesis.md) does not reach the output; the
    blend also averages four predictions. It costs four generator passes (and four optical flows for a
    ``motion`` model) instead of one.

    Args:
        case: the case (magnitude (X, Y, T) in scanner units and an LV label are needed; phase is not read).
        model_path: ``model.pt``, its folder, or a :class:`PhaseModel` already loaded.
        device: torch device for the generator.
        seed: seed of the background noise.
        batch_size: frames per forward pass.
        window_shift: pixels by which the four blended windows are moved off the ROI (0: the ROI alone);
            less than half the ROI size.

    Returns:
        ``{"x", "y", "z"}`` -> float32 (X, Y, T) phase in scanner units 0..4096 (2048 = zero velocity).

    Raises:
        CaseError: the case has no label, or no LV pixel, to centre the ROI on; or a ``motion`` model and a
            case without venc_cm_s.
        ValueError: ``window_shift`` negative or not less than half the ROI size.
    """
    model = model_path if isinstance(model_path, PhaseModel) else load_phase_model(model_path, device)
    magnitude = np.asarray(case.magnitude, dtype=np.float32)
    if magnitude.ndim != 3:
        raise CaseError(f"{case.name}: magnitude must be (X, Y, T), got shape {magnitude.shape}")
    box = _generator_box(case, model)
    shift = int(window_shift)
    if shift < 0 or 2 * shift >= min(model.roi_size):
        raise ValueError(
            f"window_shift must be in [0, {(min(model.roi_size) - 1) // 2}] for the ROI {list(model.roi_size)}, "
            f"got {window_shift}"
        )
    if model.motion and case.venc_cm_s is None:
        raise CaseError(
            f"{case.name}: no venc_cm_s in case.json; this model's motion planes are in units of venc (set "
            "venc_cm_s {x, y, z} in case.json to the velocity encoding the synthetic phase should have)"
        )
    X, Y, T = magnitude.shape
    m = normalize_magnitude(magnitude, magnitude_scale(magnitude, model.magnitude_percentile))
    rx, ry = model.roi_size
    offsets = window_offsets(shift)[1:] if shift else [(0, 0)]  # the windows a roi_jitter training saw
    weight = np.outer(_window_weight(rx, shift), _window_weight(ry, shift))
    blend = np.zeros((3, rx, ry, T))
    weight_sum = np.zeros((rx, ry))
    for dx, dy in offsets:
        window = RoiBox((box.start[0] + dx, box.start[1] + dy), (box.end[0] + dx, box.end[1] + dy), box.spatial_shape)
        fake = _generator_series(model, case, crop_roi(m, window, pad_value=-1.0), batch_size)
        # window pixel (i, j) is ROI pixel (i + dx, j + dy)
        roi_x, roi_y = slice(max(dx, 0), rx + min(dx, 0)), slice(max(dy, 0), ry + min(dy, 0))
        win_x, win_y = slice(roi_x.start - dx, roi_x.stop - dx), slice(roi_y.start - dy, roi_y.stop - dy)
        blend[:, roi_x, roi_y] += fake[:, win_x, win_y] * weight[win_x, win_y][None, :, :, None]
        weight_sum[roi_x, roi_y] += weight[win_x, win_y]
    fake = (blend / weight_sum[None, :, :, None]).astype(np.float32)  # (3, rx, ry, T)
    inside = _box_mask(box, model.roi_size)[..., None]  # (X, Y, 1)
    predicted = paste_roi(fake, box, background=0.0)  # (3, X, Y, T)
    keep = inside if paints_whole_image(model.scheme) else inside & (foreground_mask(m, model.threshold) > 0.5)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i, d in enumerate(DIRECTIONS):
        mu, sigma = float(model.background_stats["mean"][d]), float(model.background_stats["std"][d])
        noise = np.clip(rng.normal(mu, sigma, size=(X, Y, T)), -1.0, 1.0).astype(np.float32)
        out[d] = denormalize_phase(np.where(keep, predicted[i], noise)).astype(np.float32)
    return out


def generator_roi(case: Case, model: PhaseModel) -> np.ndarray:
    """(X, Y) bool: the pixels of ``case`` inside the LV-centred ROI of ``model``, where
    :func:`synthesize_phase` may take the generator's output (outside it every pixel is drawn noise).

    Raises:
        CaseError: the case has no label, or no LV pixel, to centre the ROI on.
    """
    return _box_mask(_generator_box(case, model), model.roi_size)


def _box_mask(box: RoiBox, roi_size: Sequence[int]) -> np.ndarray:
    """(X, Y) bool: the pixels of the full image inside ``box`` (of size ``roi_size``)."""
    return paste_roi(np.ones((1,) + tuple(roi_size) + (1,), dtype=np.float32), box)[0, ..., 0] > 0.5


def _generator_box(case: Case, model: PhaseModel) -> RoiBox:
    """The model's ROI box centred on the case's LV (labels 1 and 2 over all frames, as in training)."""
    if case.label is None:
        raise CaseError(f"{case.name}: no label; synthesize_phase centres its ROI on the LV label (1, 2)")
    try:
        centre = lv_center(case.label)
    except ValueError as err:
        raise CaseError(f"{case.name}: {err}; synthesize_phase needs the LV to centre its ROI") from err
    return roi_box(centre, model.roi_size, case.label.shape[:2])


def _window_weight(size: int, shift: int) -> np.ndarray:
    """Blending weight along one axis of a window: 1 for a lone window (``shift`` 0), else a Gaussian of
    sigma size / 8 about the window's centre (MONAI's importance map, without its 0.001 floor, which would
    let an edge artefact through at a tenth of a percent times its weight)."""
    if shift == 0:
        return np.ones(size)
    return np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / (size / 8)) ** 2)


def _generator_series(model: PhaseModel, case: Case, crop: np.ndarray, batch_size: int) -> np.ndarray:
    """The generator's phase (3, rx, ry, T) for every frame of the normalised magnitude ``crop`` (rx, ry, T),
    with the inputs built from that crop exactly as in training (motion planes too)."""
    motion = None
    if model.motion:
        motion = motion_planes(crop, case.pixel_spacing_mm, case.rr_interval_ms, case.venc_cm_s)
    dev = next(model.generator.parameters()).device
    T = crop.shape[-1]
    fake = np.empty((3,) + crop.shape, dtype=np.float32)
    sampler = PhaseSample(cycle=model.cycle, motion=model.motion)
    with torch.no_grad():
        for start in range(0, T, int(batch_size)):
            frames = range(start, min(T, start + int(batch_size)))
            batch = np.stack([sampler(crop, t=t, motion=motion)["magnitude_triplet"] for t in frames])
            out = model.generator(torch.from_numpy(batch).to(dev)).float().cpu().numpy()  # (b, 3, rx, ry)
            fake[..., start : start + len(frames)] = np.moveaxis(out, 0, -1)
    return fake


class PhaseSynthesizer:
    """Write a synthetic copy of a dataset: every case of ``splits`` with its phase replaced by
    :func:`synthesize_phase` (velocity ground truth dropped), plus a datalist of those splits.

    ``run()`` returns the output folder; compare it with the source using
    ``hdl-monai velocity-compare DATASET OUT``.
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        model_path: str | os.PathLike,
        output_dir: str | os.PathLike,
        splits: Sequence[str] | None = ("test",),
        device: str | torch.device = "cpu",
        seed: int = 0,
        batch_size: int = 16,
        overwrite: bool = False,
        window_shift: int = DEFAULT_WINDOW_SHIFT,
    ) -> None:
        self.window_shift = int(window_shift)
        self.dataset_dir, self.model_path, self.output_dir = Path(dataset_dir), model_path, Path(output_dir)
        self.splits = SPLITS if splits is None else tuple(splits)
        self.device, self.seed, self.batch_size, self.overwrite = device, int(seed), int(batch_size), overwrite

    def run(self) -> Path:
        model = load_phase_model(self.model_path, self.device)
        if (self.dataset_dir / "case.json").is_file():
            raise CaseError(f"{self.dataset_dir}: PhaseSynthesizer takes a dataset; use synthesize_phase for one case")
        datalist = load_datalist(self.dataset_dir)
        bad = [s for s in self.splits if s not in SPLITS]
        if bad:
            raise CaseError(f"{self.dataset_dir}: unknown split(s) {bad}; expected some of {list(SPLITS)}")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        written: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        for split in self.splits:
            for item in datalist[split]:
                case = load_case(self.dataset_dir / item["case"], skip=("velocity",))
                case.phase = synthesize_phase(case, model, seed=self.seed, batch_size=self.batch_size,
                                              window_shift=self.window_shift)
                case.velocity = {}
                case.source = f"{case.source}+hdl_phase_synthesis"
                save_case(case, self.output_dir / "cases" / case.case_id, overwrite=self.overwrite)
                written[split].append({**item, "case": f"cases/{case.case_id}"})
        save_datalist(self.output_dir, written, overwrite=True)
        return self.output_dir

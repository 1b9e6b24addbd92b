"""Dictionary versions of :mod:`hdl_monai.transforms.array`, for ``monai.transforms.Compose`` pipelines.

Default keys follow the case format: ``"magnitude"``, ``"phase_x"``, ``"phase_y"``, ``"phase_z"``,
``"label"`` - series (X, Y, T) or (C, X, Y, T) as documented in :mod:`hdl_monai.transforms.array`.
Every transform returns a shallow copy of the input dict with its keys added or replaced; the input
dict is not modified.

Keys written:

- :class:`CropLVROId`: ``"roi_box"`` = ``{"start": [x0, y0], "end": [x1, y1], "spatial_shape": [X, Y]}``;
- :class:`NormalizeMagnituded`: ``"<key>_scale"`` (float, scanner units);
- :class:`ForegroundMaskd`: ``"foreground"``; :class:`WeightMapsd`: ``"w1"``, ``"w2"`` (+ ``"foreground"``);
- :class:`InterpolationSampled` / :class:`RandInterpolationSampled`: ``"magnitude_pair"``, ``"mask_pair"``,
  ``"condition"``, ``"image"``, ``"magnitude_target"``, ``"mask_target"``, ``"tau"``, ``"K"``, ``"k"``,
  ``"target_frame"``, ``"frames"``, and the extra series keys (default ``"w1"``, ``"w2"``, ``"foreground"``)
  replaced by their (1, X, Y) target frame;
- :class:`PhaseSampled` / :class:`RandPhaseSampled`: ``"magnitude_triplet"``, ``"phase"``, ``"t"``,
  ``"frames"``, and the extra series keys replaced by their (1, X, Y) frame t.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable
from monai.utils import ensure_tuple, ensure_tuple_rep

from hdl_monai.transforms.array import (
    DEFAULT_K_MAX,
    FOREGROUND_THRESHOLD,
    MAGNITUDE_PERCENTILE,
    WEIGHT_INSIDE,
    WEIGHT_OUTSIDE,
    CropLVROI,
    DenormalizeMagnitude,
    DenormalizePhase,
    ForegroundMask,
    InterpolationSample,
    NormalizeMagnitude,
    NormalizePhase,
    PhaseSample,
    ROIWindow,
    RoiBox,
    WeightMaps,
    _squeeze_series,
    crop_roi,
    motion_planes,
    paste_roi,
    sample_interpolation_indices,
    window_offsets,
)

__all__ = [
    "CropLVROId",
    "PasteROId",
    "NormalizePhased",
    "DenormalizePhased",
    "NormalizeMagnituded",
    "DenormalizeMagnituded",
    "ForegroundMaskd",
    "WeightMapsd",
    "InterpolationSampled",
    "RandInterpolationSampled",
    "PhaseSampled",
    "RandPhaseSampled",
    "MotionPlanesd",
    "ROIWindowd",
    "RandROIWindowd",
    "MOTION_KEY",
    "motion_series",
    "CropLVROID",
    "CropLVROIDict",
    "PasteROID",
    "PasteROIDict",
    "NormalizePhaseD",
    "NormalizePhaseDict",
    "DenormalizePhaseD",
    "DenormalizePhaseDict",
    "NormalizeMagnitudeD",
    "NormalizeMagnitudeDict",
    "DenormalizeMagnitudeD",
    "DenormalizeMagnitudeDict",
    "ForegroundMaskD",
    "ForegroundMaskDict",
    "WeightMapsD",
    "WeightMapsDict",
    "InterpolationSampleD",
    "InterpolationSampleDict",
    "RandInterpolationSampleD",
    "RandInterpolationSampleDict",
    "PhaseSampleD",
    "PhaseSampleDict",
    "RandPhaseSampleD",
    "RandPhaseSampleDict",
    "ROIWindowD",
    "ROIWindowDict",
    "RandROIWindowD",
    "RandROIWindowDict",
]

DEFAULT_EXTRA_KEYS = ("w1", "w2", "foreground")
PHASE_KEYS = ("phase_x", "phase_y", "phase_z")


class CropLVROId(MapTransform):
    """Crop every key to the same LV-centred ROI (see :class:`~hdl_monai.transforms.array.CropLVROI`).

    The box comes from ``d[center_key]`` ((x, y) pixels) when ``center_key`` is set and present, else from
    the LV centroid of ``d[label_key]`` over all frames (computed before anything is cropped). It is stored
    in ``d[box_key]`` as ``{"start", "end", "spatial_shape"}`` for :class:`PasteROId` / ``paste_roi``.

    Args:
        keys: series keys to crop (include ``label_key`` to crop the label too).
        label_key: label series giving the centre.
        roi_size: (rx, ry) pixels.
        label_values: labels whose centroid is the centre (default 1 and 2).
        pad_value: padding fill per key (a number or ``"min"``; one value or one per key). Labels pad
            with their minimum, i.e. 0; use 2048 for raw phase if zero-velocity padding is wanted.
        center_key: optional key holding an explicit (x, y) centre.
        box_key: where the box is recorded.
        on_missing: ``"raise"`` or ``"image_center"`` when the label has no LV pixel.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str = "label",
        roi_size: Sequence[int] | int = (128, 128),
        label_values: Sequence[int] | int = (1, 2),
        pad_value: Sequence[float | str] | float | str = "min",
        center_key: str | None = None,
        box_key: str = "roi_box",
        on_missing: str = "raise",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.cropper = CropLVROI(roi_size, label_values, "min", on_missing)
        self.label_key, self.center_key, self.box_key = label_key, center_key, box_key
        self.pad_value = ensure_tuple_rep(pad_value, len(self.keys))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        first = next(self.key_iterator(d), None)
        if first is None:
            return d
        center = d.get(self.center_key) if self.center_key is not None else None
        if center is not None:
            center = [float(c) for c in np.asarray(center, dtype=np.float64).reshape(-1)[:2]]
        label = d.get(self.label_key)
        box = self.cropper.compute_box(tuple(d[first].shape[-3:-1]), label=label, center=center)
        for key, pad in self.key_iterator(d, self.pad_value):
            d[key] = crop_roi(d[key], box, pad)
        d[self.box_key] = box.as_dict()
        return d


class PasteROId(MapTransform):
    """Paste cropped series back to full size using the box in ``d[box_key]`` (inverse of :class:`CropLVROId`).

    Args:
        keys: cropped series keys.
        box_key: key of the box recorded by :class:`CropLVROId`.
        background: fill outside the box, one value or one per key.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        box_key: str = "roi_box",
        background: Sequence[float] | float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.box_key = box_key
        self.background = ensure_tuple_rep(background, len(self.keys))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        box = RoiBox.from_any(d[self.box_key])
        for key, bg in self.key_iterator(d, self.background):
            d[key] = paste_roi(d[key], box, bg)
        return d


class _PhaseKeysd(MapTransform):
    """Applies ``self.transform`` (set by the subclass) to every phase key."""

    transform_class: type = NormalizePhase

    def __init__(
        self, keys: KeysCollection = PHASE_KEYS, clip: bool = True, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = self.transform_class(clip)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


class NormalizePhased(_PhaseKeysd):
    """Phase keys from 0..4096 to [-1, 1] (``p / 2048 - 1``); see
    :class:`~hdl_monai.transforms.array.NormalizePhase`."""

    transform_class = NormalizePhase


class DenormalizePhased(_PhaseKeysd):
    """Phase keys from [-1, 1] back to scanner units 0..4096 (``(x + 1) * 2048``, clipped)."""

    transform_class = DenormalizePhase


class NormalizeMagnituded(MapTransform):
    """Magnitude keys to [-1, 1] with a per-series scale, recorded in ``d[key + scale_postfix]``.

    The scale (scanner units) is the ``percentile`` (default 99.5) of the whole series; see
    :class:`~hdl_monai.transforms.array.NormalizeMagnitude`.
    """

    def __init__(
        self,
        keys: KeysCollection = "magnitude",
        percentile: float = MAGNITUDE_PERCENTILE,
        scale_postfix: str = "_scale",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = NormalizeMagnitude(percentile)
        self.scale_postfix = scale_postfix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            scale = self.transform.compute_scale(d[key])
            d[key] = self.transform(d[key], scale=scale)
            d[f"{key}{self.scale_postfix}"] = scale
        return d


class DenormalizeMagnituded(MapTransform):
    """Magnitude keys from [-1, 1] back to scanner units with the recorded scale.

    Args:
        keys: normalised magnitude keys (series, samples or batches).
        scale_keys: keys holding the scale, one or one per key; default ``key + "_scale"``
            (per-item scales of a collated batch are applied item by item).
        clip: clip inputs to [-1, 1] first.
    """

    def __init__(
        self,
        keys: KeysCollection = "magnitude",
        scale_keys: KeysCollection | None = None,
        clip: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if scale_keys is None:
            self.scale_keys = tuple(f"{k}_scale" for k in self.keys)
        else:
            self.scale_keys = ensure_tuple_rep(scale_keys, len(self.keys))
        self.transform = DenormalizeMagnitude(clip=clip)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, scale_key in self.key_iterator(d, self.scale_keys):
            if scale_key not in d:
                raise KeyError(f"DenormalizeMagnituded: no scale under {scale_key!r} for {key!r}")
            d[key] = self.transform(d[key], scale=d[scale_key])
        return d


class ForegroundMaskd(MapTransform):
    """Foreground mask (normalised magnitude > -0.95, float32 {0, 1}) of each key, written to ``output_keys``."""

    def __init__(
        self,
        keys: KeysCollection = "magnitude",
        output_keys: KeysCollection = "foreground",
        threshold: float = FOREGROUND_THRESHOLD,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = ensure_tuple(output_keys)
        if len(self.output_keys) != len(self.keys):
            raise ValueError(f"ForegroundMaskd: {len(self.keys)} keys but {len(self.output_keys)} output_keys")
        self.transform = ForegroundMask(threshold)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[out_key] = self.transform(d[key])
        return d


class WeightMapsd(MapTransform):
    """Loss weight maps of paper eq. (1) as series of the input shape, float32.

    ``d[w1_key]`` from the label (LV myocardium + enclosed cavity dilated by ``margin`` pixels: ``inside``,
    else ``outside``; left out when the label is absent), ``d[w2_key]`` from the normalised magnitude
    (``inside`` where > ``threshold``), and ``d[foreground_key]`` (the {0, 1} foreground) unless None.
    See :class:`~hdl_monai.transforms.array.WeightMaps`.
    """

    def __init__(
        self,
        magnitude_key: str = "magnitude",
        label_key: str = "label",
        w1_key: str = "w1",
        w2_key: str = "w2",
        foreground_key: str | None = "foreground",
        margin: int = 5,
        label_values: Sequence[int] | int = (1, 2),
        threshold: float = FOREGROUND_THRESHOLD,
        inside: float = WEIGHT_INSIDE,
        outside: float = WEIGHT_OUTSIDE,
        fill_holes: bool = True,
    ) -> None:
        super().__init__((magnitude_key, label_key), allow_missing_keys=True)
        self.magnitude_key, self.label_key = magnitude_key, label_key
        self.w1_key, self.w2_key, self.foreground_key = w1_key, w2_key, foreground_key
        self.transform = WeightMaps(margin, label_values, threshold, inside, outside, fill_holes)
        self.foreground = ForegroundMask(threshold)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.magnitude_key not in d:
            raise KeyError(f"WeightMapsd: no magnitude under {self.magnitude_key!r}")
        w1, w2 = self.transform(d[self.magnitude_key], d.get(self.label_key))
        if w1 is not None:
            d[self.w1_key] = w1
        d[self.w2_key] = w2
        if self.foreground_key is not None:
            d[self.foreground_key] = self.foreground(d[self.magnitude_key])
        return d


def _extras(d: Mapping[Hashable, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: d[k] for k in keys if k in d and d[k] is not None}


class InterpolationSampled(MapTransform):
    """One temporal-interpolation sample with fixed ``(tau, K, k)``; see
    :class:`~hdl_monai.transforms.array.InterpolationSample` for the output keys and the condition maps.

    Args:
        tau, K, k: frame indices (tau modulo T; 1 <= k <= K; K must fit T, see ``check_gap``).
        magnitude_key: normalised magnitude series (X, Y, T) or (1, X, Y, T).
        label_key: label series (optional: the mask keys are left out without it).
        extra_keys: series keys replaced by their (1, X, Y) target frame when present (default w1, w2,
            foreground).
        K_max, mask_labels, include_K: see the array transform.
        keep_series: keep ``magnitude_key`` and ``label_key`` in the output (False drops them, so samples
            from series of different T collate).
        estimate: None, or a classical guess to add as ``"estimate"`` (see the array transform).
        timing: "linear" or "cubic", where the estimate places the target (see the array transform).
    """

    def __init__(
        self,
        tau: int,
        K: int,
        k: int,
        magnitude_key: str = "magnitude",
        label_key: str = "label",
        extra_keys: Sequence[str] = DEFAULT_EXTRA_KEYS,
        K_max: int = DEFAULT_K_MAX,
        mask_labels: Sequence[int] | int = (1,),
        include_K: bool = True,
        keep_series: bool = True,
        estimate: str | None = None,
        timing: str = "linear",
    ) -> None:
        super().__init__((magnitude_key,), allow_missing_keys=False)
        self.tau, self.K, self.k = int(tau), int(K), int(k)
        self.magnitude_key, self.label_key = magnitude_key, label_key
        self.extra_keys = tuple(ensure_tuple(extra_keys))
        self.keep_series = keep_series
        self.sampler = InterpolationSample(
            K_max=K_max, mask_labels=mask_labels, include_K=include_K, estimate=estimate, timing=timing
        )

    def _sample(self, data: Mapping[Hashable, Any], tau: int, K: int, k: int) -> dict[Hashable, Any]:
        d = dict(data)
        out = self.sampler(
            d[self.magnitude_key], d.get(self.label_key), _extras(d, self.extra_keys), tau=tau, K=K, k=k
        )
        if not self.keep_series:
            d.pop(self.magnitude_key, None)
            d.pop(self.label_key, None)
        d.update(out)
        return d

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        return self._sample(data, self.tau, self.K, self.k)


class RandInterpolationSampled(Randomizable, InterpolationSampled):
    """Random temporal-interpolation samples: K uniform in ``K_range`` (inclusive, default 1..6, cut to
    the K that fit T), tau uniform in 0..T-1, k uniform in 1..K.

    Args:
        K_range: (low, high) K.
        num_samples: samples per call; 1 returns a dict, more return a list of dicts (each drawn anew).
        others: as :class:`InterpolationSampled`.

    Reproducible with :meth:`set_random_state`.
    """

    def __init__(
        self,
        K_range: Sequence[int] = (1, DEFAULT_K_MAX),
        magnitude_key: str = "magnitude",
        label_key: str = "label",
        extra_keys: Sequence[str] = DEFAULT_EXTRA_KEYS,
        K_max: int = DEFAULT_K_MAX,
        mask_labels: Sequence[int] | int = (1,),
        include_K: bool = True,
        keep_series: bool = True,
        num_samples: int = 1,
        estimate: str | None = None,
        timing: str = "linear",
    ) -> None:
        InterpolationSampled.__init__(
            self, 0, 1, 1, magnitude_key, label_key, extra_keys, K_max, mask_labels, include_K, keep_series,
            estimate=estimate, timing=timing,
        )
        self.K_range = (int(K_range[0]), int(K_range[1]))
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples = int(num_samples)

    def randomize(self, data: int) -> None:
        """Draw ``(tau, K, k)`` for a series of ``data`` = T frames."""
        self.tau, self.K, self.k = sample_interpolation_indices(self.R, int(data), self.K_range)

    def __call__(  # type: ignore[override]
        self, data: Mapping[Hashable, Any]
    ) -> dict[Hashable, Any] | list[dict[Hashable, Any]]:
        T = int(_squeeze_series(data[self.magnitude_key], self.magnitude_key).shape[-1])
        samples = []
        for _ in range(self.num_samples):
            self.randomize(T)
            samples.append(self._sample(data, self.tau, self.K, self.k))
        return samples[0] if self.num_samples == 1 else samples


MOTION_KEY = "motion"
"""Where :class:`MotionPlanesd` puts the motion planes and the phase samplers look for them."""


def motion_series(data: Mapping[Hashable, Any], needed: bool, key: str = MOTION_KEY, who: str = "PhaseSampled") -> Any:
    """``data[key]`` (the (2, X, Y, T) motion planes) when a sampler ``needed`` them, else None; KeyError
    naming ``who`` when they are needed and absent."""
    if not needed:
        return None
    if key not in data:
        raise KeyError(f"{who}(motion=True): no {key!r} series (add MotionPlanesd first)")
    return data[key]


class MotionPlanesd(MapTransform):
    """Add the in-plane velocity guess of :func:`~hdl_monai.transforms.array.motion_planes` as
    ``output_key`` (2, X, Y, T), from the ``magnitude_key`` series and the case's ``pixel_spacing_mm``,
    ``rr_interval_ms`` and ``venc_cm_s`` (as ``hdl_monai.data.loading.LoadCased`` provides them). Place it
    after the ROI crop (the flow is computed on what the generator sees) and before caching: it runs one
    Horn-Schunck flow per frame.

    With ``jitter`` j > 0 the series is the ROI grown by j on every side (``CropLVROId`` with
    ``jitter_crop_size(roi_size, j)``), and the planes are computed once per window of
    :func:`~hdl_monai.transforms.array.window_offsets` (each ``window_size`` crop on its own, as
    ``synthesize_phase`` computes them): ``d[output_key + "_windows"]`` (n_windows, 2, rx, ry, T), for
    :class:`RandROIWindowd` to pick from.

    Raises:
        KeyError: a case without ``venc_cm_s`` (the guess is in units of venc), naming the case.
        ValueError: ``jitter`` > 0 without ``window_size``, or a magnitude that is not the ROI grown by
            ``jitter`` (naming the case).
    """

    def __init__(
        self,
        magnitude_key: str = "magnitude",
        output_key: str = MOTION_KEY,
        alpha: float = 0.1,
        window_size: Sequence[int] | int | None = None,
        jitter: int = 0,
    ) -> None:
        super().__init__((magnitude_key,))
        self.magnitude_key, self.output_key, self.alpha = magnitude_key, output_key, float(alpha)
        if jitter and window_size is None:
            raise ValueError("MotionPlanesd: jitter > 0 needs window_size (the generator's ROI size)")
        self.window = None if not jitter else ROIWindow(window_size, jitter)  # type: ignore[arg-type]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        missing = [k for k in ("pixel_spacing_mm", "rr_interval_ms", "venc_cm_s") if d.get(k) is None]
        if missing:
            raise KeyError(f"MotionPlanesd: case {_case_name(d)} lacks {missing}")
        args = (d["pixel_spacing_mm"], float(d["rr_interval_ms"]), d["venc_cm_s"], self.alpha)
        if self.window is None:
            d[self.output_key] = motion_planes(d[self.magnitude_key], *args)
            return d
        magnitude = d[self.magnitude_key]
        _check_window(self.window, magnitude, self.magnitude_key, d, "MotionPlanesd")
        d[self.output_key + WINDOWS_POSTFIX] = np.stack(
            [motion_planes(self.window(magnitude, offset), *args) for offset in window_offsets(self.window.jitter)]
        )
        return d


WINDOWS_POSTFIX = "_windows"


def _case_name(d: Mapping[Hashable, Any]) -> str:
    return str(d.get("case_id", d.get("case", "?")))


def _check_window(window: ROIWindow, series: Any, key: Hashable, d: Mapping[Hashable, Any], who: str) -> None:
    """``window.check`` with the case, the key and the transform named in the error."""
    try:
        window.check(series, f"{key!r}")
    except ValueError as err:
        raise ValueError(f"{who}: case {_case_name(d)}: {err}") from err


class ROIWindowd(MapTransform):
    """:class:`~hdl_monai.transforms.array.ROIWindow` on every key: one generator window (the ROI moved by
    an offset of :func:`~hdl_monai.transforms.array.window_offsets`) out of series cropped to the ROI grown
    by ``jitter``; ``jitter`` 0 leaves the dict as it is.

    Each of ``keys`` is cut to ``roi_size``; the motion planes of that window, if
    :class:`MotionPlanesd` computed them (``d[motion_key + "_windows"]``), become ``d[motion_key]``.
    ``index`` picks the window (0, the default, is the ROI itself: validation sees what inference with
    ``window_shift`` 0 sees); :class:`RandROIWindowd` draws it for training.

    Raises:
        ValueError: a key whose (X, Y) is not the grown ROI, naming the case; a bad ``index``.
    """

    def __init__(
        self,
        keys: KeysCollection,
        roi_size: Sequence[int] | int,
        jitter: int = 0,
        index: int = 0,
        motion_key: str = MOTION_KEY,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.window = ROIWindow(roi_size, jitter)
        self.offsets = window_offsets(jitter)
        if not 0 <= int(index) < len(self.offsets):
            raise ValueError(f"ROIWindowd: index must be in [0, {len(self.offsets) - 1}], got {index}")
        self.index, self.motion_key = int(index), motion_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if not self.window.jitter:
            return d
        offset = self.offsets[self.index]
        for key in self.key_iterator(d):
            _check_window(self.window, d[key], key, d, type(self).__name__)
            d[key] = self.window(d[key], offset)
        windows = d.pop(self.motion_key + WINDOWS_POSTFIX, None)
        if windows is not None:
            d[self.motion_key] = windows[self.index]
        return d


class RandROIWindowd(Randomizable, ROIWindowd):
    """:class:`ROIWindowd` with the window drawn uniformly from the five of :func:`window_offsets` (the ROI
    and the four that ``synthesize_phase(window_shift=jitter)`` blends), so a generator trained with it
    has seen every window it is run on. Reproducible with :meth:`set_random_state`."""

    def randomize(self, data: Any = None) -> None:
        self.index = int(self.R.randint(0, len(self.offsets)))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize()
        return ROIWindowd.__call__(self, data)


class PhaseSampled(MapTransform):
    """One phase-synthesis sample for frame ``t``; see :class:`~hdl_monai.transforms.array.PhaseSample`.

    Args:
        t: frame index (modulo T).
        magnitude_key: normalised magnitude series.
        phase_keys: the x, y, z phase series (normalised); absent keys leave ``"phase"`` out.
        extra_keys: series keys replaced by their (1, X, Y) frame t when present.
        keep_series: keep the magnitude and phase series (False drops them).
        cycle: append the cardiac-phase planes (cos, sin of 2 pi t / T) to ``"magnitude_triplet"``.
        motion: append frame t of the ``motion_key`` series (the (2, X, Y, T) in-plane velocity guess of
            :class:`MotionPlanesd`) last.
        motion_key: where the motion planes are.
    """

    def __init__(
        self,
        t: int,
        magnitude_key: str = "magnitude",
        phase_keys: Sequence[str] = PHASE_KEYS,
        extra_keys: Sequence[str] = DEFAULT_EXTRA_KEYS,
        keep_series: bool = True,
        cycle: bool = False,
        motion: bool = False,
        motion_key: str = MOTION_KEY,
    ) -> None:
        super().__init__((magnitude_key,), allow_missing_keys=False)
        self.t = int(t)
        self.magnitude_key = magnitude_key
        self.phase_keys = tuple(ensure_tuple(phase_keys))
        if len(self.phase_keys) != 3:
            raise ValueError(f"phase_keys must name the x, y and z phase series, got {self.phase_keys}")
        self.extra_keys = tuple(ensure_tuple(extra_keys))
        self.keep_series = keep_series
        self.motion_key = motion_key
        self.sampler = PhaseSample(cycle=cycle, motion=motion)

    def _sample(self, data: Mapping[Hashable, Any], t: int) -> dict[Hashable, Any]:
        d = dict(data)
        present = [k for k in self.phase_keys if k in d]
        if present and len(present) != 3:
            raise KeyError(f"PhaseSampled: phase keys {self.phase_keys} only partly present ({present})")
        phase = [d[k] for k in self.phase_keys] if present else None
        motion = motion_series(d, self.sampler.motion, self.motion_key)
        out = self.sampler(d[self.magnitude_key], phase, _extras(d, self.extra_keys), t=t, motion=motion)
        if not self.keep_series:
            for key in (self.magnitude_key, *self.phase_keys, self.motion_key):
                d.pop(key, None)
        d.update(out)
        return d

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        return self._sample(data, self.t)


class RandPhaseSampled(Randomizable, PhaseSampled):
    """Random phase-synthesis samples, t uniform in 0..T-1; ``num_samples`` > 1 returns a list of dicts.

    Reproducible with :meth:`set_random_state`.
    """

    def __init__(
        self,
        magnitude_key: str = "magnitude",
        phase_keys: Sequence[str] = PHASE_KEYS,
        extra_keys: Sequence[str] = DEFAULT_EXTRA_KEYS,
        keep_series: bool = True,
        num_samples: int = 1,
        cycle: bool = False,
        motion: bool = False,
        motion_key: str = MOTION_KEY,
    ) -> None:
        PhaseSampled.__init__(self, 0, magnitude_key, phase_keys, extra_keys, keep_series, cycle, motion, motion_key)
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples = int(num_samples)

    def randomize(self, data: int) -> None:
        """Draw t for a series of ``data`` = T frames."""
        self.t = int(self.R.randint(0, int(data)))

    def __call__(  # type: ignore[override]
        self, data: Mapping[Hashable, Any]
    ) -> dict[Hashable, Any] | list[dict[Hashable, Any]]:
        T = int(_squeeze_series(data[self.magnitude_key], self.magnitude_key).shape[-1])
        samples = []
        for _ in range(self.num_samples):
            self.randomize(T)
            samples.append(self._sample(data, self.t))
        return samples[0] if self.num_samples == 1 else samples


CropLVROID = CropLVROIDict = CropLVROId
PasteROID = PasteROIDict = PasteROId
NormalizePhaseD = NormalizePhaseDict = NormalizePhased
DenormalizePhaseD = DenormalizePhaseDict = DenormalizePhased
NormalizeMagnitudeD = NormalizeMagnitudeDict = NormalizeMagnituded
DenormalizeMagnitudeD = DenormalizeMagnitudeDict = DenormalizeMagnituded
ForegroundMaskD = ForegroundMaskDict = ForegroundMaskd
WeightMapsD = WeightMapsDict = WeightMapsd
InterpolationSampleD = InterpolationSampleDict = InterpolationSampled
RandInterpolationSampleD = RandInterpolationSampleDict = RandInterpolationSampled
PhaseSampleD = PhaseSampleDict = PhaseSampled
RandPhaseSampleD = RandPhaseSampleDict = RandPhaseSampled
ROIWindowD = ROIWindowDict = ROIWindowd
RandROIWindowD = RandROIWindowDict = RandROIWindowd

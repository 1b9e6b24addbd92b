"""Array transforms for HDL series: LV ROI crop, normalisation, foreground and weight maps, temporal stacking.

Conventions used throughout this module
---------------------------------------
*Series*: an array laid out ``(..., X, Y, T)`` as stored in the case format: x is axis -3, y axis -2,
t (frame) axis -1. Plain series are ``(X, Y, T)``; a leading channel, ``(C, X, Y, T)``, is accepted
wherever noted (crop, normalisation, foreground and weight maps act on every leading index alike).
The temporal-stacking transforms take ``(X, Y, T)`` or ``(1, X, Y, T)`` (a singleton channel is
dropped) and return 2-D channel-first samples ``(C, X, Y)`` as float32.

*Kinds*: every transform accepts numpy arrays or torch tensors and returns the same kind (a
``MetaTensor`` is treated as a plain tensor; its metadata is not carried).

*Value scales*:

- phase: scanner units 0..4096 with 2048 = zero velocity; normalised ``p / 2048 - 1`` to [-1, 1].
- magnitude: scanner units (>= 0); normalised per series by ``scale`` = the 99.5th percentile of the
  whole series (all frames), ``clip(m / scale, 0, 1) * 2 - 1``. The scale is returned/recorded so
  that :func:`denormalize_magnitude` brings network outputs back to scanner units.
- foreground: normalised magnitude strictly greater than -0.95 (paper, section III-B).
- weight maps (paper eq. 1, Fig. 3): 1 inside, 0.1 outside. ``w1`` = the LV myocardium with the cavity
  it encloses, dilated in-plane by ``margin`` pixels; ``w2`` = the foreground.
- masks fed to / predicted by the interpolation network: binary LV myocardium (label 1), float32
  {0, 1} (``mask_labels`` chooses other labels).

*Temporal condition maps* (interpolation samples), constant planes of shape (X, Y):

- plane 0: ``tau / T`` - cardiac phase of the first existing frame as a fraction of the cycle, [0, 1);
- plane 1: ``k / (K + 1)`` - relative position of the target between the two existing frames, (0, 1);
- plane 2: ``K / K_max`` - gap length (missing frames between the two existing frames), (0, 1] for
  ``K <= K_max`` (default ``K_max = 6``, the largest K in the paper). Left out with
  ``include_K=False`` (the paper's two condition maps).

Frame indices are cyclic: every frame index is taken modulo T (the cardiac cycle repeats).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import Randomizable, Transform
from monai.utils import TransformBackends, ensure_tuple, ensure_tuple_rep
from scipy import ndimage

from hdl_monai.data.case import PHASE_MAX, PHASE_MIN, PHASE_ZERO

__all__ = [
    "DEFAULT_K_MAX",
    "ESTIMATES",
    "MOTION_PLANES",
    "motion_planes",
    "interpolation_estimate",
    "FOREGROUND_THRESHOLD",
    "WEIGHT_INSIDE",
    "WEIGHT_OUTSIDE",
    "MAGNITUDE_PERCENTILE",
    "RoiBox",
    "InterpolationStep",
    # ROI crop
    "lv_center",
    "roi_box",
    "crop_roi",
    "paste_roi",
    "CropLVROI",
    "PasteROI",
    "window_offsets",
    "jitter_crop_size",
    "ROIWindow",
    # normalisation
    "normalize_phase",
    "denormalize_phase",
    "magnitude_scale",
    "normalize_magnitude",
    "denormalize_magnitude",
    "NormalizePhase",
    "DenormalizePhase",
    "NormalizeMagnitude",
    "DenormalizeMagnitude",
    # foreground and weights
    "foreground_mask",
    "myocardium_region",
    "weight_map",
    "ForegroundMask",
    "MyocardiumWeightMap",
    "ForegroundWeightMap",
    "WeightMaps",
    # temporal stacking
    "mask_from_label",
    "max_gap",
    "check_gap",
    "interpolation_frames",
    "condition_values",
    "condition_maps",
    "kept_frames",
    "interpolation_plan",
    "sample_interpolation_indices",
    "phase_frames",
    "CYCLE_PLANES",
    "cycle_planes",
    "InterpolationSample",
    "RandInterpolationSample",
    "PhaseSample",
    "RandPhaseSample",
]

DEFAULT_K_MAX = 6
"""Largest gap K the condition map is scaled for (the paper tests K = 1..6)."""
FOREGROUND_THRESHOLD = -0.95
"""Normalised magnitude above which a pixel is foreground (paper, section III-B)."""
WEIGHT_INSIDE, WEIGHT_OUTSIDE = 1.0, 0.1
"""Loss weights inside / outside the w1 and w2 regions (paper, Fig. 3)."""
MAGNITUDE_PERCENTILE = 99.5
"""Percentile of the whole magnitude series that maps to +1 after normalisation."""


# --------------------------------------------------------------------------------------------- helpers


def _plain(x: Any) -> Any:
    """A MetaTensor as a plain tensor; anything else unchanged."""
    as_tensor = getattr(x, "as_tensor", None)
    return as_tensor() if isinstance(x, torch.Tensor) and callable(as_tensor) else x


def _to_numpy(x: NdarrayOrTensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _like(array: np.ndarray, like: Any) -> NdarrayOrTensor:
    """``array`` as the kind of ``like`` (torch tensor on its device, or numpy)."""
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(array, device=like.device)
    return array


def _float32(x: NdarrayOrTensor) -> NdarrayOrTensor:
    x = _plain(x)
    if isinstance(x, torch.Tensor):
        return x.to(torch.float32)
    return np.asarray(x, dtype=np.float32)


def _check_series(x: Any, name: str, min_ndim: int = 3) -> None:
    if x is None or getattr(x, "ndim", 0) < min_ndim:
        raise ValueError(f"{name}: expected a series (..., X, Y, T), got shape {getattr(x, 'shape', None)}")


def _squeeze_series(x: NdarrayOrTensor, name: str) -> NdarrayOrTensor:
    """An (X, Y, T) series from (X, Y, T) or (1, X, Y, T); anything else raises ValueError naming ``name``."""
    x = _plain(x)
    if getattr(x, "ndim", 0) == 4 and x.shape[0] == 1:
        x = x[0]
    if getattr(x, "ndim", 0) != 3:
        raise ValueError(f"{name}: expected (X, Y, T) or (1, X, Y, T), got shape {getattr(x, 'shape', None)}")
    return x


def _stack(frames: Sequence[NdarrayOrTensor], like: Any = None) -> NdarrayOrTensor:
    """Stack 2-D frames to a float32 (C, X, Y) array of the kind of ``like`` (default: of the first frame)."""
    like = frames[0] if like is None else _plain(like)
    if isinstance(like, torch.Tensor):
        return torch.stack([torch.as_tensor(f, device=like.device).to(torch.float32) for f in frames])
    return np.stack([_to_numpy(f).astype(np.float32) for f in frames])


def _isin(x: NdarrayOrTensor, values: Sequence[int]) -> np.ndarray:
    return np.isin(_to_numpy(x), np.asarray(list(values)))


# --------------------------------------------------------------------------------------------- ROI crop


class RoiBox(NamedTuple):
    """A crop box in full-image pixel coordinates; ``start`` may be negative and ``end`` past the image
    (those parts are padding). ``spatial_shape`` is the (X, Y) size of the uncropped image."""

    start: tuple[int, int]
    end: tuple[int, int]
    spatial_shape: tuple[int, int]

    def as_dict(self) -> dict[str, list[int]]:
        """JSON-friendly form (what the dictionary transforms store)."""
        return {"start": list(self.start), "end": list(self.end), "spatial_shape": list(self.spatial_shape)}

    @classmethod
    def from_any(cls, box: RoiBox | Mapping[str, Any] | Sequence[Any]) -> RoiBox:
        """A box from a RoiBox, its ``as_dict`` form (also after DataLoader collation of one item) or a 3-tuple."""
        if isinstance(box, RoiBox):
            return box
        if isinstance(box, Mapping):
            parts = (box["start"], box["end"], box["spatial_shape"])
        else:
            parts = tuple(box)
        start, end, shape = (tuple(_scalar_int(v) for v in p) for p in parts)
        return cls(start, end, shape)  # type: ignore[arg-type]


def _scalar_int(v: Any) -> int:
    """An int from an int, a 0-d/1-element array or tensor (DataLoader collation wraps ints in tensors)."""
    return int(_to_numpy(v).reshape(-1)[0]) if isinstance(v, (np.ndarray, torch.Tensor, list)) else int(v)


def lv_center(label: NdarrayOrTensor, label_values: Sequence[int] = (1, 2)) -> tuple[float, float]:
    """Centroid (x, y) in pixels of the LV (label values ``label_values``) pooled over all frames.

    Args:
        label: label series (..., X, Y, T); frames without labels simply add nothing.
        label_values: labels that make up the LV (default myocardium 1 and blood pool 2).

    Raises:
        ValueError: when no pixel carries one of ``label_values``.
    """
    _check_series(label, "label")
    inside = _isin(label, ensure_tuple(label_values))
    counts = inside.reshape((-1,) + inside.shape[-3:]).sum(axis=(0, 3)).astype(np.float64)  # (X, Y)
    total = counts.sum()
    if total == 0:
        raise ValueError(f"lv_center: no pixel with label values {tuple(label_values)} in any frame")
    xs, ys = np.arange(counts.shape[0]), np.arange(counts.shape[1])
    return float((counts.sum(axis=1) * xs).sum() / total), float((counts.sum(axis=0) * ys).sum() / total)


def roi_box(center: Sequence[float], roi_size: Sequence[int], spatial_shape: Sequence[int]) -> RoiBox:
    """The ``roi_size`` box whose pixel ``roi_size // 2`` is the pixel nearest ``center`` (halves round up).

    Args:
        center: (x, y) in pixels, may be fractional.
        roi_size: (rx, ry) crop size in pixels.
        spatial_shape: (X, Y) of the full image.
    """
    size = tuple(int(s) for s in ensure_tuple_rep(roi_size, 2))
    if any(s < 1 for s in size):
        raise ValueError(f"roi_size must be positive, got {roi_size}")
    pixel = [int(np.floor(float(c) + 0.5)) for c in center]
    start = tuple(p - s // 2 for p, s in zip(pixel, size))
    end = tuple(s0 + s for s0, s in zip(start, size))
    return RoiBox(start, end, tuple(int(s) for s in spatial_shape))  # type: ignore[arg-type]


def _overlap(box: RoiBox) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """(slices into the full image, slices into the crop) of the part of ``box`` inside the image."""
    full, crop = [], []
    for s0, s1, n in zip(box.start, box.end, box.spatial_shape):
        a, b = max(s0, 0), min(s1, n)
        if b <= a:
            a = b = max(min(s0, n), 0)
        full.append(slice(a, b))
        crop.append(slice(a - s0, a - s0 + (b - a)))
    return (full[0], full[1]), (crop[0], crop[1])


def _pad_fill(img: NdarrayOrTensor, pad_value: float | str) -> float:
    if isinstance(pad_value, str):
        if pad_value != "min":
            raise ValueError(f"pad_value must be a number or 'min', got {pad_value!r}")
        size = img.numel() if isinstance(img, torch.Tensor) else img.size
        return float(img.min()) if size else 0.0
    return float(pad_value)


def crop_roi(img: NdarrayOrTensor, box: RoiBox | Mapping[str, Any], pad_value: float | str = "min") -> NdarrayOrTensor:
    """Crop a series (..., X, Y, T) to ``box``; parts of the box outside the image are filled with ``pad_value``.

    Args:
        img: series (..., X, Y, T), numpy or torch; the result has the same kind and dtype.
        box: the crop box (see :func:`roi_box`).
        pad_value: fill for padding, a number or ``"min"`` (the minimum of the whole series).
    """
    _check_series(img, "img")
    img = _plain(img)
    box = RoiBox.from_any(box)
    if tuple(img.shape[-3:-1]) != tuple(box.spatial_shape):
        raise ValueError(f"crop_roi: image (X, Y) {tuple(img.shape[-3:-1])} differs from the box's {box.spatial_shape}")
    shape = tuple(img.shape[:-3]) + (box.end[0] - box.start[0], box.end[1] - box.start[1], img.shape[-1])
    fill = _pad_fill(img, pad_value)
    if isinstance(img, torch.Tensor):
        out = torch.full(shape, fill, dtype=img.dtype, device=img.device)
    else:
        out = np.full(shape, fill, dtype=img.dtype)
    (fx, fy), (cx, cy) = _overlap(box)
    out[..., cx, cy, :] = img[..., fx, fy, :]
    return out


def paste_roi(
    cropped: NdarrayOrTensor,
    box: RoiBox | Mapping[str, Any],
    background: float | NdarrayOrTensor = 0.0,
) -> NdarrayOrTensor:
    """Paste a cropped series back into its full-size frame (inverse of :func:`crop_roi`).

    Args:
        cropped: series (..., rx, ry, T) as cut by ``box``.
        box: the box used for the crop.
        background: fill value outside the box, or a full-size series (..., X, Y, T) whose pixels outside
            the box are kept (it is copied, not modified).

    Returns:
        series (..., X, Y, T) of the kind and dtype of ``cropped``; padding pixels of the crop are dropped.
    """
    _check_series(cropped, "cropped")
    cropped = _plain(cropped)
    box = RoiBox.from_any(box)
    size = (box.end[0] - box.start[0], box.end[1] - box.start[1])
    if tuple(cropped.shape[-3:-1]) != size:
        raise ValueError(f"paste_roi: crop (X, Y) {tuple(cropped.shape[-3:-1])} differs from the box size {size}")
    shape = tuple(cropped.shape[:-3]) + tuple(box.spatial_shape) + (cropped.shape[-1],)
    is_torch = isinstance(cropped, torch.Tensor)
    if isinstance(background, (int, float)):
        if is_torch:
            out = torch.full(shape, float(background), dtype=cropped.dtype, device=cropped.device)
        else:
            out = np.full(shape, background, dtype=cropped.dtype)
    else:
        background = _plain(background)
        if tuple(background.shape) != shape:
            raise ValueError(f"paste_roi: background shape {tuple(background.shape)} should be {shape}")
        if is_torch:
            out = torch.as_tensor(background, device=cropped.device).to(cropped.dtype).clone()
        else:
            out = np.array(_to_numpy(background), dtype=cropped.dtype, copy=True)
    (fx, fy), (cx, cy) = _overlap(box)
    out[..., fx, fy, :] = cropped[..., cx, cy, :]
    return out


class CropLVROI(Transform):
    """Crop a series to a fixed-size ROI centred on the left ventricle, the same box for every frame.

    The centre is the LV centroid over all labelled frames (:func:`lv_center`), or a given (x, y);
    the pixel nearest the centre lands at index ``roi_size // 2`` of the crop. Where the ROI runs past the
    image edge the crop is padded with ``pad_value``.

    Args:
        roi_size: (rx, ry) in pixels (an int means square).
        label_values: labels whose centroid is the centre (default LV myocardium 1 + blood pool 2).
        pad_value: a number or ``"min"`` (minimum of the series being cropped).
        on_missing: what to do when the label has no LV pixel: ``"raise"`` (ValueError) or
            ``"image_center"`` (centre of the image).

    Input: series (..., X, Y, T) (leading channel allowed), numpy or torch; output the same kind and dtype,
    (..., rx, ry, T).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        roi_size: Sequence[int] | int = (128, 128),
        label_values: Sequence[int] | int = (1, 2),
        pad_value: float | str = "min",
        on_missing: str = "raise",
    ) -> None:
        if on_missing not in ("raise", "image_center"):
            raise ValueError(f"on_missing must be 'raise' or 'image_center', got {on_missing!r}")
        self.roi_size = tuple(int(s) for s in ensure_tuple_rep(roi_size, 2))
        self.label_values = tuple(int(v) for v in ensure_tuple(label_values))
        self.pad_value = pad_value
        self.on_missing = on_missing

    def compute_box(
        self,
        spatial_shape: Sequence[int],
        label: NdarrayOrTensor | None = None,
        center: Sequence[float] | None = None,
    ) -> RoiBox:
        """The crop box for an image of (X, Y) ``spatial_shape`` from ``center`` or else from ``label``."""
        if center is None:
            if label is None:
                raise ValueError("CropLVROI needs a label series or an explicit center")
            try:
                center = lv_center(label, self.label_values)
            except ValueError:
                if self.on_missing == "raise":
                    raise
                center = ((spatial_shape[0] - 1) / 2.0, (spatial_shape[1] - 1) / 2.0)
        return roi_box(center, self.roi_size, spatial_shape)

    def __call__(
        self,
        img: NdarrayOrTensor,
        label: NdarrayOrTensor | None = None,
        center: Sequence[float] | None = None,
        box: RoiBox | Mapping[str, Any] | None = None,
    ) -> NdarrayOrTensor:
        """Crop ``img``; the box is ``box`` if given, else from ``center``, else from ``label``."""
        _check_series(img, "img")
        if box is None:
            box = self.compute_box(tuple(img.shape[-3:-1]), label=label, center=center)
        return crop_roi(img, box, self.pad_value)


def window_offsets(jitter: int) -> list[tuple[int, int]]:
    """(dx, dy) pixels of the generator windows about the LV-centred ROI: the ROI itself first, then, for
    ``jitter`` j > 0, the four windows moved by (+-j, +-j) that ``synthesize_phase(window_shift=j)`` blends
    (in its order)."""
    j = _check_jitter(jitter)
    return [(0, 0)] + ([(dx, dy) for dx in (-j, j) for dy in (-j, j)] if j else [])


def jitter_crop_size(roi_size: Sequence[int] | int, jitter: int) -> list[int]:
    """[rx + 2j, ry + 2j]: the crop (same centre as the ROI) that holds every window of
    :func:`window_offsets` for an ROI of ``roi_size``."""
    return [int(s) + 2 * _check_jitter(jitter) for s in ensure_tuple_rep(roi_size, 2)]


def _check_jitter(jitter: int) -> int:
    if isinstance(jitter, bool) or int(jitter) != jitter or int(jitter) < 0:
        raise ValueError(f"jitter must be a whole number of pixels >= 0, got {jitter!r}")
    return int(jitter)


class ROIWindow(Transform):
    """Cut one generator window out of a series cropped to the ROI grown by ``jitter`` on every side
    (``CropLVROI(jitter_crop_size(roi_size, jitter))``): the ``roi_size`` window moved by ``offset`` (one of
    :func:`window_offsets`) from the ROI. Input (..., rx + 2j, ry + 2j, T), numpy or torch; output a view
    (..., rx, ry, T).

    Args:
        roi_size: (rx, ry) of the generator's ROI (an int means square).
        jitter: pixels the crop was grown by on every side.

    Raises:
        ValueError: a bad ``jitter``; a series that is not the grown ROI; an offset beyond ``jitter``.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, roi_size: Sequence[int] | int, jitter: int) -> None:
        self.roi_size = tuple(int(s) for s in ensure_tuple_rep(roi_size, 2))
        self.jitter = _check_jitter(jitter)

    def check(self, series: NdarrayOrTensor, name: str = "series") -> None:
        """ValueError naming ``name`` unless ``series`` (..., X, Y, T) is the ROI grown by ``jitter``."""
        expected = tuple(jitter_crop_size(self.roi_size, self.jitter))
        if tuple(series.shape[-3:-1]) != expected:
            raise ValueError(
                f"{name} is {tuple(series.shape[-3:-1])} in (X, Y), expected the ROI {self.roi_size} grown by "
                f"jitter {self.jitter} on every side, {expected} (crop with CropLVROI(jitter_crop_size(roi_size, "
                "jitter)) first)"
            )

    def __call__(self, series: NdarrayOrTensor, offset: Sequence[int] = (0, 0)) -> NdarrayOrTensor:
        self.check(series)
        if any(abs(int(o)) > self.jitter for o in offset):
            raise ValueError(f"ROIWindow: offset {tuple(offset)} goes beyond jitter {self.jitter}")
        x0, y0 = self.jitter + int(offset[0]), self.jitter + int(offset[1])
        return series[..., x0 : x0 + self.roi_size[0], y0 : y0 + self.roi_size[1], :]


class PasteROI(Transform):
    """Paste a cropped series (..., rx, ry, T) back into the full (..., X, Y, T) frame (see :func:`paste_roi`).

    Args:
        background: value outside the box (default 0).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, background: float = 0.0) -> None:
        self.background = background

    def __call__(
        self,
        img: NdarrayOrTensor,
        box: RoiBox | Mapping[str, Any],
        background: float | NdarrayOrTensor | None = None,
    ) -> NdarrayOrTensor:
        return paste_roi(img, box, self.background if background is None else background)


# --------------------------------------------------------------------------------------------- normalisation


def normalize_phase(phase: NdarrayOrTensor, clip: bool = True) -> NdarrayOrTensor:
    """Phase in scanner units (0..4096, 2048 = zero velocity) to [-1, 1]: ``p / 2048 - 1`` (float32).

    With ``clip`` values outside 0..4096 are clipped first.
    """
    p = _float32(phase)
    if clip:
        p = p.clip(PHASE_MIN, PHASE_MAX)
    return p / PHASE_ZERO - 1.0


def denormalize_phase(phase: NdarrayOrTensor, clip: bool = True) -> NdarrayOrTensor:
    """Normalised phase [-1, 1] back to scanner units: ``(x + 1) * 2048`` (float32), clipped to 0..4096."""
    p = (_float32(phase) + 1.0) * PHASE_ZERO
    return p.clip(PHASE_MIN, PHASE_MAX) if clip else p


def magnitude_scale(magnitude: NdarrayOrTensor, percentile: float = MAGNITUDE_PERCENTILE) -> float:
    """The per-series magnitude scale in scanner units: the ``percentile`` of all pixels of all frames.

    Falls back to the maximum when the percentile is 0, and to 1.0 for an all-zero series, so the
    scale is always positive.
    """
    m = _to_numpy(_plain(magnitude)).astype(np.float64, copy=False)
    if m.size == 0:
        return 1.0
    scale = float(np.percentile(m, percentile))
    if not scale > 0:
        scale = float(m.max())
    return scale if scale > 0 else 1.0


def normalize_magnitude(magnitude: NdarrayOrTensor, scale: float) -> NdarrayOrTensor:
    """Magnitude (scanner units) to [-1, 1]: ``clip(m / scale, 0, 1) * 2 - 1`` (float32)."""
    if not float(scale) > 0:
        raise ValueError(f"magnitude scale must be positive, got {scale}")
    return (_float32(magnitude) / float(scale)).clip(0.0, 1.0) * 2.0 - 1.0


def denormalize_magnitude(
    magnitude: NdarrayOrTensor, scale: float | Sequence[float] | NdarrayOrTensor, clip: bool = True
) -> NdarrayOrTensor:
    """Normalised magnitude [-1, 1] back to scanner units: ``(x + 1) / 2 * scale`` (float32).

    Exact inverse of :func:`normalize_magnitude` for pixels that were not clipped (values up to ``scale``).
    With ``clip`` the input is clipped to [-1, 1] first, so outputs lie in 0..scale. ``scale`` is one number,
    or one per item of a batch-first input (B, ...) (as a collated ``"<key>_scale"`` entry is).
    """
    m = _float32(magnitude)
    if clip:
        m = m.clip(-1.0, 1.0)
    s = _to_numpy(_plain(scale)).astype(np.float32).reshape(-1) if not isinstance(scale, (int, float)) else None
    if s is None or s.size == 1:
        return (m + 1.0) * 0.5 * float(scale if s is None else s[0])
    if s.size != m.shape[0]:
        raise ValueError(f"denormalize_magnitude: {s.size} scales for a batch of {m.shape[0]}")
    s = s.reshape((-1,) + (1,) * (m.ndim - 1))
    return (m + 1.0) * 0.5 * _like(s, m)


class NormalizePhase(Transform):
    """Phase series (any shape) from scanner units 0..4096 to [-1, 1] (``p / 2048 - 1``), float32.

    Args:
        clip: clip the input to 0..4096 first.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, clip: bool = True) -> None:
        self.clip = clip

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        return normalize_phase(img, self.clip)


class DenormalizePhase(Transform):
    """Normalised phase [-1, 1] back to scanner units 0..4096 (``(x + 1) * 2048``), float32.

    Args:
        clip: clip the output to 0..4096 (network outputs may overshoot).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, clip: bool = True) -> None:
        self.clip = clip

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        return denormalize_phase(img, self.clip)


class NormalizeMagnitude(Transform):
    """Magnitude series to [-1, 1] with a per-series scale: ``clip(m / scale, 0, 1) * 2 - 1``, float32.

    ``scale`` (scanner units) is the ``percentile`` (default 99.5) of the whole input (all frames and
    channels), unless given; :meth:`compute_scale` returns it so it can be recorded and undone with
    :class:`DenormalizeMagnitude`.

    Args:
        percentile: the percentile mapped to +1.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, percentile: float = MAGNITUDE_PERCENTILE) -> None:
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile

    def compute_scale(self, img: NdarrayOrTensor) -> float:
        """The scale for ``img`` in scanner units."""
        return magnitude_scale(img, self.percentile)

    def __call__(self, img: NdarrayOrTensor, scale: float | None = None) -> NdarrayOrTensor:
        return normalize_magnitude(img, self.compute_scale(img) if scale is None else scale)


class DenormalizeMagnitude(Transform):
    """Normalised magnitude [-1, 1] back to scanner units: ``(x + 1) / 2 * scale``, float32.

    Args:
        scale: the scale recorded by :class:`NormalizeMagnitude` (may also be given per call).
        clip: clip the input to [-1, 1] first.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, scale: float | None = None, clip: bool = True) -> None:
        self.scale = scale
        self.clip = clip

    def __call__(self, img: NdarrayOrTensor, scale: Any = None) -> NdarrayOrTensor:
        scale = self.scale if scale is None else scale
        if scale is None:
            raise ValueError("DenormalizeMagnitude needs the magnitude scale recorded at normalisation")
        return denormalize_magnitude(img, scale, self.clip)


# --------------------------------------------------------------------------------------------- foreground / weights


def foreground_mask(magnitude: NdarrayOrTensor, threshold: float = FOREGROUND_THRESHOLD) -> NdarrayOrTensor:
    """Foreground of a normalised magnitude image/series: ``m > threshold`` (strict), float32 {0, 1}.

    The threshold is compared in the input's own floating dtype, so a pixel stored as exactly -0.95
    is background.
    """
    m = _plain(magnitude)
    if isinstance(m, torch.Tensor):
        m = m if m.is_floating_point() else m.to(torch.float32)
        return (m > torch.tensor(threshold, dtype=m.dtype, device=m.device)).to(torch.float32)
    m = np.asarray(m)
    if not np.issubdtype(m.dtype, np.floating):
        m = m.astype(np.float32)
    return (m > m.dtype.type(threshold)).astype(np.float32)


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    x, y = np.mgrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= r * r


def myocardium_region(
    label: NdarrayOrTensor,
    margin: int = 5,
    label_values: Sequence[int] = (1, 2),
    fill_holes: bool = True,
) -> np.ndarray:
    """The w1 region of a label series (..., X, Y, T) as a boolean numpy array of the same shape.

    Per frame: pixels with a label in ``label_values`` (default LV myocardium and blood pool), with holes
    filled (the cavity the myocardium encloses) when ``fill_holes``, dilated in-plane by a disk of radius
    ``margin`` pixels (every pixel within Euclidean distance ``margin`` of the region; 0 = no dilation).
    """
    _check_series(label, "label")
    if int(margin) < 0:
        raise ValueError(f"margin must be >= 0 pixels, got {margin}")
    region = _isin(label, ensure_tuple(label_values))
    shape = region.shape
    frames = np.moveaxis(region.reshape((-1,) + shape[-3:]), -1, 1).reshape((-1,) + shape[-3:-1])  # (N, X, Y)
    disk = _disk(margin) if margin > 0 else None
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        if fill_holes and frame.any():
            frame = ndimage.binary_fill_holes(frame)
        if disk is not None and frame.any():
            frame = ndimage.binary_dilation(frame, structure=disk)
        out[i] = frame
    lead = int(np.prod(shape[:-3])) if len(shape) > 3 else 1
    out = out.reshape((lead, shape[-1]) + shape[-3:-1])
    return np.moveaxis(out, 1, -1).reshape(shape)


def weight_map(
    region: NdarrayOrTensor, inside: float = WEIGHT_INSIDE, outside: float = WEIGHT_OUTSIDE
) -> NdarrayOrTensor:
    """``inside`` where ``region`` is true (non-zero), ``outside`` elsewhere, float32, same kind as ``region``."""
    region = _plain(region)
    if isinstance(region, torch.Tensor):
        return torch.where(region.bool(), torch.tensor(float(inside)), torch.tensor(float(outside))).to(
            dtype=torch.float32, device=region.device
        )
    return np.where(np.asarray(region).astype(bool), np.float32(inside), np.float32(outside)).astype(np.float32)


class ForegroundMask(Transform):
    """Foreground mask of a normalised magnitude (any shape): float32 {0, 1}, 1 where ``m > threshold``.

    Args:
        threshold: default -0.95 (paper). Exactly-equal pixels are background.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, threshold: float = FOREGROUND_THRESHOLD) -> None:
        self.threshold = threshold

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        return foreground_mask(img, self.threshold)


class MyocardiumWeightMap(Transform):
    """w1 from a label series (..., X, Y, T): ``inside`` on the dilated, hole-filled LV region, else ``outside``.

    Args:
        margin: in-plane dilation radius in pixels (default 5).
        label_values: labels forming the region (default 1 myocardium, 2 blood pool).
        inside: weight inside (default 1).
        outside: weight outside (default 0.1).
        fill_holes: include the cavity enclosed by the myocardium even where it is not labelled 2.

    Output: float32 of the label's shape and kind.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        margin: int = 5,
        label_values: Sequence[int] | int = (1, 2),
        inside: float = WEIGHT_INSIDE,
        outside: float = WEIGHT_OUTSIDE,
        fill_holes: bool = True,
    ) -> None:
        self.margin = int(margin)
        self.label_values = tuple(int(v) for v in ensure_tuple(label_values))
        self.inside, self.outside = float(inside), float(outside)
        self.fill_holes = fill_holes

    def __call__(self, label: NdarrayOrTensor) -> NdarrayOrTensor:
        region = myocardium_region(label, self.margin, self.label_values, self.fill_holes)
        return _like(weight_map(region, self.inside, self.outside), _plain(label))


class ForegroundWeightMap(Transform):
    """w2 from a normalised magnitude (any shape): ``inside`` where ``m > threshold``, else ``outside``; float32."""

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self, threshold: float = FOREGROUND_THRESHOLD, inside: float = WEIGHT_INSIDE, outside: float = WEIGHT_OUTSIDE
    ) -> None:
        self.threshold = threshold
        self.inside, self.outside = float(inside), float(outside)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        return weight_map(foreground_mask(img, self.threshold), self.inside, self.outside)


class WeightMaps(Transform):
    """Both loss weight maps of paper eq. (1): ``(w1, w2)`` from a label series and a normalised magnitude series.

    Args:
        margin, label_values, fill_holes: see :class:`MyocardiumWeightMap`.
        threshold: foreground threshold on the normalised magnitude (default -0.95).
        inside, outside: weights (default 1 and 0.1).

    ``__call__(magnitude, label)``: ``magnitude`` normalised to [-1, 1], both (..., X, Y, T) (any shape for
    the magnitude); returns float32 ``(w1, w2)``; ``w1`` is None when ``label`` is None.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        margin: int = 5,
        label_values: Sequence[int] | int = (1, 2),
        threshold: float = FOREGROUND_THRESHOLD,
        inside: float = WEIGHT_INSIDE,
        outside: float = WEIGHT_OUTSIDE,
        fill_holes: bool = True,
    ) -> None:
        self.w1 = MyocardiumWeightMap(margin, label_values, inside, outside, fill_holes)
        self.w2 = ForegroundWeightMap(threshold, inside, outside)

    def __call__(
        self, magnitude: NdarrayOrTensor, label: NdarrayOrTensor | None = None
    ) -> tuple[NdarrayOrTensor | None, NdarrayOrTensor]:
        return (None if label is None else self.w1(label)), self.w2(magnitude)


# --------------------------------------------------------------------------------------------- temporal stacking


class InterpolationStep(NamedTuple):
    """One interpolation query: from existing frames ``tau`` and ``(tau + K + 1) % T`` predict ``target``."""

    tau: int
    K: int
    k: int
    target: int


def mask_from_label(label: NdarrayOrTensor, mask_labels: Sequence[int] = (1,)) -> NdarrayOrTensor:
    """Binary network mask from a label array: float32 1 where the label is in ``mask_labels`` (default the
    LV myocardium), 0 elsewhere; same kind and shape as ``label``."""
    label = _plain(label)
    values = ensure_tuple(mask_labels)
    if isinstance(label, torch.Tensor):
        out = torch.zeros(label.shape, dtype=torch.bool, device=label.device)
        for v in values:
            out |= label == v
        return out.to(torch.float32)
    return _isin(label, values).astype(np.float32)


def max_gap(T: int) -> int:
    """Largest K usable with a T-frame series: ``T // 2 - 1`` (see :func:`check_gap`)."""
    return int(T) // 2 - 1


def check_gap(K: int, T: int) -> None:
    """Raise ValueError unless ``1 <= K`` and ``2 * (K + 1) <= T``.

    The rule: the cycle must hold two whole gaps, so down-sampling by K keeps at least two frames
    (:func:`kept_frames`) and the two existing frames of a sample are distinct, with distinct targets
    between them.
    """
    K, T = int(K), int(T)
    if K < 1 or 2 * (K + 1) > T:
        raise ValueError(
            f"K={K} does not fit a series of T={T} frames: need 1 <= K and 2 * (K + 1) <= T, i.e. K <= {max_gap(T)}"
        )


def interpolation_frames(tau: int, K: int, k: int, T: int) -> tuple[int, int, int]:
    """``(first, last, target)`` frame indices ``(tau, tau + K + 1, tau + k)`` modulo T.

    Raises:
        ValueError: when ``k`` is outside 1..K or K does not fit T (:func:`check_gap`).
    """
    check_gap(K, T)
    if not 1 <= int(k) <= int(K):
        raise ValueError(f"k={k} must lie in 1..K (K={K})")
    T = int(T)
    return int(tau) % T, (int(tau) + int(K) + 1) % T, (int(tau) + int(k)) % T


def condition_values(
    tau: int, k: int, K: int, T: int, K_max: int = DEFAULT_K_MAX, include_K: bool = True
) -> tuple[float, ...]:
    """The constants of the temporal condition planes: ``(tau / T, k / (K + 1)[, K / K_max])``, tau taken mod T."""
    values = ((int(tau) % int(T)) / float(T), int(k) / float(int(K) + 1))
    return values + ((int(K) / float(K_max),) if include_K else ())


def condition_maps(
    tau: int,
    k: int,
    K: int,
    T: int,
    spatial_shape: Sequence[int],
    K_max: int = DEFAULT_K_MAX,
    include_K: bool = True,
    like: Any = None,
) -> NdarrayOrTensor:
    """Temporal condition maps: constant float32 planes (C, X, Y) holding :func:`condition_values`.

    ``like``: a tensor makes the result a tensor on its device; otherwise numpy.
    """
    values = np.asarray(condition_values(tau, k, K, T, K_max, include_K), dtype=np.float32)
    maps = np.broadcast_to(values[:, None, None], (len(values),) + tuple(int(s) for s in spatial_shape)).copy()
    return _like(maps, _plain(like))


def kept_frames(T: int, K: int) -> list[int]:
    """Frames kept when a T-frame series is down-sampled by K: ``0, K + 1, 2 (K + 1), ... < T``."""
    check_gap(K, T)
    return list(range(0, int(T), int(K) + 1))


def interpolation_plan(T: int, K: int) -> list[InterpolationStep]:
    """The interpolation queries that rebuild a T-frame series from its :func:`kept_frames`.

    Every kept frame ``s`` is paired with the next kept frame, cyclically: the last kept frame pairs with
    frame T, i.e. frame 0. Full gaps give steps ``(s, K, k)`` for k = 1..K. When T is not a multiple of
    K + 1 the wrap-around gap is shorter: it has ``K' = T - 1 - s_last < K`` missing frames and gives steps
    ``(s_last, K', k)`` for k = 1..K' (none when K' = 0). Each missing frame appears exactly once.

    Raises:
        ValueError: when K does not fit T (:func:`check_gap`).
    """
    kept = kept_frames(T, K)
    steps: list[InterpolationStep] = []
    for i, s in enumerate(kept):
        nxt = kept[i + 1] if i + 1 < len(kept) else int(T)
        gap = nxt - s - 1
        steps += [InterpolationStep(s, gap, k, (s + k) % int(T)) for k in range(1, gap + 1)]
    return steps


def sample_interpolation_indices(
    R: np.random.RandomState, T: int, K_range: Sequence[int] = (1, DEFAULT_K_MAX)
) -> tuple[int, int, int]:
    """Draw ``(tau, K, k)``: K uniform in ``K_range`` (inclusive) cut to the K that fit T, tau uniform in
    0..T-1, k uniform in 1..K.

    Raises:
        ValueError: when no K of the range fits T.
    """
    lo, hi = int(K_range[0]), int(K_range[1])
    if lo < 1 or hi < lo:
        raise ValueError(f"K_range must be 1 <= low <= high, got {tuple(K_range)}")
    hi_fit = min(hi, max_gap(T))
    if hi_fit < lo:
        check_gap(lo, T)  # raises, naming K and T
    K = int(R.randint(lo, hi_fit + 1))
    tau = int(R.randint(0, int(T)))
    k = int(R.randint(1, K + 1))
    return tau, K, k


def phase_frames(t: int, T: int) -> tuple[int, int, int]:
    """The magnitude frames ``(t - 1, t, t + 1)`` modulo T feeding the phase generator for frame t."""
    T = int(T)
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    return (int(t) - 1) % T, int(t) % T, (int(t) + 1) % T


def _frame(series: NdarrayOrTensor, t: int) -> NdarrayOrTensor:
    return series[..., t]


ESTIMATES = ("optical_flow",)
"""Classical guesses an interpolation network can take as extra input and input-to-output skip."""


def interpolation_estimate(
    estimate: str,
    frame_a: NdarrayOrTensor,
    frame_b: NdarrayOrTensor,
    alpha: float | np.ndarray,
    mask_a: NdarrayOrTensor | None = None,
    mask_b: NdarrayOrTensor | None = None,
    flow: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """A classical guess of the frame at fraction ``alpha`` (a number or an (X, Y) map) between two frames, as float32 (2, X, Y) planes
    [magnitude, mask probability] (the mask plane is zero without masks).

    ``estimate`` ``"optical_flow"``: Horn-Schunck flow from ``frame_a`` to ``frame_b`` (or ``flow``, when
    the caller already has it), see :func:`hdl_monai.baselines.optical_flow.flow_estimate`; ``offset``
    (2, X, Y): the new frame's displacement from ``frame_a`` when it is not ``alpha * flow``.
    """
    if estimate not in ESTIMATES:
        raise ValueError(f"estimate must be one of {list(ESTIMATES)}, got {estimate!r}")
    from hdl_monai.baselines.optical_flow import flow_estimate  # baselines import this module

    masks = None if mask_a is None or mask_b is None else (_to_numpy(mask_a), _to_numpy(mask_b))
    return flow_estimate(_to_numpy(frame_a), _to_numpy(frame_b), alpha, masks=masks, flow=flow, offset=offset)


CYCLE_PLANES = 2
"""Channels :func:`cycle_planes` adds to the phase generator's input."""

MOTION_PLANES = 2
"""Channels :func:`motion_planes` adds to the phase generator's input (in-plane x and y)."""


def _venc_xy(venc_cm_s: Mapping[str, float] | Sequence[float]) -> tuple[float, float]:
    values = [venc_cm_s["x"], venc_cm_s["y"]] if isinstance(venc_cm_s, Mapping) else list(venc_cm_s)[:2]
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in map(float, values)):
        raise ValueError(f"venc_cm_s needs positive x and y values, got {venc_cm_s}")
    return float(values[0]), float(values[1])


def motion_planes(
    magnitude: NdarrayOrTensor,
    pixel_spacing_mm: Sequence[float],
    rr_interval_ms: float,
    venc_cm_s: Mapping[str, float] | Sequence[float],
    alpha: float = 0.1,
) -> np.ndarray:
    """In-plane tissue velocity seen in the magnitude, as a phase guess: float32 (2, X, Y, T).

    For every frame t, Horn-Schunck optical flow (:func:`hdl_monai.baselines.horn_schunck`, smoothness
    ``alpha``) from frame t-1 to frame t+1 (cyclic) is the displacement over two frame intervals; times the
    pixel spacing over 2 * (rr_interval_ms / T) it is a velocity, and divided by venc it is in the
    normalised phase units of the generator's output (``p / 2048 - 1`` = v / venc), clipped to [-1, 1].
    Planes: x (array axis 0), y (axis 1). The through-plane direction z has no such guess.

    Args:
        magnitude: (X, Y, T) or (1, X, Y, T) magnitude series (any scale).
        pixel_spacing_mm: (x, y) pixel size in mm.
        rr_interval_ms: duration of the T frames (one cycle) in ms.
        venc_cm_s: velocity encoding, ``{"x", "y", ...}`` or (x, y[, z]), cm/s.
        alpha: Horn-Schunck smoothness weight.
    """
    from hdl_monai.baselines.optical_flow import horn_schunck  # baselines import this module

    series = _to_numpy(_squeeze_series(magnitude, "magnitude")).astype(np.float64)
    T = series.shape[-1]
    if T < 3:
        raise ValueError(f"motion_planes needs at least 3 frames, got {T}")
    if not (np.isfinite(rr_interval_ms) and rr_interval_ms > 0):
        raise ValueError(f"rr_interval_ms must be positive, got {rr_interval_ms}")
    spacing = [float(v) for v in ensure_tuple_rep(pixel_spacing_mm, 2)][:2]
    venc = _venc_xy(venc_cm_s)
    frame_ms = float(rr_interval_ms) / T
    # pixels per two frames -> cm/s: px * mm/px / ms = mm/ms = 100 cm/s
    scale = [100.0 * spacing[i] / (2.0 * frame_ms) / venc[i] for i in range(2)]
    out = np.empty((2,) + series.shape, np.float32)
    for t in range(T):
        flow = horn_schunck(series[..., (t - 1) % T], series[..., (t + 1) % T], alpha=alpha)
        for i in range(2):
            out[i, ..., t] = np.clip(flow[i] * scale[i], -1.0, 1.0)
    return out


def cycle_planes(t: int, T: int, shape: Sequence[int]) -> np.ndarray:
    """Cardiac-phase condition of frame ``t`` of a T-frame cycle: two constant (X, Y) planes,
    ``cos(2 pi t / T)`` and ``sin(2 pi t / T)`` (float32 (2, X, Y); continuous across the cycle's wrap)."""
    T = int(T)
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    angle = 2.0 * np.pi * (int(t) % T) / T
    values = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    return np.broadcast_to(values[:, None, None], (CYCLE_PLANES, *(int(s) for s in shape))).copy()


def _frame_maps(
    extras: Mapping[str, NdarrayOrTensor | None] | None, t: int, T: int, like: Any
) -> dict[str, NdarrayOrTensor]:
    out: dict[str, NdarrayOrTensor] = {}
    for name, series in (extras or {}).items():
        if series is None:
            continue
        series = _squeeze_series(series, name)
        if series.shape[-1] != T:
            raise ValueError(f"{name}: {series.shape[-1]} frames, the magnitude has {T}")
        out[name] = _stack([_frame(series, t)], like)
    return out


class InterpolationSample(Transform):
    """Build one temporal-interpolation sample (paper section III-A) from a magnitude series and its labels.

    For frames ``a = tau``, ``b = tau + K + 1`` and target ``c = tau + k`` (all modulo T) the output dict holds
    float32 (C, X, Y) arrays of the magnitude's kind (numpy or torch, whatever the other inputs are):

    - ``"magnitude_pair"`` (2, X, Y): M_a, M_b;
    - ``"mask_pair"`` (2, X, Y): S_a, S_b, binary masks of ``mask_labels`` (default LV myocardium);
    - ``"condition"`` (3, X, Y) or (2, X, Y) with ``include_K=False``: tau / T, k / (K + 1), K / K_max;
    - ``"image"``: the concatenation magnitude_pair + mask_pair + condition (7 or 6 channels), the
      input of the plain R2U-Net baseline;
    - ``"magnitude_target"`` (1, X, Y): M_c; ``"mask_target"`` (1, X, Y): S_c;
    - with ``estimate``: ``"estimate"`` (2, X, Y), the classical guess of M_c and S_c at k / (K + 1) (see
      :func:`interpolation_estimate`), also appended to ``"image"``;
    - one (1, X, Y) frame c of every extra series given (e.g. ``w1``, ``w2``, ``foreground``);
    - ints ``"tau"`` (mod T), ``"K"``, ``"k"``, ``"target_frame"``, ``"frames"`` (T).

    Without a label the mask keys are left out (``"image"`` then has no mask channels).

    Args:
        tau, K, k: default indices (each may be overridden per call).
        K_max: scale of the K condition plane (default 6).
        mask_labels: label values forming the mask (default (1,), LV myocardium).
        include_K: add the K / K_max plane (default True; False = the paper's two planes).
        estimate: None, or one of :data:`ESTIMATES` to add the ``"estimate"`` planes.
        timing: where the estimate places frame c along the flow from a to b: ``"linear"`` at k / (K + 1);
            ``"cubic"`` by :func:`~hdl_monai.baselines.optical_flow.hermite_timing` from the flows of the
            equal gaps before a (a - K - 1 -> a) and after b (b -> b + K + 1), as the hybrid model's
            inference places it (``estimate_planes``), so a network can be trained on the guess it is given.

    ``__call__(magnitude, label=None, extras=None, tau=None, K=None, k=None)``: ``magnitude`` and
    ``label`` are (X, Y, T) or (1, X, Y, T); ``extras`` maps output names to (X, Y, T) series.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        tau: int | None = None,
        K: int | None = None,
        k: int | None = None,
        K_max: int = DEFAULT_K_MAX,
        mask_labels: Sequence[int] | int = (1,),
        include_K: bool = True,
        estimate: str | None = None,
        timing: str = "linear",
    ) -> None:
        if estimate is not None and estimate not in ESTIMATES:
            raise ValueError(f"estimate must be None or one of {list(ESTIMATES)}, got {estimate!r}")
        sample_timings = ["linear", "cubic"]  # of TIMINGS: a sample holds one gap, not the whole cycle
        if timing not in sample_timings:
            raise ValueError(f"timing must be one of {sample_timings} for a training sample, got {timing!r}")
        self.timing = timing
        self.tau, self.K, self.k = tau, K, k
        self.K_max = int(K_max)
        self.mask_labels = tuple(int(v) for v in ensure_tuple(mask_labels))
        self.include_K = include_K
        self.estimate = estimate

    def __call__(
        self,
        magnitude: NdarrayOrTensor,
        label: NdarrayOrTensor | None = None,
        extras: Mapping[str, NdarrayOrTensor | None] | None = None,
        tau: int | None = None,
        K: int | None = None,
        k: int | None = None,
    ) -> dict[str, Any]:
        tau = self.tau if tau is None else tau
        K = self.K if K is None else K
        k = self.k if k is None else k
        if tau is None or K is None or k is None:
            raise ValueError(f"InterpolationSample needs tau, K and k, got tau={tau}, K={K}, k={k}")
        magnitude = _squeeze_series(magnitude, "magnitude")
        T = int(magnitude.shape[-1])
        a, b, c = interpolation_frames(tau, K, k, T)
        out: dict[str, Any] = {
            "magnitude_pair": _stack([_frame(magnitude, a), _frame(magnitude, b)], magnitude),
            "magnitude_target": _stack([_frame(magnitude, c)], magnitude),
        }
        channels = [out["magnitude_pair"]]
        if label is not None:
            label = _squeeze_series(label, "label")
            if tuple(label.shape) != tuple(magnitude.shape):
                raise ValueError(f"label shape {tuple(label.shape)} differs from magnitude {tuple(magnitude.shape)}")
            masks = [mask_from_label(_frame(label, f), self.mask_labels) for f in (a, b, c)]
            out["mask_pair"] = _stack(masks[:2], magnitude)
            out["mask_target"] = _stack(masks[2:], magnitude)
            channels.append(out["mask_pair"])
        out["condition"] = condition_maps(a, k, K, T, magnitude.shape[:2], self.K_max, self.include_K, like=magnitude)
        channels.append(out["condition"])
        if self.estimate is not None:
            pair = out.get("mask_pair")
            alpha, flow = self._timing(magnitude, a, b, k, K, T)
            guess = interpolation_estimate(
                self.estimate, _frame(magnitude, a), _frame(magnitude, b), alpha,
                None if pair is None else pair[0], None if pair is None else pair[1], flow=flow,
            )
            out["estimate"] = _stack(list(guess), magnitude)
            channels.append(out["estimate"])
        out["image"] = torch.cat(channels) if isinstance(magnitude, torch.Tensor) else np.concatenate(channels)
        out.update(_frame_maps(extras, c, T, magnitude))
        out.update({"tau": a, "K": int(K), "k": int(k), "target_frame": c, "frames": T})
        return out

    def _timing(self, magnitude: NdarrayOrTensor, a: int, b: int, k: int, K: int, T: int):
        """(fraction, flow a -> b or None) of the estimate: k / (K + 1), or the Hermite map (X, Y)."""
        alpha = k / (K + 1)
        if self.timing == "linear":
            return alpha, None
        from hdl_monai.baselines.optical_flow import hermite_timing, horn_schunck  # baselines import this module

        gap = K + 1
        frames = {f: _to_numpy(_frame(magnitude, f)).astype(np.float64) for f in {(a - gap) % T, a, b, (b + gap) % T}}
        flow = horn_schunck(frames[a], frames[b])
        before = (horn_schunck(frames[(a - gap) % T], frames[a]), gap)
        after = (horn_schunck(frames[b], frames[(b + gap) % T]), gap)
        return hermite_timing(flow, gap, before, after, alpha), flow


class RandInterpolationSample(Randomizable, InterpolationSample):
    """:class:`InterpolationSample` with random ``(tau, K, k)`` (see :func:`sample_interpolation_indices`).

    K is uniform in ``K_range`` (inclusive, default 1..6, cut to the K that fit T), tau uniform in 0..T-1,
    k uniform in 1..K. Reproducible with :meth:`set_random_state`.
    """

    def __init__(
        self,
        K_range: Sequence[int] = (1, DEFAULT_K_MAX),
        K_max: int = DEFAULT_K_MAX,
        mask_labels: Sequence[int] | int = (1,),
        include_K: bool = True,
        estimate: str | None = None,
        timing: str = "linear",
    ) -> None:
        InterpolationSample.__init__(
            self, K_max=K_max, mask_labels=mask_labels, include_K=include_K, estimate=estimate, timing=timing
        )
        self.K_range = (int(K_range[0]), int(K_range[1]))
        self._indices: tuple[int, int, int] | None = None

    def randomize(self, data: int) -> None:
        """Draw ``(tau, K, k)`` for a series of ``data`` = T frames."""
        self._indices = sample_interpolation_indices(self.R, int(data), self.K_range)

    def __call__(  # type: ignore[override]
        self,
        magnitude: NdarrayOrTensor,
        label: NdarrayOrTensor | None = None,
        extras: Mapping[str, NdarrayOrTensor | None] | None = None,
        randomize: bool = True,
    ) -> dict[str, Any]:
        if randomize or self._indices is None:
            self.randomize(int(_squeeze_series(magnitude, "magnitude").shape[-1]))
        tau, K, k = self._indices  # type: ignore[misc]
        return InterpolationSample.__call__(self, magnitude, label, extras, tau=tau, K=K, k=k)


class PhaseSample(Transform):
    """Build one phase-synthesis sample (paper section III-B) for frame ``t``.

    Output dict, float32 (C, X, Y) arrays of the magnitude's kind:

    - ``"magnitude_triplet"`` (3, X, Y): M_(t-1), M_t, M_(t+1), cyclic (t = 0 uses T-1, 0, 1); with
      ``cycle=True`` (5, X, Y): the two :func:`cycle_planes` of t follow (the cardiac-phase condition);
      with ``motion=True`` the two :func:`motion_planes` of t come last (the in-plane velocity guess);
    - ``"phase"`` (3, X, Y): P_x, P_y, P_z at t (when phase is given);
    - one (1, X, Y) frame t of every extra series given (e.g. ``w1``, ``w2``, ``foreground``);
    - ints ``"t"`` (mod T) and ``"frames"`` (T).

    ``__call__(magnitude, phase=None, extras=None, t=None, motion=None)``: ``magnitude`` (X, Y, T) or
    (1, X, Y, T); ``phase`` a sequence of three (X, Y, T) series (x, y, z) or one (3, X, Y, T) array;
    ``motion`` the (2, X, Y, T) :func:`motion_planes` of the series (needed with ``motion=True``).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, t: int | None = None, cycle: bool = False, motion: bool = False) -> None:
        self.t = t
        self.cycle = bool(cycle)
        self.motion = bool(motion)

    def __call__(
        self,
        magnitude: NdarrayOrTensor,
        phase: Sequence[NdarrayOrTensor] | NdarrayOrTensor | None = None,
        extras: Mapping[str, NdarrayOrTensor | None] | None = None,
        t: int | None = None,
        motion: NdarrayOrTensor | None = None,
    ) -> dict[str, Any]:
        t = self.t if t is None else t
        if t is None:
            raise ValueError("PhaseSample needs a frame index t")
        magnitude = _squeeze_series(magnitude, "magnitude")
        T = int(magnitude.shape[-1])
        prev, cur, nxt = phase_frames(t, T)
        frames = [_frame(magnitude, f) for f in (prev, cur, nxt)]
        if self.cycle:
            frames += list(cycle_planes(cur, T, magnitude.shape[-3:-1]))
        if self.motion:
            if motion is None:
                raise ValueError("PhaseSample(motion=True) needs the motion planes (see motion_planes)")
            if tuple(motion.shape) != (MOTION_PLANES,) + tuple(magnitude.shape):
                raise ValueError(
                    f"motion planes shape {tuple(motion.shape)}, expected {(MOTION_PLANES,) + tuple(magnitude.shape)}"
                )
            frames += [motion[i][..., cur] for i in range(MOTION_PLANES)]
        out: dict[str, Any] = {"magnitude_triplet": _stack(frames, magnitude)}
        if phase is not None:
            if isinstance(phase, (np.ndarray, torch.Tensor)) and phase.ndim == 4:
                phase = [phase[i] for i in range(phase.shape[0])]
            if len(phase) != 3:
                raise ValueError(f"phase: expected three directions (x, y, z), got {len(phase)}")
            series = [_squeeze_series(p, f"phase_{d}") for p, d in zip(phase, "xyz")]
            for p, d in zip(series, "xyz"):
                if tuple(p.shape) != tuple(magnitude.shape):
                    raise ValueError(
                        f"phase_{d} shape {tuple(p.shape)} differs from magnitude {tuple(magnitude.shape)}"
                    )
            out["phase"] = _stack([_frame(p, cur) for p in series], magnitude)
        out.update(_frame_maps(extras, cur, T, magnitude))
        out.update({"t": cur, "frames": T})
        return out


class RandPhaseSample(Randomizable, PhaseSample):
    """:class:`PhaseSample` with ``t`` uniform in 0..T-1; reproducible with :meth:`set_random_state`."""

    def __init__(self, cycle: bool = False, motion: bool = False) -> None:
        PhaseSample.__init__(self, cycle=cycle, motion=motion)
        self._t: int | None = None

    def randomize(self, data: int) -> None:
        """Draw t for a series of ``data`` = T frames."""
        self._t = int(self.R.randint(0, int(data)))

    def __call__(  # type: ignore[override]
        self,
        magnitude: NdarrayOrTensor,
        phase: Sequence[NdarrayOrTensor] | NdarrayOrTensor | None = None,
        extras: Mapping[str, NdarrayOrTensor | None] | None = None,
        randomize: bool = True,
        motion: NdarrayOrTensor | None = None,
    ) -> dict[str, Any]:
        if randomize or self._t is None:
            self.randomize(int(_squeeze_series(magnitude, "magnitude").shape[-1]))
        return PhaseSample.__call__(self, magnitude, phase, extras, t=self._t, motion=motion)

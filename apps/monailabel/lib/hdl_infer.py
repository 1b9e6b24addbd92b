"""MONAI Label infer tasks serving the hdl-monai bundles' trained models.

The datastore is MONAI Label's local datastore: ``<studies>/<case_id>.nii.gz`` is a case's magnitude
series (X, Y, T) in scanner units (affine pixdim: x, y spacing in mm, frame interval in ms) and
``<studies>/labels/final/<case_id>.nii.gz`` its LV label series (0 background, 1 LV myocardium,
2 LV blood pool). Both tasks need the label: interpolation reads the masks of the kept frames, phase
synthesis centres its ROI on the LV.

- ``hdl_interpolation`` (bundle ``hdl_temporal_interpolation``): request params ``{"K": int}``; returns
  the label series rebuilt from the kept frames (X, Y, T) uint8, and in ``params`` the kept and predicted
  frames. ``{"result": "magnitude"}`` returns the interpolated magnitude series (float32) instead.
- ``hdl_phase_synthesis`` (bundle ``hdl_phase_synthesis``): params ``{"seed": int, "window_shift": int}``
  (see ``synthesize_phase``; default ``DEFAULT_WINDOW_SHIFT``); returns the synthetic
  phase (X, Y, T, 3) float32, directions x, y, z on the last axis, scanner units 0..4096 (2048 = zero
  velocity), and in ``params`` the per-direction mean phase over the LV myocardium.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from hdl_monai.data.case import Case
from hdl_monai.engines.interpolation import interpolate_with_model, load_interpolation_model
from hdl_monai.phase_synthesis import DEFAULT_WINDOW_SHIFT, load_phase_model, synthesize_phase
from hdl_monai.transforms import kept_frames

__all__ = ["case_from_datastore", "InterpolationInferTask", "PhaseSynthesisInferTask"]


def _label_path(image_path: Path) -> Path:
    name = image_path.name
    return image_path.parent / "labels" / "final" / name


def case_from_datastore(image_path: str | os.PathLike) -> tuple[Case, np.ndarray]:
    """(the Case of a datastore image and its label, the image affine)."""
    image_path = Path(image_path)
    label_path = _label_path(image_path)
    if not label_path.is_file():
        raise FileNotFoundError(f"{image_path.name}: no LV label at {label_path} (labels/final/<same name>)")
    img = nib.load(str(image_path))
    magnitude = np.asarray(img.dataobj, dtype=np.float32)
    label = np.asarray(nib.load(str(label_path)).dataobj).astype(np.uint8)
    if magnitude.ndim != 3 or label.shape != magnitude.shape:
        raise ValueError(f"{image_path.name}: magnitude {magnitude.shape} and label {label.shape} must both be (X, Y, T)")
    zooms = img.header.get_zooms()
    frame_ms = float(zooms[2]) if len(zooms) > 2 and zooms[2] > 0 else 1.0
    case = Case(
        case_id=image_path.name.split(".")[0],
        magnitude=magnitude,
        label=label,
        pixel_spacing_mm=(float(zooms[0]), float(zooms[1])),
        rr_interval_ms=frame_ms * magnitude.shape[-1],
        source="monailabel",
    )
    return case, img.affine


def _write(array: np.ndarray, affine: np.ndarray, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="hdl_")
    os.close(fd)
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


class _HDLInferTask(InferTask):
    def __init__(self, model_path: str | os.PathLike, description: str, labels: dict[str, int], config: dict[str, Any]):
        super().__init__(type=InferType.SEGMENTATION, labels=labels, dimension=3, description=description, config=config)
        self.model_path = Path(model_path)
        self._model: Any = None

    def is_valid(self) -> bool:
        return self.model_path.is_file()

    def get_path(self, validate: bool = True) -> str | None:
        return str(self.model_path) if self.model_path.is_file() or not validate else None


class InterpolationInferTask(_HDLInferTask):
    """Temporal interpolation of a down-sampled cine series (HDL module 1)."""

    def __init__(self, model_path: str | os.PathLike, K: int = 2):
        super().__init__(
            model_path,
            "HDL temporal interpolation: keep frames 0, K+1, 2(K+1), ... and predict the others (magnitude + LV label)",
            {"lv_myocardium": 1, "lv_blood_pool": 2},
            {"K": int(K), "result": "label"},
        )

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if self._model is None:
            self._model = load_interpolation_model(self.model_path, device=request.get("device", "cpu"))
        K = int(request.get("K", self._config["K"]))
        case, affine = case_from_datastore(request["image"])
        magnitude, label = interpolate_with_model(case, K, self._model)
        kept = [int(f) for f in kept_frames(case.frames, K)]
        params = {
            "model": "hdl_interpolation",
            "K": K,
            "frames": case.frames,
            "kept_frames": kept,
            "predicted_frames": [t for t in range(case.frames) if t not in kept],
            "myocardium_pixels_per_frame": [int((label[..., t] == 1).sum()) for t in range(case.frames)],
        }
        if request.get("result", self._config["result"]) == "magnitude":
            return _write(magnitude.astype(np.float32), affine, "_magnitude.nii.gz"), params
        return _write(label.astype(np.uint8), affine, "_label.nii.gz"), params


class PhaseSynthesisInferTask(_HDLInferTask):
    """Synthetic three-directional phase images from the magnitude series (HDL module 2)."""

    def __init__(self, model_path: str | os.PathLike, seed: int = 0):
        super().__init__(
            model_path,
            "HDL phase synthesis: phase x, y, z (0..4096, 2048 = zero velocity) from the magnitude series",
            {"phase_x": 0, "phase_y": 1, "phase_z": 2},
            {"seed": int(seed)},
        )

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if self._model is None:
            self._model = load_phase_model(self.model_path, request.get("device", "cpu"))
        case, affine = case_from_datastore(request["image"])
        shift = int(request.get("window_shift", DEFAULT_WINDOW_SHIFT))
        phase = synthesize_phase(case, self._model, seed=int(request.get("seed", self._config["seed"])), window_shift=shift)
        stacked = np.stack([phase[d] for d in "xyz"], axis=-1).astype(np.float32)
        myo = case.label == 1
        params = {
            "model": "hdl_phase_synthesis",
            "frames": case.frames,
            "directions": ["x", "y", "z"],
            "mean_myocardium_phase": {d: float(phase[d][myo].mean()) for d in "xyz"},
        }
        return _write(stacked, affine, "_phase.nii.gz"), params

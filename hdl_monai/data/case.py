"""The case format: one short-axis slice of one scan over one cardiac cycle (see docs/case_format.md).

On disk a case is a folder::

    case.json            case_id, subject, frames, venc_cm_s {x, y, z}, rr_interval_ms,
                         pixel_spacing_mm [x, y], source, labels; optional end_systole_frame,
                         labelled_frames
    magnitude.nii.gz     float32 (X, Y, T), scanner units (0..4096 in HDL)
    phase_{x,y,z}.nii.gz float32 (X, Y, T), 0..4096 where 2048 is zero velocity (optional)
    label.nii.gz         uint8 (X, Y, T): 0 background, 1 LV myocardium, 2 LV blood pool,
                         3 RV blood pool (optional)
    velocity_{x,y,z}.nii.gz  ground-truth velocity in cm/s (phantoms only)

x is array axis 0, y array axis 1, z the slice normal (through-plane). The NIfTI affine carries the
pixel spacing in mm on its first two axes; the third pixdim is the frame interval in ms.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import nibabel as nib
import numpy as np

from hdl_monai.data.atomic import atomic_directory

__all__ = [
    "CaseError",
    "Case",
    "DIRECTIONS",
    "PHASE_MIN",
    "PHASE_MAX",
    "PHASE_ZERO",
    "DEFAULT_LABELS",
    "REQUIRED_KEYS",
    "check_case",
    "validate_case_dir",
    "load_case",
    "save_case",
    "read_case_json",
    "read_nifti",
    "write_nifti",
]

DIRECTIONS = ("x", "y", "z")
PHASE_MIN, PHASE_MAX, PHASE_ZERO = 0.0, 4096.0, 2048.0
DEFAULT_LABELS = {"1": "lv_myocardium", "2": "lv_blood_pool", "3": "rv_blood_pool"}
REQUIRED_KEYS = ("case_id", "subject", "frames", "rr_interval_ms", "pixel_spacing_mm", "source", "labels")
_KNOWN_KEYS = set(REQUIRED_KEYS) | {"venc_cm_s", "end_systole_frame", "labelled_frames"}


class CaseError(ValueError):
    """A case (or dataset) that breaks the case format; the message names the file and the problem."""


@dataclass
class Case:
    """One slice over one cardiac cycle, in memory.

    Arrays are (X, Y, T). ``phase`` and ``velocity`` map a direction ("x", "y", "z") to an array;
    either may be empty. ``label`` may be None; when only some frames are labelled,
    ``labelled_frames`` lists them and the other frames of ``label`` are 0.
    """

    case_id: str
    magnitude: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    rr_interval_ms: float
    subject: str = ""
    source: str = "unknown"
    venc_cm_s: dict[str, float] | None = None
    phase: dict[str, np.ndarray] = field(default_factory=dict)
    label: np.ndarray | None = None
    velocity: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    end_systole_frame: int | None = None
    labelled_frames: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def frames(self) -> int:
        """Number of frames T over the cardiac cycle."""
        return int(self.magnitude.shape[-1])

    @property
    def frame_interval_ms(self) -> float:
        """Time between frames in ms (RR interval / frames)."""
        return float(self.rr_interval_ms) / self.frames

    @property
    def name(self) -> str:
        """Where the case came from, for error messages: its folder if it has one, else its id."""
        return str(self.path) if self.path is not None else f"case {self.case_id}"

    def metadata(self) -> dict[str, Any]:
        """The case.json content for this case."""
        meta: dict[str, Any] = {
            "case_id": self.case_id,
            "subject": self.subject or self.case_id,
            "frames": self.frames,
            "rr_interval_ms": float(self.rr_interval_ms),
            "pixel_spacing_mm": [float(s) for s in self.pixel_spacing_mm],
            "source": self.source,
            "labels": dict(self.labels),
        }
        if self.venc_cm_s is not None:
            meta["venc_cm_s"] = {d: float(self.venc_cm_s[d]) for d in DIRECTIONS}
        if self.end_systole_frame is not None:
            meta["end_systole_frame"] = int(self.end_systole_frame)
        if self.labelled_frames is not None:
            meta["labelled_frames"] = [int(f) for f in self.labelled_frames]
        meta.update(self.extra)
        return meta


def _affine(pixel_spacing_mm: tuple[float, float], frame_interval_ms: float) -> np.ndarray:
    return np.diag([float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1]), float(frame_interval_ms), 1.0])


def write_nifti(path: str | os.PathLike, array: np.ndarray, pixel_spacing_mm, frame_interval_ms: float) -> None:
    """Write an (X, Y, T) array with the case-format affine (spacing in mm, frame interval in ms)."""
    image = nib.Nifti1Image(np.asarray(array), _affine(pixel_spacing_mm, frame_interval_ms))
    image.header.set_xyzt_units("mm", "msec")
    nib.save(image, str(path))


def read_nifti(path: str | os.PathLike, dtype=np.float32) -> np.ndarray:
    """Read a NIfTI file as an array of ``dtype``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CaseError(f"{path}: missing file")
    try:
        data = np.asanyarray(nib.load(str(path)).dataobj)
    except Exception as err:  # nibabel raises many types for corrupt files
        raise CaseError(f"{path}: cannot be read as NIfTI ({err})") from err
    return np.asarray(data, dtype=dtype)


def read_case_json(case_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and parse ``case.json``; a missing or malformed file raises CaseError naming it."""
    path = Path(case_dir) / "case.json"
    if not path.is_file():
        raise CaseError(f"{path}: missing file")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CaseError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise CaseError(f"{path}: must hold a JSON object")
    return meta


def _array_problems(where: str, array: np.ndarray, shape: tuple[int, ...]) -> list[str]:
    problems = []
    if array.ndim != 3:
        problems.append(f"{where}: expected 3 dimensions (X, Y, T), got shape {array.shape}")
    elif array.shape != shape:
        problems.append(f"{where}: shape {array.shape} disagrees with magnitude {shape}")
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            frames = sorted(set(np.nonzero(bad)[-1].tolist())) if array.ndim == 3 else []
            problems.append(f"{where}: {int(bad.sum())} NaN/inf values (frames {frames[:10]})")
    return problems


def check_case(case: Case) -> list[str]:
    """All the problems of an in-memory case, one message per problem, each naming the file."""
    base = Path(case.path) if case.path is not None else Path(f"<case {case.case_id}>")
    problems: list[str] = []
    mag = case.magnitude
    if mag.ndim != 3:
        return [f"{base / 'magnitude.nii.gz'}: expected 3 dimensions (X, Y, T), got shape {mag.shape}"]
    shape = tuple(mag.shape)
    problems += _array_problems(str(base / "magnitude.nii.gz"), mag, shape)
    for d, arr in case.phase.items():
        where = str(base / f"phase_{d}.nii.gz")
        problems += _array_problems(where, arr, shape)
        finite = arr[np.isfinite(arr)]
        if finite.size and (finite.min() < PHASE_MIN or finite.max() > PHASE_MAX):
            problems.append(
                f"{where}: phase outside {PHASE_MIN:.0f}..{PHASE_MAX:.0f} "
                f"(min {finite.min():.1f}, max {finite.max():.1f})"
            )
    for d, arr in case.velocity.items():
        problems += _array_problems(str(base / f"velocity_{d}.nii.gz"), arr, shape)
    if case.label is not None:
        where = str(base / "label.nii.gz")
        problems += _array_problems(where, case.label, shape)
        allowed = {0} | {int(k) for k in case.labels}
        found = set(np.unique(case.label).astype(int).tolist())
        unknown = sorted(found - allowed)
        if unknown:
            problems.append(f"{where}: unknown label values {unknown} (case.json labels allow {sorted(allowed)})")
    if case.phase and case.venc_cm_s is None:
        problems.append(f"{base / 'case.json'}: has phase images but no venc_cm_s")
    if case.venc_cm_s is not None:
        missing = [d for d in DIRECTIONS if d not in case.venc_cm_s]
        if missing:
            problems.append(f"{base / 'case.json'}: venc_cm_s lacks directions {missing}")
        elif any(not (float(case.venc_cm_s[d]) > 0) for d in DIRECTIONS):
            problems.append(f"{base / 'case.json'}: venc_cm_s must be positive, got {case.venc_cm_s}")
    if not float(case.rr_interval_ms) > 0:
        problems.append(f"{base / 'case.json'}: rr_interval_ms must be positive, got {case.rr_interval_ms}")
    if len(case.pixel_spacing_mm) != 2 or any(not float(s) > 0 for s in case.pixel_spacing_mm):
        problems.append(f"{base / 'case.json'}: pixel_spacing_mm must be two positive numbers, got {case.pixel_spacing_mm}")
    T = shape[-1]
    if case.end_systole_frame is not None and not 0 <= int(case.end_systole_frame) < T:
        problems.append(f"{base / 'case.json'}: end_systole_frame {case.end_systole_frame} outside 0..{T - 1}")
    if case.labelled_frames is not None:
        outside = [f for f in case.labelled_frames if not 0 <= int(f) < T]
        if outside:
            problems.append(f"{base / 'case.json'}: labelled_frames {outside} outside 0..{T - 1}")
        if case.label is None:
            problems.append(f"{base / 'case.json'}: lists labelled_frames but label.nii.gz is missing")
    return problems


def _case_from_meta(meta: Mapping[str, Any], case_dir: Path, arrays: dict[str, Any]) -> Case:
    return Case(
        case_id=str(meta["case_id"]),
        subject=str(meta.get("subject", meta["case_id"])),
        source=str(meta.get("source", "unknown")),
        magnitude=arrays["magnitude"],
        phase=arrays["phase"],
        label=arrays["label"],
        velocity=arrays["velocity"],
        pixel_spacing_mm=tuple(float(s) for s in meta["pixel_spacing_mm"]),
        rr_interval_ms=float(meta["rr_interval_ms"]),
        venc_cm_s=dict(meta["venc_cm_s"]) if meta.get("venc_cm_s") is not None else None,
        labels={str(k): str(v) for k, v in meta.get("labels", DEFAULT_LABELS).items()},
        end_systole_frame=meta.get("end_systole_frame"),
        labelled_frames=list(meta["labelled_frames"]) if meta.get("labelled_frames") is not None else None,
        extra={k: v for k, v in meta.items() if k not in _KNOWN_KEYS},
        path=case_dir,
    )


def _load_unchecked(case_dir: Path, problems: list[str], skip: tuple[str, ...] = ()) -> Case | None:
    """Read the files of a case (all but the kinds in ``skip``), appending file-level problems;
    None when it cannot be assembled."""
    try:
        meta = read_case_json(case_dir)
    except CaseError as err:
        problems.append(str(err))
        return None
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        problems.append(f"{case_dir / 'case.json'}: missing keys {missing}")
        return None
    arrays: dict[str, Any] = {"phase": {}, "velocity": {}, "label": None}
    try:
        arrays["magnitude"] = read_nifti(case_dir / "magnitude.nii.gz")
    except CaseError as err:
        problems.append(str(err))
        return None
    for kind in ("phase", "velocity"):
        if kind in skip:
            continue
        present = [d for d in DIRECTIONS if (case_dir / f"{kind}_{d}.nii.gz").exists()]
        if present and len(present) < 3:
            absent = [f"{kind}_{d}.nii.gz" for d in DIRECTIONS if d not in present]
            problems.append(f"{case_dir}: missing file(s) {absent} (the other {kind} directions exist)")
        for d in present:
            try:
                arrays[kind][d] = read_nifti(case_dir / f"{kind}_{d}.nii.gz")
            except CaseError as err:
                problems.append(str(err))
    if "label" not in skip and (case_dir / "label.nii.gz").exists():
        try:
            raw = read_nifti(case_dir / "label.nii.gz", dtype=np.float64)
            if np.any(raw != np.round(raw)) or not np.all(np.isfinite(raw)):
                problems.append(f"{case_dir / 'label.nii.gz'}: non-integer label values")
            arrays["label"] = np.nan_to_num(raw).round().clip(0, 255).astype(np.uint8)
            if raw.size and raw.max() > 255:
                problems.append(f"{case_dir / 'label.nii.gz'}: unknown label values above 255")
        except CaseError as err:
            problems.append(str(err))
    try:
        case = _case_from_meta(meta, case_dir, arrays)
    except (TypeError, ValueError, KeyError) as err:
        problems.append(f"{case_dir / 'case.json'}: malformed value ({err})")
        return None
    frames = meta.get("frames")
    if frames != case.frames:
        problems.append(
            f"{case_dir / 'case.json'}: frames = {frames} but magnitude.nii.gz has {case.frames} frames"
        )
    if str(meta["case_id"]) != case_dir.name:
        problems.append(f"{case_dir / 'case.json'}: case_id '{meta['case_id']}' differs from folder name '{case_dir.name}'")
    return case


def validate_case_dir(case_dir: str | os.PathLike) -> list[str]:
    """Every problem of a case folder on disk, one line each; empty when the case is valid."""
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        return [f"{case_dir}: missing case folder"]
    problems: list[str] = []
    case = _load_unchecked(case_dir, problems)
    if case is not None:
        problems += check_case(case)
    return problems


def load_case(case_dir: str | os.PathLike, *, validate: bool = True, skip: Iterable[str] = ()) -> Case:
    """Load a case folder; with ``validate`` any problem raises CaseError listing them all.

    ``skip`` names kinds of optional files not to read ("phase", "velocity", "label"), for tools
    that need only part of a case; the returned case then lacks them.
    """
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise CaseError(f"{case_dir}: missing case folder")
    skip = tuple(skip)
    unknown = sorted(set(skip) - {"phase", "velocity", "label"})
    if unknown:
        raise ValueError(f"skip accepts 'phase', 'velocity', 'label'; got {unknown}")
    problems: list[str] = []
    case = _load_unchecked(case_dir, problems, skip)
    if case is not None and validate:
        problems += check_case(case)
    if case is None or (validate and problems):
        raise CaseError("\n".join(problems))
    return case


def save_case(case: Case, case_dir: str | os.PathLike, *, overwrite: bool = False, validate: bool = True) -> Path:
    """Write ``case`` to ``case_dir`` atomically (all files appear at once, or none).

    An existing folder is refused unless ``overwrite``. With ``validate`` a case that breaks the
    format is refused before anything is written.
    """
    case_dir = Path(case_dir)
    if validate:
        problems = check_case(case)
        if problems:
            raise CaseError("\n".join(problems))
    spacing, dt = case.pixel_spacing_mm, case.frame_interval_ms
    meta = case.metadata()
    meta["case_id"] = case.case_id
    with atomic_directory(case_dir, overwrite=overwrite) as tmp:
        (tmp / "case.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        write_nifti(tmp / "magnitude.nii.gz", case.magnitude.astype(np.float32), spacing, dt)
        for d, arr in case.phase.items():
            write_nifti(tmp / f"phase_{d}.nii.gz", arr.astype(np.float32), spacing, dt)
        for d, arr in case.velocity.items():
            write_nifti(tmp / f"velocity_{d}.nii.gz", arr.astype(np.float32), spacing, dt)
        if case.label is not None:
            write_nifti(tmp / "label.nii.gz", case.label.astype(np.uint8), spacing, dt)
    case.path = case_dir
    return case_dir

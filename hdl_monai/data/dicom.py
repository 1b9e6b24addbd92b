"""DICOM import: a scanner's short-axis cine series to cases, one case per slice location.

The conventions, at the point of use:

- A DICOM image is ``pixel_array[row, column]``. The case format has x = array axis 0, so a case
  stores ``magnitude[x, y, t] = pixel_array[row=y, column=x]`` of frame t (the transpose), and
  ``pixel_spacing_mm = [x, y] = [PixelSpacing[1] (between columns), PixelSpacing[0] (between rows)]``.
- Slices are grouped by their position along the slice normal, ``n = row cosines x column cosines``
  (ImageOrientationPatient), position = ``ImagePositionPatient . n`` in mm (SliceLocation when the
  geometry tags are missing). Slices are numbered by ascending position (``_s00`` first), frames
  within a slice by ascending TriggerTime.
- RR interval: the slice's NominalInterval (0018,1062) when it is sensible (200..3000 ms and not
  shorter than the last trigger time); otherwise the median TriggerTime spacing times the number
  of frames (frames spread evenly over the cycle, as in retrospectively gated cine). case.json
  ``rr_interval_source`` says which rule gave the value.
- Sunnybrook-style contours: ``IM-0001-NNNN-icontour-manual.txt`` (endocardium) and
  ``...-ocontour-manual.txt`` (epicardium), where NNNN is the InstanceNumber of the DICOM image.
  Each line is ``x y`` in pixel coordinates, x = column, y = row; pixel (row r, column c) has its
  centre at (x=c, y=r). A pixel is inside a contour when its centre is (a centre exactly on the
  contour: half-open rule, see ``polygon_mask``). Inside the endocardium is
  label 2 (LV blood pool); inside the epicardium but outside the endocardium is label 1 (LV
  myocardium), on frames that have both contours.

Magnitude stays in scanner units (RescaleSlope/RescaleIntercept applied when present), float32.
Cine series have no phase images, so the cases carry no ``venc_cm_s``.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from hdl_monai.data.case import Case, CaseError, read_case_json, save_case
from hdl_monai.data.datalist import SPLITS, load_datalist, save_datalist

__all__ = [
    "DicomImage",
    "ContourPair",
    "SLICE_TOLERANCE_MM",
    "IMPORT_LABELS",
    "scan_dicom_folder",
    "group_slices",
    "rr_interval_ms",
    "read_contour",
    "polygon_mask",
    "contour_label",
    "find_contour_files",
    "read_dicom_series",
    "import_dicom",
]

SLICE_TOLERANCE_MM = 0.1
"""Images whose positions along the slice normal differ by less than this (mm) are one slice."""

IMPORT_LABELS = {"1": "lv_myocardium", "2": "lv_blood_pool"}
"""Labels an imported case can carry (Sunnybrook contours give LV blood pool and myocardium)."""

_ORIENTATION_TOLERANCE = 1e-2  # direction cosines that differ by more are another orientation
_TRIGGER_TOLERANCE_MS = 0.01  # trigger times closer than this are the same frame
_NOMINAL_RANGE_MS = (200.0, 3000.0)  # heart rates 20..300 bpm
_CONTOUR_NAME = re.compile(r"^IM-(\d+)-(\d+)-([io])contour-manual\.txt$", re.IGNORECASE)


@dataclass
class DicomImage:
    """The header facts of one single-frame DICOM image that the import needs.

    ``position_mm`` is the position along the slice normal (mm); ``trigger_ms`` the TriggerTime;
    ``pixel_spacing`` is DICOM's (between rows, between columns) in mm.
    """

    path: Path
    series_uid: str
    series_number: int | None
    series_description: str
    orientation: tuple[float, ...] | None
    position_mm: float
    trigger_ms: float
    instance: int | None
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    nominal_interval_ms: float | None
    cardiac_images: int | None
    patient_id: str
    slice_location: float | None
    slice_thickness_mm: float | None
    spacing_between_slices_mm: float | None
    image_position: tuple[float, ...] | None
    manufacturer: str
    model: str
    field_strength_t: float | None


@dataclass
class ContourPair:
    """The contour files of one DICOM image (by InstanceNumber): endocardium and/or epicardium."""

    instance: int
    icontour: Path | None = None
    ocontour: Path | None = None


# ---------------------------------------------------------------------------------------------
# reading headers


def _float(ds: Any, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(ds: Any, keyword: str) -> int | None:
    value = _float(ds, keyword)
    return None if value is None else int(round(value))


def _floats(ds: Any, keyword: str, count: int) -> tuple[float, ...] | None:
    value = ds.get(keyword)
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == count else None


@contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's value-format chatter (e.g. UIDs with leading zeros), which it emits lazily
    when an element is first accessed, so reading *and* accessing go inside this block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Invalid value for VR", category=UserWarning)
        yield


def _dcmread(path: Path, stop_before_pixels: bool):
    """Read one file with pydicom; None when it is not a DICOM image (call inside ``_quiet_pydicom``)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        pass  # no preamble: some writers omit it; try once more without the check
    except Exception:  # truncated or garbage files raise many types
        return None
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels, force=True)
    except Exception:
        return None
    return ds if "Rows" in ds and "Columns" in ds else None


def _image_from_dataset(path: Path, ds: Any) -> DicomImage:
    frames = _int(ds, "NumberOfFrames")
    if frames is not None and frames > 1:
        raise CaseError(f"{path}: multi-frame (enhanced) DICOM with {frames} frames is not supported; "
                        "export the series as single-frame images")
    trigger = _float(ds, "TriggerTime")
    if trigger is None:
        trigger = _float(ds, "NominalCardiacTriggerDelayTime")
    if trigger is None:
        raise CaseError(f"{path}: no TriggerTime (0018,1060); a cine image needs its cardiac phase time")
    orientation = _floats(ds, "ImageOrientationPatient", 6)
    position = _floats(ds, "ImagePositionPatient", 3)
    slice_location = _float(ds, "SliceLocation")
    if orientation is not None and position is not None:
        normal = np.cross(orientation[:3], orientation[3:])
        position_mm = float(np.dot(position, normal))
    elif slice_location is not None:
        position_mm = slice_location
    else:
        raise CaseError(f"{path}: neither ImagePositionPatient/ImageOrientationPatient nor SliceLocation; "
                        "cannot tell which slice it belongs to")
    spacing = _floats(ds, "PixelSpacing", 2)
    if spacing is None or not all(s > 0 for s in spacing):
        raise CaseError(f"{path}: missing or invalid PixelSpacing (0028,0030)")
    nominal = _float(ds, "NominalInterval")
    return DicomImage(
        path=path,
        series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        series_number=_int(ds, "SeriesNumber"),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        orientation=orientation,
        position_mm=position_mm,
        trigger_ms=float(trigger),
        instance=_int(ds, "InstanceNumber"),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        nominal_interval_ms=nominal if nominal is not None and nominal > 0 else None,
        cardiac_images=_int(ds, "CardiacNumberOfImages"),
        patient_id=str(ds.get("PatientID", "") or "").strip(),
        slice_location=slice_location,
        slice_thickness_mm=_float(ds, "SliceThickness"),
        spacing_between_slices_mm=_float(ds, "SpacingBetweenSlices"),
        image_position=position,
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        model=str(ds.get("ManufacturerModelName", "") or ""),
        field_strength_t=_float(ds, "MagneticFieldStrength"),
    )


def scan_dicom_folder(dicom_dir: str | os.PathLike, progress: bool = False) -> list[DicomImage]:
    """Read the headers of every DICOM file directly in ``dicom_dir`` (not its subfolders).

    Files that are not DICOM images are skipped with a warning. Raises CaseError when the folder is
    missing or holds no DICOM image.
    """
    dicom_dir = Path(dicom_dir)
    if not dicom_dir.exists():
        raise CaseError(f"{dicom_dir}: DICOM folder does not exist")
    if not dicom_dir.is_dir():
        raise CaseError(f"{dicom_dir}: not a folder (give the folder holding the series' DICOM files)")
    files = sorted(p for p in dicom_dir.iterdir() if p.is_file())
    iterator: Iterable[Path] = files
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc="read DICOM headers", unit="file")
    images, skipped = [], []
    for path in iterator:
        with _quiet_pydicom():
            ds = _dcmread(path, stop_before_pixels=True)
            if ds is None:
                skipped.append(path.name)
                continue
            images.append(_image_from_dataset(path, ds))
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(f"{dicom_dir}: skipped {len(skipped)} file(s) that are not DICOM images: {shown}", stacklevel=2)
    if not images:
        raise CaseError(f"{dicom_dir}: no DICOM image files found ({len(files)} file(s) in the folder)")
    return images


# ---------------------------------------------------------------------------------------------
# checking and grouping


def _majority(images: Sequence[DicomImage], key) -> Any:
    return Counter(key(im) for im in images).most_common(1)[0][0]


def _check_single_series(images: Sequence[DicomImage], dicom_dir: Path) -> None:
    series: dict[str, list[DicomImage]] = {}
    for im in images:
        series.setdefault(im.series_uid, []).append(im)
    if len(series) > 1:
        parts = [
            f"'{uid or '<no SeriesInstanceUID>'}' (SeriesNumber {ims[0].series_number}, "
            f"description '{ims[0].series_description}', {len(ims)} files, e.g. {ims[0].path.name})"
            for uid, ims in sorted(series.items(), key=lambda kv: -len(kv[1]))
        ]
        raise CaseError(f"{dicom_dir}: mixed series, the folder holds {len(series)} series (one cine series per "
                        f"folder expected): " + "; ".join(parts))
    oriented = [im for im in images if im.orientation is not None]
    if oriented and len(oriented) != len(images):
        bare = next(im for im in images if im.orientation is None)
        raise CaseError(f"{bare.path}: no ImageOrientationPatient while other files of the series have one")
    if oriented:
        reference = np.array(_majority(oriented, lambda im: tuple(np.round(im.orientation, 3))))
        odd = [im for im in oriented if np.abs(np.array(im.orientation) - reference).max() > _ORIENTATION_TOLERANCE]
        if odd:
            raise CaseError(
                f"{odd[0].path}: mixed series, ImageOrientationPatient {list(odd[0].orientation)} differs from "
                f"{reference.tolist()} of the other files in {dicom_dir} ({len(odd)} file(s) differ, series "
                f"'{odd[0].series_uid}'); put each orientation's series in its own folder"
            )


def _check_matrix(images: Sequence[DicomImage], dicom_dir: Path) -> None:
    size = _majority(images, lambda im: (im.rows, im.columns))
    for im in images:
        if (im.rows, im.columns) != size:
            raise CaseError(f"{im.path}: inconsistent matrix size {im.rows}x{im.columns} (rows x columns), the other "
                            f"files in {dicom_dir} are {size[0]}x{size[1]}")
    spacing = _majority(images, lambda im: im.pixel_spacing)
    for im in images:
        if not np.allclose(im.pixel_spacing, spacing, rtol=1e-4, atol=1e-4):
            raise CaseError(f"{im.path}: inconsistent PixelSpacing {list(im.pixel_spacing)} mm, the other files in "
                            f"{dicom_dir} have {list(spacing)} mm")


def group_slices(images: Sequence[DicomImage], dicom_dir: str | os.PathLike = "") -> list[list[DicomImage]]:
    """Check one series and group it into slices: ascending position, frames by ascending TriggerTime.

    Raises CaseError (naming the folder or the file) for mixed series or orientations, inconsistent
    matrix sizes or pixel spacings, duplicate trigger times within a slice, and slices with
    different numbers of frames (or fewer than CardiacNumberOfImages says).
    """
    dicom_dir = Path(dicom_dir)
    if not images:
        raise CaseError(f"{dicom_dir}: no DICOM image files found")
    _check_single_series(images, dicom_dir)
    _check_matrix(images, dicom_dir)
    ordered = sorted(images, key=lambda im: im.position_mm)
    slices: list[list[DicomImage]] = [[ordered[0]]]
    for im in ordered[1:]:
        if im.position_mm - slices[-1][-1].position_mm > SLICE_TOLERANCE_MM:
            slices.append([])
        slices[-1].append(im)
    for frames in slices:
        frames.sort(key=lambda im: (im.trigger_ms, im.instance if im.instance is not None else 0))
        for a, b in zip(frames, frames[1:]):
            if b.trigger_ms - a.trigger_ms < _TRIGGER_TOLERANCE_MS:
                raise CaseError(
                    f"{dicom_dir}: duplicate TriggerTime {a.trigger_ms:g} ms at slice position {a.position_mm:.2f} mm "
                    f"in {a.path.name} and {b.path.name} (a repeated acquisition or a second series?)"
                )
    counts = [len(frames) for frames in slices]
    expected = Counter(counts).most_common(1)[0][0]
    if len(set(counts)) > 1:
        odd = [f"slice at {fr[0].position_mm:.2f} mm has {len(fr)}" for fr in slices if len(fr) != expected]
        raise CaseError(f"{dicom_dir}: missing frames, slices have different numbers of frames ({expected} in most; "
                        + "; ".join(odd) + ")")
    declared = Counter(im.cardiac_images for im in images if im.cardiac_images).most_common(1)
    if declared and declared[0][0] > expected:
        raise CaseError(f"{dicom_dir}: missing frames, every slice has {expected} frames but CardiacNumberOfImages "
                        f"(0018,1090) says {declared[0][0]}")
    return slices


def rr_interval_ms(trigger_ms: Sequence[float], nominal_ms: Sequence[float | None] = ()) -> tuple[float, str]:
    """RR interval (ms) of one slice and the rule that gave it.

    NominalInterval (median over the frames) when it is within 200..3000 ms and not shorter than
    the last trigger time: source "NominalInterval". Otherwise median TriggerTime spacing x number of
    frames: source "TriggerTime spacing x frames". Raises CaseError when neither is available.
    """
    triggers = np.sort(np.asarray(trigger_ms, dtype=float))
    values = [float(v) for v in nominal_ms if v is not None and v > 0]
    if values:
        nominal = float(np.median(values))
        low, high = _NOMINAL_RANGE_MS
        if low <= nominal <= high and (triggers.size == 0 or nominal >= triggers.max()):
            return nominal, "NominalInterval"
    if triggers.size < 2:
        raise CaseError("cannot tell the RR interval: no sensible NominalInterval and fewer than two frames")
    spacing = float(np.median(np.diff(triggers)))
    return spacing * triggers.size, "TriggerTime spacing x frames"


# ---------------------------------------------------------------------------------------------
# contours


def read_contour(path: str | os.PathLike) -> np.ndarray:
    """Read a Sunnybrook contour file: one ``x y`` point per line (x = column, y = row, pixels).

    Returns an (N, 2) float array of (x, y). Raises CaseError naming the file and line for bad lines
    or fewer than three points.
    """
    path = Path(path)
    points = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.replace(",", " ").split()
        try:
            if len(parts) != 2:
                raise ValueError
            points.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise CaseError(f"{path}: line {number} is not 'x y' ({line.strip()[:40]!r})") from None
    if len(points) < 3:
        raise CaseError(f"{path}: a contour needs at least 3 points, found {len(points)}")
    arr = np.asarray(points, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise CaseError(f"{path}: non-finite coordinates")
    return arr


def polygon_mask(points_xy: np.ndarray, shape_xy: tuple[int, int]) -> np.ndarray:
    """Boolean (X, Y) mask of the pixels whose centres lie inside a polygon of (x, y) points.

    Pixel [i, j] of the (X, Y) array (x = column i, y = row j of the DICOM image) has its centre at
    (x=i, y=j), so the polygon's x coordinates index array axis 0. A centre exactly on the boundary
    follows the half-open rule of the crossing-number test: it is inside on the low-x / low-y edges
    and outside on the high ones. So a w x h axis-aligned rectangle covers exactly w * h pixels and
    the mask's pixel count is an unbiased estimate of the polygon area (filling every boundary
    centre, as ``skimage.draw.polygon`` does, adds about 0.2 px x perimeter on Sunnybrook contours).
    """
    points_xy = np.asarray(points_xy, dtype=float)
    mask = np.zeros(tuple(shape_xy), dtype=bool)
    xs, ys = points_xy[:, 0], points_xy[:, 1]
    x0, x1 = max(int(np.floor(xs.min())), 0), min(int(np.ceil(xs.max())), shape_xy[0] - 1)
    y0, y1 = max(int(np.floor(ys.min())), 0), min(int(np.ceil(ys.max())), shape_xy[1] - 1)
    if x1 < x0 or y1 < y0:
        return mask
    gx = np.arange(x0, x1 + 1, dtype=float)[:, None]  # pixel centres along x (axis 0)
    gy = np.arange(y0, y1 + 1, dtype=float)[None, :]  # pixel centres along y (axis 1)
    inside = np.zeros((gx.size, gy.size), dtype=bool)
    for xa, ya, xb, yb in zip(xs, ys, np.roll(xs, -1), np.roll(ys, -1)):
        if ya == yb:
            continue  # a horizontal edge crosses no horizontal ray
        straddles = (ya > gy) != (yb > gy)  # half-open in y: [min(ya, yb), max(ya, yb))
        crossing_x = xa + (gy - ya) * (xb - xa) / (yb - ya)
        inside ^= straddles & (gx < crossing_x)  # ray from the centre towards +x crosses this edge
    mask[x0 : x1 + 1, y0 : y1 + 1] = inside
    return mask


def contour_label(
    shape_xy: tuple[int, int], endocardium: np.ndarray | None, epicardium: np.ndarray | None = None
) -> np.ndarray:
    """uint8 (X, Y) label of one frame: 2 inside the endocardium; 1 inside the epicardium but not the
    endocardium, only when both contours are given; 0 elsewhere. Contours are (N, 2) (x, y) points."""
    label = np.zeros(tuple(shape_xy), dtype=np.uint8)
    if endocardium is None:
        return label
    blood = polygon_mask(endocardium, shape_xy)
    if epicardium is not None:
        label[polygon_mask(epicardium, shape_xy) & ~blood] = 1
    label[blood] = 2
    return label


def _read_link_csv(path: Path) -> dict[str, str]:
    """folder/patient id -> original id from a two-column CSV (header row optional)."""
    mapping: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) >= 2 and row[0].strip() and row[1].strip():
                mapping[row[0].strip()] = row[1].strip()
    return mapping


def _holds_contours(folder: Path) -> bool:
    if (folder / "i-contours").is_dir() or (folder / "o-contours").is_dir():
        return True
    return any(_CONTOUR_NAME.match(p.name) for p in folder.glob("*.txt"))


def _patient_contour_folder(contours: Path, names: Sequence[str], link_files: Sequence[Path]) -> Path:
    """The contour folder of one patient: ``contours`` itself, or the subfolder for this patient."""
    if not contours.is_dir():
        raise CaseError(f"{contours}: contour folder does not exist")
    if _holds_contours(contours):
        return contours
    candidates: list[str] = []
    used_links = []
    for link in link_files:
        if link.is_file():
            mapping = _read_link_csv(link)
            used_links.append(link)
            candidates += [mapping[n] for n in names if n in mapping]
    candidates += list(names)
    for name in dict.fromkeys(candidates):
        if name and _holds_contours(contours / name):
            return contours / name
    patients = sorted(p.name for p in contours.iterdir() if p.is_dir() and _holds_contours(p))
    if len(patients) == 1 and not used_links:
        warnings.warn(f"{contours}: no link.csv and no folder named {list(names)}; using the only contour folder "
                      f"'{patients[0]}'", stacklevel=3)
        return contours / patients[0]
    where = f" (link.csv read: {[str(p) for p in used_links]})" if used_links else " (no link.csv found)"
    raise CaseError(f"{contours}: no contour folder for patient {list(dict.fromkeys(candidates))}{where}; "
                    f"contour folders there: {patients[:10]}; give the patient's own contour folder instead")


def find_contour_files(
    contours: str | os.PathLike,
    names: Sequence[str] = (),
    link_files: Sequence[str | os.PathLike] = (),
) -> tuple[Path, dict[int, ContourPair]]:
    """Find one patient's Sunnybrook contour files, keyed by the InstanceNumber they belong to.

    Args:
        contours: a patient's contour folder (holding ``i-contours/`` and/or ``o-contours/``, or the
            contour files themselves) or a folder of such folders, one per patient.
        names: the patient's names to look for in a folder of patients (PatientID, DICOM folder
            name); each is first translated through ``link_files`` (CSV rows ``name,original id``).
        link_files: candidate link.csv files; missing ones are ignored.

    Returns:
        The patient's contour folder and {InstanceNumber: ContourPair}. The InstanceNumber is the
        NNNN of ``IM-0001-NNNN-icontour-manual.txt`` (the middle number of the name).
    """
    folder = _patient_contour_folder(Path(contours), list(names), [Path(p) for p in link_files])
    pairs: dict[int, ContourPair] = {}
    for path in sorted(folder.rglob("*.txt")):
        match = _CONTOUR_NAME.match(path.name)
        if match is None:
            continue
        instance, kind = int(match.group(2)), match.group(3).lower()
        pair = pairs.setdefault(instance, ContourPair(instance))
        attribute = "icontour" if kind == "i" else "ocontour"
        if getattr(pair, attribute) is not None:
            raise CaseError(f"{path}: a second {attribute} for InstanceNumber {instance} "
                            f"(also {getattr(pair, attribute)})")
        setattr(pair, attribute, path)
    if not pairs:
        raise CaseError(f"{folder}: no contour files named IM-0001-NNNN-icontour-manual.txt / -ocontour-manual.txt")
    return folder, pairs


# ---------------------------------------------------------------------------------------------
# series to cases


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "dicom"


def _read_pixels(image: DicomImage) -> np.ndarray:
    """(X, Y) float32 magnitude of one image: the transposed pixel array, rescaled to scanner units."""
    with _quiet_pydicom():
        ds = _dcmread(image.path, stop_before_pixels=False)
        if ds is None:
            raise CaseError(f"{image.path}: cannot be read as DICOM any more")
        try:
            pixels = np.asarray(ds.pixel_array, dtype=np.float32)
        except Exception as err:  # missing pixel data, unsupported compression, ...
            raise CaseError(f"{image.path}: cannot decode pixel data ({err})") from err
        slope, intercept = _float(ds, "RescaleSlope"), _float(ds, "RescaleIntercept")
    if pixels.shape != (image.rows, image.columns):
        raise CaseError(f"{image.path}: pixel data of shape {pixels.shape}, expected {image.rows}x{image.columns} "
                        "(one grey-level frame)")
    if slope is not None and slope != 1.0:
        pixels = pixels * np.float32(slope)
    if intercept is not None and intercept != 0.0:
        pixels = pixels + np.float32(intercept)
    return np.ascontiguousarray(pixels.T)  # [row=y, column=x] -> [x, y]


def _match_contours(
    slices: Sequence[Sequence[DicomImage]], pairs: dict[int, ContourPair], folder: Path
) -> dict[tuple[int, int], ContourPair]:
    """(slice index, frame index) -> contour files, through the images' InstanceNumbers."""
    where: dict[int, tuple[int, int]] = {}
    for s, frames in enumerate(slices):
        for t, im in enumerate(frames):
            if im.instance is None:
                continue
            if im.instance in where:
                other = slices[where[im.instance][0]][where[im.instance][1]]
                raise CaseError(f"{im.path}: InstanceNumber {im.instance} also in {other.path.name}; contours are "
                                "matched by InstanceNumber, so it must be unique")
            where[im.instance] = (s, t)
    matched = {}
    for instance, pair in sorted(pairs.items()):
        if instance not in where:
            path = pair.icontour or pair.ocontour
            known = f"{min(where)}..{max(where)}" if where else "none"
            raise CaseError(f"{path}: refers to InstanceNumber {instance}, which no DICOM image of the series has "
                            f"(InstanceNumbers present: {known}); wrong patient's contours in {folder}?")
        matched[where[instance]] = pair
    return matched


def _slice_label(
    frames: Sequence[DicomImage], contours: dict[int, ContourPair], folder: Path
) -> tuple[np.ndarray | None, list[int], list[dict[str, Any]]]:
    """Label (X, Y, T) of one slice from its frames' contours, the labelled frames, and a record of them."""
    if not contours:
        return None, [], []
    columns, rows = frames[0].columns, frames[0].rows
    label = np.zeros((columns, rows, len(frames)), dtype=np.uint8)
    labelled, record = [], []
    for t, pair in sorted(contours.items()):
        if pair.icontour is None:
            warnings.warn(f"{pair.ocontour}: epicardium without an endocardium on the same image; frame {t} left "
                          "unlabelled", stacklevel=3)
            continue
        points = {}
        for kind in ("icontour", "ocontour"):
            path = getattr(pair, kind)
            if path is None:
                continue
            pts = read_contour(path)
            if (pts[:, 0].min() < -1 or pts[:, 0].max() > columns or pts[:, 1].min() < -1 or pts[:, 1].max() > rows):
                raise CaseError(f"{path}: points outside the {rows}x{columns} image (x {pts[:, 0].min():.1f}.."
                                f"{pts[:, 0].max():.1f}, y {pts[:, 1].min():.1f}..{pts[:, 1].max():.1f})")
            points[kind] = pts
        label[..., t] = contour_label((columns, rows), points["icontour"], points.get("ocontour"))
        labelled.append(t)
        record.append({
            "frame": t,
            "instance_number": pair.instance,
            **{kind: str(getattr(pair, kind).relative_to(folder)) for kind in points},
        })
    if not labelled:
        return None, [], []
    return label, labelled, record


def _case_from_slice(
    frames: Sequence[DicomImage],
    index: int,
    slices_total: int,
    case_id: str,
    subject: str,
    dicom_dir: Path,
    contours: dict[int, ContourPair],
    contour_folder: Path | None,
) -> Case:
    magnitude = np.stack([_read_pixels(im) for im in frames], axis=-1).astype(np.float32)
    triggers = [im.trigger_ms for im in frames]
    rr, rr_source = rr_interval_ms(triggers, [im.nominal_interval_ms for im in frames])
    first = frames[0]
    label, labelled, record = (None, [], [])
    if contour_folder is not None:
        label, labelled, record = _slice_label(frames, contours, contour_folder)
    nominal = [im.nominal_interval_ms for im in frames if im.nominal_interval_ms is not None]
    extra: dict[str, Any] = {
        "patient_id": first.patient_id,
        "dicom_folder": str(dicom_dir.resolve()),
        "series_instance_uid": first.series_uid,
        "series_number": first.series_number,
        "series_description": first.series_description,
        "manufacturer": first.manufacturer,
        "manufacturer_model": first.model,
        "magnetic_field_strength_t": first.field_strength_t,
        "slice_index": index,
        "slices_in_series": slices_total,
        "slice_position_mm": round(float(np.mean([im.position_mm for im in frames])), 4),
        "slice_location_mm": first.slice_location,
        "slice_thickness_mm": first.slice_thickness_mm,
        "spacing_between_slices_mm": first.spacing_between_slices_mm,
        "image_orientation_patient": list(first.orientation) if first.orientation is not None else None,
        "image_position_patient": list(first.image_position) if first.image_position is not None else None,
        "rr_interval_source": rr_source,
        "nominal_interval_ms": float(np.median(nominal)) if nominal else None,
        "trigger_times_ms": [round(t, 3) for t in triggers],
        "instance_numbers": [im.instance for im in frames],
        "dicom_files": [im.path.name for im in frames],
    }
    if record:
        extra["contour_folder"] = str(contour_folder.resolve())
        extra["contours"] = record
    return Case(
        case_id=case_id,
        subject=subject,
        magnitude=magnitude,
        pixel_spacing_mm=(first.pixel_spacing[1], first.pixel_spacing[0]),  # [x = between columns, y = between rows]
        rr_interval_ms=rr,
        source="dicom",
        venc_cm_s=None,
        label=label,
        labels=dict(IMPORT_LABELS),
        labelled_frames=labelled if label is not None else None,
        extra=extra,
    )


def _link_files(dicom_dir: Path, contours: Path) -> list[Path]:
    return [dicom_dir.resolve().parent / "link.csv", contours / "link.csv", contours.resolve().parent / "link.csv"]


def read_dicom_series(
    dicom_dir: str | os.PathLike, contours: str | os.PathLike | None = None, progress: bool = False
) -> list[Case]:
    """Read one patient's cine series folder into in-memory cases, one per slice (nothing is written).

    Case ids are ``<PatientID or folder name>_sNN`` with NN the slice index by ascending position
    along the slice normal; the subject is the PatientID (or folder name). See the module docstring
    for array axes, spacing, RR interval and contour conventions.
    """
    dicom_dir = Path(dicom_dir)
    images = scan_dicom_folder(dicom_dir, progress=progress)
    slices = group_slices(images, dicom_dir)
    patient = _majority(images, lambda im: im.patient_id) or dicom_dir.resolve().name
    base = _safe_id(patient)
    width = max(2, len(str(len(slices) - 1)))
    matched: dict[tuple[int, int], ContourPair] = {}
    contour_folder = None
    if contours is not None:
        contours = Path(contours)
        names = [patient, dicom_dir.resolve().name]
        contour_folder, pairs = find_contour_files(contours, names, _link_files(dicom_dir, contours))
        matched = _match_contours(slices, pairs, contour_folder)
    iterator: Iterable[tuple[int, list[DicomImage]]] = enumerate(slices)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(list(iterator), desc="read slices", unit="slice")
    cases = []
    for s, frames in iterator:
        per_frame = {t: pair for (ss, t), pair in matched.items() if ss == s}
        case_id = f"{base}_s{s:0{width}d}"
        cases.append(_case_from_slice(frames, s, len(slices), case_id, patient, dicom_dir, per_frame, contour_folder))
    return cases


def import_dicom(
    dicom_dir: str | os.PathLike,
    out: str | os.PathLike,
    contours: str | os.PathLike | None = None,
    split: str = "test",
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Import one patient's cine DICOM folder into the dataset ``out``, one case per slice location.

    Args:
        dicom_dir: folder of the series' DICOM files (one series; subfolders are not read).
        out: dataset folder; cases go to ``out/cases/<case_id>`` and are listed in
            ``out/datalist.json`` under ``split`` (created, or merged with an existing datalist).
        contours: optional Sunnybrook-style contour folder: one patient's (``i-contours/``,
            ``o-contours/``) or a folder of patients' folders, found through a ``link.csv`` next to
            the DICOM folder (or the contour folder) or by PatientID / DICOM folder name.
        split: "training", "validation" or "test".
        overwrite: replace cases that exist (folder or datalist entry); otherwise they are refused.
        progress: show tqdm progress bars.

    Returns:
        The written case folders, in slice order. Nothing is written when any check fails.
    """
    if split not in SPLITS:
        raise CaseError(f"unknown split '{split}'; expected one of {list(SPLITS)}")
    out = Path(out)
    datalist = {s: [] for s in SPLITS}
    if (out / "datalist.json").exists():
        datalist = load_datalist(out)
    cases = read_dicom_series(dicom_dir, contours=contours, progress=progress)
    new_entries = {f"cases/{case.case_id}" for case in cases}
    listed = {item["case"] for s in SPLITS for item in datalist[s]}
    listed_ids = [c.case_id for c in cases if f"cases/{c.case_id}" in listed]
    folder_ids = [c.case_id for c in cases if c.case_id not in listed_ids and (out / "cases" / c.case_id).exists()]
    if (listed_ids or folder_ids) and not overwrite:
        parts = [f"{what}: " + ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
                 for what, ids in (("listed in datalist.json", listed_ids), ("case folder exists", folder_ids)) if ids]
        raise CaseError(f"{out}: {len(listed_ids) + len(folder_ids)} case(s) already exist, pass overwrite=True "
                        f"(--overwrite) to replace them; " + "; ".join(parts))
    kept = {s: [item for item in datalist[s] if item["case"] not in new_entries] for s in SPLITS}
    subjects = {case.subject for case in cases}
    for other in SPLITS:
        if other == split:
            continue
        for item in kept[other]:
            subject = item.get("subject")
            if subject is None and (out / item["case"] / "case.json").is_file():
                subject = read_case_json(out / item["case"]).get("subject")
            if subject in subjects:
                raise CaseError(f"{out / 'datalist.json'}: subject '{subject}' already has case {item['case']} under "
                                f"'{other}'; importing it under '{split}' would split a subject across lists")
    iterator: Iterable[Case] = cases
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(cases, desc="write cases", unit="case")
    written = []
    for case in iterator:
        written.append(save_case(case, out / "cases" / case.case_id, overwrite=overwrite))
    kept[split] += [{"case": f"cases/{case.case_id}", "subject": case.subject} for case in cases]
    save_datalist(out, kept, overwrite=True)
    return written

"""DICOM import: Sunnybrook cine to cases (counts, order, spacing, contours) and one clear error per bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SUNNYBROOK
from hdl_monai.data import CaseError, load_case, load_datalist, validate_dataset
from hdl_monai.data.dicom import (
    contour_label,
    group_slices,
    import_dicom,
    polygon_mask,
    read_contour,
    read_dicom_series,
    rr_interval_ms,
    scan_dicom_folder,
)

pydicom = pytest.importorskip("pydicom")

needs_sunnybrook = pytest.mark.skipif(
    not (SUNNYBROOK / "SCD0000101").is_dir(), reason=f"Sunnybrook data not found at {SUNNYBROOK}"
)

# ---------------------------------------------------------------------------------------------
# small synthetic DICOM series written by the tests

ROWS, COLS = 6, 8  # deliberately not square, so a transposed array has the wrong shape


def _pixels(instance: int, rows: int = ROWS, cols: int = COLS) -> np.ndarray:
    """pixel[row, col] = 1000 * instance + 10 * row + col: every value tells where it came from."""
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return (1000 * instance + 10 * r + c).astype(np.int16)


def write_image(
    path: Path,
    *,
    instance: int,
    slice_mm: float,
    trigger_ms: float,
    series_uid: str = "1.2.826.0.1.3680043.8.498.1",
    patient: str = "PAT1",
    rows: int = ROWS,
    cols: int = COLS,
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    nominal_ms: float | None = 1000.0,
    slope: float | None = None,
    intercept: float | None = None,
) -> Path:
    """Write one minimal single-frame MR image (explicit VR little endian) to ``path``."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientID = patient
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 5
    ds.SeriesDescription = "sax cine"
    ds.InstanceNumber = instance
    ds.ImageOrientationPatient = list(orientation)
    normal = np.cross(orientation[:3], orientation[3:])
    ds.ImagePositionPatient = [float(v) for v in normal * slice_mm]
    ds.SliceLocation = slice_mm
    ds.SliceThickness = 8
    ds.TriggerTime = trigger_ms
    if nominal_ms is not None:
        ds.NominalInterval = int(nominal_ms)
    ds.PixelSpacing = [1.5, 1.25]  # between rows (y), between columns (x)
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = _pixels(instance, rows, cols).tobytes()
    try:
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)  # pydicom >= 3
    except TypeError:  # pydicom 2.x
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)
    return path


def write_series(folder: Path, slices: int = 2, frames: int = 3, **kwargs) -> Path:
    """A cine series: slice s at position 10 * (slices - 1 - s) mm, so file order != position order.

    Instance numbers run 1.. slice by slice; trigger times are written in reverse file order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    instance = 1
    for s in range(slices):
        for t in reversed(range(frames)):
            position = 10.0 * (slices - 1 - s)
            write_image(folder / f"img{instance:03d}.dcm", instance=s * frames + t + 1, slice_mm=position,
                        trigger_ms=50.0 * t + 5.0, **kwargs)
            instance += 1
    return folder


def test_synthetic_import_axes_order_and_metadata(tmp_path):
    folder = write_series(tmp_path / "PAT1", slope=2.0, intercept=-10.0)
    (folder / "notes.txt").write_text("not a DICOM file\n")
    with pytest.warns(UserWarning, match="notes.txt"):
        written = import_dicom(folder, tmp_path / "ds", progress=False)
    assert [p.name for p in written] == ["PAT1_s00", "PAT1_s01"]
    assert validate_dataset(tmp_path / "ds") == []
    # slice s00 has the lowest position: written as slice index 1 (position 0 mm), instances 4..6
    case = load_case(written[0])
    assert case.magnitude.shape == (COLS, ROWS, 3)  # (X, Y, T): x = column
    assert case.extra["instance_numbers"] == [4, 5, 6]  # frames by trigger time
    assert case.extra["trigger_times_ms"] == [5.0, 55.0, 105.0]
    assert case.extra["slice_position_mm"] == pytest.approx(0.0)
    assert load_case(written[1]).extra["slice_position_mm"] == pytest.approx(10.0)
    for t, instance in enumerate(case.extra["instance_numbers"]):
        expected = _pixels(instance).astype(np.float32).T * 2.0 - 10.0  # magnitude[x, y] = pixel[row=y, col=x]
        np.testing.assert_array_equal(case.magnitude[..., t], expected)
    assert case.magnitude.dtype == np.float32
    assert case.pixel_spacing_mm == (1.25, 1.5)  # [x, y] = [PixelSpacing[1], PixelSpacing[0]]
    assert case.rr_interval_ms == 1000.0 and case.extra["rr_interval_source"] == "NominalInterval"
    assert case.venc_cm_s is None and case.label is None and case.source == "dicom"
    assert case.subject == "PAT1" and case.extra["patient_id"] == "PAT1"
    datalist = load_datalist(tmp_path / "ds")
    assert [item["case"] for item in datalist["test"]] == ["cases/PAT1_s00", "cases/PAT1_s01"]
    assert datalist["training"] == datalist["validation"] == []


def test_rr_interval_falls_back_to_trigger_spacing(tmp_path):
    folder = write_series(tmp_path / "PAT1", slices=1, frames=4, nominal_ms=None)
    case = read_dicom_series(folder)[0]
    assert case.rr_interval_ms == pytest.approx(200.0)  # 50 ms spacing x 4 frames
    assert case.extra["rr_interval_source"] == "TriggerTime spacing x frames"
    # a NominalInterval shorter than the last trigger time is not sensible
    assert rr_interval_ms([0, 100, 200, 300], [250]) == (400.0, "TriggerTime spacing x frames")
    assert rr_interval_ms([0, 100, 200, 300], [410]) == (410.0, "NominalInterval")


def test_datalist_merge_refusal_and_overwrite(tmp_path):
    write_series(tmp_path / "PAT1")
    write_series(tmp_path / "PAT2", slices=3, patient="PAT2", series_uid="1.2.826.0.1.3680043.8.498.2")
    write_series(tmp_path / "PAT2b", slices=2, patient="PAT2", series_uid="1.2.826.0.1.3680043.8.498.3")
    out = tmp_path / "ds"
    import_dicom(tmp_path / "PAT1", out, split="training", progress=False)
    import_dicom(tmp_path / "PAT2", out, split="test", progress=False)
    datalist = load_datalist(out)
    assert len(datalist["training"]) == 2 and len(datalist["test"]) == 3
    with pytest.raises(CaseError, match="already exist.*PAT1_s00"):
        import_dicom(tmp_path / "PAT1", out, split="training", progress=False)
    # PAT2b replaces PAT2_s00, PAT2_s01 but PAT2_s02 would stay under 'test': a subject in two lists
    with pytest.raises(CaseError, match="subject 'PAT2' already has case cases/PAT2_s02 under 'test'"):
        import_dicom(tmp_path / "PAT2b", out, split="training", overwrite=True, progress=False)
    assert load_datalist(out) == datalist  # refused before anything was written
    import_dicom(tmp_path / "PAT1", out, split="validation", overwrite=True, progress=False)
    datalist = load_datalist(out)
    assert datalist["training"] == [] and len(datalist["validation"]) == 2
    assert validate_dataset(out) == []


def test_synthetic_contours_fill_the_right_pixels(tmp_path):
    write_series(tmp_path / "dicom" / "PAT1", slices=1, frames=3, rows=12, cols=16)
    contours = tmp_path / "contours" / "ORIG-1"
    (contours / "i-contours").mkdir(parents=True)
    (contours / "o-contours").mkdir(parents=True)
    # instance 2 = frame 1: endocardium x (column) 6..9, y (row) 3..5 -> 4 x 3 centres (half-open rule)
    (contours / "i-contours" / "IM-0001-0002-icontour-manual.txt").write_text("6 3\n10 3\n10 6\n6 6\n")
    (contours / "o-contours" / "IM-0001-0002-ocontour-manual.txt").write_text("4 1\n12 1\n12 8\n4 8\n")
    (contours / "i-contours" / "IM-0001-0003-icontour-manual.txt").write_text("6 3\n10 3\n10 6\n6 6\n")
    (tmp_path / "dicom" / "link.csv").write_text("patient_id,original_id\nPAT1,ORIG-1\n")
    written = import_dicom(tmp_path / "dicom" / "PAT1", tmp_path / "ds", contours=tmp_path / "contours", progress=False)
    case = load_case(written[0])
    assert case.labelled_frames == [1, 2]
    assert case.label.shape == (16, 12, 3)
    blood = np.zeros((16, 12), bool)
    blood[6:10, 3:6] = True  # array axis 0 = x = column
    np.testing.assert_array_equal(case.label[..., 1] == 2, blood)
    ring = np.zeros((16, 12), bool)
    ring[4:12, 1:8] = True
    np.testing.assert_array_equal(case.label[..., 1] == 1, ring & ~blood)
    np.testing.assert_array_equal(case.label[..., 2], np.where(blood, 2, 0))  # endocardium only: no label 1
    assert not case.label[..., 0].any()
    assert case.extra["contours"][0]["instance_number"] == 2
    # a contour for an InstanceNumber the series lacks
    (contours / "i-contours" / "IM-0001-0042-icontour-manual.txt").write_text("6 3\n10 3\n10 6\n")
    with pytest.raises(CaseError, match=r"IM-0001-0042-icontour-manual.txt: refers to InstanceNumber 42"):
        import_dicom(tmp_path / "dicom" / "PAT1", tmp_path / "ds2", contours=contours, progress=False)
    assert not (tmp_path / "ds2").exists()  # nothing written


def test_polygon_mask_known_answers():
    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    assert polygon_mask(square, (8, 8)).sum() == 16 == polygon_mask(square[::-1], (8, 8)).sum()
    band = polygon_mask(np.array([[1, 2], [5, 2], [5, 3], [1, 3]], float), (8, 8))
    assert np.argwhere(band).tolist() == [[1, 2], [2, 2], [3, 2], [4, 2]]  # x along axis 0
    label = contour_label((8, 8), square + 2, square * 1.5 + 0.5)
    assert set(np.unique(label).tolist()) == {0, 1, 2} and (label == 2).sum() == 16
    assert not contour_label((8, 8), None, square).any()


# ---------------------------------------------------------------------------------------------
# bad inputs: each raises CaseError naming the file or folder


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(CaseError, match=f"{tmp_path / 'nope'}: DICOM folder does not exist"):
        import_dicom(tmp_path / "nope", tmp_path / "ds", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaseError, match=f"{tmp_path / 'empty'}: no DICOM image files"):
        import_dicom(tmp_path / "empty", tmp_path / "ds", progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("hello")
    with pytest.warns(UserWarning, match="a.txt"), pytest.raises(CaseError, match="junk: no DICOM image files"):
        import_dicom(tmp_path / "junk", tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()


def test_mixed_series_is_refused(tmp_path):
    folder = write_series(tmp_path / "mixed")
    write_image(folder / "other.dcm", instance=99, slice_mm=0.0, trigger_ms=7.0, series_uid="1.2.3.999")
    with pytest.raises(CaseError, match=r"mixed: mixed series.*2 series.*1\.2\.3\.999.*other\.dcm"):
        import_dicom(folder, tmp_path / "ds", progress=False)


def test_mixed_orientation_is_refused(tmp_path):
    folder = write_series(tmp_path / "tilted")
    write_image(folder / "tilted.dcm", instance=99, slice_mm=30.0, trigger_ms=5.0, orientation=(0, 1, 0, 0, 0, 1))
    with pytest.raises(CaseError, match=r"tilted\.dcm: mixed series, ImageOrientationPatient"):
        import_dicom(folder, tmp_path / "ds", progress=False)


def test_missing_frame_is_refused(tmp_path):
    folder = write_series(tmp_path / "gappy")
    (folder / "img002.dcm").unlink()
    with pytest.raises(CaseError, match=r"gappy: missing frames.*slice at 10\.00 mm has 2"):
        import_dicom(folder, tmp_path / "ds", progress=False)


def test_duplicate_trigger_time_is_refused(tmp_path):
    folder = write_series(tmp_path / "dup")
    write_image(folder / "again.dcm", instance=77, slice_mm=0.0, trigger_ms=55.0)
    with pytest.raises(CaseError, match=r"dup: duplicate TriggerTime 55 ms.*again\.dcm"):
        import_dicom(folder, tmp_path / "ds", progress=False)


def test_inconsistent_matrix_size_is_refused(tmp_path):
    folder = write_series(tmp_path / "sizes")
    write_image(folder / "img003.dcm", instance=3, slice_mm=10.0, trigger_ms=5.0, rows=4, cols=4)
    with pytest.raises(CaseError, match=r"img003\.dcm: inconsistent matrix size 4x4"):
        import_dicom(folder, tmp_path / "ds", progress=False)


def test_cli_import(tmp_path, capsys):
    from hdl_monai.cli import main

    folder = write_series(tmp_path / "PAT1")
    main(["import-dicom", str(folder), "--out", str(tmp_path / "ds")])
    assert "2 case(s) written" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["import-dicom", str(tmp_path / "missing"), "--out", str(tmp_path / "ds")])
    assert exit_info.value.code == 2
    assert "missing: DICOM folder does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Sunnybrook: real scanner data with manual contours


@pytest.fixture(scope="module")
def sunnybrook_dataset(tmp_path_factory):
    """SCD0000101 (240 files, 12 slices x 20 frames) imported once, with its contours."""
    if not (SUNNYBROOK / "SCD0000101").is_dir():
        pytest.skip(f"Sunnybrook data not found at {SUNNYBROOK}")
    out = tmp_path_factory.mktemp("sunnybrook") / "ds"
    written = import_dicom(SUNNYBROOK / "SCD0000101", out, contours=SUNNYBROOK / "contours", progress=False)
    return out, written


@needs_sunnybrook
@pytest.mark.parametrize("patient,slices", [("SCD0000201", 13), ("SCD0000301", 10)])
def test_sunnybrook_counts_from_headers(patient, slices):
    groups = group_slices(scan_dicom_folder(SUNNYBROOK / patient), SUNNYBROOK / patient)
    assert [len(frames) for frames in groups] == [20] * slices


@needs_sunnybrook
def test_sunnybrook_import_counts_order_and_spacing(sunnybrook_dataset):
    out, written = sunnybrook_dataset
    assert validate_dataset(out) == []
    assert [p.name for p in written] == [f"SCD0000101_s{s:02d}" for s in range(12)]
    positions = []
    for path in written:
        case = load_case(path)
        assert case.magnitude.shape == (256, 256, 20)
        assert case.pixel_spacing_mm == pytest.approx((1.367188, 1.367188))
        assert case.subject == "SCD0000101" and case.venc_cm_s is None
        assert np.all(np.diff(case.extra["trigger_times_ms"]) > 0)
        assert 700 <= case.rr_interval_ms <= 850 and case.extra["rr_interval_source"] == "NominalInterval"
        assert case.rr_interval_ms >= case.extra["trigger_times_ms"][-1]
        positions.append(case.extra["slice_position_mm"])
    assert np.diff(positions).tolist() == pytest.approx([10.0] * 11, abs=0.05)  # ascending, 10 mm apart
    assert load_datalist(out)["test"][0] == {"case": "cases/SCD0000101_s00", "subject": "SCD0000101"}


def _polygon_area_and_centroid(points: np.ndarray) -> tuple[float, np.ndarray, float]:
    x, y = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    area = cross.sum() / 2
    centroid = np.array([((x + x1) * cross).sum(), ((y + y1) * cross).sum()]) / (6 * area)
    return abs(area), centroid, float(np.hypot(x1 - x, y1 - y).sum())


@needs_sunnybrook
def test_sunnybrook_contour_masks(sunnybrook_dataset):
    out, written = sunnybrook_dataset
    contoured = 0
    for path in written:
        case = load_case(path)
        meta = json.loads((path / "case.json").read_text())
        records = meta.get("contours", [])
        assert meta.get("labelled_frames") == ([r["frame"] for r in records] or None)
        if not records:
            assert case.label is None
            continue
        contoured += 1
        labelled = set(case.labelled_frames)
        assert not case.label[..., [t for t in range(case.frames) if t not in labelled]].any()
        for record in records:
            t = record["frame"]
            assert case.extra["instance_numbers"][t] == record["instance_number"]  # NNNN is the InstanceNumber
            label = case.label[..., t]
            endo = read_contour(Path(meta["contour_folder"]) / record["icontour"])
            area, centroid, perimeter = _polygon_area_and_centroid(endo)
            blood = label == 2
            assert abs(blood.sum() - area) <= 0.25 * perimeter  # pixel discretisation
            assert np.allclose(np.argwhere(blood).mean(axis=0), centroid, atol=1.0)  # axis 0 = x = column
            assert ((label == 1).any()) == ("ocontour" in record)  # myocardium only with both contours
            if "ocontour" in record:  # bSSFP: blood is brighter than myocardium where the mask belongs
                magnitude = case.magnitude[..., t]
                assert magnitude[blood].mean() > 1.5 * magnitude[label == 1].mean()
    assert contoured == 9  # SC-HF-I-1: contours on slices s01..s09, ED and ES frames


@needs_sunnybrook
def test_sunnybrook_contour_folder_of_one_patient(tmp_path):
    """Copy a few real files and one patient's contours: the patient folder is matched by InstanceNumber."""
    folder = tmp_path / "SCD0000101"
    folder.mkdir()
    for instance in range(41, 61):  # one slice, 20 frames: instances 41..60
        shutil.copy(SUNNYBROOK / "SCD0000101" / f"{instance}.dcm", folder)
    contours = tmp_path / "contours"
    for kind, prefix in (("i-contours", "icontour"), ("o-contours", "ocontour")):
        (contours / kind).mkdir(parents=True)
        source = SUNNYBROOK / "contours" / "SC-HF-I-1" / kind / f"IM-0001-0059-{prefix}-manual.txt"
        shutil.copy(source, contours / kind)
    case = read_dicom_series(folder, contours=contours)[0]
    assert case.labelled_frames == [18] and case.extra["instance_numbers"][18] == 59
    assert set(np.unique(case.label).tolist()) == {0, 1, 2}
    # the same slice against the whole patient's contours: other slices' instances are missing
    with pytest.raises(CaseError, match=r"IM-0001-0068-icontour-manual.txt: refers to InstanceNumber 68"):
        read_dicom_series(folder, contours=SUNNYBROOK / "contours" / "SC-HF-I-1")

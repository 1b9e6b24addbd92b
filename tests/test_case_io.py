"""Case format I/O: round trips, atomic writes, and one clear error per bad input."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from conftest import make_case
from hdl_monai.data import (
    CaseError,
    OverwriteError,
    load_case,
    save_case,
    save_datalist,
    split_by_subject,
    validate_case_dir,
    validate_dataset,
)


def test_round_trip_keeps_arrays_and_metadata(tmp_path, tiny_case):
    save_case(tiny_case, tmp_path / "c0")
    loaded = load_case(tmp_path / "c0")
    np.testing.assert_array_equal(loaded.magnitude, tiny_case.magnitude)
    np.testing.assert_array_equal(loaded.label, tiny_case.label)
    for d in "xyz":
        np.testing.assert_array_equal(loaded.phase[d], tiny_case.phase[d])
        np.testing.assert_array_equal(loaded.velocity[d], tiny_case.velocity[d])
    assert loaded.venc_cm_s == {"x": 20.0, "y": 20.0, "z": 30.0}
    assert loaded.frames == 6 and loaded.frame_interval_ms == pytest.approx(1000 / 6)
    image = nib.load(str(tmp_path / "c0" / "magnitude.nii.gz"))
    assert image.header.get_zooms() == pytest.approx((1.5, 1.5, 1000 / 6))
    meta = json.loads((tmp_path / "c0" / "case.json").read_text())
    assert meta["frames"] == 6 and meta["pixel_spacing_mm"] == [1.5, 1.5]


def test_existing_case_is_not_overwritten(tmp_path, tiny_case):
    save_case(tiny_case, tmp_path / "c0")
    before = (tmp_path / "c0" / "magnitude.nii.gz").read_bytes()
    other = make_case(seed=5)
    with pytest.raises(OverwriteError, match="exists"):
        save_case(other, tmp_path / "c0")
    assert (tmp_path / "c0" / "magnitude.nii.gz").read_bytes() == before
    save_case(other, tmp_path / "c0", overwrite=True)
    np.testing.assert_array_equal(load_case(tmp_path / "c0").magnitude, other.magnitude)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0"]  # no temporary folders left


def test_failed_write_leaves_nothing(tmp_path, tiny_case):
    tiny_case.phase["x"][0, 0, 0] = np.nan
    with pytest.raises(CaseError, match="phase_x.nii.gz: 1 NaN/inf"):
        save_case(tiny_case, tmp_path / "c0")
    assert list(tmp_path.iterdir()) == []


def _write_then_break(tmp_path, case, breaker):
    save_case(case, tmp_path / "c0")
    breaker(tmp_path / "c0")
    return validate_case_dir(tmp_path / "c0")


def _rewrite(case_dir, name, array):
    nib.save(nib.Nifti1Image(array, np.eye(4)), str(case_dir / name))


@pytest.mark.parametrize(
    "breaker, expected",
    [
        (lambda d: (d / "phase_y.nii.gz").unlink(), "missing file(s) ['phase_y.nii.gz']"),
        (lambda d: (d / "magnitude.nii.gz").unlink(), "magnitude.nii.gz: missing file"),
        (lambda d: _rewrite(d, "phase_x.nii.gz", np.full((16, 16, 5), 2048, np.float32)), "phase_x.nii.gz: shape (16, 16, 5) disagrees with magnitude (16, 16, 6)"),
        (lambda d: _rewrite(d, "label.nii.gz", np.zeros((16, 12, 6), np.uint8)), "label.nii.gz: shape (16, 12, 6) disagrees"),
        (lambda d: _rewrite(d, "phase_z.nii.gz", np.full((16, 16, 6), 5000, np.float32)), "phase_z.nii.gz: phase outside 0..4096"),
        (lambda d: _rewrite(d, "magnitude.nii.gz", np.full((16, 16, 6), np.inf, np.float32)), "magnitude.nii.gz: 1536 NaN/inf"),
        (lambda d: _rewrite(d, "label.nii.gz", np.full((16, 16, 6), 7, np.uint8)), "label.nii.gz: unknown label values [7]"),
        (lambda d: (d / "case.json").write_text(json.dumps({**json.loads((d / "case.json").read_text()), "frames": 9})), "frames = 9 but magnitude.nii.gz has 6 frames"),
        (lambda d: (d / "case.json").write_text("{not json"), "case.json: not valid JSON"),
    ],
)
def test_each_bad_input_gets_a_clear_line(tmp_path, tiny_case, breaker, expected):
    problems = _write_then_break(tmp_path, tiny_case, breaker)
    assert any(expected in p for p in problems), problems
    assert all(str(tmp_path / "c0") in p for p in problems)
    with pytest.raises(CaseError, match="c0"):
        load_case(tmp_path / "c0")


def test_dataset_subject_in_two_splits_is_reported(tmp_path):
    for i, subject in enumerate(["a", "a", "b"]):
        save_case(make_case(f"c{i}", subject=subject), tmp_path / "cases" / f"c{i}")
    save_datalist(tmp_path, {"training": [{"case": "cases/c0"}], "test": [{"case": "cases/c1"}, {"case": "cases/c2"}]})
    problems = validate_dataset(tmp_path)
    assert problems == [f"{tmp_path / 'datalist.json'}: subject 'a' appears in more than one split ['test', 'training']"]


def test_missing_case_in_datalist_is_reported(tmp_path):
    save_datalist(tmp_path, {"training": [{"case": "cases/nope"}]})
    assert validate_dataset(tmp_path) == [f"{tmp_path / 'cases' / 'nope'}: missing case folder"]


def test_split_by_subject_keeps_subjects_together():
    cases = {f"s{i}_{j}": f"s{i}" for i in range(10) for j in range(3)}
    datalist = split_by_subject(cases, seed=1)
    subjects = {split: {item["subject"] for item in items} for split, items in datalist.items()}
    assert all(subjects[split] for split in subjects)
    assert not (subjects["training"] & subjects["validation"]) and not (subjects["training"] & subjects["test"])
    assert sum(len(items) for items in datalist.values()) == 30
    assert len(subjects["training"]) == 6


def test_atomic_text_files_get_a_normal_mode_and_never_overwrite_unasked(tmp_path):
    import os
    import stat

    from hdl_monai.data.atomic import OverwriteError, atomic_write_json, atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "out" / "a.json", {"x": 1})
    finally:
        os.umask(old)
    # readable like any file the user writes (0644 under umask 022), not mkstemp's private 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == '{\n  "x": 1\n}\n'
    with pytest.raises(OverwriteError, match="a.json: exists"):
        atomic_write_text(path, "new", overwrite=False)
    assert path.read_text() == '{\n  "x": 1\n}\n' and [p.name for p in path.parent.iterdir()] == ["a.json"]

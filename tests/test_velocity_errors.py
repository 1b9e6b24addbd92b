"""Bad input to velocity assessment: each a clear error naming the case and, where it applies, the frame."""

from __future__ import annotations

import numpy as np
import pytest

from hdl_monai.cli import main
from hdl_monai.data.case import CaseError, save_case
from hdl_monai.velocity import VelocityError, assess_case
from hdl_monai.velocity.synthetic import known_answer_case


@pytest.fixture
def case():
    return known_answer_case(size=24, frames=10, case_id="bad01")


def test_missing_label(case):
    case.label = None
    with pytest.raises(VelocityError, match=r"case bad01: missing label\.nii\.gz"):
        assess_case(case)


def test_no_myocardium_on_a_frame(case):
    frame = case.label[:, :, 3]
    frame[frame == 1] = 0
    with pytest.raises(VelocityError, match=r"case bad01: frame 3: no myocardium \(label 1\)"):
        assess_case(case)


def test_empty_frame(case):
    case.label[:, :, 6] = 0
    with pytest.raises(VelocityError, match=r"case bad01: frame 6: no LV blood pool"):
        assess_case(case)


def test_unlabelled_frames(case):
    case.labelled_frames = [0, 1, 2, 4, 9]
    with pytest.raises(VelocityError, match=r"case bad01: frame 3: not labelled"):
        assess_case(case)


def test_venc_missing(case):
    case.venc_cm_s = None
    with pytest.raises(VelocityError, match=r"case bad01: venc_cm_s missing from case\.json"):
        assess_case(case)
    case.venc_cm_s = {"x": 20.0, "y": 20.0}
    with pytest.raises(VelocityError, match=r"case bad01: .*lacks direction\(s\) \['z'\]"):
        assess_case(case)
    # the ground truth velocity needs no venc
    assert assess_case(case, source="velocity").frames == 10


def test_shapes_disagree(case):
    case.phase["y"] = case.phase["y"][:, :, :-1]
    with pytest.raises(VelocityError, match=r"case bad01: phase_y\.nii\.gz has shape \(24, 24, 9\) .*\(9 frames vs 10\)"):
        assess_case(case)


def test_missing_phase_and_unknown_source(case):
    del case.phase["x"]
    with pytest.raises(VelocityError, match=r"case bad01: missing phase file\(s\) \['phase_x\.nii\.gz'\]"):
        assess_case(case)
    with pytest.raises(VelocityError, match="unknown velocity source"):
        assess_case(case, source="doppler")
    case.velocity = {}
    with pytest.raises(VelocityError, match="missing ground-truth velocity"):
        assess_case(case, source="velocity")


def test_velocity_error_is_a_case_error():
    assert issubclass(VelocityError, CaseError)


def test_cli_prints_one_clear_line(case, tmp_path, capsys):
    case_dir = tmp_path / "cases" / "bad01"
    case.label[:, :, 4][case.label[:, :, 4] == 1] = 0
    save_case(case, case_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["velocity", str(case_dir), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {case_dir}: frame 4: no myocardium" in err
    assert not (tmp_path / "out").exists()


def test_venc_missing_on_disk_names_the_file(case, tmp_path, capsys):
    case_dir = tmp_path / "bad01"
    case.venc_cm_s = None
    save_case(case, case_dir, validate=False)
    with pytest.raises(SystemExit):
        main(["velocity", str(case_dir), "--out", str(tmp_path / "out")])
    assert f"{case_dir / 'case.json'}: has phase images but no venc_cm_s" in capsys.readouterr().err


def test_label_missing_on_disk(case, tmp_path):
    from hdl_monai.velocity.report import assess_path

    case.label = None
    case_dir = tmp_path / "bad01"
    save_case(case, case_dir)
    with pytest.raises(VelocityError, match=rf"{case_dir}: missing label\.nii\.gz"):
        assess_path(case_dir, tmp_path / "out")
    assert np.all(case.magnitude > 0)

"""The file-writing edges: ``hdl-monai velocity`` / ``velocity-compare`` outputs and the MONAI bundle."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hdl_monai.cli import main
from hdl_monai.data.atomic import OverwriteError
from hdl_monai.data.case import save_case
from hdl_monai.data.datalist import save_datalist
from hdl_monai.velocity import CYLINDRICAL, INDEX_KEYS
from hdl_monai.velocity.report import assess_path, compare_paths
from hdl_monai.velocity.synthetic import known_answer_case

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundle" / "hdl_velocity_assessment"
FRAMES = 15


def _dataset(root: Path, ids=("k0", "k1", "k2"), noise: float = 40.0) -> Path:
    for i, cid in enumerate(ids):
        case = known_answer_case(size=24, frames=FRAMES, noise=noise, seed=i, case_id=cid, rr_interval_ms=900.0 + 30 * i)
        save_case(case, root / "cases" / cid)
    save_datalist(root, {"training": [{"case": f"cases/{ids[0]}"}], "test": [{"case": f"cases/{c}"} for c in ids[1:]]})
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _dataset(tmp_path_factory.mktemp("velocity") / "ds")


def test_case_outputs(dataset, tmp_path):
    out = assess_path(dataset / "cases" / "k1", tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "velocity.json", "velocity_curves.png"]
    data = json.loads((out / "velocity.json").read_text())
    assert data["case_id"] == "k1" and data["frames"] == FRAMES
    assert isinstance(data["end_systole_frame"], int)
    assert set(data["curves_mm_s"]) == set(CYLINDRICAL) and all(len(c) == FRAMES for c in data["curves_mm_s"].values())
    for direction in CYLINDRICAL:
        assert set(INDEX_KEYS) <= set(data["indices"][direction])
        assert data["indices"][direction]["psv_mm_s"] >= 0
    rows = list(csv.DictReader((out / "curves.csv").open()))
    assert len(rows) == FRAMES and list(rows[0]) == ["frame", "time_au", "time_ms", "radial_mm_s", "circumferential_mm_s", "longitudinal_mm_s"]
    assert float(rows[3]["time_au"]) == pytest.approx(3 * 50 / FRAMES) and float(rows[3]["time_ms"]) == pytest.approx(3 * 930.0 / FRAMES)
    assert float(rows[2]["radial_mm_s"]) == pytest.approx(data["curves_mm_s"]["radial"][2], abs=1e-5)
    assert (out / "velocity_curves.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(OverwriteError):
        assess_path(dataset / "cases" / "k1", out)
    assess_path(dataset / "cases" / "k1", out, overwrite=True, plots=False)
    assert not (out / "velocity_curves.png").exists()


def test_dataset_outputs_and_summary(dataset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an existing empty folder is accepted
    assess_path(dataset, out)
    for cid in ("k0", "k1", "k2"):
        assert (out / cid / "velocity.json").is_file() and (out / cid / "velocity_curves.png").is_file()
    for name in ("summary.csv", "summary.md", "summary.json", "cases.csv", "velocity_boxplots.png"):
        assert (out / name).is_file(), name
    psv = [json.loads((out / c / "velocity.json").read_text())["indices"]["radial"]["psv_mm_s"] for c in ("k0", "k1", "k2")]
    rows = {(r["direction"], r["index"]): r for r in csv.DictReader((out / "summary.csv").open())}
    assert float(rows[("radial", "psv_mm_s")]["all_mean"]) == pytest.approx(np.mean(psv))
    assert float(rows[("radial", "psv_mm_s")]["all_std"]) == pytest.approx(np.std(psv, ddof=1))
    md = (out / "summary.md").read_text()
    assert "| radial | PSV (mm/s) |" in md and "| longitudinal | TPDV (a.u.) |" in md
    only_test = assess_path(dataset, tmp_path / "test_only", splits=["test"], plots=False)
    assert json.loads((only_test / "summary.json").read_text())["cases"] == 2


def test_dataset_with_a_bad_case(dataset, tmp_path):
    bad = _dataset(tmp_path / "bad", ids=("a0", "a1"))
    (bad / "cases" / "a1" / "label.nii.gz").unlink()
    with pytest.raises(Exception, match=r"a1: missing label\.nii\.gz"):
        assess_path(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assess_path(bad, tmp_path / "out", skip_errors=True, plots=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["cases"] == 1 and "missing label" in summary["failed"][0]


def test_compare_datasets_paired_by_case_id(dataset, tmp_path):
    other = _dataset(tmp_path / "syn", ids=("k1", "k2", "k9"), noise=80.0)
    out = compare_paths(dataset, other, tmp_path / "cmp", exclude_border_px=0)  # 24 px rings: keep every pixel
    data = json.loads((out / "comparison.json").read_text())
    assert [c["case_id"] for c in data["cases"]] == ["k1", "k2"]
    assert data["unmatched"] == {"reference_only": ["k0"], "synthetic_only": ["k9"]}
    for case in data["cases"]:
        assert all(case["pearson_r"][d] > 0.99 for d in CYLINDRICAL)
        assert set(case["differences"]["radial"]) == set(INDEX_KEYS)
    assert set(data["summary"]["pooled_pearson_r"]) == set(CYLINDRICAL)
    assert (out / "k1" / "velocity_overlay.png").is_file() and (out / "velocity_boxplots.png").is_file()
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [r["case_id"] for r in rows] == ["k1", "k2"] and "diff_longitudinal_pdv_mm_s" in rows[0]
    assert "Pearson r" in (out / "comparison.md").read_text()


def test_compare_phase_with_ground_truth_of_one_case(dataset, tmp_path):
    case_dir = dataset / "cases" / "k0"
    out = compare_paths(case_dir, case_dir, tmp_path / "cmp", reference_source="velocity", synthetic_source="phase")
    data = json.loads((out / "comparison.json").read_text())
    assert all(data["cases"][0]["pearson_r"][d] >= 0.99 for d in CYLINDRICAL)
    assert (out / "velocity_overlay.png").is_file()


def test_cli_commands(dataset, tmp_path, capsys):
    main(["velocity", str(dataset / "cases" / "k2"), "--out", str(tmp_path / "v")])
    assert (tmp_path / "v" / "velocity.json").is_file()
    main(["velocity-compare", str(dataset / "cases" / "k1"), str(dataset / "cases" / "k2"), "--out", str(tmp_path / "c")])
    assert (tmp_path / "c" / "comparison.md").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(["velocity", str(dataset / "cases" / "k2"), "--out", str(tmp_path / "v")])
    assert exit_info.value.code == 2 and "overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_bundle_run_command(dataset, tmp_path):
    """The documented command: python -m monai.bundle run --config_file .../inference.json --dataset_dir DIR."""
    out = tmp_path / "bundle_out"
    cmd = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", str(BUNDLE / "configs" / "inference.json"),
        "--dataset_dir", str(dataset),
        "--output_dir", str(out),
        "--plots", "False",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "summary.md").is_file() and (out / "k0" / "velocity.json").is_file()
    expected = tmp_path / "cli_out"
    assess_path(dataset, expected, plots=False)
    assert (out / "summary.csv").read_text() == (expected / "summary.csv").read_text()
    for name in ("metadata.json", "inference.json"):
        json.loads((BUNDLE / "configs" / name).read_text())
    assert (BUNDLE / "configs" / "logging.conf").is_file() and (BUNDLE / "docs" / "README.md").is_file()


def test_worker_processes_give_the_same_outputs(tmp_path):
    import torch  # a process that has used torch must still be able to start workers

    torch.ones(64, 64) @ torch.ones(64, 64)
    ds = _dataset(tmp_path / "ds", ids=tuple(f"w{i}" for i in range(9)))
    serial = assess_path(ds, tmp_path / "serial", workers=1, plots=False)
    parallel = assess_path(ds, tmp_path / "parallel", workers=2, plots=False)
    assert (serial / "cases.csv").read_text() == (parallel / "cases.csv").read_text()
    assert (parallel / "w3" / "velocity.json").is_file()

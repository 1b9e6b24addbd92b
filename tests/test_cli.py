"""The `hdl-monai` command: validate's exit codes and one-line errors, phantom, help."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_case
from hdl_monai.cli import main
from hdl_monai.data import save_case, save_datalist


def test_validate_exit_codes_and_lines(tmp_path, capsys):
    save_case(make_case("c0"), tmp_path / "cases" / "c0")
    save_datalist(tmp_path, {"training": [{"case": "cases/c0"}], "test": [{"case": "cases/missing"}]})
    with pytest.raises(SystemExit) as stop:
        main(["validate", str(tmp_path)])
    assert stop.value.code == 1
    assert f"{tmp_path / 'cases' / 'missing'}: missing case folder" in capsys.readouterr().out
    save_datalist(tmp_path, {"training": [{"case": "cases/c0"}]}, overwrite=True)
    main(["validate", str(tmp_path)])
    assert "valid" in capsys.readouterr().out


def test_phantom_command_refuses_existing_output(tmp_path, capsys):
    out = tmp_path / "ph"
    main(["phantom", "--out", str(out), "--subjects", "3", "--slices", "1", "--size", "48", "--frames", "12"])
    assert (out / "datalist.json").is_file()
    with pytest.raises(SystemExit) as stop:
        main(["phantom", "--out", str(out), "--subjects", "3"])
    assert stop.value.code == 2 and "exists" in capsys.readouterr().err


def test_phantom_command_passes_the_flow_and_background_options(tmp_path):
    out = tmp_path / "jet"
    main(["phantom", "--out", str(out), "--subjects", "3", "--slices", "1", "--size", "48", "--frames", "12",
          "--aorta_flow", "jet", "--blood_flow", "coherent", "--background_phase", "paper"])
    settings = json.loads((out / "phantom.json").read_text())
    assert settings["aorta_flow"] == "jet" and settings["background_phase"] == "paper"
    assert settings["blood_flow"] == "coherent"
    case = json.loads(next((out / "cases").glob("*/case.json")).read_text())
    assert case["phantom"]["aorta_flow"] == "jet" and case["phantom"]["blood_flow"] == "coherent"


def test_console_script_lists_commands():
    result = subprocess.run([sys.executable, "-m", "hdl_monai.cli", "--help"], capture_output=True, text=True,
                            env={"PAGER": "cat", "PATH": ""}, timeout=120)
    text = result.stdout + result.stderr
    for command in ("demo", "phantom", "validate", "import_dicom", "interpolate", "velocity", "velocity_compare"):
        assert command in text


def test_python_dash_m_runs_the_command(tmp_path):
    missing = tmp_path / "nowhere"
    result = subprocess.run([sys.executable, "-m", "hdl_monai", "validate", str(missing)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and f"{missing}/datalist.json: missing file" in result.stdout + result.stderr


def test_synthesize_phase_command_writes_a_valid_case(tmp_path):
    from hdl_monai.data import load_case
    from hdl_monai.networks import R2UNet
    from hdl_monai.phase_synthesis import fit_background_stats, save_phase_model

    case = make_case("c0", size=32, frames=6)
    case.magnitude[:4] = 5.0  # a dark band of air: background for the Gaussian fit
    save_case(case, tmp_path / "c0")
    config = dict(spatial_dims=2, in_channels=3, out_channels=3, channels=(4, 8), out_act="tanh")
    stats = fit_background_stats([case])
    model = save_phase_model(tmp_path / "model", R2UNet(**config), config, roi_size=32, background_stats=stats)
    main(["synthesize-phase", str(tmp_path / "c0"), "--out", str(tmp_path / "twin"), "--model", str(model),
          "--window_shift", "2"])
    twin = load_case(tmp_path / "twin")
    np.testing.assert_array_equal(twin.magnitude, case.magnitude)
    assert set(twin.phase) == {"x", "y", "z"} and all(0 <= p.min() and p.max() <= 4096 for p in twin.phase.values())
    assert not np.array_equal(twin.phase["x"], case.phase["x"])
    assert twin.extra["phase_synthesis"]["model"] == str(model)
    assert twin.extra["phase_synthesis"]["window_shift"] == 2

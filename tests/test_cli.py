"""The `hdl-monai` command: validate's exit codes and one-line errors, phantom, help."""

from __future__ import annotations

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


def test_console_script_lists_commands():
    result = subprocess.run([sys.executable, "-m", "hdl_monai.cli", "--help"], capture_output=True, text=True,
                            env={"PAGER": "cat", "PATH": ""}, timeout=120)
    text = result.stdout + result.stderr
    for command in ("demo", "phantom", "validate", "import_dicom", "interpolate", "velocity", "velocity_compare"):
        assert command in text

"""LoadCased: a datalist item becomes the series dictionary the transforms expect."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_case
from hdl_monai.data import save_case, save_datalist
from hdl_monai.data.loading import LoadCased, datalist_items


def test_load_cased_reads_series_and_metadata(tmp_path):
    case = make_case("c0", frames=5)
    save_case(case, tmp_path / "cases" / "c0")
    save_datalist(tmp_path, {"training": [{"case": "cases/c0", "subject": "c0"}]})
    item = datalist_items(tmp_path, "training")[0]
    assert item["case"] == str((tmp_path / "cases" / "c0").resolve())
    d = LoadCased(phase=True)(item)
    np.testing.assert_array_equal(d["phase_y"], case.phase["y"])
    assert d["magnitude"].shape == (16, 16, 5) and d["label"].dtype == np.uint8
    assert d["frames"] == 5 and d["venc_cm_s"]["z"] == 30.0
    assert "phase_x" not in LoadCased()(item)


def test_load_cased_errors_name_the_case(tmp_path):
    case = make_case("c1")
    case.label, case.phase = None, {}
    save_case(case, tmp_path / "c1")
    with pytest.raises(ValueError, match="c1: no label.nii.gz"):
        LoadCased()({"case": str(tmp_path / "c1")})
    with pytest.raises(ValueError, match="c1: needs phase_x/y/z"):
        LoadCased(phase=True, require_label=False)({"case": str(tmp_path / "c1")})

"""The disk cache of a pipeline's deterministic head: the same output as running the transforms, read
back on a second run, and retired whenever the transforms, their settings or the case files change."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from monai.transforms import Lambdad, RandFlipd

from conftest import make_case
from hdl_monai.data.caching import DiskCached, disk_cached, item_fingerprint, pipeline_fingerprint
from hdl_monai.data.case import save_case
from hdl_monai.data.loading import LoadCased
from hdl_monai.transforms.dictionary import CropLVROId, NormalizeMagnituded

KEYS = ["magnitude", "phase_x", "phase_y", "phase_z", "label"]


def _pipeline(roi: int = 12, scale: float = 2.0):
    return [LoadCased(phase=True), CropLVROId(keys=KEYS, roi_size=roi), NormalizeMagnituded("magnitude"),
            Lambdad("magnitude", lambda m: m * scale)]


@pytest.fixture
def case_dir(tmp_path):
    return save_case(make_case("c0", size=20, frames=5), tmp_path / "cases" / "c0")


class Counting:
    """A deterministic transform that counts its calls (to see whether the cache was read). The count is
    kept outside the instance: an instance's state is part of the pipeline's fingerprint."""

    calls = 0

    def __call__(self, data):
        type(self).calls += 1
        return data


@pytest.fixture
def counter():
    Counting.calls = 0
    return Counting()


def test_cached_output_is_the_pipelines_and_is_read_back(case_dir, tmp_path, counter, caplog):
    item = {"case": str(case_dir)}
    want = _pipeline()
    expected = want[0](item)
    for t in want[1:]:
        expected = t(expected)
    cached = DiskCached([*_pipeline(), counter], tmp_path / "cache")
    first = cached(item)
    files = list((tmp_path / "cache").rglob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("c0-") and counter.calls == 1
    with caplog.at_level("INFO", logger="hdl_monai.data.caching"):
        again = DiskCached([*_pipeline(), Counting()], tmp_path / "cache")(item)  # a new run: same pipeline, same files
    assert counter.calls == 1, "the second run recomputed instead of reading the cache"
    assert [r.getMessage() for r in caplog.records] == [f"read cached {files[0]}"]  # the log says it was a hit
    for result in (first, again):
        for key in KEYS:
            np.testing.assert_array_equal(np.asarray(result[key]), np.asarray(expected[key]))
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_settings_code_and_case_files_retire_a_cached_file(case_dir, tmp_path):
    item = {"case": str(case_dir)}
    base = pipeline_fingerprint(_pipeline())
    assert pipeline_fingerprint(_pipeline()) == base  # rebuilt objects, same settings
    used = _pipeline()
    data = item
    for transform in used:
        data = transform(data)
    assert pipeline_fingerprint(used) == base  # state a transform gains when it runs is not a setting
    assert pipeline_fingerprint(_pipeline(roi=16)) != base  # a setting
    assert pipeline_fingerprint(_pipeline(scale=3.0)) != base  # a value the lambda closes over
    changed = _pipeline()
    changed[3] = Lambdad("magnitude", lambda m: m + 2.0)
    assert pipeline_fingerprint(changed) != base  # the code of a function
    before = item_fingerprint(item)
    assert item_fingerprint(dict(item)) == before
    magnitude = case_dir / "magnitude.nii.gz"
    stat = magnitude.stat()
    os.utime(magnitude, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the case rewritten
    assert item_fingerprint(item) != before
    assert item_fingerprint({"case": str(case_dir), "extra": 1}) != item_fingerprint(item)


def test_unreadable_file_is_recomputed_with_a_warning(case_dir, tmp_path, counter):
    item = {"case": str(case_dir)}
    cached = DiskCached([LoadCased(phase=True), counter], tmp_path / "cache")
    cached.path_for(item).parent.mkdir(parents=True)
    cached.path_for(item).write_bytes(b"not a pickle")
    with pytest.warns(UserWarning, match="unreadable cache file"):
        result = cached(item)
    assert counter.calls == 1 and result["magnitude"].shape == (20, 20, 5)
    assert DiskCached([LoadCased(phase=True), counter], tmp_path / "cache")(item) is not None and counter.calls == 1


def test_random_transforms_are_refused_and_empty_dir_means_no_cache(tmp_path):
    with pytest.raises(ValueError, match="RandFlipd is random"):
        DiskCached([LoadCased(), RandFlipd("magnitude")], tmp_path)
    pipeline = _pipeline()
    assert disk_cached(pipeline, "") == pipeline and disk_cached(pipeline, None) == pipeline
    wrapped = disk_cached(pipeline, tmp_path / "c")
    assert len(wrapped) == 1 and isinstance(wrapped[0], DiskCached) and wrapped[0].transforms == pipeline


def test_fingerprints_are_the_same_in_another_process(case_dir):
    """File names must match across runs, so nothing in a fingerprint may depend on the process."""
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_caching import _pipeline; "
        "from hdl_monai.data.caching import pipeline_fingerprint, item_fingerprint; "
        f"print(pipeline_fingerprint(_pipeline()), item_fingerprint({{'case': {str(case_dir)!r}}}))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True).stdout.split()
    assert out == [pipeline_fingerprint(_pipeline()), item_fingerprint({"case": str(case_dir)})]

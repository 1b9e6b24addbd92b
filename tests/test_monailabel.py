"""MONAI Label round trip: start the sample app (apps/monailabel) on 127.0.0.1 with a phantom datastore,
call its REST ``/infer`` endpoint for both models and check the returned images.

monailabel 0.8.5 (the newest release) runs with MONAI 1.6.1 but pins pydicom < 3 through pydicom-seg and
dicomweb-client, and its ``sam2`` dependency only builds from source against a downloaded torch, so it
lives in its own environment (docs/ecosystem.md). The test uses, in order: ``$HDL_MONAILABEL_PYTHON``,
then this interpreter; it skips, naming the reason, when neither can import ``monailabel.app``.
Point ``HDL_MONAILABEL_PYTHON`` at the separate environment's python to run it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from hdl_monai.data.phantom import generate_phantom
from hdl_monai.engines.interpolation import InterpolationModelSpec, save_interpolation_model
from hdl_monai.networks import R2UNet
from hdl_monai.phase_synthesis import save_phase_model
from hdl_monai.transforms import kept_frames

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "apps" / "monailabel"
SIZE, FRAMES, K = 32, 12, 2


def _imports_monailabel(python: str) -> tuple[bool, str]:
    try:
        proc = subprocess.run([python, "-c", "import monailabel.app, monai; print(monai.__version__)"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]


def _monailabel_python() -> str:
    candidates = [os.environ.get("HDL_MONAILABEL_PYTHON", ""), sys.executable]
    reasons = []
    for python in dict.fromkeys(c for c in candidates if c):
        ok, why = _imports_monailabel(python)
        if ok:
            return python
        reasons.append(f"{python}: {why}")
    pytest.skip(
        "monailabel is not importable (pip install monailabel pulls sam2, which builds from source against a "
        "downloaded CUDA torch, and its pydicom-seg needs pydicom<3; docs/ecosystem.md has the separate environment; set HDL_MONAILABEL_PYTHON to its python): "
        + "; ".join(reasons)
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    python = _monailabel_python()
    root = tmp_path_factory.mktemp("monailabel")
    dataset = generate_phantom(root / "phantom", subjects=1, slices=1, size=SIZE, frames=FRAMES, seed=5, progress=False)
    dataset = Path(root / "phantom")
    case_dir = sorted((dataset / "cases").iterdir())[0]
    studies = root / "studies"
    (studies / "labels" / "final").mkdir(parents=True)
    shutil.copy(case_dir / "magnitude.nii.gz", studies / "case0.nii.gz")
    shutil.copy(case_dir / "label.nii.gz", studies / "labels" / "final" / "case0.nii.gz")

    spec = InterpolationModelSpec(network_kwargs={"channels": [4, 8], "recurrence": 1}, roi_size=[SIZE, SIZE])
    interp_model = save_interpolation_model(root / "interp" / "model.pt", spec.build_network(), spec)
    g_config = {"spatial_dims": 2, "in_channels": 3, "out_channels": 3, "channels": [4, 8], "recurrence": 1,
                "out_act": "tanh"}  # fmt: skip
    stats = {"mean": {"x": 0.0, "y": 0.0, "z": 0.0}, "std": {"x": 0.1, "y": 0.1, "z": 0.1}}
    phase_model = save_phase_model(root / "phase", R2UNet(**g_config), g_config, SIZE, background_stats=stats)

    app = root / "app"  # the server writes model/, logs/ ... into the app folder: serve a copy
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               MONAI_LABEL_DATASTORE_AUTO_RELOAD="false", OMP_NUM_THREADS="1")  # fmt: skip
    cmd = [python, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(studies),
           "--host", "127.0.0.1", "--port", str(port), "--conf", "interpolation_model", str(interp_model),
           "--conf", "phase_model", str(phase_model)]  # fmt: skip
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/info/", timeout=5) as r:
                    info = json.loads(r.read())
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail("MONAI Label server did not start:\n" + (root / "server.log").read_text()[-4000:])
                time.sleep(1)
        yield {"url": url, "info": info, "case_dir": case_dir, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _infer(server, model: str, params: dict, output: str) -> bytes:
    boundary = "hdlmonaiboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n{json.dumps(params)}\r\n"
            f"--{boundary}--\r\n").encode()  # fmt: skip
    req = urllib.request.Request(
        f"{server['url']}/infer/{model}?image=case0&output={output}", data=body, method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200
        return r.read()


def _nifti(server, data: bytes, name: str) -> np.ndarray:
    path = server["root"] / name
    path.write_bytes(data)
    return np.asarray(nib.load(str(path)).dataobj)


def test_info_lists_both_models(server):
    models = server["info"]["models"]
    assert {"hdl_interpolation", "hdl_phase_synthesis"} <= set(models)
    assert server["info"]["name"] == "hdl-monai"


def test_rest_interpolation_round_trip(server):
    params = json.loads(_infer(server, "hdl_interpolation", {"K": K}, "json"))
    kept = kept_frames(FRAMES, K)
    assert params["kept_frames"] == list(kept) and len(params["predicted_frames"]) == FRAMES - len(kept)
    label = _nifti(server, _infer(server, "hdl_interpolation", {"K": K}, "image"), "interp_label.nii.gz")
    truth = np.asarray(nib.load(str(server["case_dir"] / "label.nii.gz")).dataobj)
    assert label.shape == (SIZE, SIZE, FRAMES)
    predicted = params["predicted_frames"]
    assert set(np.unique(label[..., predicted])) <= {0, 1, 2}  # the network predicts LV only (no RV, 3)
    np.testing.assert_array_equal(label[..., list(kept)], truth[..., list(kept)])  # kept frames pass through
    magnitude = _nifti(server, _infer(server, "hdl_interpolation", {"K": K, "result": "magnitude"}, "image"),
                       "interp_magnitude.nii.gz")  # fmt: skip
    source = np.asarray(nib.load(str(server["case_dir"] / "magnitude.nii.gz")).dataobj)
    assert magnitude.shape == source.shape and np.isfinite(magnitude).all()
    np.testing.assert_allclose(magnitude[..., list(kept)], source[..., list(kept)], rtol=1e-5)


def test_rest_phase_synthesis_round_trip(server):
    phase = _nifti(server, _infer(server, "hdl_phase_synthesis", {"seed": 1}, "image"), "phase.nii.gz")
    assert phase.shape == (SIZE, SIZE, FRAMES, 3)
    assert np.isfinite(phase).all() and phase.min() >= 0 and phase.max() <= 4096
    params = json.loads(_infer(server, "hdl_phase_synthesis", {"seed": 1}, "json"))
    assert set(params["mean_myocardium_phase"]) == {"x", "y", "z"}

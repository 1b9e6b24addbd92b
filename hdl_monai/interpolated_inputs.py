"""Training cases whose magnitude is what the digital twin feeds the phase generator at K > 0.

At inference the phase generator of a K > 0 twin (:func:`hdl_monai.pipeline.build_twin`) sees magnitude
frames rebuilt by the HDL interpolation network from every (K+1)-th frame, and motion planes computed from
them. A generator trained only on real magnitude has never seen such frames: between two kept frames they
move smoothly, so a velocity peak a few frames wide is lost (docs/phase_synthesis.md). This module writes,
for every training case and every K, a copy of the case whose magnitude is replaced by that interpolated
series while everything else stays the real case's: phase (the training target), labels (the loss weights
and the ROI centre), ground-truth velocity and metadata. Training on them beside the originals
(train.json ``extra_training_datasets``) teaches the generator to restore what the interpolation smooths out.

    hdl-monai interpolated-inputs data/phantom20 --k 3,6 --out data/phantom20_interp
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hdl_monai.data.atomic import OverwriteError, atomic_directory, atomic_write_json
from hdl_monai.data.case import CaseError, load_case, save_case
from hdl_monai.data.datalist import SPLITS, load_datalist, save_datalist
from hdl_monai.transforms.array import kept_frames

__all__ = ["interpolated_case_id", "interpolated_inputs"]

RECORD = "interpolated_inputs.json"


def interpolated_case_id(case_id: str, K: int) -> str:
    """The case_id of the K-interpolated copy of ``case_id``."""
    return f"{case_id}_K{int(K)}"


def interpolated_inputs(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    ks: Iterable[int] = (3, 6),
    interpolation_model: Any = None,
    split: str = "training",
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write OUT/cases/<case_id>_K<K>/ for every case of ``split`` and every K, and OUT/datalist.json.

    Each written case is the source case with its magnitude replaced by
    ``interpolate_case(case, K, "hdl", model)``: kept frames identical, the others predicted. Phase,
    labels (all frames, real), velocity, venc and the rest are the source case's; ``extra`` records
    ``interpolated_input = {K, kept_frames, source_case, model}``. The datalist puts every written case in
    ``split`` (other splits empty) with the source item's fields plus ``K`` and ``source_case``.
    OUT/interpolated_inputs.json records the source dataset, the Ks and the model.

    Args:
        dataset: source dataset folder (cases with magnitude, labels on every frame, phase).
        out: output folder; refused if it exists unless ``overwrite``. It appears complete or not at all.
        ks: the K values (each 1 <= K, within the model's K_range and fitting every case).
        interpolation_model: model.pt of the interpolation bundle ("hdl" method) or a loaded model; None =
            the bundle's shipped model.
        split: the datalist split to copy.
        device: torch device for the interpolation network.
        overwrite: replace an existing ``out``.
        progress: tqdm bar over the cases.

    Raises:
        CaseError: a case lacks labels on some frame or K does not fit it (the case's folder is named).
        OverwriteError: ``out`` exists. FileNotFoundError: a model or case file is missing.
        ValueError: an empty K list, K <= 0 or outside the model's K_range, an unknown split.
    """
    from tqdm.auto import tqdm

    from hdl_monai.interpolation import interpolate_case
    from hdl_monai.pipeline import load_twin_interpolation

    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"interpolated inputs need Ks >= 1, got {ks or 'none'}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    dataset, out = Path(dataset), Path(out)
    if out.exists() and not overwrite:
        raise OverwriteError(f"{out}: exists; pass overwrite=True (--overwrite) to replace it")
    if out.resolve() == dataset.resolve():
        raise OverwriteError(f"{out}: is the source dataset; choose another output folder")
    items = load_datalist(dataset)[split]
    if not items:
        raise CaseError(f"{dataset / 'datalist.json'}: split '{split}' is empty")
    model = load_twin_interpolation(interpolation_model, device)
    model_name = str(model.path)
    lo, hi = model.spec.K_range
    outside = [K for K in ks if not lo <= K <= hi]
    if outside:
        raise ValueError(f"K {outside} outside the interpolation model's K_range [{lo}, {hi}]")

    written: list[dict[str, Any]] = []
    with atomic_directory(out, overwrite=overwrite) as tmp:
        bar = tqdm(items, desc=f"interpolated inputs K={','.join(map(str, ks))}", unit="case", disable=not progress)
        for item in bar:
            case = load_case(dataset / item["case"])
            if case.label is None or case.labelled_frames is not None:
                raise CaseError(f"{case.path}: needs labels on every frame (the copies keep the real labels)")
            if len(case.phase) != 3:
                raise CaseError(f"{case.path}: needs phase_x/y/z.nii.gz (the training target)")
            for K in ks:
                # a K that does not fit the case: CaseError naming the case's folder
                rebuilt = interpolate_case(case, K, "hdl", model=model, device=device)
                cid = interpolated_case_id(case.case_id, K)
                record = {"K": K, "kept_frames": kept_frames(case.frames, K), "source_case": case.case_id,
                          "model": model_name}
                copy = replace(case, case_id=cid, magnitude=rebuilt.magnitude, path=None,
                               extra={**case.extra, "interpolated_input": record})
                save_case(copy, tmp / "cases" / cid)
                written.append({**{k: v for k, v in item.items() if k != "case"}, "case": f"cases/{cid}",
                                "K": K, "source_case": case.case_id})
        save_datalist(tmp, {split: written})
        atomic_write_json(tmp / RECORD, {"source_dataset": str(dataset.resolve()), "split": split, "K": ks,
                                         "model": model_name, "cases": len(written)})
    return out

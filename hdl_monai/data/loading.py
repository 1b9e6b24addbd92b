"""MONAI-side loading: datalist items to dictionaries of series, ready for ``hdl_monai.transforms``.

A loaded item holds, for case folder ``d["case"]``:
``"magnitude"`` (X, Y, T) float32, ``"label"`` (X, Y, T) uint8 when present, ``"phase_x"``,
``"phase_y"``, ``"phase_z"`` (X, Y, T) float32 0..4096 when present, and ``"case_id"``, ``"frames"``,
``"pixel_spacing_mm"``, ``"rr_interval_ms"``, ``"venc_cm_s"`` from case.json.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

from monai.transforms import MapTransform

from hdl_monai.data.case import load_case
from hdl_monai.data.datalist import load_datalist

__all__ = ["datalist_items", "LoadCased"]


def datalist_items(dataset: str | os.PathLike, split: str) -> list[dict[str, Any]]:
    """The items of one datalist split with ``"case"`` made an absolute folder path."""
    dataset = Path(dataset)
    items = load_datalist(dataset)[split]
    return [{**item, "case": str((dataset / item["case"]).resolve())} for item in items]


class LoadCased(MapTransform):
    """Read the case folder named by ``d[key]`` into series arrays (see the module docstring).

    Args:
        key: the item key holding the case folder.
        phase: read the phase images (phase synthesis needs them, interpolation does not).
        require_label: raise a clear error when the case has no label.nii.gz.
    """

    def __init__(self, key: str = "case", phase: bool = False, require_label: bool = True) -> None:
        super().__init__((key,))
        self.key = key
        self.phase = phase
        self.require_label = require_label

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        skip: Sequence[str] = ("velocity",) if self.phase else ("velocity", "phase")
        case = load_case(d[self.key], skip=skip)
        if self.require_label and case.label is None:
            raise ValueError(f"{case.path}: no label.nii.gz; this pipeline needs LV labels")
        if self.phase and len(case.phase) != 3:
            raise ValueError(f"{case.path}: needs phase_x/y/z.nii.gz for phase synthesis")
        d["magnitude"] = case.magnitude
        if case.label is not None:
            d["label"] = case.label
        for direction, array in case.phase.items():
            d[f"phase_{direction}"] = array
        d.update(
            case_id=case.case_id,
            frames=case.frames,
            pixel_spacing_mm=list(case.pixel_spacing_mm),
            rr_interval_ms=case.rr_interval_ms,
        )
        if case.venc_cm_s is not None:
            d["venc_cm_s"] = dict(case.venc_cm_s)
        return d

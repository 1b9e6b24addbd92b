"""Dataset summaries in the form of the paper's Table II: mean (std) of each index per direction.

Pure functions over the per-case index dicts of :func:`~hdl_monai.velocity.indices.velocity_indices`
(or over index differences); the Markdown/CSV text is built here, written by :mod:`.report`.
The std is the sample standard deviation (ddof = 1; 0 for a single case).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from hdl_monai.velocity.cylindrical import CYLINDRICAL
from hdl_monai.velocity.indices import INDEX_KEYS

__all__ = ["INDEX_LABELS", "index_label", "mean_std", "summarise_indices", "format_mean_std", "table_rows", "markdown_table"]

# Row names of Table II ("mv" is the paper's mean velocity) with their units.
INDEX_LABELS = {
    "psv_mm_s": ("PSV", "mm/s"),
    "tpsv_au": ("TPSV", "a.u."),
    "tpsv_ms": ("TPSV", "ms"),
    "pdv_mm_s": ("PDV", "mm/s"),
    "tpdv_au": ("TPDV", "a.u."),
    "tpdv_ms": ("TPDV", "ms"),
    "mean_mm_s": ("Mean", "mm/s"),
}


def index_label(key: str) -> str:
    """Human name of an index key with its unit, e.g. "PSV (mm/s)"."""
    name, unit = INDEX_LABELS.get(key, (key, ""))
    return f"{name} ({unit})" if unit else name


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """{"mean", "std", "n"} of finite values (NaNs skipped); std is the sample std (ddof=1, 0 for n=1)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0, "n": int(arr.size)}


def summarise_indices(
    per_case: Sequence[Mapping[str, Mapping[str, float]]], keys: Sequence[str] = INDEX_KEYS
) -> dict[str, dict[str, dict[str, float]]]:
    """{direction: {index: {"mean", "std", "n"}}} over cases' {direction: {index: value}} dicts."""
    directions = [d for d in CYLINDRICAL if any(d in case for case in per_case)]
    return {d: {k: mean_std([case[d][k] for case in per_case if d in case]) for k in keys} for d in directions}


def format_mean_std(stats: Mapping[str, float], digits: int = 2) -> str:
    """"mean (std)" as in Table II; "n/a" when there is nothing to summarise."""
    if not stats.get("n"):
        return "n/a"
    return f"{stats['mean']:.{digits}f} ({stats['std']:.{digits}f})"


def table_rows(
    columns: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]], keys: Sequence[str] = INDEX_KEYS
) -> list[list[str]]:
    """Table II rows ``[direction, index (unit), col1, col2, ...]`` from named summaries."""
    rows = []
    for d in CYLINDRICAL:
        for k in keys:
            cells = [format_mean_std(col[d][k]) if d in col else "n/a" for col in columns.values()]
            rows.append([d, index_label(k), *cells])
    return rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"

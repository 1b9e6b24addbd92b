"""Datasets and datalists: ``<dataset>/datalist.json`` with training/validation/test lists split by subject."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from hdl_monai.data.atomic import atomic_write_json
from hdl_monai.data.case import CaseError, read_case_json, validate_case_dir

__all__ = [
    "SPLITS",
    "load_datalist",
    "save_datalist",
    "split_by_subject",
    "case_entries",
    "case_dirs",
    "validate_dataset",
]

SPLITS = ("training", "validation", "test")


def load_datalist(dataset: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Read ``<dataset>/datalist.json``; every split is present (maybe empty) in the result."""
    path = Path(dataset) / "datalist.json"
    if not path.is_file():
        raise CaseError(f"{path}: missing file (a dataset needs datalist.json)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CaseError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict):
        raise CaseError(f"{path}: must hold a JSON object with {list(SPLITS)}")
    unknown = sorted(set(raw) - set(SPLITS))
    if unknown:
        raise CaseError(f"{path}: unknown split names {unknown}; expected {list(SPLITS)}")
    datalist: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        items = raw.get(split, [])
        if not isinstance(items, list) or any(not isinstance(i, dict) or "case" not in i for i in items):
            raise CaseError(f"{path}: '{split}' must be a list of objects with a 'case' key")
        datalist[split] = items
    return datalist


def save_datalist(dataset: str | os.PathLike, datalist: dict[str, list[dict[str, Any]]], *, overwrite: bool = False) -> Path:
    """Write ``<dataset>/datalist.json`` atomically (refused if it exists unless ``overwrite``)."""
    out = {split: list(datalist.get(split, [])) for split in SPLITS}
    return atomic_write_json(Path(dataset) / "datalist.json", out, overwrite=overwrite)


def split_by_subject(
    case_subjects: dict[str, str], fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """Split cases into training/validation/test by subject, never one subject in two splits.

    Args:
        case_subjects: case_id -> subject.
        fractions: share of subjects for training, validation, test. With at least three subjects
            every split gets at least one.
        seed: shuffling seed for the subject order.
    """
    subjects = sorted(set(case_subjects.values()))
    order = np.random.default_rng(seed).permutation(len(subjects))
    subjects = [subjects[i] for i in order]
    n = len(subjects)
    counts = [int(round(f * n)) for f in fractions[:2]]
    if n >= 3:
        counts = [max(1, c) for c in counts]
        while counts[0] + counts[1] > n - 1:
            counts[0 if counts[0] > counts[1] else 1] -= 1
    counts.append(n - sum(counts))
    groups, start = {}, 0
    for split, count in zip(SPLITS, counts):
        groups[split] = set(subjects[start : start + count])
        start += count
    return {
        split: [
            {"case": f"cases/{cid}", "subject": subj}
            for cid, subj in sorted(case_subjects.items())
            if subj in groups[split]
        ]
        for split in SPLITS
    }


def case_entries(path: str | os.PathLike, splits: Iterable[str] | None = None) -> list[tuple[str | None, dict[str, Any], Path]]:
    """(split, datalist item, case folder) for each case under ``path``, in datalist order.

    A case folder (it holds case.json) gives one entry with split None and an empty item. For a
    dataset, ``splits`` picks datalist lists (all by default).
    """
    path = Path(path)
    if (path / "case.json").is_file():
        return [(None, {}, path)]
    if not path.exists():
        raise CaseError(f"{path}: does not exist")
    datalist = load_datalist(path)
    chosen = SPLITS if splits is None else tuple(splits)
    bad = [s for s in chosen if s not in SPLITS]
    if bad:
        raise CaseError(f"{path}: unknown split(s) {bad}; expected some of {list(SPLITS)}")
    return [(split, dict(item), path / item["case"]) for split in chosen for item in datalist[split]]


def case_dirs(path: str | os.PathLike, splits: Iterable[str] | None = None) -> list[Path]:
    """Case folders under ``path``: the case itself if it holds case.json, else a dataset's cases.

    For a dataset, ``splits`` picks datalist lists (all by default), in datalist order.
    """
    return [case_dir for _, _, case_dir in case_entries(path, splits)]


def validate_dataset(dataset: str | os.PathLike, progress: bool = False) -> list[str]:
    """Every problem of a dataset (or of a single case folder), one clear line each."""
    dataset = Path(dataset)
    if (dataset / "case.json").is_file():
        return validate_case_dir(dataset)
    try:
        datalist = load_datalist(dataset)
    except CaseError as err:
        return [str(err)]
    problems: list[str] = []
    subject_splits: dict[str, set[str]] = {}
    seen: dict[str, str] = {}
    items = [(split, item) for split in SPLITS for item in datalist[split]]
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="validate", unit="case")
    for split, item in items:
        case_dir = dataset / item["case"]
        if str(case_dir) in seen:
            problems.append(f"{dataset / 'datalist.json'}: {item['case']} listed in both '{seen[str(case_dir)]}' and '{split}'")
        seen[str(case_dir)] = split
        problems += validate_case_dir(case_dir)
        subject = item.get("subject")
        if subject is None:
            try:
                subject = read_case_json(case_dir).get("subject")
            except CaseError:
                subject = None
        if subject is not None:
            subject_splits.setdefault(str(subject), set()).add(split)
    for subject, splits in sorted(subject_splits.items()):
        if len(splits) > 1:
            problems.append(
                f"{dataset / 'datalist.json'}: subject '{subject}' appears in more than one split {sorted(splits)}"
            )
    return problems

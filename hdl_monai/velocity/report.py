"""The file-writing edge of velocity assessment: ``hdl-monai velocity`` and ``velocity-compare``.

``assess_path(PATH, OUT)``: PATH is a case folder (holding case.json) or a dataset (holding
datalist.json). For a case OUT holds::

    velocity.json         case_id, frames, end_systole_frame, curves_mm_s {radial, circumferential,
                          longitudinal}, indices {direction: {psv_mm_s, tpsv_au, tpsv_ms, pdv_mm_s,
                          tpdv_au, tpdv_ms, mean_mm_s, ...}}, plus provenance and warnings
    curves.csv            frame, time_au, time_ms, radial_mm_s, circumferential_mm_s, longitudinal_mm_s
    velocity_curves.png   three panels, time in a.u. (bottom) and ms (top)

For a dataset, OUT/<case_id>/ holds the above per case, and OUT holds summary.csv, summary.md and
summary.json (Table II: mean (std) of each index per direction), cases.csv (every index of every
case) and velocity_boxplots.png (Fig. 8).

``compare_paths(REFERENCE, SYNTHETIC, OUT)`` pairs cases by case_id and writes comparison.json,
comparison.csv (one row per case: Pearson r per direction, synthetic - reference per index),
comparison.md, and velocity_overlay.png per case (Fig. 9; OUT/<case_id>/ for datasets) plus
velocity_boxplots.png (reference vs synthetic) for datasets.

OUT is written atomically (it appears complete or not at all) and an existing OUT is refused
unless ``overwrite`` (an existing empty folder is fine). Conventions: see
:mod:`hdl_monai.velocity.assessment`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from hdl_monai.data.atomic import atomic_directory
from hdl_monai.data.case import CaseError, load_case, read_case_json
from hdl_monai.data.datalist import case_dirs
from hdl_monai.velocity.agreement import curve_agreement, index_differences, pooled_agreement
from hdl_monai.velocity.aliasing import ALIASING_MARGIN, ALIASING_THRESHOLD
from hdl_monai.velocity.assessment import CONVENTIONS, VelocityAssessment, assess_case
from hdl_monai.velocity.curves import DEFAULT_EXCLUDE_BORDER_PX
from hdl_monai.velocity.cylindrical import CYLINDRICAL
from hdl_monai.velocity.errors import VelocityError
from hdl_monai.velocity.indices import INDEX_KEYS
from hdl_monai.velocity.summary import markdown_table, mean_std, summarise_indices, table_rows

__all__ = [
    "is_case",
    "assess_path",
    "compare_paths",
    "write_case_outputs",
    "curves_csv",
    "VelocityAssessor",
    "VelocityComparator",
]

logger = logging.getLogger("hdl_monai.velocity")


def is_case(path: str | os.PathLike) -> bool:
    """True when ``path`` is a case folder (holds case.json), False for a dataset."""
    return (Path(path) / "case.json").is_file()


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None so that the JSON stays standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if isinstance(v, float) and not math.isfinite(v) else v for v in row])
    return buffer.getvalue()


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def curves_csv(assessment: VelocityAssessment) -> str:
    """curves.csv text: frame, time_au, time_ms and one mm/s column per direction."""
    header = ["frame", "time_au", "time_ms", *[f"{d}_mm_s" for d in CYLINDRICAL]]
    rows = (
        [t, round(float(assessment.time_au[t]), 6), round(float(assessment.time_ms[t]), 6),
         *[round(float(assessment.curves_mm_s[d][t]), 6) for d in CYLINDRICAL]]
        for t in range(assessment.frames)
    )
    return _csv_text(header, rows)


def write_case_outputs(assessment: VelocityAssessment, folder: str | os.PathLike, plots: bool = True) -> None:
    """Write velocity.json, curves.csv and (with ``plots``) velocity_curves.png into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "velocity.json", assessment.to_dict())
    (folder / "curves.csv").write_text(curves_csv(assessment), encoding="utf-8")
    if plots:
        from hdl_monai.velocity.plots import plot_curves, save_figure

        save_figure(plot_curves({assessment.case_id: assessment}, title=f"{assessment.case_id}: global LV myocardial velocities"), folder / "velocity_curves.png")


def _progress(items: Iterable[Any], desc: str, progress: bool | None, total: int | None = None) -> Iterable[Any]:
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="case", total=total)


def _output_dir(out: str | os.PathLike, overwrite: bool):
    """atomic_directory for OUT; an existing empty folder counts as free."""
    out = Path(out)
    empty = out.is_dir() and not any(out.iterdir())
    return atomic_directory(out, overwrite=overwrite or empty)


def _assess_dir(
    case_dir: Path, source: str, unwrap: bool, margin: float, threshold: float, exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX
) -> VelocityAssessment:
    unused = ("velocity",) if source == "phase" else ("phase",)
    result = assess_case(
        load_case(case_dir, skip=unused), source=source, unwrap=unwrap, aliasing_margin=margin, aliasing_threshold=threshold,
        exclude_border_px=exclude_border_px,
    )
    for warning in result.warnings:
        logger.warning("%s: %s", case_dir, warning)
    return result


def _assess_one(case_dir: Path, options: dict[str, Any], write_root: Path | None, plots: bool):
    """Assess one case (and write its outputs under ``write_root``); a CaseError comes back as text."""
    try:
        result = _assess_dir(case_dir, **options)
    except CaseError as err:
        return None, str(err)
    if write_root is not None:
        write_case_outputs(result, write_root / result.case_id, plots=plots)
    return result, None


MIN_CASES_PER_POOL = 8
"""Datasets smaller than this are assessed in this process (starting workers costs about a second)."""


def default_workers() -> int:
    """Worker processes for dataset runs: one per CPU core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _assess_many(
    dirs: Sequence[Path],
    options: dict[str, Any],
    skip_errors: bool,
    progress: bool | None,
    write_root: Path | None = None,
    plots: bool = True,
    workers: int = 1,
) -> tuple[list[VelocityAssessment], list[str]]:
    """Assess cases (in ``workers`` processes when > 1), optionally writing each case's outputs."""
    results, failures = [], []
    if workers > 1 and len(dirs) >= MIN_CASES_PER_POOL:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # "spawn", not "fork": a process that has run torch (tests, the pipeline) can deadlock in
        # forked children on inherited OpenMP locks.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        outcomes = pool.map(_assess_one, dirs, [options] * len(dirs), [write_root] * len(dirs), [plots] * len(dirs))
    else:
        pool = None
        outcomes = (_assess_one(d, options, write_root, plots) for d in dirs)
    try:
        for result, error in _progress(list(outcomes) if pool is None else outcomes, "velocity", progress, total=len(dirs)):
            if error is not None:
                if not skip_errors:
                    raise CaseError(error)
                logger.error("skipped: %s", error)
                failures.append(error)
            else:
                results.append(result)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    ids = [r.case_id for r in results]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise VelocityError(f"case_id(s) {dupes} appear more than once; outputs are written per case_id")
    return results, failures


def _cases_csv(results: Sequence[VelocityAssessment]) -> str:
    header = ["case_id", "frames", "end_systole_frame", *[f"{d}_{k}" for d in CYLINDRICAL for k in INDEX_KEYS]]
    rows = ([r.case_id, r.frames, r.end_systole_frame, *[r.indices[d][k] for d in CYLINDRICAL for k in INDEX_KEYS]] for r in results)
    return _csv_text(header, rows)


def _summary_csv(columns: dict[str, dict[str, dict[str, dict[str, float]]]]) -> str:
    header = ["direction", "index"] + [f"{c}_{s}" for c in columns for s in ("mean", "std", "n")]
    rows = (
        [d, k] + [columns[c][d][k][s] for c in columns for s in ("mean", "std", "n")]
        for d in CYLINDRICAL
        for k in INDEX_KEYS
    )
    return _csv_text(header, rows)


def assess_path(
    path: str | os.PathLike,
    out: str | os.PathLike,
    overwrite: bool = False,
    *,
    source: str = "phase",
    unwrap: bool = False,
    splits: Sequence[str] | None = None,
    skip_errors: bool = False,
    plots: bool = True,
    aliasing_margin: float = ALIASING_MARGIN,
    aliasing_threshold: float = ALIASING_THRESHOLD,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
    progress: bool | None = None,
    workers: int | None = None,
) -> Path:
    """Assess a case or a whole dataset and write the outputs (see the module docstring).

    Args:
        path: a case folder or a dataset folder.
        out: output folder (refused if it exists and is not empty, unless ``overwrite``).
        overwrite: replace an existing ``out``.
        source: "phase" (phase + venc) or "velocity" (ground-truth velocity files of phantoms).
        unwrap: temporal phase unwrapping before conversion (:func:`~hdl_monai.velocity.aliasing.unwrap_temporal`).
        splits: datalist lists to assess (all by default).
        skip_errors: for a dataset, skip (and list in summary.md) cases that cannot be assessed
            instead of failing the run.
        plots: write the PNG figures.
        aliasing_margin, aliasing_threshold: see :func:`~hdl_monai.velocity.aliasing.detect_aliasing`.
        exclude_border_px: leave myocardium pixels within this many pixels of its border out of the
            curves (partial volume); 0 (DESIGN's definition) averages every label-1 pixel.
        progress: show a progress bar (default: when stderr is a terminal).
        workers: processes for a dataset (default: one per CPU core, at most 8; 1 = in this process).

    Returns:
        ``out``.
    """
    path, out = Path(path), Path(out)
    options = dict(source=source, unwrap=unwrap, margin=aliasing_margin, threshold=aliasing_threshold, exclude_border_px=exclude_border_px)
    if is_case(path):
        result = _assess_dir(path, **options)
        with _output_dir(out, overwrite) as tmp:
            write_case_outputs(result, tmp, plots=plots)
        return out
    dirs = case_dirs(path, splits)
    if not dirs:
        raise VelocityError(f"{path}: the datalist lists no cases")
    with _output_dir(out, overwrite) as tmp:
        results, failures = _assess_many(
            dirs, options, skip_errors, progress, write_root=tmp, plots=plots,
            workers=default_workers() if workers is None else int(workers),
        )
        if not results:
            raise VelocityError(f"{path}: no case could be assessed:\n" + "\n".join(failures))
        summary = summarise_indices([r.indices for r in results])
        (tmp / "cases.csv").write_text(_cases_csv(results), encoding="utf-8")
        (tmp / "summary.csv").write_text(_summary_csv({"all": summary}), encoding="utf-8")
        _write_json(
            tmp / "summary.json",
            {"dataset": str(path), "cases": len(results), "source": source, "unwrapped": unwrap, "exclude_border_px": exclude_border_px,
             "summary": summary, "failed": failures,
             "warnings": {r.case_id: r.warnings for r in results if r.warnings}, "conventions": CONVENTIONS},
        )
        (tmp / "summary.md").write_text(_summary_md(path, results, summary, failures, source), encoding="utf-8")
        if plots:
            from hdl_monai.velocity.plots import plot_index_boxplots, save_figure

            save_figure(plot_index_boxplots({source: [r.indices for r in results]}, title=f"{path.name}: velocity indices"), tmp / "velocity_boxplots.png")
    return out


def _summary_md(path: Path, results: Sequence[VelocityAssessment], summary, failures: Sequence[str], source: str) -> str:
    lines = [
        f"# Velocity assessment: {path.name}",
        "",
        f"{len(results)} case(s) assessed from {source}"
        + (f", {len(failures)} skipped" if failures else "")
        + ". Mean (std) over cases of each index per direction (the form of Table II of Xing et al. 2022).",
        "Velocities in mm/s (magnitudes), times in a.u. (frame normalised to 50 per cycle) and ms from the start of the cycle.",
        "",
        markdown_table(["direction", "index", f"{source} (n = {len(results)})"], table_rows({"all": summary})),
        "Box plots: velocity_boxplots.png. Per case: <case_id>/velocity.json, curves.csv, velocity_curves.png; all indices: cases.csv.",
        "",
    ]
    warned = [(r.case_id, w) for r in results for w in r.warnings]
    if warned:
        lines += ["## Warnings", ""] + [f"- {cid}: {w}" for cid, w in warned] + [""]
    if failures:
        lines += ["## Skipped cases", ""] + [f"- {f.splitlines()[0]}" for f in failures] + [""]
    lines += ["## Conventions", "", CONVENTIONS, ""]
    return "\n".join(lines)


def _by_case_id(path: Path, splits: Sequence[str] | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for case_dir in case_dirs(path, splits):
        case_id = str(read_case_json(case_dir).get("case_id", case_dir.name))
        if case_id in found:
            raise VelocityError(f"{path}: case_id '{case_id}' appears more than once ({found[case_id]}, {case_dir})")
        found[case_id] = case_dir
    return found


def _pairs(reference: Path, synthetic: Path, splits: Sequence[str] | None) -> tuple[list[tuple[str, Path, Path]], dict[str, list[str]]]:
    if is_case(reference) and is_case(synthetic):
        return [(str(read_case_json(reference).get("case_id", reference.name)), reference, synthetic)], {}
    ref, syn = _by_case_id(reference, splits), _by_case_id(synthetic, splits)
    common = [cid for cid in ref if cid in syn]
    unmatched = {
        "reference_only": sorted(set(ref) - set(syn)),
        "synthetic_only": sorted(set(syn) - set(ref)),
    }
    if not common:
        raise VelocityError(f"no case_id in common between {reference} ({len(ref)} cases) and {synthetic} ({len(syn)} cases)")
    return [(cid, ref[cid], syn[cid]) for cid in common], unmatched


def compare_paths(
    reference: str | os.PathLike,
    synthetic: str | os.PathLike,
    out: str | os.PathLike,
    overwrite: bool = False,
    *,
    reference_source: str = "phase",
    synthetic_source: str = "phase",
    unwrap: bool = False,
    splits: Sequence[str] | None = None,
    plots: bool = True,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
    progress: bool | None = None,
) -> Path:
    """Compare the velocities of reference and synthetic cases (or datasets) paired by case_id.

    Two case folders are compared directly; otherwise cases are paired by the case_id in their
    case.json, and cases found on one side only are listed as unmatched. Differences are
    synthetic - reference.

    Args:
        reference, synthetic: case or dataset folders.
        out: output folder (refused if it exists and is not empty, unless ``overwrite``).
        overwrite: replace an existing ``out``.
        reference_source, synthetic_source: "phase" or "velocity" (e.g. compare a phantom's
            noisy phase with its ground-truth velocity: the same folder twice, sources differ).
        unwrap: temporal phase unwrapping on both sides.
        splits: datalist lists to pair (all by default).
        plots: write the overlay and box-plot figures.
        exclude_border_px: as in :func:`assess_path`, on both sides.
        progress: show a progress bar (default: when stderr is a terminal).
    """
    reference, synthetic, out = Path(reference), Path(synthetic), Path(out)
    pairs, unmatched = _pairs(reference, synthetic, splits)
    single = is_case(reference) and is_case(synthetic)
    records, ref_results, syn_results = [], [], []
    for case_id, ref_dir, syn_dir in _progress(pairs, "velocity-compare", progress):
        ref = _assess_dir(ref_dir, reference_source, unwrap, ALIASING_MARGIN, ALIASING_THRESHOLD, exclude_border_px)
        syn = _assess_dir(syn_dir, synthetic_source, unwrap, ALIASING_MARGIN, ALIASING_THRESHOLD, exclude_border_px)
        if ref.frames != syn.frames:
            raise VelocityError(
                f"{syn_dir}: {syn.frames} frames but the reference {ref_dir} has {ref.frames}; curves cannot be paired frame by frame"
            )
        ref_results.append(ref)
        syn_results.append(syn)
        records.append(
            {
                "case_id": case_id,
                "reference": str(ref_dir),
                "synthetic": str(syn_dir),
                "pearson_r": curve_agreement(ref.curves_mm_s, syn.curves_mm_s),
                "differences": index_differences(ref.indices, syn.indices),
                "reference_indices": ref.indices,
                "synthetic_indices": syn.indices,
                "reference_curves_mm_s": {d: c.tolist() for d, c in ref.curves_mm_s.items()},
                "synthetic_curves_mm_s": {d: c.tolist() for d, c in syn.curves_mm_s.items()},
                "warnings": {"reference": ref.warnings, "synthetic": syn.warnings},
            }
        )
    summary = {
        "pairs": len(records),
        "pearson_r": {d: mean_std([rec["pearson_r"][d] for rec in records]) for d in CYLINDRICAL},
        "pooled_pearson_r": pooled_agreement([r.curves_mm_s for r in ref_results], [s.curves_mm_s for s in syn_results]),
        "reference": summarise_indices([r.indices for r in ref_results]),
        "synthetic": summarise_indices([s.indices for s in syn_results]),
        "differences": summarise_indices([rec["differences"] for rec in records]),
    }
    with _output_dir(out, overwrite) as tmp:
        _write_json(
            tmp / "comparison.json",
            {"reference": str(reference), "synthetic": str(synthetic), "reference_source": reference_source,
             "synthetic_source": synthetic_source, "exclude_border_px": exclude_border_px, "summary": summary, "unmatched": unmatched,
             "cases": records, "conventions": CONVENTIONS},
        )
        (tmp / "comparison.csv").write_text(_comparison_csv(records), encoding="utf-8")
        (tmp / "comparison.md").write_text(
            _comparison_md(reference, synthetic, records, summary, unmatched, reference_source, synthetic_source), encoding="utf-8"
        )
        if plots:
            from hdl_monai.velocity.plots import plot_curves, plot_index_boxplots, save_figure

            for rec, ref, syn in zip(records, ref_results, syn_results):
                folder = tmp if single else tmp / rec["case_id"]
                folder.mkdir(exist_ok=True)
                notes = {d: f"Pearson r = {_fmt(rec['pearson_r'][d], 4)}" for d in CYLINDRICAL}
                series = {f"reference ({reference_source})": ref, f"synthetic ({synthetic_source})": syn}
                title = f"{rec['case_id']}: reference vs synthetic global LV myocardial velocities"
                save_figure(plot_curves(series, title=title, notes=notes), folder / "velocity_overlay.png")
            if not single:
                groups = {"reference": [r.indices for r in ref_results], "synthetic": [s.indices for s in syn_results]}
                save_figure(plot_index_boxplots(groups, title="velocity indices"), tmp / "velocity_boxplots.png")
    return out


def _comparison_csv(records: Sequence[dict[str, Any]]) -> str:
    header = ["case_id", *[f"r_{d}" for d in CYLINDRICAL], *[f"diff_{d}_{k}" for d in CYLINDRICAL for k in INDEX_KEYS]]
    rows = (
        [rec["case_id"], *[rec["pearson_r"][d] for d in CYLINDRICAL], *[rec["differences"][d][k] for d in CYLINDRICAL for k in INDEX_KEYS]]
        for rec in records
    )
    return _csv_text(header, rows)


def _comparison_md(reference, synthetic, records, summary, unmatched, reference_source, synthetic_source) -> str:
    n = len(records)
    r_rows = [
        [d, _fmt(summary["pearson_r"][d]["mean"], 4), _fmt(summary["pearson_r"][d]["std"], 4), _fmt(summary["pooled_pearson_r"][d], 4)]
        for d in CYLINDRICAL
    ]
    lines = [
        "# Velocity comparison",
        "",
        f"Reference: `{reference}` ({reference_source}); synthetic: `{synthetic}` ({synthetic_source}); {n} pair(s) by case_id.",
        "",
        "## Pearson r of the global curves",
        "",
        markdown_table(["direction", "mean r over cases", "std", "pooled r (all curves)"], r_rows),
        "## Indices, mean (std) over cases (Table II form); difference = synthetic - reference",
        "",
        markdown_table(
            ["direction", "index", "reference", "synthetic", "difference"],
            table_rows({"reference": summary["reference"], "synthetic": summary["synthetic"], "difference": summary["differences"]}),
        ),
        "## Per case",
        "",
        markdown_table(
            ["case_id", *[f"r {d}" for d in CYLINDRICAL], *[f"d PSV {d} (mm/s)" for d in CYLINDRICAL]],
            [
                [rec["case_id"], *[_fmt(rec["pearson_r"][d], 4) for d in CYLINDRICAL],
                 *[_fmt(rec["differences"][d]["psv_mm_s"], 2) for d in CYLINDRICAL]]
                for rec in records
            ],
        ),
    ]
    if unmatched.get("reference_only") or unmatched.get("synthetic_only"):
        lines += ["## Unmatched cases", "",
                  f"- reference only: {', '.join(unmatched['reference_only']) or 'none'}",
                  f"- synthetic only: {', '.join(unmatched['synthetic_only']) or 'none'}", ""]
    lines += ["Overlay plots: velocity_overlay.png (per case). Conventions: " + CONVENTIONS, ""]
    return "\n".join(lines)


class VelocityAssessor:
    """Bundle-friendly wrapper of :func:`assess_path` (``"run": "$@assessor.run()"``).

    Args:
        dataset_dir: a dataset (datalist.json) or case folder.
        output_dir: where the outputs go (see :func:`assess_path`).
        overwrite, source, unwrap, splits, skip_errors, plots, exclude_border_px: as in :func:`assess_path`.
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        output_dir: str | os.PathLike,
        overwrite: bool = False,
        source: str = "phase",
        unwrap: bool = False,
        splits: Sequence[str] | None = None,
        skip_errors: bool = False,
        plots: bool = True,
        exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
    ) -> None:
        self.dataset_dir, self.output_dir = Path(dataset_dir), Path(output_dir)
        self.options = dict(overwrite=overwrite, source=source, unwrap=unwrap, splits=splits, skip_errors=skip_errors,
                            plots=plots, exclude_border_px=exclude_border_px)

    def run(self) -> Path:
        """Assess and write; returns the output folder."""
        logger.info("velocity assessment of %s -> %s", self.dataset_dir, self.output_dir)
        out = assess_path(self.dataset_dir, self.output_dir, **self.options)
        logger.info("velocity assessment written to %s", out)
        return out


class VelocityComparator:
    """Bundle-friendly wrapper of :func:`compare_paths`.

    Args:
        reference_dir, synthetic_dir: case or dataset folders, paired by case_id.
        output_dir: where the outputs go.
        overwrite, reference_source, synthetic_source, unwrap, splits, plots, exclude_border_px: as in
            :func:`compare_paths`.
    """

    def __init__(
        self,
        reference_dir: str | os.PathLike,
        synthetic_dir: str | os.PathLike,
        output_dir: str | os.PathLike,
        overwrite: bool = False,
        reference_source: str = "phase",
        synthetic_source: str = "phase",
        unwrap: bool = False,
        splits: Sequence[str] | None = None,
        plots: bool = True,
        exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
    ) -> None:
        self.reference_dir, self.synthetic_dir, self.output_dir = Path(reference_dir), Path(synthetic_dir), Path(output_dir)
        self.options = dict(overwrite=overwrite, reference_source=reference_source, synthetic_source=synthetic_source,
                            unwrap=unwrap, splits=splits, plots=plots, exclude_border_px=exclude_border_px)

    def run(self) -> Path:
        """Compare and write; returns the output folder."""
        logger.info("velocity comparison %s vs %s -> %s", self.reference_dir, self.synthetic_dir, self.output_dir)
        return compare_paths(self.reference_dir, self.synthetic_dir, self.output_dir, **self.options)

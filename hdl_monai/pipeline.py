"""The digital twin, end to end (Xing et al. 2022, Fig. 2): down-sampled magnitude -> full 3Dir MVM.

:func:`build_twin` (in memory, no files) turns one case into its twin:

1. keep frames ``0, K+1, 2(K+1), ...`` of the magnitude and LV labels and rebuild the others with the
   HDL interpolation network (module 1, :func:`hdl_monai.interpolation.interpolate_case`, method
   ``"hdl"``); K = 0 uses the magnitude and labels as they are (every frame must be labelled);
2. synthesise phase x, y, z (0..4096, 2048 = zero velocity) for every frame with the pix2pix phase model
   (module 2, :func:`hdl_monai.phase_synthesis.synthesize_phase`);
3. venc from the input case, else the paper's 20 / 20 / 30 cm/s (x / y / z; section IV-A).

The twin keeps the input's case_id, subject, timing, pixel spacing and ``end_systole_frame``; its phase is
synthetic, its ground-truth velocity is dropped, ``source`` is ``"hdl-twin"`` and case.json holds
``"twin"``: {K, kept_frames, interpolated_frames, models, phase_scheme, seed, venc_cm_s, venc_source,
source_case, source, timings}. Labels: kept frames carry the input's labels (1, 2 and 3 if present);
interpolated frames the network's 1 (LV myocardium) and 2 (the cavity it encloses), never 3.

:func:`run_twin` is the file edge (``hdl-monai twin``): a case or a dataset in, ``OUT`` written atomically::

    OUT/cases/<case_id>/     the twins (case format, validated on write)
    OUT/datalist.json        the input's splits (a single case goes to "test")
    OUT/velocity/            velocity assessment of the twins (hdl_monai.velocity.report.assess_path)
    OUT/compare/             input (real phase) vs twin: Pearson r per curve, index differences, overlays
                             (only when every input case has phase)
    OUT/compare_truth/       ground-truth velocity (phantoms) vs twin (only when every input case has it)
    OUT/twin.json, twin.md   what ran: K, models, seed, per-case timings, which analyses ran and why not
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hdl_monai.data.atomic import OverwriteError, atomic_directory, atomic_write_json, atomic_write_text
from hdl_monai.data.case import DIRECTIONS, Case, CaseError, load_case, read_case_json, save_case
from hdl_monai.data.datalist import SPLITS, case_entries, save_datalist
from hdl_monai.data.phantom import DEFAULT_VENC_CM_S
from hdl_monai.transforms.array import kept_frames
from hdl_monai.velocity.curves import DEFAULT_EXCLUDE_BORDER_PX

__all__ = [
    "REPO_ROOT",
    "DEFAULT_MODELS",
    "TWIN_SOURCE",
    "default_model_path",
    "resolve_model",
    "load_twin_interpolation",
    "load_twin_models",
    "build_twin",
    "run_twin",
]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout holding ``hdl_monai/`` and ``bundle/`` (the defaults below are relative to it)."""

DEFAULT_MODELS = {
    "interpolation": Path("bundle/hdl_temporal_interpolation/models/model.pt"),
    "phase": Path("bundle/hdl_phase_synthesis/models/model.pt"),
}
"""Where the bundles' training writes the trained models, relative to :data:`REPO_ROOT`."""

TWIN_SOURCE = "hdl-twin"

_TRAIN_HINT = {
    "interpolation": (
        "python -m monai.bundle run training --config_file bundle/hdl_temporal_interpolation/configs/train.json "
        "--dataset_dir DATASET --output_dir bundle/hdl_temporal_interpolation/models"
    ),
    "phase": (
        "python -m monai.bundle run training --config_file bundle/hdl_phase_synthesis/configs/train.json "
        "--dataset_dir DATASET --output_dir bundle/hdl_phase_synthesis/models"
    ),
}
_OPTION = {"interpolation": "--interpolation_model", "phase": "--phase_model"}
_STAGES = ("load", "interpolate", "phase", "save")


def _missing_model(kind: str, path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"no trained model at {path}; train one with `{_TRAIN_HINT[kind]}` or pass {_OPTION[kind]}")


def default_model_path(kind: str) -> Path:
    """The bundle's trained model of ``kind`` ("interpolation" or "phase") under :data:`REPO_ROOT`.

    Raises:
        FileNotFoundError: "no trained model at <path>; train one with ... or pass --<kind>_model".
    """
    if kind not in DEFAULT_MODELS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(DEFAULT_MODELS)}")
    path = REPO_ROOT / DEFAULT_MODELS[kind]
    if not path.is_file():
        raise _missing_model(kind, path)
    return path


def resolve_model(kind: str, model: Any = None) -> Any:
    """``model`` as given when it is already loaded; a path checked to exist (a phase model's folder becomes
    its ``model.pt``); None gives :func:`default_model_path`. Raises FileNotFoundError like it."""
    if model is None:
        return default_model_path(kind)
    if not isinstance(model, (str, os.PathLike)):
        return model
    path = Path(model)
    if kind == "phase" and path.is_dir():
        path = path / DEFAULT_MODELS["phase"].name
    if not path.is_file():
        raise _missing_model(kind, path)
    return path


def load_twin_interpolation(interpolation_model: Any = None, device: str = "cpu") -> Any:
    """The twin's interpolation model, loaded once for many cases: a path (default
    :data:`DEFAULT_MODELS`) is loaded and must be an ``"hdl"`` (multi-head multi-tail) model; a loaded
    model passes through."""
    from hdl_monai.engines.interpolation import InterpolationModel, load_interpolation_model

    interp = resolve_model("interpolation", interpolation_model)
    if not isinstance(interp, InterpolationModel):
        interp = load_interpolation_model(interp, device, expect={"method": "hdl"})
    return interp


def load_twin_models(K: int, interpolation_model: Any = None, phase_model: Any = None, device: str = "cpu") -> tuple[Any, Any]:
    """(interpolation model or None when K = 0, phase model), loaded once for many cases.

    Paths default to :data:`DEFAULT_MODELS`; loaded models pass through. The interpolation model must be an
    ``"hdl"`` (multi-head multi-tail) model (:func:`load_twin_interpolation`).
    """
    from hdl_monai.phase_synthesis import PhaseModel, load_phase_model

    interp = load_twin_interpolation(interpolation_model, device) if int(K) > 0 else None
    phase = resolve_model("phase", phase_model)
    if not isinstance(phase, PhaseModel):
        phase = load_phase_model(phase, device)
    return interp, phase


def _model_name(model: Any) -> str | None:
    if model is None:
        return None
    return str(getattr(model, "path", model))


def _check_labelled(case: Case) -> None:
    """K = 0 keeps the input's labels: they must cover every frame."""
    if case.label is None:
        raise CaseError(f"{case.name}: no label.nii.gz; the twin needs the LV labels (K = 0: on every frame)")
    if case.labelled_frames is not None:
        missing = sorted(set(range(case.frames)) - {int(f) for f in case.labelled_frames})
        if missing:
            raise CaseError(
                f"{case.name}: K = 0 keeps the input's labels, but frames {missing[:10]} are not labelled "
                "(choose K > 0 so that only labelled frames are kept)"
            )


def build_twin(
    case: Case,
    K: int,
    interpolation_model: Any = None,
    phase_model: Any = None,
    device: str = "cpu",
    seed: int = 0,
    on_stage: Callable[[str], None] | None = None,
    window_shift: int | None = None,
) -> Case:
    """The digital twin of one case (see the module docstring); nothing is written.

    Args:
        case: the input case: magnitude (X, Y, T) in scanner units and LV labels on the kept frames
            (K = 0: on every frame). Only the kept frames are read; its phase and velocity are not used.
        K: frames dropped between two kept frames (0 = no interpolation; else 1 <= K and 2 (K + 1) <= T,
            within the interpolation model's K_range).
        interpolation_model: model.pt of the interpolation bundle (method "hdl") or a loaded
            ``InterpolationModel``; None = :data:`DEFAULT_MODELS`. Unused when K = 0.
        phase_model: model.pt of the phase-synthesis bundle (or its folder, or a loaded ``PhaseModel``);
            None = :data:`DEFAULT_MODELS`.
        device: torch device for both networks.
        seed: seed of the background phase noise.
        on_stage: called with "interpolate" and "phase" as each stage starts (progress display).
        window_shift: pixels by which the phase generator's four blended windows move off the ROI
            (0: one window; see :func:`~hdl_monai.phase_synthesis.synthesize_phase`). None = the default.

    Returns:
        The twin: same case_id, magnitude (kept frames identical to the input), labels on every frame,
        phase x/y/z in 0..4096, venc, ``source = "hdl-twin"``, ``extra["twin"]`` (the record).

    Raises:
        CaseError: labels missing, K does not fit the series. FileNotFoundError: a model file is missing.
        ValueError: K outside the model's K_range, or a model of the wrong kind.
    """
    from hdl_monai.interpolation import interpolate_case
    from hdl_monai.phase_synthesis import DEFAULT_WINDOW_SHIFT, synthesize_phase

    K = int(K)
    shift = DEFAULT_WINDOW_SHIFT if window_shift is None else int(window_shift)
    if K < 0:
        raise CaseError(f"{case.name}: K must be >= 0 (0 = no interpolation), got {K}")
    stage = on_stage or (lambda name: None)
    interp, phase_net = load_twin_models(K, interpolation_model, phase_model, device)
    T = case.frames
    start = time.perf_counter()
    stage("interpolate")
    if K == 0:
        _check_labelled(case)
        kept = list(range(T))
        twin = replace(case, magnitude=np.array(case.magnitude, dtype=np.float32), label=np.array(case.label, dtype=np.uint8),
                       labelled_frames=None)
    else:
        try:
            kept = kept_frames(T, K)
        except ValueError as err:
            raise CaseError(f"{case.name}: {err}") from None
        twin = interpolate_case(case, K, "hdl", model=interp, device=device)
    interpolated = time.perf_counter()
    venc_source = "case" if case.venc_cm_s is not None else "paper default (20/20/30 cm/s, Xing et al. 2022 IV-A)"
    venc = {d: float((case.venc_cm_s or DEFAULT_VENC_CM_S)[d]) for d in DIRECTIONS}
    stage("phase")
    # the twin's phase encodes velocity at this venc (a motion-plane model needs it as input, too)
    phase = synthesize_phase(replace(twin, venc_cm_s=venc), phase_net, device=device, seed=int(seed),
                             window_shift=shift)
    done = time.perf_counter()
    record = {
        "K": K,
        "kept_frames": kept,
        "interpolated_frames": sorted(set(range(T)) - set(kept)),
        "models": {"interpolation": _model_name(interp), "phase": _model_name(phase_net)},
        "phase_scheme": phase_net.scheme,
        "seed": int(seed),
        "window_shift": shift,
        "venc_cm_s": venc,
        "venc_source": venc_source,
        "source_case": case.case_id,
        "source": case.source,
        "labels": "kept frames: the input's labels; interpolated frames: predicted 1 (LV myocardium) and 2 "
        "(the cavity it encloses), no RV",
        "timings": {
            "interpolation_s": round(interpolated - start, 4),
            "phase_synthesis_s": round(done - interpolated, 4),
            "total_s": round(done - start, 4),
        },
    }
    extra = {k: v for k, v in case.extra.items() if k not in ("interpolation", "phase_synthesis", "twin")}
    extra["twin"] = record
    return replace(
        twin,
        phase=phase,
        velocity={},
        venc_cm_s=venc,
        labelled_frames=None,
        source=TWIN_SOURCE,
        extra=extra,
        path=None,
    )


# --------------------------------------------------------------------------------------------- dataset edge


def _has_files(case_dir: Path, kind: str) -> bool:
    return all((case_dir / f"{kind}_{d}.nii.gz").is_file() for d in DIRECTIONS)


def _jobs(path: Path, splits: Sequence[str] | None) -> tuple[bool, list[tuple[str, dict[str, Any], Path]]]:
    """(single case?, [(split, datalist item, case folder)]); a single case counts as the test split."""
    entries = case_entries(path, splits)
    if not entries:
        raise CaseError(f"{path}: the datalist lists no cases in {list(SPLITS if splits is None else splits)}")
    if entries[0][0] is None:
        meta = read_case_json(path)
        return True, [("test", {"case": "", "subject": str(meta.get("subject", meta.get("case_id", path.name)))}, path)]
    return False, entries


def _retarget(folder: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the JSON / Markdown / CSV files under ``folder`` (the analyses ran on
    the temporary sibling of OUT; their records must name OUT)."""
    if not folder.is_dir():
        return
    for file in folder.rglob("*"):
        if file.suffix in (".json", ".md", ".csv") and file.is_file():
            text = file.read_text(encoding="utf-8")
            if old in text:
                file.write_text(text.replace(old, new), encoding="utf-8")


def _analysis(name: str, fn: Callable[[], Path], records: dict[str, Any], available: bool, reason: str) -> None:
    """Run one analysis into its folder; a case that cannot be assessed is recorded, not fatal."""
    if not available:
        records[name] = {"written": False, "reason": reason}
        return
    try:
        fn()
        records[name] = {"written": True}
    except CaseError as err:  # VelocityError included: e.g. a twin frame without myocardium
        logger.warning("%s skipped: %s", name, err)
        records[name] = {"written": False, "reason": "; ".join(line for line in str(err).splitlines() if line.strip())}


def run_twin(
    path: str | os.PathLike,
    K: int,
    out: str | os.PathLike,
    interpolation_model: Any = None,
    phase_model: Any = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
    *,
    splits: Sequence[str] | None = None,
    seed: int = 0,
    plots: bool = True,
    workers: int | None = None,
    window_shift: int | None = None,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
) -> Path:
    """Build the twin of a case or of every case of a dataset and assess it (outputs: module docstring).

    Args:
        path: a case folder (case.json) or a dataset folder (datalist.json).
        K: frames dropped between kept frames; 0 = no interpolation.
        out: output folder; refused if it exists unless ``overwrite``. It appears complete or not at all.
        interpolation_model, phase_model: model files (or loaded models); None = :data:`DEFAULT_MODELS`.
        device: torch device for the networks.
        overwrite: replace an existing ``out``.
        progress: tqdm bar over cases (the current case and stage in its postfix) and the analyses' bars.
        splits: datalist lists to process (all by default).
        seed: background-noise seed of the phase synthesis (the same for every case).
        plots: write the velocity figures.
        window_shift: pixels by which the phase generator's four blended windows move off the ROI
            (0: one window; see :func:`~hdl_monai.phase_synthesis.synthesize_phase`). None = the default.
        workers: processes for the velocity assessment of a dataset (see ``assess_path``).
        exclude_border_px: myocardium border pixels left out of the velocity curves, in every analysis
            (default 1; 0 for coarse images whose wall is only a few pixels thick).

    Returns:
        ``out``.
    """
    from tqdm.auto import tqdm

    from hdl_monai.velocity.report import assess_path, compare_paths

    path, out, K = Path(path), Path(out), int(K)
    if out.exists() and not overwrite:
        raise OverwriteError(f"{out}: exists; pass overwrite=True (--overwrite) to replace it")
    single, jobs = _jobs(path, splits)
    interp, phase_net = load_twin_models(K, interpolation_model, phase_model, device)
    ids = [str(read_case_json(d).get("case_id", d.name)) for _, _, d in jobs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CaseError(f"{path}: case_id(s) {dupes} appear more than once; the twins are written per case_id")
    with_phase = all(_has_files(d, "phase") for _, _, d in jobs)
    with_truth = all(_has_files(d, "velocity") for _, _, d in jobs)
    started = time.perf_counter()
    with atomic_directory(out, overwrite=overwrite) as tmp:
        datalist: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        cases: list[dict[str, Any]] = []
        bar = tqdm(jobs, desc=f"twin K={K}", unit="case", disable=not progress)
        for split, item, case_dir in bar:
            name = case_dir.name

            def stage(label: str, name: str = name) -> None:
                bar.set_postfix_str(f"{name}: {label}", refresh=True)

            stage("load")
            tic = time.perf_counter()
            case = load_case(case_dir, skip=("phase", "velocity"))
            twin = build_twin(case, K, interp, phase_net, device=device, seed=seed, on_stage=stage, window_shift=window_shift)
            stage("save")
            save_case(twin, tmp / "cases" / twin.case_id)
            datalist[split].append({**item, "case": f"cases/{twin.case_id}"})
            cases.append({"case_id": twin.case_id, "split": split, "input": str(case_dir), **twin.extra["twin"]["timings"],
                          "seconds": round(time.perf_counter() - tic, 4)})
        bar.close()
        save_datalist(tmp, datalist)
        twin_path = tmp / "cases" / cases[0]["case_id"] if single else tmp
        analyses: dict[str, Any] = {}
        options = dict(splits=None if single else splits, plots=plots, progress=progress, exclude_border_px=int(exclude_border_px))
        _analysis(
            "velocity",
            lambda: assess_path(twin_path, tmp / "velocity", plots=plots, progress=progress, workers=workers,
                                skip_errors=not single, exclude_border_px=int(exclude_border_px)),
            analyses, True, "",
        )
        _analysis("compare", lambda: compare_paths(path, twin_path, tmp / "compare", **options), analyses, with_phase,
                  "the input has no phase images (phase_x/y/z) to compare with")
        _analysis(
            "compare_truth",
            lambda: compare_paths(path, twin_path, tmp / "compare_truth", reference_source="velocity", **options),
            analyses, with_truth, "the input has no ground-truth velocity files (velocity_x/y/z, phantoms only)",
        )
        record = {
            "input": str(path),
            "K": K,
            "kept_frames": "0, K+1, 2(K+1), ... of each case" if K else "all (no interpolation)",
            "models": {"interpolation": _model_name(interp), "phase": _model_name(phase_net)},
            "phase_scheme": phase_net.scheme,
            "device": str(device),
            "seed": int(seed),
            "exclude_border_px": int(exclude_border_px),
            "splits": list(SPLITS if splits is None else splits) if not single else None,
            "cases": cases,
            "analyses": analyses,
            "seconds": round(time.perf_counter() - started, 3),
        }
        atomic_write_json(tmp / "twin.json", record)
        atomic_write_text(tmp / "twin.md", _twin_md(record, tmp))
        _retarget(tmp, str(tmp), str(out))
        _retarget(tmp, tmp.name, out.name)
    return out


def _pooled_r_line(folder: Path) -> str:
    import json

    summary = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))["summary"]
    pooled = summary.get("pooled_pearson_r", {})
    return ", ".join(f"{d} {r:.3f}" if isinstance(r, float) else f"{d} n/a" for d, r in pooled.items())


def _failed_cases(folder: Path) -> list[str]:
    import json

    summary = folder / "summary.json"
    if not summary.is_file():
        return []
    return [f.splitlines()[0] for f in json.loads(summary.read_text(encoding="utf-8")).get("failed", [])]


def _twin_md(record: dict[str, Any], root: Path) -> str:
    lines = [
        "# HDL digital twin",
        "",
        f"Input `{record['input']}`, K = {record['K']} (kept frames: {record['kept_frames']}), "
        f"seed {record['seed']}, device {record['device']}.",
        f"Models: interpolation `{record['models']['interpolation']}`, phase `{record['models']['phase']}` "
        f"(scheme {record['phase_scheme']}).",
        "",
        "| case | split | interpolation (s) | phase synthesis (s) | case total incl. I/O (s) |",
        "|---|---|---|---|---|",
        *[f"| {c['case_id']} | {c['split']} | {c['interpolation_s']:.2f} | {c['phase_synthesis_s']:.2f} | {c['seconds']:.2f} |"
          for c in record["cases"]],
        "",
        "## Analyses",
        "",
    ]
    notes = {
        "velocity": "velocity assessment of the twins (`velocity/`)",
        "compare": "input phase vs twin (`compare/comparison.md`), pooled Pearson r",
        "compare_truth": "ground-truth velocity vs twin (`compare_truth/comparison.md`), pooled Pearson r",
    }
    for name, result in record["analyses"].items():
        if not result["written"]:
            lines.append(f"- {notes[name]}: not written: {result['reason']}")
        elif name == "velocity":
            failed = _failed_cases(root / "velocity")
            lines.append(f"- {notes[name]}" + (f"; {len(failed)} twin(s) could not be assessed: {'; '.join(failed)}" if failed else ""))
        else:
            lines.append(f"- {notes[name]}: {_pooled_r_line(root / name)}")
    lines += ["", f"Total {record['seconds']:.1f} s.", ""]
    return "\n".join(lines)

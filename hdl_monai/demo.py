"""`hdl-monai demo`: the whole HDL toolkit on the built-in phantom, from nothing, on a CPU.

Steps (each timed and printed; the long ones show a progress bar):

1. generate a phantom dataset with ground-truth velocities (default 6 subjects x 2 slices x 50 frames,
   128 x 128, seed 0) and validate it;
2. the digital twin (:func:`hdl_monai.pipeline.run_twin`) of the test split at K = 0, 3, 6 with the
   shipped models: interpolation (module 1), phase synthesis (module 2), velocity assessment (module 3),
   compared with the real (noisy) phase and with the ground-truth velocity;
3. :func:`hdl_monai.evaluate.evaluate_interpolation` of the test split at K = 1..6 for the HDL model and
   the linear and optical-flow baselines (the paper's Table III metrics, Fig. 10);
4. :func:`hdl_monai.evaluate_phase.evaluate_phase` of the test split at K = 0, 3, 6 (Table I, Table II,
   Fig. 7-9);
5. figures of one test case: interpolation error maps (Fig. 5) and LV segmentation overlays (Fig. 6);
6. ``report.html`` (HTML and CSS inline; the PNG figures sit beside it in the output folder and are
   referenced by relative paths, so the folder is the report) and a short ``report.md``.

Every number in the reports is read from this run's JSON results. The shipped models are
:data:`hdl_monai.pipeline.DEFAULT_MODELS`; ``interpolation_model`` / ``phase_model`` replace them.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hdl_monai.data.atomic import OverwriteError, atomic_write_text
from hdl_monai.velocity.curves import DEFAULT_EXCLUDE_BORDER_PX

__all__ = ["run_demo", "PAPER_TABLE1", "PAPER_TABLE3_HDL", "PAPER_DICE_K6", "DemoModelError"]

TWIN_KS = (0, 3, 6)
INTERPOLATION_KS = (1, 2, 3, 4, 5, 6)
PHASE_KS = (0, 3, 6)
OVERLAY_KS = (5, 6)
INTERPOLATION_METHODS = ("hdl", "linear", "optical_flow")

# The paper's own numbers (Xing et al. 2022), on its real 3Dir MVM data; shown next to ours, never mixed.
PAPER_TABLE1 = {
    # K: method: MSE x100, MSEW1 x10, MSEW2 x100, PSNR, SSIM  -- "mean (std)" as printed in Table I
    0: {"vanilla": ("4.08 (0.53)", "0.29 (0.10)", "0.19 (0.16)", "42.02 (0.61)", "0.26 (0.02)"),
        "proposed": ("3.66 (0.57)", "0.29 (0.07)", "0.12 (0.15)", "42.50 (0.76)", "0.29 (0.05)")},
    3: {"vanilla": ("3.90 (0.53)", "0.29 (0.10)", "0.24 (0.16)", "42.22 (0.60)", "0.25 (0.02)"),
        "proposed": ("3.65 (0.58)", "0.30 (0.08)", "0.16 (0.17)", "42.51 (0.76)", "0.29 (0.06)")},
    6: {"vanilla": ("4.10 (0.43)", "0.31 (0.16)", "0.51 (0.09)", "42.00 (0.51)", "0.25 (0.26)"),
        "proposed": ("3.81 (0.38)", "0.29 (0.09)", "0.19 (0.13)", "42.32 (0.46)", "0.29 (0.14)")},
}
"""Table I of the paper (synthetic vs real phase, its test set)."""
PAPER_TABLE3_HDL = {
    # K: MSE x100, MSEW1 x10, MSEW2 x100, PSNR, SSIM, Dice -- the "Ours" rows of Table III (its validation set)
    1: ("0.16 (0.34)", "0.18 (0.05)", "0.12 (0.36)", "76.43 (61.68)", "0.82 (0.05)", "0.97 (0.18)"),
    2: ("0.15 (0.21)", "0.24 (0.40)", "0.15 (0.21)", "76.50 (58.92)", "0.81 (0.07)", "0.96 (0.09)"),
    3: ("0.14 (0.48)", "0.29 (0.19)", "0.15 (0.31)", "77.11 (54.74)", "0.84 (0.07)", "0.95 (0.17)"),
    4: ("0.18 (0.12)", "0.37 (0.10)", "0.19 (0.23)", "75.75 (49.25)", "0.82 (0.06)", "0.94 (0.18)"),
    5: ("0.26 (0.12)", "0.41 (0.09)", "0.23 (0.05)", "74.45 (47.27)", "0.80 (0.02)", "0.93 (0.03)"),
    6: ("0.24 (0.15)", "0.49 (0.25)", "0.24 (0.41)", "74.68 (44.19)", "0.79 (0.07)", "0.93 (0.07)"),
}
"""The HDL ("Ours") rows of the paper's Table III."""
TRAINING_PHANTOM = {"subjects": 20, "slices": 3, "seed": 0}
"""The phantom the shipped models are trained on (``hdl-monai phantom --out data/phantom20 --subjects 20``).
Phantoms with the same seed draw the same synthetic subjects (sub000, sub001, ...), so the demo checks that
its test subjects were not training subjects there."""
PAPER_DICE_K6 = 0.92
"""Dice of the LV segmentation at K = 6 quoted in the paper's abstract and section IV-F."""

_TRAIN_HELP = """the demo needs the trained models of both bundles: {error}
Train them once (small CPU configuration; docs/user_guide.md has the paper-size GPU one):
  hdl-monai phantom --out data/phantom20 --subjects 20 --slices 3
  hdl-monai train interpolation --dataset_dir data/phantom20 --output_dir bundle/hdl_temporal_interpolation/models \\
      --channels "[8,16,32,64]" --batch_size 1 --samples_per_case 8 --max_epochs 20
  hdl-monai train phase --dataset_dir data/phantom20 --output_dir bundle/hdl_phase_synthesis/models \\
      --channels "[8,16,32,64]" --d_channels 8 --batch_size 4 --max_epochs 20
or pass --interpolation_model / --phase_model."""


class DemoModelError(FileNotFoundError):
    """A model the demo needs is missing; the message says how to train it."""


def _log(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _ks(values: Sequence[int] | str | int) -> tuple[int, ...]:
    if isinstance(values, str):
        values = [v for v in values.replace(" ", "").split(",") if v]
    elif isinstance(values, int):
        values = [values]
    return tuple(sorted({int(v) for v in values}))


def _model_path(kind: str, model: str | os.PathLike | None) -> Path:
    from hdl_monai.pipeline import resolve_model

    try:
        return Path(resolve_model(kind, model))
    except FileNotFoundError as err:
        raise DemoModelError(_TRAIN_HELP.format(error=err)) from None


# --------------------------------------------------------------------------------------------- run


def run_demo(
    out: str | os.PathLike = "demo_output",
    subjects: int = 6,
    slices: int = 2,
    size: int = 128,
    frames: int = 50,
    seed: int = 0,
    overwrite: bool = False,
    *,
    interpolation_model: str | os.PathLike | None = None,
    phase_model: str | os.PathLike | None = None,
    twin_ks: Sequence[int] = TWIN_KS,
    interpolation_ks: Sequence[int] = INTERPOLATION_KS,
    phase_ks: Sequence[int] = PHASE_KS,
    overlay_ks: Sequence[int] = OVERLAY_KS,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Run the demo into ``out`` and return the path of ``report.html``.

    Args:
        out: output folder; refused if it exists, unless ``overwrite`` (then replaced).
        subjects, slices, size, frames, seed: phantom settings (as ``hdl-monai phantom``).
        overwrite: replace an existing ``out``.
        interpolation_model: HDL interpolation model.pt (None: the interpolation bundle's shipped model).
        phase_model: phase-synthesis model.pt or its folder (None: the phase bundle's shipped model).
        twin_ks: K values of the digital twin runs (0 = real magnitude).
        interpolation_ks: K values of Table III / Fig. 10 (and of the Fig. 5 error maps).
        phase_ks: K values of Tables I and II (Fig. 7-9).
        overlay_ks: K values of the Fig. 6 segmentation overlays.
        exclude_border_px: myocardium border pixels left out of every velocity curve (0 for tiny images).
        device: torch device of the networks.
        progress: progress bars on the long steps.

    Raises:
        DemoModelError (a FileNotFoundError): a model is missing; the message gives the training commands.
        OverwriteError: ``out`` exists and ``overwrite`` is false.
    """
    from hdl_monai.data.datalist import load_datalist, validate_dataset
    from hdl_monai.data.phantom import generate_phantom
    from hdl_monai.evaluate import evaluate_interpolation
    from hdl_monai.evaluate_phase import evaluate_phase
    from hdl_monai.pipeline import load_twin_models, run_twin

    out = Path(out)
    twin_ks, interpolation_ks, phase_ks, overlay_ks = (_ks(k) for k in (twin_ks, interpolation_ks, phase_ks, overlay_ks))
    # models first: a missing model stops the demo before anything is written
    interp_path = _model_path("interpolation", interpolation_model)
    phase_path = _model_path("phase", phase_model)
    if out.exists():
        if not overwrite:
            raise OverwriteError(f"{out}: exists; pass --overwrite to replace the demo output")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        _log(f"{name} ...")
        tic = time.perf_counter()
        result = fn()
        timings[name] = time.perf_counter() - tic
        _log(f"{name}: {timings[name]:.1f} s")
        return result

    settings = dict(subjects=subjects, slices=slices, size=size, frames=frames, seed=seed, twin_ks=list(twin_ks),
                    interpolation_ks=list(interpolation_ks), phase_ks=list(phase_ks), overlay_ks=list(overlay_ks),
                    exclude_border_px=int(exclude_border_px), device=str(device))
    _log(f"phantom: {subjects} subjects x {slices} slices x {frames} frames at {size}x{size}, seed {seed}")
    dataset = step(
        "1. phantom",
        lambda: generate_phantom(out / "phantom", subjects=subjects, slices=slices, size=size, frames=frames, seed=seed,
                                 progress=progress),
    )
    problems = step("1. validate", lambda: validate_dataset(dataset))
    if problems:
        raise RuntimeError("the generated phantom does not validate:\n" + "\n".join(problems))
    test_cases = [item["case"] for item in load_datalist(dataset)["test"]]
    _log(f"test split: {len(test_cases)} case(s)")
    leakage = _subject_check(dataset, seed)
    if leakage["seen"]:
        _log(f"WARNING: {leakage['text']}")

    interp, phase_net = step("load models", lambda: load_twin_models(max(twin_ks + phase_ks + (1,)), interp_path, phase_path, device))
    for K in twin_ks:
        step(
            f"2. twin K={K}",
            lambda K=K: run_twin(dataset, K, out / "twin" / f"K{K}", interp, phase_net, device=device, splits=["test"],
                                 seed=seed, progress=progress, workers=1, exclude_border_px=exclude_border_px),
        )
    step(
        "3. evaluate interpolation",
        lambda: evaluate_interpolation(dataset, out / "interpolation", ks=interpolation_ks, methods=INTERPOLATION_METHODS,
                                       split="test", progress=progress, models={"hdl": interp_path}, device=device),
    )
    phase_payload = step(
        "4. evaluate phase",
        lambda: evaluate_phase(dataset, out / "phase", ks=phase_ks, phase_model=phase_net, interpolation_model=interp,
                               split="test", device=device, seed=seed, exclude_border_px=exclude_border_px, progress=progress),
    )
    example = phase_payload["example_case"]
    figures = step(
        "5. error maps and overlays",
        lambda: _case_figures(dataset, example, interp, interpolation_ks, overlay_ks, out / "figures", device, progress),
    )
    histogram = phase_path.parent / "background_histogram.png"
    if histogram.is_file():
        shutil.copyfile(histogram, out / "figures" / "background_histogram.png")
    run = {
        "settings": settings,
        "dataset": str(dataset),
        "test_cases": test_cases,
        "example_case": example,
        "models": _model_info(interp, phase_net),
        "environment": _environment(),
        "figures": figures,
        "background_histogram": histogram.is_file(),
        "subject_check": leakage,
        "timings_s": {},
    }
    run["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    run["total_before_report_s"] = round(time.perf_counter() - started, 2)
    report = step("6. report", lambda: _write_reports(out, run))
    total = time.perf_counter() - started
    run["timings_s"]["6. report"] = round(timings["6. report"], 2)
    run["total_s"] = round(total, 2)
    (out / "demo.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    _log(f"total: {total:.1f} s")
    _log(f"report: {report} (open it in a browser; figures are beside it)")
    return report


# --------------------------------------------------------------------------------------------- provenance


def _subject_check(dataset: Path, seed: int) -> dict[str, Any]:
    """Were the demo's test subjects training or validation subjects of :data:`TRAINING_PHANTOM`?"""
    from hdl_monai.data.datalist import load_datalist, split_by_subject

    test = sorted({str(item.get("subject", "")) for item in load_datalist(dataset)["test"]})
    ref = TRAINING_PHANTOM
    if int(seed) != ref["seed"]:
        return {"test_subjects": test, "seen": [], "text": f"the demo phantom's seed {seed} differs from the training "
                f"phantom's ({ref['seed']}): its subjects are new draws, unseen by the shipped models."}
    cases = {f"sub{s:03d}_s{k}": f"sub{s:03d}" for s in range(ref["subjects"]) for k in range(ref["slices"])}
    split = split_by_subject(cases, seed=ref["seed"])
    role = {item["subject"]: name for name, items in split.items() for item in items}
    seen = [s for s in test if role.get(s) in ("training", "validation")]
    where = ", ".join(f"{s} ({role.get(s, 'not in it')})" for s in test)
    text = (f"test subject(s) {where} of the {ref['subjects']}-subject seed-{ref['seed']} training phantom "
            f"(same seed, same synthetic subjects)")
    text = (f"{text}: the shipped models were trained on {', '.join(seen)}; the demo's test numbers are optimistic"
            if seen else f"{text}: never seen in training.")
    return {"test_subjects": test, "seen": seen, "text": text}




def _model_info(interp: Any, phase_net: Any) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if interp is not None:
        spec = interp.spec.to_dict()
        info["interpolation"] = {
            "path": str(interp.path),
            "method": spec["method"],
            "channels": spec["network_kwargs"].get("channels"),
            "roi_size": spec["roi_size"],
            "K_range": spec["K_range"],
            "parameters": int(sum(p.numel() for p in interp.network.parameters())),
            "modified": _mtime(interp.path),
        }
    info["phase"] = {
        "path": str(phase_net.path),
        "scheme": phase_net.scheme,
        "channels": list(phase_net.generator_config.get("channels", [])),
        "roi_size": list(phase_net.roi_size),
        "background": {k: phase_net.background_stats.get(k) for k in ("mean", "std") if k in phase_net.background_stats},
        "parameters": int(sum(p.numel() for p in phase_net.generator.parameters())),
        "modified": _mtime(phase_net.path),
    }
    return info


def _mtime(path: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(Path(path).stat().st_mtime))
    except OSError:
        return "?"


def _environment() -> dict[str, Any]:
    import monai
    import torch

    import hdl_monai

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 ** 2:.0f} GiB"
    except OSError:
        pass
    return {
        "hdl_monai": hdl_monai.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory": memory,
        "cuda": torch.cuda.is_available(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# --------------------------------------------------------------------------------------------- figures


def _lv_box(label: np.ndarray, pad: int) -> tuple[slice, slice]:
    """A square crop around the LV (labels 1 and 2) of every frame, ``pad`` pixels wider."""
    xs, ys = np.nonzero(np.isin(label, (1, 2)).any(axis=-1))
    X, Y = label.shape[:2]
    if xs.size == 0:
        return slice(0, X), slice(0, Y)
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    half = max(xs.max() - xs.min(), ys.max() - ys.min()) / 2 + pad
    half = min(half, min(X, Y) / 2)
    x0 = int(np.clip(round(cx - half), 0, X - 2 * half))
    y0 = int(np.clip(round(cy - half), 0, Y - 2 * half))
    n = int(round(2 * half))
    return slice(x0, x0 + n), slice(y0, y0 + n)


def _frame_dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def _case_figures(
    dataset: Path,
    case_id: str,
    model: Any,
    ks: Sequence[int],
    overlay_ks: Sequence[int],
    out: Path,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Fig. 5 (HDL error maps, K = ks, tau = 0) and Fig. 6 (segmentation overlays) of one test case."""
    from tqdm.auto import tqdm

    from hdl_monai.data.case import load_case
    from hdl_monai.data.datalist import case_dirs
    from hdl_monai.interpolation import interpolate_case

    out.mkdir(parents=True, exist_ok=True)
    case_dir = next(d for d in case_dirs(dataset, ["test"]) if d.name == case_id or load_case(d, skip=("phase", "velocity")).case_id == case_id)
    case = load_case(case_dir, skip=("phase", "velocity"))
    jobs = [(K, "hdl") for K in ks] + [(K, m) for K in overlay_ks for m in INTERPOLATION_METHODS if (K, m) not in [(k, "hdl") for k in ks]]
    rebuilt: dict[tuple[int, str], Any] = {}
    for K, method in tqdm(jobs, desc="figures: interpolate one case", disable=not progress):
        rebuilt[(K, method)] = interpolate_case(case, K, method, model=model if method == "hdl" else None, device=device)
    figures: dict[str, Any] = {"case": case.case_id}
    figures["error_maps"] = _plot_error_maps(case, {K: rebuilt[(K, "hdl")] for K in ks}, out / "error_maps.png")
    if overlay_ks:
        figures["overlays"] = _plot_overlays(case, {K: {m: rebuilt[(K, m)] for m in INTERPOLATION_METHODS} for K in overlay_ks},
                                             out / "segmentation_overlays.png")
    return figures


def _plot_error_maps(case: Any, rebuilt: Mapping[int, Any], path: Path) -> dict[str, Any]:
    """Fig. 5: |interpolated - real| of the normalised magnitude, row K, column frame t = 0..K_max+1 (tau = 0),
    cropped to the heart; kept frames are blue panels. The colour scale is shared (99.9th percentile)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from hdl_monai.transforms.array import magnitude_scale, normalize_magnitude

    scale = magnitude_scale(case.magnitude)
    real = normalize_magnitude(case.magnitude, scale)
    box = _lv_box(case.label, pad=10)
    ks = sorted(rebuilt)
    columns = max(ks) + 2
    errors = {K: np.abs(normalize_magnitude(rebuilt[K].magnitude, scale) - real) for K in ks}
    shown_errors = np.concatenate([errors[K][..., 1:K + 1][box].ravel() for K in ks])
    vmax = float(max(0.02, np.ceil(np.percentile(shown_errors, 99.9) * 100) / 100))
    blue = ListedColormap(["#3b6fd4"])
    fig = Figure(figsize=(1.45 * columns + 1.0, 1.5 * len(ks) + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ks), columns, squeeze=False)
    mae: dict[str, dict[str, float]] = {}
    shown = None
    for r, K in enumerate(ks):
        mae[str(K)] = {}
        for t in range(columns):
            ax = axes[r, t]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {t}", fontsize=9)
            if t == 0:
                ax.set_ylabel(f"K = {K}", fontsize=10)
            if t > K + 1:
                ax.axis("off")
                continue
            crop = errors[K][..., t][box]
            if t in (0, K + 1):
                ax.imshow(np.zeros_like(crop).T, origin="lower", cmap=blue)
                ax.text(0.5, 0.5, "kept\nframe", ha="center", va="center", color="white", fontsize=8, transform=ax.transAxes)
                continue
            mae[str(K)][str(t)] = float(errors[K][..., t].mean())
            shown = ax.imshow(crop.T, origin="lower", cmap="inferno", vmin=0.0, vmax=vmax)
            ax.text(0.03, 0.03, f"MAE {errors[K][..., t].mean():.3f}", color="white", fontsize=7, transform=ax.transAxes)
    if shown is not None:
        fig.colorbar(shown, ax=axes[:, -1], fraction=0.6, shrink=0.8, label="|error| (normalised magnitude, range 2)")
    fig.suptitle(f"{case.case_id}: HDL interpolation error maps, tau = 0 (blue: frames kept after down-sampling)")
    fig.savefig(str(path), dpi=90)
    return {"file": f"figures/{path.name}", "mae": mae, "vmax": vmax}


def _plot_overlays(case: Any, rebuilt: Mapping[int, Mapping[str, Any]], path: Path) -> dict[str, Any]:
    """Fig. 6: predicted LV myocardium (red) vs ground truth (green), disagreement yellow, on the interpolated
    magnitude, at the middle frame of the first gap; columns: real, then each method; rows: K."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from hdl_monai.transforms.array import magnitude_scale, normalize_magnitude

    scale = magnitude_scale(case.magnitude)
    box = _lv_box(case.label, pad=6)
    methods = list(next(iter(rebuilt.values())))
    ks = sorted(rebuilt)
    fig = Figure(figsize=(2.7 * (len(methods) + 1), 2.9 * len(ks) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ks), len(methods) + 1, squeeze=False)
    yellow = ListedColormap([(0, 0, 0, 0), (1.0, 0.9, 0.0, 0.55)])
    dice: dict[str, dict[str, float]] = {}
    frames: dict[str, int] = {}
    for r, K in enumerate(ks):
        t = (K + 2) // 2  # middle of the first gap 1..K (tau = 0)
        frames[str(K)] = t
        truth = case.label[..., t][box] == 1
        dice[str(K)] = {}
        panels = [("real (ground truth)", case.magnitude, None)] + [(m, rebuilt[K][m].magnitude, rebuilt[K][m].label) for m in methods]
        for c, (name, magnitude, label) in enumerate(panels):
            ax = axes[r, c]
            image = normalize_magnitude(magnitude[..., t], scale)[box]
            ax.imshow(image.T, origin="lower", cmap="gray", vmin=-1, vmax=1)
            if label is not None:
                pred = label[..., t][box] == 1
                ax.imshow(np.logical_xor(pred, truth).T.astype(int), origin="lower", cmap=yellow, vmin=0, vmax=1,
                          interpolation="nearest")
                if pred.any():
                    ax.contour(pred.T.astype(float), levels=[0.5], colors="red", linewidths=1.3)
                dice[str(K)][name] = _frame_dice(pred, truth)
                title = f"{name}\nDice {dice[str(K)][name]:.3f}"
            else:
                title = name
            ax.contour(truth.T.astype(float), levels=[0.5], colors="lime", linewidths=1.1)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"K = {K}, t = {t}", fontsize=10)
    fig.suptitle(f"{case.case_id}: LV myocardium, predicted (red) vs ground truth (green), disagreement yellow")
    fig.savefig(str(path), dpi=90)
    return {"file": f"figures/{path.name}", "frames": frames, "dice": dice}


# --------------------------------------------------------------------------------------------- numbers


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def _ms(stats: Mapping[str, Any], factor: float = 1.0, digits: int = 3) -> str:
    """"mean (std)" of a {"mean", "std"} dict scaled by ``factor``."""
    if not stats or stats.get("n", 1) == 0:
        return "n/a"
    return f"{_num(stats['mean'] * factor, digits)} ({_num(stats['std'] * factor, digits)})"


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


_T3_FACTORS = {"mse": 100, "msew1": 10, "msew2": 100, "psnr": 1, "ssim": 1, "dice": 1}
_T3_HEAD = ("MSE ×100", "MSEW1 ×10", "MSEW2 ×100", "PSNR (dB)", "SSIM", "Dice")
_LOWER_BETTER = {"mse", "msew1", "msew2"}
_DIRS = ("radial", "circumferential", "longitudinal")


def _twin_results(out: Path, ks: Sequence[int]) -> dict[str, Any]:
    results = {}
    for K in ks:
        root = out / "twin" / f"K{K}"
        record = _read_json(root / "twin.json") or {}
        entry: dict[str, Any] = {"record": record, "vs_real": None, "vs_truth": None}
        for key, folder in (("vs_real", "compare"), ("vs_truth", "compare_truth")):
            comparison = _read_json(root / folder / "comparison.json")
            if comparison is not None:
                entry[key] = comparison["summary"]
        entry["reasons"] = {k: v.get("reason") for k, v in record.get("analyses", {}).items() if not v.get("written")}
        results[str(K)] = entry
    return results


# --------------------------------------------------------------------------------------------- HTML


_CSS = """
:root { --ink:#1d2430; --muted:#5b6472; --line:#d7dce3; --head:#eef2f7; --accent:#2a5db0; --paper:#7a4d00; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p, li { max-width: 980px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 210px; flex: 1; background: #fbfcfe; }
.card .big { font-size: 24px; font-weight: 600; color: var(--accent); }
.card .lab { font-size: 13px; color: var(--muted); }
.card .pp { font-size: 13px; color: var(--paper); }
.scroll { overflow-x: auto; margin: 8px 0 6px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: var(--head); text-align: center; font-weight: 600; }
td.l, th.l { text-align: left; }
tbody tr:nth-child(even) td { background: #fafbfc; }
tr.paper td { color: var(--paper); font-style: italic; background: #fff8ec !important; }
tr.sep td { border-top: 2px solid #9aa4b2; }
td.best { font-weight: 700; }
.kv td:first-child { text-align: left; color: var(--muted); width: 190px; white-space: nowrap; vertical-align: top; }
.kv td { text-align: left; white-space: normal; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); display: block; }
figure.half img { max-width: 760px; }
figure.wide img { max-width: 1000px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; max-width: 980px; }
.note { font-size: 13px; color: var(--muted); }
.paperkey { color: var(--paper); font-style: italic; }
code { font-size: 12.5px; background: #f1f3f6; padding: 1px 4px; border-radius: 3px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _table(head: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]], left: int = 1) -> str:
    """An HTML table; rows are (css class, cells); cells may be (text, class) pairs; the first ``left``
    columns are left-aligned."""
    out = ['<div class="scroll"><table><thead><tr>']
    out += [f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for css, cells in rows:
        out.append(f'<tr class="{css}">')
        for i, cell in enumerate(cells):
            text, cls = cell if isinstance(cell, tuple) else (cell, "")
            classes = " ".join(c for c in (cls, "l" if i < left else "") if c)
            out.append(f'<td class="{classes}">{_e(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _figure(src: str, caption: str, css: str = "") -> str:
    return (f'<figure class="{css}"><a href="{_e(src)}"><img src="{_e(src)}" alt="{_e(caption[:80])}" loading="lazy"></a>'
            f"<figcaption>{caption}</figcaption></figure>")


def _table3(results: Mapping[str, Any]) -> str:
    from hdl_monai.evaluate import METRICS

    rows = []
    for K in sorted(results, key=int):
        methods = results[K]
        best = {}
        for m in METRICS:
            means = {name: stats[m]["mean"] for name, stats in methods.items() if np.isfinite(stats[m]["mean"])}
            if means:
                best[m] = (min if m in _LOWER_BETTER else max)(means, key=means.get)
        for i, (name, stats) in enumerate(methods.items()):
            cells = [(_ms(stats[m], _T3_FACTORS[m]), "best" if best.get(m) == name and len(methods) > 1 else "") for m in METRICS]
            rows.append(("sep" if i == 0 else "", [K if i == 0 else "", name, *cells]))
        if int(K) in PAPER_TABLE3_HDL:
            rows.append(("paper", ["", "paper: HDL", *PAPER_TABLE3_HDL[int(K)]]))
    return _table(["K", "method", *_T3_HEAD], rows, left=2)


def _table1(table1: Mapping[str, Any]) -> str:
    from hdl_monai.evaluate_phase import FACTORS, HEADERS, METRICS

    rows = []
    for K in sorted(table1, key=int):
        for i, (method, stats) in enumerate(table1[K].items()):
            rows.append(("sep" if i == 0 else "", [K if i == 0 else "", method, *[_ms(stats[m], FACTORS[m]) for m in METRICS]]))
        for method in ("proposed", "vanilla"):
            if int(K) in PAPER_TABLE1 and (method == "proposed" or method in table1[K]):
                paper = PAPER_TABLE1[int(K)][method]
                rows.append(("paper", ["", f"paper: {method}", *paper, *["–"] * (len(METRICS) - len(paper))]))
    return _table(["K", "method", *(HEADERS[m].replace(" x", " ×") for m in METRICS)], rows, left=2)


def _table2(columns: Mapping[str, Any]) -> str:
    from hdl_monai.velocity.indices import INDEX_KEYS
    from hdl_monai.velocity.summary import index_label

    names = list(columns)

    def n_of(col: Mapping[str, Any]) -> int:
        first = next(iter(col.values()))
        return int(next(iter(first.values()))["n"])

    head = ["direction", "index", *[f"{c} (n = {n_of(columns[c])})" for c in names]]
    rows = []
    for d in _DIRS:
        for j, key in enumerate(k for k in INDEX_KEYS if not k.endswith("_ms") or k == "mean_mm_s"):
            cells = [_ms(columns[c][d][key], 1.0, 2) if d in columns[c] else "n/a" for c in names]
            rows.append(("sep" if j == 0 else "", [d if j == 0 else "", index_label(key), *cells]))
    return _table(head, rows, left=2)


def _pearson_table(payload: Mapping[str, Any]) -> str:
    from hdl_monai.evaluate_phase import PAPER_PEARSON_R

    truth = payload.get("pearson_r_truth")
    head = ["K", "method", "r pooled, all directions", "r radial", "r circumferential", "r longitudinal",
            "per-case r (all), mean (std)", "paper r (its real data)"]
    if truth:
        head.append("r vs ground truth, pooled")
    rows = []
    if truth and "real" in truth:
        row = ["–", "real phase (the reference)", "–", "–", "–", "–", "–", "–", _num(truth["real"]["pooled"]["all"])]
        rows.append(("", row))
    for K in sorted(payload["pearson_r"], key=int):
        for method, r in payload["pearson_r"][K].items():
            paper = f"{PAPER_PEARSON_R[int(K)]:.2f}" if method == "proposed" and int(K) in PAPER_PEARSON_R else "–"
            row = [K, method, _num(r["pooled"]["all"]), *[_num(r["pooled"][d]) for d in _DIRS],
                   _ms(r["per_case"]["all"]), (paper, "paperkey" if paper != "–" else "")]
            if truth:
                row.append(_num(truth[K][method]["pooled"]["all"]))
            rows.append(("", row))
    return _table(head, rows, left=2)


def _twin_table(twins: Mapping[str, Any]) -> str:
    from hdl_monai.evaluate_phase import PAPER_PEARSON_R

    head = ["K", "twin cases", "r vs real phase: radial", "circumferential", "longitudinal",
            "r vs ground truth: radial", "circumferential", "longitudinal", "networks (s / case)"]
    rows = []
    for K in sorted(twins, key=int):
        t = twins[K]
        cells: list[Any] = [K, len(t["record"].get("cases", []))]
        for key in ("vs_real", "vs_truth"):
            summary = t[key]
            if summary is None:
                reason = t["reasons"].get("compare" if key == "vs_real" else "compare_truth", "not written")
                cells += [f"n/a ({reason[:40]})", "", ""]
            else:
                cells += [_num(summary["pooled_pearson_r"][d]) for d in _DIRS]
        cases = t["record"].get("cases", [])
        per = np.mean([c["interpolation_s"] + c["phase_synthesis_s"] for c in cases]) if cases else float("nan")
        cells.append(_num(per, 2))
        rows.append(("", cells))
    note_r = ", ".join(f"K = {k}: {v:.2f}" for k, v in PAPER_PEARSON_R.items())
    return _table(head, rows, left=1) + f'<p class="note"><span class="paperkey">Paper (its real data, all directions pooled): {note_r}.</span></p>'


def _gaussian(stats: Mapping[str, Any]) -> str:
    """"x: mean 0.034, std 0.034; y: ..." from {"mean": {x, y, z}, "std": {x, y, z}} (or scalars)."""
    mean, std = stats.get("mean"), stats.get("std")
    if isinstance(mean, Mapping) and isinstance(std, Mapping):
        return "; ".join(f"{d}: mean {_num(mean[d])}, std {_num(std[d])}" for d in mean if d in std)
    if isinstance(mean, (list, tuple)) and isinstance(std, (list, tuple)):
        return "; ".join(f"{d}: mean {_num(m)}, std {_num(v)}" for d, m, v in zip("xyz", mean, std))
    return f"mean {mean}, std {std}"


def _kv(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="scroll"><table class="kv"><tbody>{body}</tbody></table></div>'


def _write_reports(out: Path, run: dict[str, Any]) -> Path:
    interp = _read_json(out / "interpolation" / "interpolation_metrics.json")
    phase = _read_json(out / "phase" / "evaluate_phase.json")
    twins = _twin_results(out, run["settings"]["twin_ks"])
    s = run["settings"]
    results = interp["results"]
    example = run["example_case"]
    env = run["environment"]
    models = run["models"]

    # headline numbers, all read from the JSON results above
    cards = []
    dice_K = str(max(int(k) for k in results))
    if "hdl" in results[dice_K]:
        dice = results[dice_K]["hdl"]["dice"]
        paper = f"paper {PAPER_DICE_K6:.2f} at K = 6, its real data" if dice_K == "6" else "paper: 0.92 at K = 6"
        cards.append((f"{_num(dice['mean'])}", f"HDL LV-myocardium Dice at K = {dice_K} (mean of {len(dice['values'])} test cases)", paper))
    for K in sorted(phase["pearson_r"], key=int):
        r = phase["pearson_r"][K]["proposed"]["pooled"]["all"]
        from hdl_monai.evaluate_phase import PAPER_PEARSON_R

        paper = f"paper {PAPER_PEARSON_R[int(K)]:.2f}, its real data" if int(K) in PAPER_PEARSON_R else ""
        cards.append((_num(r), f"twin vs real velocity curves, Pearson r, K = {K}", paper))
    truth_real = (phase.get("pearson_r_truth") or {}).get("real")
    if truth_real:
        cards.append((_num(truth_real["pooled"]["all"]), "real (noisy) phase vs ground-truth velocity, Pearson r", "noise floor of the phantom"))
    cards_html = '<div class="cards">' + "".join(
        f'<div class="card"><div class="big">{_e(b)}</div><div class="lab">{_e(l)}</div><div class="pp">{_e(p)}</div></div>'
        for b, l, p in cards) + "</div>"

    mi, mp = models.get("interpolation", {}), models["phase"]
    settings_rows = [
        ("phantom", f"{s['subjects']} subjects × {s['slices']} slices × {s['frames']} frames, {s['size']}×{s['size']} px, "
                    f"seed {s['seed']} (<code>phantom/</code>), validated"),
        ("test split", f"{len(run['test_cases'])} case(s): " + ", ".join(f"<code>{_e(Path(c).name)}</code>" for c in run["test_cases"])),
        ("example case (figures)", f"<code>{_e(example)}</code>"),
        ("twin K", ", ".join(map(str, s["twin_ks"]))),
        ("Table III / Fig. 10 K", ", ".join(map(str, s["interpolation_ks"])) + "; methods " + ", ".join(INTERPOLATION_METHODS)),
        ("Tables I, II K", ", ".join(map(str, s["phase_ks"]))),
        ("interpolation model", f"<code>{_e(mi.get('path'))}</code>: {_e(mi.get('method'))}, channels {_e(mi.get('channels'))}, "
                                f"ROI {_e(mi.get('roi_size'))}, K range {_e(mi.get('K_range'))}, {mi.get('parameters', 0):,} parameters, "
                                f"file dated {_e(mi.get('modified'))}"),
        ("phase model", f"<code>{_e(mp['path'])}</code>: scheme {_e(mp['scheme'])}, channels {_e(mp['channels'])}, ROI {_e(mp['roi_size'])}, "
                        f"{mp['parameters']:,} parameters, background Gaussian (normalised phase) {_e(_gaussian(mp['background']))}, "
                        f"file dated {_e(mp['modified'])}"),
        ("velocity", f"myocardium border excluded: {s['exclude_border_px']} px; phase seed {s['seed']}; device {_e(s['device'])}"),
        ("software", f"hdl-monai {_e(env['hdl_monai'])}, Python {_e(env['python'])}, PyTorch {_e(env['torch'])}, "
                     f"MONAI {_e(env['monai'])}, NumPy {_e(env['numpy'])}"),
        ("machine", f"{_e(env['cpu'])}, {env['cpu_cores']} cores ({env['torch_threads']} torch threads), {_e(env['memory'])}, "
                    f"CUDA {'yes' if env['cuda'] else 'no'}; {_e(env['platform'])}"),
        ("run", f"{_e(env['date'])}"),
    ]
    timing_rows = [("", [name, _num(sec, 1)]) for name, sec in run["timings_s"].items()]
    timing_rows.append(("sep", ["total before the report", _num(run["total_before_report_s"], 1)]))

    fig5 = run["figures"]["error_maps"]
    fig6 = run["figures"].get("overlays")
    phase_dir = "phase"
    figs = {
        "fig10": "interpolation/metrics_vs_k.png",
        "fig7": f"{phase_dir}/phase_examples_{example}.png",
        "fig8": f"{phase_dir}/velocity_boxplots.png",
        "fig9": f"{phase_dir}/velocity_curves_{example}.png",
    }
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>hdl-monai demo report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>hdl-monai demo: the HDL digital twin on a phantom</h1>",
        f"<p class='sub'>Down-sampled magnitude cine → temporal interpolation (multi-head multi-tail R2U-Net) → phase "
        f"synthesis (pix2pix, foreground-background scheme) → 3-directional myocardial velocities, on the built-in phantom "
        f"with ground-truth velocities. Every number below was measured by this run (total "
        f"{_num(run['total_before_report_s'], 0)} s before this page). "
        f"<span class='paperkey'>Numbers in brown italics are the paper's (Xing et al., IEEE JBHI 2022), measured on "
        f"its real 3Dir MVM data; they are there for orientation, not as a target this phantom should reach.</span></p>",
        cards_html,
        "<h2>What was run</h2>",
        _kv(settings_rows),
        "<h3>Timings on this machine</h3>",
        _table(["step", "seconds"], timing_rows),
        "<h2>1. The digital twin: velocities vs real phase and vs ground truth</h2>",
        "<p>For each K, every test case is down-sampled (frames 0, K+1, 2(K+1), … kept), rebuilt by the HDL interpolation "
        "network, given synthetic phase by the phase model and assessed (<code>twin/K*/</code>). Pearson r of the global "
        "myocardial velocity curves, every test case's curve concatenated (pooled), against the curves of the real "
        "(noisy) phase and of the phantom's ground-truth velocity.</p>",
        _twin_table(twins),
        "<h2>2. Temporal interpolation (Table III, Fig. 5, 6, 10)</h2>",
        "<p>Interpolated frames only; magnitude normalised to [-1, 1] with the real series' scale (data range 2); "
        "MSEW1/MSEW2 weight the padded LV region / the foreground by 1 and the rest by 0.1; Dice on the LV myocardium. "
        "Mean (std) over the test cases; <b>bold</b>: the best of our three methods at that K. "
        "<span class='paperkey'>Paper rows: HDL (\"Ours\") in the paper's Table III, on its validation set; its PSNR "
        "(~75 dB) is on an unstated scale and cannot be compared with ours.</span></p>",
        _table3(results),
        _figure(figs["fig10"], "Fig. 10 layout: each metric against K for the HDL network and the two classical baselines "
                "(mean ± std over the test cases)."),
        _figure(fig5["file"], f"Fig. 5 layout: |HDL interpolated − real| normalised magnitude of <code>{_e(example)}</code> "
                f"for K = {', '.join(fig5['mae'])}, tau = 0 (frames 1..K rebuilt from frames 0 and K+1, shown blue), cropped to the "
                f"heart; shared colour scale 0 to {fig5['vmax']:.2f} (99.9th percentile of the errors shown; the data range is 2); "
                f"in each panel the mean absolute error over the whole image."),
    ]
    if fig6:
        dice_text = "; ".join(f"K = {K} (t = {fig6['frames'][K]}): " + ", ".join(f"{m} {_num(v)}" for m, v in d.items())
                              for K, d in fig6["dice"].items())
        parts.append(_figure(fig6["file"], f"Fig. 6 layout: LV myocardium of <code>{_e(example)}</code> predicted by each method "
                             f"(red) vs ground truth (green) on that method's interpolated magnitude, disagreement filled yellow, "
                             f"cropped to the heart, at the middle frame of the first gap. Dice of the frame shown: {_e(dice_text)}. "
                             f"The baselines carry labels by the same interpolation as the magnitude."))
    t1_note = ("Synthetic vs real phase on the normalised scale p/2048 − 1 (data range 2), every frame and direction; "
               "MSEW1 weights the padded real LV region, MSEW2 the real foreground (1 inside, 0.1 outside). Mean (std) over "
               "the test cases. K = 0 uses the real magnitude, K &gt; 0 the HDL-interpolated one.")
    parts += [
        "<h2>3. Phase synthesis (Table I, Fig. 4, 7)</h2>",
        f"<p>{t1_note} <span class='paperkey'>Paper rows: its Table I on its test set (vanilla pix2pix is shown only "
        "where we ran it too); its PSNR (~42 dB) is on an unstated scale.</span></p>",
        _table1(phase["table1"]),
        _figure(figs["fig7"], f"Fig. 7 layout: real phase x, y, z of <code>{_e(example)}</code> at t = 1 (first column), then for "
                "each K the synthetic phase and its absolute error (normalised)."),
    ]
    if run["background_histogram"]:
        parts.append(_figure("figures/background_histogram.png",
                             "Fig. 4 layout: background phase values of the phase model's training set with the fitted "
                             "Gaussian that the foreground-background scheme samples (from the model folder, made at training "
                             "time, not by this run).", "half"))
    else:
        parts.append("<p class='note'>Fig. 4 (background histogram): the phase model folder has no "
                     "<code>background_histogram.png</code>.</p>")
    parts += [
        "<h2>4. Velocity assessment (Table II, Fig. 8, 9)</h2>",
        "<p>Global radial / circumferential / longitudinal velocity of the LV myocardium; PSV and PDV are peak |v| in systole "
        "and diastole, TPSV/TPDV their times in frames normalised to 50 per cycle (a.u.). Columns: the phantom's ground-truth "
        "velocity, the real (noisy) phase, and the twins (proposed phase model; K &gt; 0 with the interpolated magnitude and "
        "labels). Mean (std) over the test cases. <span class='paperkey'>The paper's Table II is not repeated here: the "
        "layout of its numbers in the available text is ambiguous.</span></p>",
        _table2(phase["table2"]),
        "<h3>Pearson r of the global velocity curves, twin vs real phase</h3>",
        _pearson_table(phase),
        _figure(figs["fig8"], "Fig. 8 layout: velocity indices of the real phase and of the twins per K (box over the test cases; "
                "with few test cases the boxes are only a few points).", "wide"),
        _figure(figs["fig9"], f"Fig. 9 layout: global velocity curves of <code>{_e(example)}</code>: real phase, ground truth and "
                "the twins at each K (where the real phase matches the ground truth, its curve lies under it); r of each twin "
                "against the real curve in the panel titles; grey band: systole."),
    ]
    if phase.get("velocity_failures"):
        parts.append("<p class='note'>Twins whose velocity could not be assessed (left out above): "
                     + "; ".join(_e(f.splitlines()[0]) for f in phase["velocity_failures"]) + "</p>")
    parts += [
        "<h2>Caveats</h2><ul>",
        "<li>The data are a physics-based phantom, not patients; the test split is small "
        f"({len(run['test_cases'])} case(s)), so a std over cases is rough.</li>",
        "<li>The models are the ones listed above (small networks trained on a CPU unless you replaced them); the paper "
        "trained paper-size networks on a GPU on real data.</li>",
        "<li>The same seed drives every phase synthesis, so the twin step and Table II share their twins.</li>",
        f"<li>Subject check against the phantom the shipped models are trained on: {_e(run['subject_check']['text'])}</li>",
        "</ul>",
        "<h2>Files</h2><ul>",
        "<li><code>phantom/</code>: the generated dataset (case format); <code>twin/K*/</code>: the twins, their velocity "
        "assessment and comparisons (<code>twin.md</code>, <code>compare/comparison.md</code>, "
        "<code>compare_truth/comparison.md</code>)</li>",
        "<li><code>interpolation/interpolation_metrics.json</code> (Table III), <code>phase/evaluate_phase.json</code> "
        "(Tables I, II, r, per case), <code>figures/</code>, <code>demo.json</code> (settings, timings, figure numbers)</li>",
        "</ul></main></body></html>",
    ]
    page = atomic_write_text(out / "report.html", "\n".join(parts))
    atomic_write_text(out / "report.md", _report_md(run, results, phase, twins))
    return page


def _report_md(run: Mapping[str, Any], results: Mapping[str, Any], phase: Mapping[str, Any], twins: Mapping[str, Any]) -> str:
    from hdl_monai.evaluate import markdown_table
    from hdl_monai.evaluate_phase import PAPER_PEARSON_R, table1_markdown

    s = run["settings"]
    lines = [
        "# hdl-monai demo report (summary)",
        "",
        f"Phantom {s['subjects']} subjects x {s['slices']} slices x {s['frames']} frames, {s['size']} px, seed {s['seed']}; "
        f"test split {len(run['test_cases'])} case(s). Full report with figures: `report.html`. Every number here is this run's.",
        "",
        "## Twin velocity curves, Pearson r (pooled over test cases, all directions)",
        "",
        "| K | twin vs real phase | paper (its real data) |",
        "|---|---|---|",
        *[f"| {K} | {_num(r['proposed']['pooled']['all'])} | {PAPER_PEARSON_R.get(int(K), '-')} |" for K, r in sorted(phase["pearson_r"].items(), key=lambda kv: int(kv[0]))],
        "",
        "Twin vs ground truth, pooled r per direction (radial / circumferential / longitudinal): "
        + "; ".join(f"K = {K}: " + (" / ".join(_num(t["vs_truth"]["pooled_pearson_r"][d]) for d in _DIRS) if t["vs_truth"] else "n/a")
                    for K, t in twins.items()) + ".",
        "",
        "## Table III (interpolation, test split)",
        "",
        markdown_table(results),
        "## Table I (phase synthesis, test split)",
        "",
        table1_markdown(phase["table1"]),
        "## Timings (s)",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in run["timings_s"].items()],
        "",
    ]
    return "\n".join(lines)

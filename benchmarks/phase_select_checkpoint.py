"""Pick a phase-synthesis checkpoint on what matters: velocity curves against the phantom's ground truth.

The bundle keeps `best_generator.pt` by the myocardium's MSE on sampled frames; GAN training wobbles, and
that MSE does not rank checkpoints by the velocities they produce. This script synthesises the phase of
whole validation cases with each given checkpoint's generator (the foreground-background scheme, the run's
background statistics), assesses the velocities and reports, per checkpoint, the Pearson r of the global
radial / circumferential / longitudinal curves against the ground truth (mean over cases) and the
myocardial L1 of the normalised phase (against predicting zero velocity).

    python benchmarks/phase_select_checkpoint.py RUN/checkpoints/checkpoint_epoch=70.pt ... \\
        --dataset data/phantom20 --stats RUN/background_stats.json [--cases 6] [--out benchmarks/results]

The generator settings must be the run's (defaults: the shipped 0.5.0 model's). Writes
phase_checkpoint_selection.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.data.case import load_case
from hdl_monai.data.loading import datalist_items
from hdl_monai.networks.r2unet import R2UNet
from hdl_monai.phase_synthesis import load_background_stats, load_phase_model, save_phase_model, synthesize_phase
from hdl_monai.velocity.agreement import pearson_r
from hdl_monai.velocity.assessment import assess_case

DIRECTIONS = ("radial", "circumferential", "longitudinal")


def score(model_dir: Path, cases: list) -> dict:
    """Mean curve r per direction vs ground truth, and myocardial L1 (model, zero predictor)."""
    model = load_phase_model(model_dir)
    r = {d: [] for d in DIRECTIONS}
    l1_model, l1_zero = [], []
    for case in cases:
        synthetic = synthesize_phase(case, model)
        myo = case.label == 1
        for d in "xyz":
            real = case.phase[d] / 2048.0 - 1.0
            l1_model.append(float(np.abs(real - (synthetic[d] / 2048.0 - 1.0))[myo].mean()))
            l1_zero.append(float(np.abs(real)[myo].mean()))
        twin = copy.copy(case)
        twin.phase = synthetic
        got, truth = assess_case(twin).curves_mm_s, assess_case(case, source="velocity").curves_mm_s
        for d in DIRECTIONS:
            r[d].append(pearson_r(got[d], truth[d]))
    out = {f"r_{d}": float(np.mean(v)) for d, v in r.items()}
    out["r_mean"] = float(np.mean([out[f"r_{d}"] for d in DIRECTIONS]))
    out.update(l1_myocardium=float(np.mean(l1_model)), l1_myocardium_zero=float(np.mean(l1_zero)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path, help="bundle checkpoints (with a 'generator' entry)")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--stats", type=Path, required=True, help="the run's background_stats.json")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--norm", default="instance")
    parser.add_argument("--roi", type=int, default=128)
    parser.add_argument("--no-cycle", action="store_true")
    parser.add_argument("--no-motion", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    cycle, motion = not args.no_cycle, not args.no_motion
    config = {"spatial_dims": 2, "in_channels": 3 + 2 * cycle + 2 * motion, "out_channels": 3,
              "channels": args.channels, "recurrence": 2, "out_act": "tanh", "norm": args.norm}
    stats = load_background_stats(args.stats)
    items = datalist_items(args.dataset, args.split)[: args.cases]
    cases = [load_case(item["case"], skip=()) for item in items]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt in args.checkpoints:
            generator = R2UNet(**config)
            generator.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["generator"])
            model_dir = Path(tmp) / ckpt.stem
            save_phase_model(model_dir, generator, config, args.roi, background_stats=stats, cycle=cycle, motion=motion)
            rows[str(ckpt)] = score(model_dir, cases)
            print(ckpt.name, json.dumps({k: round(v, 4) for k, v in rows[str(ckpt)].items()}), flush=True)
    best = max(rows, key=lambda k: rows[k]["r_mean"])
    payload = {"dataset": str(args.dataset), "split": args.split, "cases": [c.case_id for c in cases],
               "generator_config": config, "cycle": cycle, "motion": motion, "checkpoints": rows, "best_by_r_mean": best}
    atomic_write_json(args.out / "phase_checkpoint_selection.json", payload, overwrite=True)
    lines = ["# Phase checkpoint selection (velocity curves vs ground truth)", "",
             f"Dataset `{args.dataset}`, split `{args.split}`, {len(cases)} cases; r = Pearson r of the global curves "
             "vs ground truth, mean over cases; L1 = myocardial L1 of the normalised phase (zero predictor beside it).", "",
             "| checkpoint | r radial | r circumferential | r longitudinal | r mean | L1 myocardium (zero) |", "|---|---|---|---|---|---|"]
    for name, v in rows.items():
        mark = " (best)" if name == best else ""
        lines.append(f"| `{Path(name).name}`{mark} | {v['r_radial']:.3f} | {v['r_circumferential']:.3f} | "
                     f"{v['r_longitudinal']:.3f} | {v['r_mean']:.3f} | {v['l1_myocardium']:.4f} ({v['l1_myocardium_zero']:.4f}) |")
    lines += ["", "Produced by `python benchmarks/phase_select_checkpoint.py`.", ""]
    atomic_write_text(args.out / "phase_checkpoint_selection.md", "\n".join(lines), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Pick a phase-synthesis checkpoint on what matters: velocity curves against the phantom's ground truth.

The bundle keeps `best_generator.pt` by the myocardium's MSE on sampled frames; GAN training wobbles, and
that MSE does not rank checkpoints by the velocities they produce. This script synthesises the phase of
whole validation cases with each given checkpoint's generator (the foreground-background scheme, the run's
background statistics), assesses the velocities and reports, per checkpoint and per K, the Pearson r of the
global radial / circumferential / longitudinal curves against the ground truth (mean over cases), the pooled
r (every curve of every case and direction concatenated, the paper's single number) and the myocardial L1 of
the normalised phase (against predicting zero velocity). For K > 0 the generator sees the magnitude rebuilt
by the HDL interpolation model from every (K+1)-th frame, as in the digital twin, and the curves use the
twin's labels. The best checkpoint has the highest pooled r averaged over the Ks.

    python benchmarks/phase_select_checkpoint.py RUN/checkpoints/checkpoint_epoch=70.pt ... \\
        --dataset data/phantom20 --stats RUN/background_stats.json [--k 0,3,6] [--cases 6] \\
        [--name phase_checkpoint_selection] [--out benchmarks/results]

The generator settings must be the run's (defaults: the shipped model's). Writes NAME.json and NAME.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.data.case import load_case
from hdl_monai.data.loading import datalist_items
from hdl_monai.networks.r2unet import R2UNet
from hdl_monai.phase_synthesis import load_background_stats, load_phase_model, save_phase_model
from hdl_monai.phase_validation import twin_inputs, velocity_agreement


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
    parser.add_argument("--k", default="0", help="comma-separated K values (0 = real magnitude)")
    parser.add_argument("--interpolation-model", default=None, help="HDL interpolation model.pt (default: shipped)")
    parser.add_argument("--name", default="phase_checkpoint_selection", help="output file stem")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    cycle, motion = not args.no_cycle, not args.no_motion
    config = {"spatial_dims": 2, "in_channels": 3 + 2 * cycle + 2 * motion, "out_channels": 3,
              "channels": args.channels, "recurrence": 2, "out_act": "tanh", "norm": args.norm}
    stats = load_background_stats(args.stats)
    items = datalist_items(args.dataset, args.split)[: args.cases]
    cases = [load_case(item["case"], skip=()) for item in items]
    ks = [int(k) for k in str(args.k).split(",")]
    inputs = {K: twin_inputs(cases, K, args.interpolation_model) for K in ks}
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt in args.checkpoints:
            generator = R2UNet(**config)
            generator.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["generator"])
            model_dir = Path(tmp) / ckpt.stem
            save_phase_model(model_dir, generator, config, args.roi, background_stats=stats, cycle=cycle, motion=motion)
            model = load_phase_model(model_dir)
            rows[str(ckpt)] = {str(K): velocity_agreement(model, inputs[K], reference="truth") for K in ks}
            print(ckpt.name, json.dumps({K: {k: round(float(v), 4) for k, v in row.items()} for K, row in rows[str(ckpt)].items()}),
                  flush=True)
    pooled = {name: float(np.mean([row[str(K)]["r_pooled"] for K in ks])) for name, row in rows.items()}
    best = max(rows, key=pooled.get)
    payload = {"dataset": str(args.dataset), "split": args.split, "cases": [c.case_id for c in cases], "K": ks,
               "interpolation_model": args.interpolation_model or "shipped", "generator_config": config,
               "cycle": cycle, "motion": motion, "checkpoints": rows, "r_pooled_mean_over_K": pooled,
               "best_by_r_pooled": best}
    atomic_write_json(args.out / f"{args.name}.json", payload, overwrite=True)
    lines = ["# Phase checkpoint selection (velocity curves vs ground truth)", "",
             f"Dataset `{args.dataset}`, split `{args.split}`, {len(cases)} cases, K = {', '.join(map(str, ks))} "
             "(K > 0: magnitude rebuilt by the HDL interpolation model from every (K+1)-th frame); r = Pearson r of "
             "the global curves vs ground truth, per direction the mean over cases, pooled over every curve of every "
             "case and direction; L1 = myocardial L1 of the normalised phase (zero predictor beside it). Best = highest "
             "pooled r averaged over the Ks. Gross % = share of the still tissue values inside the ROI off by more "
             "than half of venc (painted motion, e.g. a line along the crop edge; above 0.1 % evaluate-phase warns).", "",
             "| checkpoint | K | r radial | r circumferential | r longitudinal | r mean | r pooled | L1 myocardium (zero) "
             "| gross % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        mark = " (best)" if name == best else ""
        for K in ks:
            v = row[str(K)]
            lines.append(f"| `{Path(name).name}`{mark} | {K} | {v['r_radial']:.3f} | {v['r_circumferential']:.3f} | "
                         f"{v['r_longitudinal']:.3f} | {v['r_mean']:.3f} | {v['r_pooled']:.3f} | "
                         f"{v['l1_myocardium']:.4f} ({v['l1_myocardium_zero']:.4f}) | {100 * v['gross_share_tissue']:.3f} |")
    lines += ["", "Produced by `python benchmarks/phase_select_checkpoint.py`.", ""]
    atomic_write_text(args.out / f"{args.name}.md", "\n".join(lines), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

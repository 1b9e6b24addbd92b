"""CPU speed of the temporal-interpolation network: training samples/s and whole-case inference time.

Training: the bundle's own data pipeline and SupervisedTrainer (configs/train.json) at the small CPU
config - channels [8, 16, 32, 64], ROI 128, 8 samples per iteration (1 case x 8 samples) - for
``--iterations`` iterations after ``--warmup`` ones; samples/s = samples / wall time of the timed
iterations (data loading included, validation and checkpoints excluded).
Inference: ``interpolate_with_model`` on one 50-frame 128x128 phantom case at K = 1 and K = 6 (25 and
42 predicted frames), model loaded once, best of ``--repeats``.

    python benchmarks/interpolation_speed.py [--iterations 20] [--out benchmarks/results]
    python benchmarks/interpolation_speed.py --estimate optical_flow   # the hybrid skip (shipped 0.5.0)

Writes interpolation_speed.json and interpolation_speed.md (with ``--estimate optical_flow``:
interpolation_speed_optical_flow.*, the Horn-Schunck guess computed per training sample and per kept
pair at inference, included in the timings).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

import monai
from hdl_monai.data import load_case
from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.data.loading import datalist_items
from hdl_monai.data.phantom import generate_phantom
from hdl_monai.engines.interpolation import interpolate_with_model, load_interpolation_model

CONFIGS = Path(__file__).resolve().parents[1] / "bundle" / "hdl_temporal_interpolation" / "configs"
SMALL = {"channels": [8, 16, 32, 64], "roi_size": [128, 128], "batch_size": 1, "samples_per_case": 8, "recurrence": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--estimate", choices=["optical_flow"], help="train and run the hybrid-skip network")
    args = parser.parse_args()
    config = {**SMALL, **({"estimate": args.estimate} if args.estimate else {})}
    suffix = f"_{args.estimate}" if args.estimate else ""
    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "phantom", Path(tmp) / "run"
        generate_phantom(data, subjects=5, slices=2, size=128, frames=50, seed=0, progress=False)
        total = args.warmup + args.iterations
        n_train = len(datalist_items(data, "training"))
        epochs = -(-total // n_train)
        wf = ConfigWorkflow(
            config_file=str(CONFIGS / "train.json"), meta_file=str(CONFIGS / "metadata.json"), logging_file=False,
            workflow_type=None, dataset_dir=str(data), output_dir=str(run), max_epochs=epochs, progress=False,
            val_interval=10_000, device="cpu", amp=False, **config,
        )
        wf.initialize()
        trainer = wf.parser.get_parsed_content("train#trainer")
        stamps: list[float] = []
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: stamps.append(time.perf_counter()))
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=total), lambda e: e.terminate())
        wf.run()
        timed = stamps[args.warmup :]
        seconds = timed[-1] - stamps[args.warmup - 1]
        samples = (len(timed)) * SMALL["batch_size"] * SMALL["samples_per_case"]
        train = {"iterations": len(timed), "samples": samples, "seconds": seconds, "samples_per_s": samples / seconds,
                 "seconds_per_iteration": seconds / len(timed)}

        model = load_interpolation_model(run / "model.pt")
        case = load_case(datalist_items(data, "test")[0]["case"])
        inference = {}
        for K in (1, 6):
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                interpolate_with_model(case, K, model, batch_size=16)
                best = min(best, time.perf_counter() - start)
            inference[str(K)] = {"frames_predicted": 50 - len(range(0, 50, K + 1)), "seconds": best}
    params = sum(p.numel() for p in model.network.parameters())
    payload = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "torch": torch.__version__, "monai": monai.__version__},
        "config": {**config, "samples_per_iteration": SMALL["batch_size"] * SMALL["samples_per_case"], "method": "hdl",
                   "parameters": params},
        "training": train,
        "inference_case": {"size": [128, 128], "frames": 50, "roi": [128, 128], "batch_size": 16, "by_K": inference},
        "note": "CPU only; timings vary with machine load (another process may share the cores).",
    }
    out = Path(args.out)
    atomic_write_json(out / f"interpolation_speed{suffix}.json", payload, overwrite=True)
    lines = [
        "# Temporal interpolation speed (CPU)",
        "",
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads), MONAI {monai.__version__}. "
        f"Network: multi-head multi-tail R2U-Net, channels {SMALL['channels']}, recurrence {SMALL['recurrence']}, "
        f"{params:,} parameters, ROI {SMALL['roi_size'][0]}x{SMALL['roi_size'][1]}"
        + (f", input-to-output skip from the {args.estimate} guess (computed inside the timings)." if args.estimate else "."),
        "",
        "| measure | value |",
        "|---|---|",
        f"| training, samples/s ({SMALL['batch_size'] * SMALL['samples_per_case']} samples per iteration) | {train['samples_per_s']:.2f} |",
        f"| training, s per iteration (mean of {train['iterations']}) | {train['seconds_per_iteration']:.2f} |",
    ]
    for K, v in inference.items():
        lines.append(f"| inference, one 50-frame 128x128 case, K={K} ({v['frames_predicted']} frames predicted), s | {v['seconds']:.2f} |")
    command = "python benchmarks/interpolation_speed.py" + (f" --estimate {args.estimate}" if args.estimate else "")
    lines += ["", f"Produced by `{command}`; " + payload["note"], ""]
    atomic_write_text(out / f"interpolation_speed{suffix}.md", "\n".join(lines), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

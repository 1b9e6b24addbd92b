"""CPU speed of pix2pix phase-synthesis training (generator + discriminator step) and of inference.

Times :class:`hdl_monai.engines.pix2pix.Pix2PixTrainer` iterations (one generator step and one
discriminator step each) on random normalised batches, at the small CPU configuration of the bundle
(generator channels [8, 16, 32, 64], ROI 128, batch 4, discriminator channels 8) by default, after
``--warmup`` untimed iterations; and generator-only inference (no grad, eval mode) on the same batch.
Data loading is not included (the bundle caches the preprocessed cases).

Writes benchmarks/results/phase_speed.json and .md. Usage::

    python benchmarks/phase_speed.py [--channels 8 16 32 64 --roi 128 --batch 4 --iterations 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _batch(batch: int, roi: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(batch, 3, roi, roi, generator=g) * 2 - 1
    foreground = (magnitude[:, 1:2] > -0.95).float()
    return {
        "magnitude_triplet": magnitude,
        "phase": torch.rand(batch, 3, roi, roi, generator=g) * 2 - 1,
        "w1": torch.where(torch.rand(batch, 1, roi, roi, generator=g) > 0.8, 1.0, 0.1),
        "w2": torch.where(foreground > 0, 1.0, 0.1),
        "foreground": foreground,
    }


def run(channels: list[int], roi: int, batch: int, d_channels: int, iterations: int, warmup: int, seed: int) -> dict:
    from hdl_monai.engines.pix2pix import Pix2PixTrainer, build_patch_discriminator
    from hdl_monai.networks.r2unet import R2UNet

    torch.manual_seed(seed)
    G = R2UNet(2, 3, 3, channels=channels, recurrence=2, out_act="tanh")
    D = build_patch_discriminator(in_channels=6, channels=d_channels)
    data = _batch(batch, roi, seed)
    trainer = Pix2PixTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=[data] * (warmup + iterations),
        generator=G,
        discriminator=D,
        g_optimizer=torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.5, 0.999)),
        d_optimizer=torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.5, 0.999)),
    )
    stamps: list[float] = []
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    trainer.run()
    times = [b - a for a, b in zip([start] + stamps[:-1], stamps)][warmup:]
    train_s = sum(times)
    G.eval()
    with torch.no_grad():
        G(data["magnitude_triplet"])
        t0 = time.perf_counter()
        for _ in range(iterations):
            G(data["magnitude_triplet"])
        infer_s = time.perf_counter() - t0
    return {
        "benchmark": "phase_speed",
        "config": {"generator_channels": channels, "roi": roi, "batch": batch, "discriminator_channels": d_channels,
                   "discriminator_grid": [roi // 16, roi // 16], "iterations": iterations, "warmup": warmup},
        "parameters": {"generator": sum(p.numel() for p in G.parameters()),
                       "discriminator": sum(p.numel() for p in D.parameters())},
        "train": {"seconds": train_s, "iterations_per_s": iterations / train_s,
                  "samples_per_s": iterations * batch / train_s, "ms_per_iteration": 1000 * train_s / iterations,
                  "slowest_ms": 1000 * max(times), "fastest_ms": 1000 * min(times)},
        "inference": {"seconds": infer_s, "frames_per_s": iterations * batch / infer_s},
        "machine": {
            "cpus": os.cpu_count(),
            "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def markdown(r: dict) -> str:
    c, t, i, m = r["config"], r["train"], r["inference"], r["machine"]
    return "\n".join(
        [
            "# Phase synthesis (pix2pix) speed on the CPU",
            "",
            f"Generator R2U-Net channels {c['generator_channels']} ({r['parameters']['generator']:,} parameters), "
            f"PatchGAN discriminator channels {c['discriminator_channels']} "
            f"({r['parameters']['discriminator']:,} parameters, {c['discriminator_grid'][0]}x{c['discriminator_grid'][1]} "
            f"score grid), ROI {c['roi']}x{c['roi']}, batch {c['batch']}; {c['iterations']} timed iterations after "
            f"{c['warmup']} warm-up; {m['cpus']} CPU(s) ({m['affinity_cpus']} usable, {m['torch_threads']} torch threads), "
            f"torch {m['torch']}, {r['date']}.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| training iterations/s (G step + D step) | {t['iterations_per_s']:.2f} |",
            f"| training ms/iteration (mean; fastest-slowest) | {t['ms_per_iteration']:.0f} ({t['fastest_ms']:.0f}-{t['slowest_ms']:.0f}) |",
            f"| training samples/s | {t['samples_per_s']:.1f} |",
            f"| inference frames/s (generator only, no grad) | {i['frames_per_s']:.1f} |",
            "",
            "Data loading is not timed (the bundle caches preprocessed cases). The paper size (channels "
            "64..1024, ROI 256, batch 12) is a GPU job; see docs/phase_synthesis.md.",
            "",
            "Reproduce: `python benchmarks/phase_speed.py`.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--roi", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--d-channels", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args.channels, args.roi, args.batch, args.d_channels, args.iterations, args.warmup, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phase_speed.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "phase_speed.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()

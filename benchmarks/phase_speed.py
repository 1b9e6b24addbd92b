"""Speed of pix2pix phase-synthesis training (generator + discriminator step) and of inference.

Times :class:`hdl_monai.engines.pix2pix.Pix2PixTrainer` iterations (one generator step and one
discriminator step each) on random normalised batches, after ``--warmup`` untimed iterations; and
generator-only inference (no grad, eval mode) on the same batch. Data loading is not included (the
bundle caches the preprocessed cases). On CUDA every timestamp waits for the device (synchronize).

Presets: ``small`` (default) is the bundle's CPU configuration (generator channels [8, 16, 32, 64],
ROI 128, batch 4, discriminator channels 8); ``paper`` is the paper's size (channels 64..1024, ROI 256,
batch 12, discriminator channels 64), a GPU job. Explicit flags override the preset.

Writes benchmarks/results/phase_speed.{json,md} on the CPU with the small preset, otherwise
phase_speed_<device>_<preset>[_amp].{json,md}, so a GPU run never overwrites the CPU result. Usage::

    python benchmarks/phase_speed.py                                  # CPU, small
    python benchmarks/phase_speed.py --device cuda --preset paper --amp
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from hdl_monai.data.atomic import atomic_write_json, atomic_write_text

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


PRESETS = {
    "small": {"channels": [8, 16, 32, 64], "roi": 128, "batch": 4, "d_channels": 8},
    "paper": {"channels": [64, 128, 256, 512, 1024], "roi": 256, "batch": 12, "d_channels": 64},
}


def run(channels: list[int], roi: int, batch: int, d_channels: int, iterations: int, warmup: int, seed: int,
        device: str = "cpu", amp: bool = False) -> dict:
    from hdl_monai.engines.pix2pix import Pix2PixTrainer, build_patch_discriminator
    from hdl_monai.networks.r2unet import R2UNet

    torch.manual_seed(seed)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    G = R2UNet(2, 3, 3, channels=channels, recurrence=2, out_act="tanh").to(dev)
    D = build_patch_discriminator(in_channels=6, channels=d_channels).to(dev)
    data = {k: v.to(dev) for k, v in _batch(batch, roi, seed).items()}

    def now() -> float:
        if cuda:
            torch.cuda.synchronize(dev)
        return time.perf_counter()

    trainer = Pix2PixTrainer(
        device=dev,
        amp=amp,
        max_epochs=1,
        train_data_loader=[data] * (warmup + iterations),
        generator=G,
        discriminator=D,
        g_optimizer=torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.5, 0.999)),
        d_optimizer=torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.5, 0.999)),
    )
    stamps: list[float] = []
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: stamps.append(now()))
    start = now()
    trainer.run()
    times = [b - a for a, b in zip([start] + stamps[:-1], stamps)][warmup:]
    train_s = sum(times)
    G.eval()
    with torch.no_grad(), torch.autocast(dev.type, enabled=amp and cuda):
        G(data["magnitude_triplet"])
        t0 = now()
        for _ in range(iterations):
            G(data["magnitude_triplet"])
        infer_s = now() - t0
    return {
        "benchmark": "phase_speed",
        "config": {"generator_channels": channels, "roi": roi, "batch": batch, "discriminator_channels": d_channels,
                   "discriminator_grid": [roi // 16, roi // 16], "iterations": iterations, "warmup": warmup,
                   "device": dev.type, "amp": bool(trainer.uses_amp)},
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
            "gpu": torch.cuda.get_device_name(dev) if cuda else None,
            "gpu_peak_memory_gib": torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else None,
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def markdown(r: dict) -> str:
    c, t, i, m = r["config"], r["train"], r["inference"], r["machine"]
    return "\n".join(
        [
            f"# Phase synthesis (pix2pix) speed on {'the CPU' if c.get('device', 'cpu') == 'cpu' else m['gpu']}",
            "",
            f"Generator R2U-Net channels {c['generator_channels']} ({r['parameters']['generator']:,} parameters), "
            f"PatchGAN discriminator channels {c['discriminator_channels']} "
            f"({r['parameters']['discriminator']:,} parameters, {c['discriminator_grid'][0]}x{c['discriminator_grid'][1]} "
            f"score grid), ROI {c['roi']}x{c['roi']}, batch {c['batch']}; {c['iterations']} timed iterations after "
            f"{c['warmup']} warm-up; {m['cpus']} CPU(s) ({m['affinity_cpus']} usable, {m['torch_threads']} torch threads), "
            + (f"{m['gpu']} ({'mixed precision' if c['amp'] else 'float32'}, peak GPU memory "
               f"{m['gpu_peak_memory_gib']:.1f} GiB), " if m.get("gpu") else "")
            + f"torch {m['torch']}, {r['date']}.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| training iterations/s (G step + D step) | {t['iterations_per_s']:.2f} |",
            f"| training ms/iteration (mean; fastest-slowest) | {t['ms_per_iteration']:.0f} ({t['fastest_ms']:.0f}-{t['slowest_ms']:.0f}) |",
            f"| training samples/s | {t['samples_per_s']:.1f} |",
            f"| inference frames/s (generator only, no grad) | {i['frames_per_s']:.1f} |",
            "",
            "Data loading is not timed (the bundle caches preprocessed cases). The paper size (channels "
            "64..1024, ROI 256, batch 12) is a GPU job: `--device cuda --preset paper --amp`; see docs/phase_synthesis.md.",
            "",
            f"Reproduce: `python benchmarks/phase_speed.py {r.get('command', '')}`.".replace(" `.", "`."),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--channels", type=int, nargs="+", help="generator channels (default: the preset's)")
    parser.add_argument("--roi", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--d-channels", type=int)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    if args.amp and not args.device.startswith("cuda"):
        parser.error("--amp needs a CUDA device (mixed precision is CUDA-only here)")
    config = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in PRESETS[args.preset].items()}
    result = run(config["channels"], config["roi"], config["batch"], config["d_channels"], args.iterations,
                 args.warmup, args.seed, device=args.device, amp=args.amp)
    result["preset"] = args.preset
    result["command"] = " ".join(sys.argv[1:])
    name = "phase_speed" if (args.device == "cpu" and args.preset == "small") else \
        f"phase_speed_{args.device.replace(':', '')}_{args.preset}" + ("_amp" if args.amp else "")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / f"{name}.json", result, overwrite=True)
    atomic_write_text(args.out / f"{name}.md", markdown(result), overwrite=True)
    print(markdown(result))


if __name__ == "__main__":
    main()

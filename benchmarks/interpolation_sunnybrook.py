"""Temporal interpolation on real cine (Sunnybrook, 3 patients): linear, optical flow, HDL, HDL fine-tuned.

For K = 1..3 on every contoured slice (20 frames per cycle): linear and Horn-Schunck interpolation, the
phantom-trained HDL model with zero mask channels (``hdl``) and with the ED myocardium mask in both mask
channels (``hdl_ed_mask``), and the same model fine-tuned leave-one-patient-out with zero masks for
``--steps`` Adam steps on the two other patients (``hdl_finetuned``). PSNR / SSIM on the interpolated
frames inside a ``--roi`` px box around the LV centroid (see ``hdl_monai.evaluate_real``).

    OMP_NUM_THREADS=1 python benchmarks/interpolation_sunnybrook.py [--model bundle/.../model.pt] \\
        [--data ../shared/data/sunnybrook] [--steps 200] [--ks 1 2 3] [--out benchmarks/results]

Writes interpolation_sunnybrook.json (per-slice rows, summaries, fine-tuning losses, machine), .md and
.png (PSNR / SSIM vs K). Wall time on 2 CPU cores: about 3 minutes per fold of fine-tuning at 200 steps
plus about 4 minutes of evaluation.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

import monai
from hdl_monai.baselines.optical_flow import TIMINGS
from hdl_monai.evaluate_real import REAL_METHODS, evaluate_sunnybrook, load_sunnybrook, write_report

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "bundle" / "hdl_temporal_interpolation" / "models" / "model.pt"
SUNNYBROOK = ROOT.parent / "shared" / "data" / "sunnybrook"


def _relative(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it (for the written command)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=SHIPPED, help="phantom-trained interpolation model.pt")
    parser.add_argument("--data", type=Path, default=SUNNYBROOK, help="the Sunnybrook subset (SCD* folders, contours/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--steps", type=int, default=200, help="fine-tuning steps per fold (bounds its wall time)")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(REAL_METHODS), choices=REAL_METHODS)
    parser.add_argument("--roi", type=int, default=96, help="evaluation ROI side, px, around the LV centroid")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing", choices=TIMINGS,
                        help="flow-guess timing of the hybrid model (default: learned only with a prior at 20 frames)")
    parser.add_argument("--max-seconds", type=float, help="optional wall-time cap per fold of fine-tuning")
    parser.add_argument("--save-models", type=Path, help="write the fine-tuned models here (finetuned_<patient>.pt)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    if not args.data.is_dir():
        print(f"Sunnybrook data not found at {args.data} (--data)", file=sys.stderr)
        return 2
    patients = load_sunnybrook(args.data)
    payload = evaluate_sunnybrook(
        patients, args.model, ks=args.ks, steps=args.steps, roi_size=args.roi, methods=args.methods,
        batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, max_seconds=args.max_seconds,
        save_models=args.save_models, timing=args.timing,
    )  # fmt: skip
    payload["protocol"]["model"] = _relative(args.model)
    payload["machine"] = {
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": "cpu",
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, "monai": monai.__version__,
    }  # fmt: skip
    omp = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    command = omp + "python " + " ".join(shlex.quote(a) for a in [_relative(Path(sys.argv[0])), *sys.argv[1:]])
    paths = write_report(payload, args.out, command=command)
    print(paths["md"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Make docs/figures/phase_window_shift.png: a generator's crop-edge line, with one window and with four.

The model is the proposed generator trained from scratch on the paper-background phantom with training
seed 2 (benchmarks/results/phase_table1_scratch_paper_background.md), which paints a line along one crop
edge in y; the case is the first test case of that phantom. Rows: phase y and its absolute error at one
frame; columns: real, one window (``window_shift`` 0), four blended windows (``window_shift`` 8).

Run: ``python docs/figures/phase_window_shift.py MODEL DATASET`` (e.g. ``runs/prop_s2/model.pt
data/phantom20g``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from hdl_monai.data.case import load_case  # noqa: E402
from hdl_monai.data.loading import datalist_items  # noqa: E402
from hdl_monai.phase_synthesis import load_phase_model, synthesize_phase  # noqa: E402

OUT = Path(__file__).resolve().parent / "phase_window_shift.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--frame", type=int, default=1)
    parser.add_argument("--direction", default="y")
    args = parser.parse_args()
    model = load_phase_model(args.model)
    case = load_case(datalist_items(args.dataset, "test")[0]["case"])
    d, t = args.direction, args.frame
    real = case.phase[d][..., t] / 2048.0 - 1.0
    shown = {"real": real}
    for shift, name in ((0, "one window"), (8, "four windows (window_shift 8)")):
        shown[name] = synthesize_phase(case, model, window_shift=shift)[d][..., t] / 2048.0 - 1.0
    fig = Figure(figsize=(8.4, 5.6), layout="constrained")
    axes = fig.subplots(2, 3)
    for col, (name, phase) in enumerate(shown.items()):
        image = axes[0, col].imshow(phase.T, cmap="gray", vmin=-0.5, vmax=0.5, origin="lower")
        axes[0, col].set_title(name, fontsize=9)
        if col:
            error = axes[1, col].imshow(abs(phase - real).T, cmap="magma", vmin=0, vmax=1, origin="lower")
    axes[1, 0].axis("off")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[0, :], shrink=0.8, label=f"phase {d} (p / 2048 - 1)")
    fig.colorbar(error, ax=axes[1, :], shrink=0.8, label="absolute error")
    fig.suptitle(f"{case.case_id}, frame {t}: the same generator run on one window and on four", fontsize=10)
    fig.savefig(OUT, dpi=90)
    print(OUT)


if __name__ == "__main__":
    main()

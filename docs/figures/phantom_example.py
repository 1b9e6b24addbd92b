"""Make docs/figures/phantom_example.png: one phantom slice (frames, phases, label, global GT curves).

Run: ``python docs/figures/phantom_example.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hdl_monai.data.phantom import sample_subject, simulate_case  # noqa: E402

OUT = Path(__file__).resolve().parent / "phantom_example.png"


def global_curves(case):
    """Mean radial, circumferential, longitudinal GT velocity over label 1 per frame (DESIGN.md conventions)."""
    X, Y = np.meshgrid(*(np.arange(n, dtype=float) for n in case.magnitude.shape[:2]), indexing="ij")
    rows = []
    for t in range(case.frames):
        myo, cav = case.label[..., t] == 1, case.label[..., t] == 2
        ex, ey = X[myo] - X[cav].mean(), Y[myo] - Y[cav].mean()
        n = np.hypot(ex, ey)
        ex, ey = ex / n, ey / n
        vx, vy, vz = (case.velocity[d][..., t][myo] for d in "xyz")
        rows.append(((vx * ex + vy * ey).mean(), (-vx * ey + vy * ex).mean(), vz.mean()))
    return np.array(rows)


def main() -> None:
    params = sample_subject(0, slices=3, size=128, frames=50)
    cases = [simulate_case(p, case_id=f"sub000_s{k}") for k, p in enumerate(params)]
    case = cases[0]
    es = case.end_systole_frame
    crop = (slice(14, 114), slice(14, 114))
    fig = plt.figure(figsize=(13, 7.6), dpi=72)
    grid = fig.add_gridspec(3, 5, height_ratios=[1, 1, 1.05])
    frames = [0, es // 2, es, es + 8, 40]
    names = ["ED (0)", f"mid-systole ({es // 2})", f"ES ({es})", f"early filling ({es + 8})", "atrial kick (40)"]
    for k, (t, name) in enumerate(zip(frames, names)):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(case.magnitude[crop][..., t].T, cmap="gray", vmin=0, vmax=np.percentile(case.magnitude, 99.5))
        ax.set_title(f"magnitude {name}", fontsize=9)
        ax.axis("off")
    t = es // 2
    for k, d in enumerate("xyz"):
        ax = fig.add_subplot(grid[1, k])
        ax.imshow(case.phase[d][crop][..., t].T, cmap="gray", vmin=0, vmax=4096)
        ax.set_title(f"phase {d} (frame {t})", fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, 3])
    ax.imshow(case.label[crop][..., es].T, cmap="viridis", vmin=0, vmax=3, interpolation="nearest")
    ax.set_title("label at ES (1 myo, 2 LV, 3 RV)", fontsize=9)
    ax.axis("off")
    ax = fig.add_subplot(grid[1, 4])
    vmax = 6.0
    ax.imshow(case.velocity["y"][crop][..., t].T, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.set_title(f"GT velocity y, cm/s (frame {t})", fontsize=9)
    ax.axis("off")
    slice_names = ["basal", "mid", "apical"]
    time_ms = np.arange(case.frames) * case.frame_interval_ms
    for k, title in enumerate(["radial v_r", "circumferential v_c", "longitudinal v_z"]):
        ax = fig.add_subplot(grid[2, k])
        for c, sname in zip(cases, slice_names):
            ax.plot(time_ms, global_curves(c)[:, k], label=sname)
        ax.axvline(es * case.frame_interval_ms, color="k", lw=0.8, ls="--")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set_title(f"global {title} (GT)", fontsize=9)
        ax.set_xlabel("time from R wave (ms)", fontsize=8)
        ax.set_ylabel("cm/s", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[2, 3])
    cav = [(c.label == 2).sum((0, 1)) * np.prod(c.pixel_spacing_mm) / 100 for c in cases]
    for area, sname in zip(cav, slice_names):
        ax.plot(time_ms, area, label=sname)
    ax.set_title("LV blood-pool area (cm^2)", fontsize=9)
    ax.set_xlabel("time from R wave (ms)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[2, 4])
    ax.hist(case.phase["x"][case.magnitude < 0.025 * np.percentile(case.magnitude, 99.5)], bins=32, range=(0, 4096))
    ax.set_title("phase x where magnitude < 2.5% (air)", fontsize=9)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(OUT, dpi=72)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()

"""Figures of the velocity assessment: curves (Fig. 9 style) and index box plots (Fig. 8 style).

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas (no pyplot, no
display, safe in threads); callers save them with :func:`save_figure`. Velocities are in mm/s,
time in a.u. (frame normalised to 50 per cycle, bottom axis) and in ms (top axis).
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hdl_monai.velocity.assessment import VelocityAssessment
from hdl_monai.velocity.cycle import FRAMES_PER_CYCLE_AU
from hdl_monai.velocity.cylindrical import CYLINDRICAL
from hdl_monai.velocity.summary import index_label

__all__ = ["BOXPLOT_KEYS", "plot_curves", "plot_index_boxplots", "save_figure"]

BOXPLOT_KEYS = ("psv_mm_s", "tpsv_au", "pdv_mm_s", "tpdv_au", "mean_mm_s")
_STYLES = ("-", "--", ":", "-.")
_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def plot_curves(
    assessments: Mapping[str, VelocityAssessment], title: str = "", notes: Mapping[str, str] | None = None
) -> Figure:
    """Three panels (radial, circumferential, longitudinal) of global velocity curves.

    Args:
        assessments: legend label -> assessment; several overlay (e.g. reference and synthetic).
            The top ms axis, the end-systole line and the grey systole band use the first one.
        title: figure title (e.g. the case id).
        notes: optional text per direction added to its panel title (e.g. "r = 0.99").
    """
    # fixed margins rather than constrained layout: drawing one figure per case must stay cheap
    fig = Figure(figsize=(13.5, 4.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, gridspec_kw=dict(left=0.05, right=0.975, bottom=0.12, top=0.78 if title else 0.86, wspace=0.18))
    first = next(iter(assessments.values()))
    ms_per_au = first.rr_interval_ms / FRAMES_PER_CYCLE_AU
    es_au = first.end_systole_frame * FRAMES_PER_CYCLE_AU / first.frames
    for ax, name in zip(axes, CYLINDRICAL):
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.axvspan(0, es_au, color="0.92", zorder=0, label="systole" if name == CYLINDRICAL[0] else None)
        for i, (legend, a) in enumerate(assessments.items()):
            colour, style = _COLOURS[i % len(_COLOURS)], _STYLES[i % len(_STYLES)]
            t = a.time_au
            curve = a.curves_mm_s[name]
            ax.plot(t, curve, style, color=colour, lw=1.8, label=legend)
            idx = a.indices[name]
            ax.plot([t[idx["tpsv_frame"]]], [curve[idx["tpsv_frame"]]], "^", color=colour, ms=6)
            ax.plot([t[idx["tpdv_frame"]]], [curve[idx["tpdv_frame"]]], "v", color=colour, ms=6)
        note = (notes or {}).get(name)
        ax.set_title(f"{name} velocity" + (f" ({note})" if note else ""))
        ax.set_xlabel("time (a.u., 50 frames per cycle)")
        ax.set_xlim(0, FRAMES_PER_CYCLE_AU)
        ax.grid(alpha=0.3)
        top = ax.secondary_xaxis("top", functions=(lambda au: au * ms_per_au, lambda ms: ms / ms_per_au))
        top.set_xlabel("time (ms)")
    axes[0].set_ylabel("velocity (mm/s)")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(axes[0].plot([], [], "^", color="0.3")[0])
    handles.append(axes[0].plot([], [], "v", color="0.3")[0])
    labels += ["PSV", "PDV"]
    axes[0].legend(handles, labels, fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def plot_index_boxplots(
    groups: Mapping[str, Sequence[Mapping[str, Mapping[str, float]]]],
    keys: Sequence[str] = BOXPLOT_KEYS,
    title: str = "",
) -> Figure:
    """Box plots of each index (columns) per direction (rows), one box per group (Fig. 8).

    Args:
        groups: group name (e.g. "reference", "synthetic") -> per-case {direction: {index: value}}.
        keys: index keys, one column each.
        title: figure title.
    """
    fig = Figure(figsize=(3.0 * len(keys), 8.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(len(CYLINDRICAL), len(keys), squeeze=False))
    names = list(groups)
    for r, direction in enumerate(CYLINDRICAL):
        for c, key in enumerate(keys):
            ax = axes[r, c]
            data = [[case[direction][key] for case in groups[g] if direction in case] for g in names]
            box = ax.boxplot(data, tick_labels=names, patch_artist=True, widths=0.6)
            for patch, colour in zip(box["boxes"], _COLOURS):
                patch.set_facecolor(colour)
                patch.set_alpha(0.45)
            ax.set_title(f"{direction} {index_label(key)}", fontsize=9)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3, axis="y")
    n = ", ".join(f"{g}: n = {len(groups[g])}" for g in names)
    fig.suptitle(f"{title} ({n})" if title else n)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Save a figure as PNG (Agg) and release it."""
    fig.savefig(str(path), dpi=dpi)
    fig.clear()

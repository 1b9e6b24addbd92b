"""Velocity validation of a phase generator: what the twin's velocity curves look like, not pixel MSE.

GAN training wobbles, and the myocardium's phase MSE on sampled frames (the bundle's key metric) does not
rank generators by the velocities they give. :func:`velocity_agreement` synthesises the phase of whole
cases (:func:`~hdl_monai.phase_synthesis.synthesize_phase`, the foreground-background scheme and the
model's background statistics), assesses the velocities (:func:`~hdl_monai.velocity.assess_case`: labels,
LV centre, cylindrical directions, 1-pixel border left out) and compares the global radial /
circumferential / longitudinal curves (mm/s, one value per frame) with a reference:

- ``"truth"``: the case's ground-truth velocity (phantoms);
- ``"phase"``: the velocity of the case's real phase (any dataset with phase and venc);
- ``"auto"``: truth where every case has it, the real phase otherwise.

The numbers are the Pearson r per direction (mean over cases), the pooled r (every curve of every case
and direction concatenated: the paper's single number, Table II) and the myocardial L1 of the
normalised phase (``p / 2048 - 1``) beside that of predicting zero velocity, and the share of gross errors
on still tissue inside the generator's ROI (:func:`~hdl_monai.evaluate_phase.region_errors`), which flags a
generator that paints motion where there is none (a line along its crop edge).

For K > 0 (:func:`twin_inputs`) the generator is given the magnitude rebuilt by the HDL interpolation
model from every (K+1)-th frame and the twin's labels, exactly as :func:`~hdl_monai.pipeline.build_twin`
makes a twin; the reference stays the real case.

:class:`VelocityValidation` is the Ignite handler of the phase bundle's ``train.json``: every ``interval``
epochs it scores the live generator on the validation cases, logs the numbers (and to TensorBoard),
appends them to ``<output_dir>/velocity_validation.json`` and writes the generator with the best pooled r
(averaged over the Ks) as a complete phase model, ``<output_dir>/best_velocity/model.pt``, ready for
``hdl-monai synthesize-phase --model``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from hdl_monai.data.atomic import atomic_write_json
from hdl_monai.data.case import Case, CaseError, load_case
from hdl_monai.engines.pix2pix import check_scheme
from hdl_monai.evaluate_phase import ARTEFACT_GROSS_SHARE, ARTEFACT_REGIONS, region_errors
from hdl_monai.phase_synthesis import (
    PhaseModel,
    _json_config,
    _plain_module,
    generator_roi,
    roi_pair,
    save_phase_model,
    synthesize_phase,
)
from hdl_monai.transforms.array import FOREGROUND_THRESHOLD, MAGNITUDE_PERCENTILE
from hdl_monai.velocity.agreement import pearson_r
from hdl_monai.velocity.assessment import assess_case
from hdl_monai.velocity.curves import DEFAULT_EXCLUDE_BORDER_PX

__all__ = [
    "CURVE_DIRECTIONS",
    "REFERENCES",
    "clean",
    "VelocityValidation",
    "in_memory_phase_model",
    "reference_source",
    "twin_inputs",
    "velocity_agreement",
]

CURVE_DIRECTIONS = ("radial", "circumferential", "longitudinal")
REFERENCES = ("auto", "truth", "phase")
HISTORY_FILE = "velocity_validation.json"
BEST_DIR = "best_velocity"

logger = logging.getLogger(__name__)


def reference_source(cases: Sequence[Case], reference: str = "auto") -> str:
    """The :func:`~hdl_monai.velocity.assess_case` source of the reference curves: "velocity" (ground truth)
    or "phase" (the real phase).

    Raises:
        ValueError: an unknown ``reference``; "truth" asked of a case without ground-truth velocity.
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
    lacking = [c.name for c in cases if len(c.velocity) != 3]
    if reference == "truth" and lacking:
        raise ValueError(f"reference 'truth' needs ground-truth velocity_x/y/z; missing in {', '.join(lacking)}")
    if reference == "truth" or (reference == "auto" and cases and not lacking):
        return "velocity"
    return "phase"


def twin_inputs(cases: Sequence[Case], K: int, interpolation_model: Any = None) -> list[tuple[Case, Case]]:
    """(real case, what the generator is given) pairs: the case itself (K = 0), or its copy whose magnitude
    and labels the HDL interpolation model rebuilt from every (K+1)-th frame, with the case's venc (or the
    twin's default), as in the digital twin.

    Args:
        cases: cases with magnitude and label.
        K: frames dropped between kept frames (0 = the real magnitude).
        interpolation_model: the interpolation bundle's model.pt, or a loaded model; None = the shipped one.

    Raises:
        ValueError: K < 0. CaseError: a K that does not fit a case's series (from the interpolation).
    """
    K = int(K)
    if K < 0:
        raise ValueError(f"K must be >= 0, got {K}")
    if K == 0:
        return [(case, case) for case in cases]
    from hdl_monai.interpolation import interpolate_case
    from hdl_monai.pipeline import DEFAULT_VENC_CM_S, load_twin_interpolation

    model = load_twin_interpolation(interpolation_model)
    return [
        (case, replace(interpolate_case(case, K, "hdl", model=model), venc_cm_s=case.venc_cm_s or DEFAULT_VENC_CM_S))
        for case in cases
    ]


def velocity_agreement(
    model: PhaseModel,
    pairs: Sequence[tuple[Case, Case]],
    reference: str = "auto",
    seed: int = 0,
    exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
) -> dict[str, float]:
    """Score a phase model by the velocity curves of the twins it makes (module docstring).

    Args:
        model: a loaded (or :func:`in_memory_phase_model`) phase model.
        pairs: (real case, generator input) pairs, e.g. from :func:`twin_inputs`. The real case needs phase
            and label (and ground-truth velocity for reference "truth").
        reference: "auto", "truth" or "phase".
        seed: seed of the background noise.
        exclude_border_px: myocardium border pixels left out of the curves (as
            :func:`~hdl_monai.velocity.assess_case`).

    Returns:
        ``r_radial``, ``r_circumferential``, ``r_longitudinal`` (mean over cases), ``r_mean`` (their mean),
        ``r_pooled``, ``l1_myocardium`` and ``l1_myocardium_zero`` (normalised phase units),
        ``gross_share_tissue`` (gross errors, :data:`~hdl_monai.evaluate_phase.GROSS_ERROR` on values still in
        the real case inside the ROI, over all values of the tissue regions
        :data:`~hdl_monai.evaluate_phase.ARTEFACT_REGIONS`, pooled over cases; NaN when no real case has
        labels) and ``cases`` (the count); the reference used is :func:`reference_source` of the real cases.

    Raises:
        ValueError: no pairs; a real case without phase.
    """
    if not pairs:
        raise ValueError("velocity_agreement needs at least one case")
    source = reference_source([real for real, _ in pairs], reference)
    r: dict[str, list[float]] = {d: [] for d in CURVE_DIRECTIONS}
    pooled_got: list[np.ndarray] = []
    pooled_ref: list[np.ndarray] = []
    l1_model: list[float] = []
    l1_zero: list[float] = []
    gross = tissue = 0
    for real, given in pairs:
        if len(real.phase) != 3:
            raise ValueError(f"{real.name}: velocity validation needs the real phase_x/y/z")
        synthetic = synthesize_phase(given, model, seed=seed)
        regions = region_errors(real, synthetic, painted=generator_roi(given, model))
        gross += sum(regions[region]["gross_values"] for region in ARTEFACT_REGIONS)
        tissue += sum(3 * regions[region]["pixels"] for region in ARTEFACT_REGIONS)
        myo = real.label == 1
        for d in "xyz":
            truth = real.phase[d] / 2048.0 - 1.0
            l1_model.append(float(np.abs(truth - (synthetic[d] / 2048.0 - 1.0))[myo].mean()))
            l1_zero.append(float(np.abs(truth)[myo].mean()))
        twin = copy.copy(given)
        twin.phase = synthetic
        got = assess_case(twin, exclude_border_px=exclude_border_px).curves_mm_s
        ref = assess_case(real, source=source, exclude_border_px=exclude_border_px).curves_mm_s
        for d in CURVE_DIRECTIONS:
            r[d].append(pearson_r(got[d], ref[d]))
            pooled_got.append(np.asarray(got[d], float))
            pooled_ref.append(np.asarray(ref[d], float))
    out = {f"r_{d}": float(np.mean(v)) for d, v in r.items()}
    out["r_mean"] = float(np.mean([out[f"r_{d}"] for d in CURVE_DIRECTIONS]))
    out["r_pooled"] = float(pearson_r(np.concatenate(pooled_got), np.concatenate(pooled_ref)))
    out["l1_myocardium"] = float(np.mean(l1_model))
    out["l1_myocardium_zero"] = float(np.mean(l1_zero))
    out["gross_share_tissue"] = gross / tissue if tissue else float("nan")
    out["cases"] = len(pairs)
    return out


def clean(record: Mapping[str, Any]) -> bool:
    """Whether a velocity-validation record (``{"K": {K: velocity_agreement}, ...}``) has no K whose gross
    share on still tissue is above :data:`~hdl_monai.evaluate_phase.ARTEFACT_GROSS_SHARE` (records written
    before the share was measured count as clean)."""
    return all(not (v.get("gross_share_tissue", 0.0) > ARTEFACT_GROSS_SHARE) for v in record["K"].values())


def in_memory_phase_model(
    generator: nn.Module,
    generator_config: Mapping[str, Any],
    roi_size: int | Sequence[int],
    scheme: str,
    background_stats: Mapping[str, Any],
    cycle: bool = False,
    motion: bool = False,
) -> PhaseModel:
    """A :class:`~hdl_monai.phase_synthesis.PhaseModel` around a live generator (shared, not copied; the
    caller sets eval mode), with the settings :func:`~hdl_monai.phase_synthesis.save_phase_model` would
    write."""
    payload = {
        "generator_config": _json_config(generator_config),
        "roi_size": roi_pair(roi_size),
        "scheme": check_scheme(scheme),
        "cycle": bool(cycle),
        "motion": bool(motion),
        "threshold": FOREGROUND_THRESHOLD,
        "magnitude_percentile": MAGNITUDE_PERCENTILE,
    }
    return PhaseModel(_plain_module(generator), payload, background_stats, Path("<in memory>"))


def _is_rank_zero() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class VelocityValidation:
    """Ignite handler: velocity validation of the live generator every ``interval`` epochs (module docstring).

    The cases (``items``: datalist items with a ``"case"`` folder) are read, and their K > 0 inputs made, on
    the first run. A case the velocity assessment cannot use (e.g. no myocardium left after the border
    exclusion) is logged as an error and recorded in the history; training goes on. After a resume into
    the same ``output_dir`` the history of the earlier epochs is kept, and ``best_velocity`` is only
    replaced by a better generator. "Better" puts a generator without painted motion first: one whose
    share of gross errors on still tissue is above :data:`~hdl_monai.evaluate_phase.ARTEFACT_GROSS_SHARE`
    at some K (:func:`clean`) only replaces another such generator, because the velocity curves, read on
    the myocardium, do not see a line painted along the crop edge (on one from-scratch run the epoch with
    the best r was the one with the line). Only rank 0 runs under ``torch.distributed``; the generator's
    train/eval mode is restored. The scores go to the trainer's ``state.metrics`` as ``val_velocity_r``
    (pooled r averaged over the Ks), ``val_velocity_r_K<K>`` and ``val_gross_share_K<K>`` (per K).

    Args:
        items: validation datalist items (``datalist_items(dataset, "validation")``).
        output_dir: where ``velocity_validation.json`` and ``best_velocity/`` go.
        generator, generator_config, roi_size, scheme, background_stats, cycle, motion: as
            :class:`~hdl_monai.phase_synthesis.ExportPhaseModel`.
        interval: epochs between runs; 0 turns the handler off.
        ks: the Ks to score (0 = real magnitude).
        max_cases: the first this many items (None = all).
        reference: "auto", "truth" or "phase" (:func:`reference_source`).
        interpolation_model: for K > 0 (None = the shipped interpolation model).
        seed: background-noise seed.
        exclude_border_px: myocardium border pixels left out of the curves.
        summary_writer: a TensorBoard ``SummaryWriter``, or a log folder to open one in; None = no TensorBoard.

    Raises:
        ValueError: interval < 0, a negative K, no items, or an unknown reference.
    """

    def __init__(
        self,
        items: Sequence[Mapping[str, Any]],
        output_dir: str | os.PathLike,
        generator: nn.Module,
        generator_config: Mapping[str, Any],
        roi_size: int | Sequence[int],
        scheme: str,
        background_stats: Mapping[str, Any],
        cycle: bool = False,
        motion: bool = False,
        interval: int = 5,
        ks: Sequence[int] = (0,),
        max_cases: int | None = None,
        reference: str = "auto",
        interpolation_model: Any = None,
        seed: int = 0,
        exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
        summary_writer: Any = None,
    ) -> None:
        if int(interval) < 0:
            raise ValueError(f"interval must be >= 0 (0 = off), got {interval}")
        self.ks = tuple(int(k) for k in ks)
        if not self.ks or min(self.ks) < 0:
            raise ValueError(f"ks must be one or more K >= 0, got {list(ks)}")
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        self.items = list(items)[: None if max_cases is None else int(max_cases)]
        if int(interval) > 0 and not self.items:
            raise ValueError("velocity validation has no cases (the validation split is empty)")
        self.interval, self.reference, self.seed = int(interval), reference, int(seed)
        self.exclude_border_px = int(exclude_border_px)
        self.output_dir = Path(output_dir)
        self.generator, self.generator_config = generator, generator_config
        self.roi_size, self.scheme, self.background_stats = roi_size, check_scheme(scheme), background_stats
        self.cycle, self.motion = bool(cycle), bool(motion)
        self.interpolation_model = interpolation_model
        self.summary_writer = summary_writer
        self._pairs: dict[int, list[tuple[Case, Case]]] | None = None
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self._restored = False

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        if self.interval > 0:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)

    def _inputs(self) -> dict[int, list[tuple[Case, Case]]]:
        if self._pairs is None:
            cases = []
            for item in self.items:
                try:
                    cases.append(load_case(item["case"]))
                except (KeyError, TypeError) as err:
                    raise CaseError(f"velocity validation: a datalist item without a 'case' folder: {item!r}") from err
            self._pairs = {K: twin_inputs(cases, K, self.interpolation_model) for K in self.ks}
        return self._pairs

    def score(self) -> dict[str, Any]:
        """Scores of the generator as it is now: ``{"K": {K: velocity_agreement}, "r_pooled_mean": ...}``."""
        network = _plain_module(self.generator)
        was_training = network.training
        network.eval()
        try:
            model = in_memory_phase_model(
                network, self.generator_config, self.roi_size, self.scheme, self.background_stats,
                cycle=self.cycle, motion=self.motion,
            )
            per_k = {
                K: velocity_agreement(model, pairs, self.reference, self.seed, self.exclude_border_px)
                for K, pairs in self._inputs().items()
            }
        finally:
            network.train(was_training)
        return {"K": per_k, "r_pooled_mean": float(np.mean([v["r_pooled"] for v in per_k.values()]))}

    def _rank(self, record: Mapping[str, Any]) -> tuple[bool, float]:
        return clean(record), float(record["r_pooled_mean"])

    def __call__(self, engine: Any = None) -> dict[str, Any] | None:
        if not _is_rank_zero():
            return None
        epoch = int(engine.state.epoch) if engine is not None else len(self.history) + 1
        if not self._restored:
            self._restore(epoch)
        try:
            scores = self.score()
        except (CaseError, ValueError) as err:  # a case the velocity assessment cannot use: say so, keep training
            logger.error("Epoch %d velocity validation failed (training goes on): %s", epoch, err)
            self.history.append({"epoch": epoch, "error": str(err)})
            self._write_history()
            return None
        record = {"epoch": epoch, **scores}
        self.history.append(record)
        improved = self.best is None or self._rank(record) > self._rank(self.best)
        if improved:
            self.best = record
            save_phase_model(
                self.output_dir / BEST_DIR, self.generator, self.generator_config, self.roi_size, self.scheme,
                self.background_stats, cycle=self.cycle, motion=self.motion,
            )
        self._write_history()
        metrics = {"val_velocity_r": scores["r_pooled_mean"]}
        metrics.update({f"val_velocity_r_K{K}": v["r_pooled"] for K, v in scores["K"].items()})
        metrics.update({f"val_gross_share_K{K}": v["gross_share_tissue"] for K, v in scores["K"].items()})
        if engine is not None:
            engine.state.metrics.update(metrics)
        self._log(epoch, scores, improved)
        if self.summary_writer is not None:
            writer = self._writer()
            for name, value in metrics.items():
                writer.add_scalar(name, value, epoch)
            writer.flush()
        return record

    def _restore(self, epoch: int) -> None:
        """After a resume, carry on the history (and the best so far) of earlier epochs of this output_dir."""
        self._restored = True
        path = self.output_dir / HISTORY_FILE
        if not path.is_file():
            return
        try:
            earlier = json.loads(path.read_text())["history"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("%s unreadable (%s); velocity validation starts a new history", path, err)
            return
        self.history = [h for h in earlier if isinstance(h, dict) and int(h.get("epoch", epoch)) < epoch] + self.history
        scored = [h for h in self.history if "r_pooled_mean" in h]
        if scored and (self.output_dir / BEST_DIR).is_dir():
            self.best = max(scored, key=self._rank)

    def _write_history(self) -> None:
        atomic_write_json(
            self.output_dir / HISTORY_FILE,
            {"reference": self.reference, "ks": list(self.ks), "cases": [str(i.get("case")) for i in self.items],
             "best_epoch": None if self.best is None else self.best["epoch"], "history": self.history},
            overwrite=True,
        )

    def _writer(self) -> Any:
        if isinstance(self.summary_writer, (str, os.PathLike)):
            from torch.utils.tensorboard import SummaryWriter

            self.summary_writer = SummaryWriter(log_dir=str(self.summary_writer))
        return self.summary_writer

    def _log(self, epoch: int, scores: Mapping[str, Any], improved: bool) -> None:
        parts = [
            f"K={K}: r pooled {v['r_pooled']:.4f} (radial {v['r_radial']:.3f}, circumferential "
            f"{v['r_circumferential']:.3f}, longitudinal {v['r_longitudinal']:.3f}; gross errors on still tissue "
            f"{100 * v['gross_share_tissue']:.3f} %)"
            for K, v in scores["K"].items()
        ]
        if improved:
            best = f"best so far, written to {self.output_dir / BEST_DIR}"
        elif not clean(scores) and clean(self.best) and scores["r_pooled_mean"] > self.best["r_pooled_mean"]:
            best = f"higher r than epoch {self.best['epoch']} but painted motion, so not kept as the best"
        else:
            best = f"best epoch {self.best['epoch']}"
        logger.info("Epoch %d velocity validation: %s; %s", epoch, "; ".join(parts), best)
        for K, v in scores["K"].items():
            if v["gross_share_tissue"] > ARTEFACT_GROSS_SHARE:
                logger.warning(
                    "Epoch %d, K=%s: %.2f %% of the still tissue values are gross errors (more than %.1f %%): the "
                    "generator paints motion where there is none, e.g. a line along its crop edge; "
                    "synthesize with --window_shift 8 to keep a crop-edge artefact out", epoch, K,
                    100 * v["gross_share_tissue"], 100 * ARTEFACT_GROSS_SHARE)

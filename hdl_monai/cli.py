"""The ``hdl-monai`` command (python-fire). Each command is a thin edge over a library function.

    hdl-monai demo [--out demo_output --overwrite --interpolation_model M --phase_model P]
    hdl-monai train BUNDLE --dataset_dir DIR [--output_dir OUT] [--key value ...]
    hdl-monai phantom --out DIR [--subjects N --slices S --size PX --frames T --seed SEED]
    hdl-monai validate DATASET_OR_CASE
    hdl-monai import-dicom DICOM_DIR --out DATASET [--contours DIR]
    hdl-monai interpolate CASE --out OUT_CASE --k K --method {hdl,r2unet,gan,linear,optical_flow}
    hdl-monai synthesize-phase CASE --out OUT_CASE --model model.pt
    hdl-monai evaluate-interpolation DATASET --out DIR [--k 1,2,3,4,5,6 --methods linear,optical_flow]
    hdl-monai velocity CASE_OR_DATASET --out OUT
    hdl-monai velocity-compare REFERENCE SYNTHETIC --out OUT
    hdl-monai twin CASE_OR_DATASET --k K --out OUT [--interpolation_model M --phase_model P]
    hdl-monai evaluate-phase DATASET --out DIR [--k 0,3,6 --phase_model P --vanilla_model V
                                                --interpolation_model M --split test]
"""

from __future__ import annotations

import sys
from pathlib import Path

import fire

from hdl_monai.velocity.curves import DEFAULT_EXCLUDE_BORDER_PX

__all__ = ["Commands", "main"]


class Commands:
    """hdl-monai: synthesise and assess 3-directional myocardial velocity maps (HDL, on MONAI)."""

    def train(
        self, bundle: str, dataset_dir: str, output_dir: str | None = None, nproc_per_node: int = 1, **overrides
    ) -> str:
        """Train a bundle without typing config paths (runs `python -m monai.bundle run training`).

        Args:
            bundle: hdl_temporal_interpolation (or interpolation) or hdl_phase_synthesis (or phase).
            dataset_dir: dataset in the case format (datalist.json + cases/).
            output_dir: where model.pt, checkpoints and TensorBoard logs go (default runs/<bundle>).
            nproc_per_node: processes for DistributedDataParallel via torchrun (1 = a plain run).
            overrides: any --key value overrides a train.json entry, e.g. --max_epochs 5 --channels "[8,16,32,64]".
        """
        from hdl_monai.bundles import get_bundle, train_bundle

        name = get_bundle(bundle).name
        out = output_dir or str(Path("runs") / name)
        result = train_bundle(name, dataset_dir, out, nproc_per_node=int(nproc_per_node), check=False, **overrides)
        if result.returncode:
            raise SystemExit(result.returncode)
        return f"{name} trained; model in {out}"

    def demo(
        self,
        out: str = "demo_output",
        subjects: int = 6,
        slices: int = 2,
        size: int = 128,
        frames: int = 50,
        seed: int = 0,
        overwrite: bool = False,
        interpolation_model: str | None = None,
        phase_model: str | None = None,
        device: str = "cpu",
    ) -> str:
        """The whole HDL toolkit on the built-in phantom: twin, Tables I-III, Fig. 4-10, report.html.

        Generates and validates a phantom, runs the digital twin of its test split at K = 0, 3, 6,
        evaluates interpolation (K = 1..6: hdl, linear, optical flow) and phase synthesis (K = 0, 3, 6),
        draws the figures and writes OUT/report.html (figures beside it) and OUT/report.md.

        Args:
            out: output folder (refused if it exists, unless --overwrite).
            subjects, slices, size, frames, seed: phantom settings (as for `hdl-monai phantom`).
            overwrite: replace an existing output folder.
            interpolation_model: HDL interpolation model.pt (default: the interpolation bundle's models/model.pt).
            phase_model: phase model.pt or its folder (default: the phase bundle's models/model.pt).
            device: torch device of the networks.
        """
        from hdl_monai.demo import run_demo

        report = run_demo(
            out, subjects=subjects, slices=slices, size=size, frames=frames, seed=seed, overwrite=overwrite,
            interpolation_model=interpolation_model, phase_model=phase_model, device=device,
        )
        return f"demo finished: {report}"

    def phantom(
        self,
        out: str,
        subjects: int = 20,
        slices: int = 3,
        size: int = 128,
        frames: int = 50,
        seed: int = 0,
        overwrite: bool = False,
        background_phase: str = "noise",
        aorta_flow: str = "field",
        blood_flow: str = "field",
    ) -> str:
        """Generate a digital-twin 3Dir MVM phantom dataset with ground-truth velocities.

        Args:
            out: dataset folder to create (refused if it exists, unless --overwrite).
            subjects: number of synthetic subjects (split by subject into training/validation/test).
            slices: short-axis slices per subject, base to apex.
            size: image size in pixels (square).
            frames: frames per cardiac cycle.
            seed: random seed; the same seed gives the same dataset.
            overwrite: replace an existing dataset folder.
            background_phase: phase of signal-free (air) pixels: noise (uniform, as raw phase) or paper (the
                narrow Gaussian the HDL paper fitted on its scanner data, N(0.034, 0.034^2) normalised).
            aorta_flow: blood velocity of the descending aorta: field (a smooth random field, its sign
                varying over the lumen) or jet (a coherent caudal systolic jet, as in a real aorta).
            blood_flow: blood velocity of the LV and RV pools: field (a smooth random field) or coherent
                (the pools move with their chambers, so the cardiac phase decides their phase).
        """
        from hdl_monai.data.phantom import generate_phantom

        path = generate_phantom(
            out, subjects=subjects, slices=slices, size=size, frames=frames, seed=seed, overwrite=overwrite,
            background_phase=background_phase, aorta_flow=aorta_flow, blood_flow=blood_flow,
        )
        return f"phantom dataset written to {path}"

    def validate(self, dataset: str) -> str:
        """Check every case of a dataset (or one case folder); one line per problem, exit 1 if any."""
        from hdl_monai.data.datalist import validate_dataset

        problems = validate_dataset(dataset, progress=sys.stderr.isatty())
        for line in problems:
            print(line)
        if problems:
            print(f"{dataset}: {len(problems)} problem(s)", file=sys.stderr)
            raise SystemExit(1)
        return f"{dataset}: valid"

    def import_dicom(
        self, dicom_dir: str, out: str, contours: str | None = None, split: str = "test", overwrite: bool = False
    ) -> str:
        """Import a scanner cine series (DICOM) into the case format, one case per slice.

        Args:
            dicom_dir: folder of DICOM files of one patient's short-axis cine.
            out: dataset folder to write (cases added to datalist.json under --split).
            contours: optional Sunnybrook-style contour folder (i-contours/, o-contours/).
            split: datalist split to list the imported cases in.
            overwrite: replace cases that already exist.
        """
        from hdl_monai.data.dicom import import_dicom

        written = import_dicom(dicom_dir, out, contours=contours, split=split, overwrite=overwrite)
        return f"{len(written)} case(s) written to {out}"

    def interpolate(
        self,
        case: str,
        out: str,
        k: int = 3,
        method: str = "linear",
        model: str | None = None,
        device: str = "cpu",
        overwrite: bool = False,
        timing: str | None = None,
    ) -> str:
        """Keep frames 0, K+1, 2(K+1), ... of a case and rebuild the others; write the result as a case.

        Args:
            case: input case folder (magnitude and labels on the kept frames).
            out: output case folder.
            k: K, frames dropped between two kept frames (1 <= K, 2(K+1) <= frames).
            method: hdl, r2unet or gan (need --model), linear or optical_flow.
            model: model.pt written by the interpolation bundle's training (hdl, r2unet; gan = trained with
                --gan True); a model trained for another method is refused.
            device: torch device for the network methods (cpu, cuda).
            overwrite: replace an existing output case.
            timing: for a hybrid model (trained with --estimate optical_flow), where its flow guess places the
                in-between frames, one of learned (the default when timing_prior.json sits beside the model,
                see fit-timing-prior), spline (the default otherwise, speeds from a periodic spline through
                every kept frame), cubic (speeds from the neighbouring gaps) or linear (constant speed per gap).
        """
        from hdl_monai.data.case import load_case, save_case
        from hdl_monai.interpolation import interpolate_case

        result = interpolate_case(load_case(case), int(k), method, model=model, device=device, timing=timing)
        result.case_id = Path(out).name
        save_case(result, out, overwrite=overwrite)
        return f"{method} interpolation (K={k}) written to {out}"

    def fit_timing_prior(
        self,
        dataset: str,
        model: str,
        split: str = "training",
        out: str | None = None,
        pixels: int = 400,
        seed: int = 0,
        overwrite: bool = False,
    ) -> str:
        """Learn the "learned" timing of a hybrid interpolation model from full-frame cases; write timing_prior.json.

        Horn-Schunck flows between consecutive frames of every case of the split give per-pixel paths over
        one cycle (on the model's LV-centred ROI, around the myocardium of the first labelled frame); their
        second moments are the prior. Inference (hdl-monai interpolate, twin, evaluate-*) then uses it by
        default when the file sits beside the model and the series has the training series' frame count.
        Frame 0 must be the same cardiac phase (the ECG trigger) as in the series the model will be used on.
        See docs/interpolation.md.

        Args:
            dataset: dataset folder (case format; magnitude and the labels are read).
            model: the hybrid model's model.pt (its ROI settings are used).
            split: datalist split to learn from (use the model's training split).
            out: output file (default timing_prior.json beside the model).
            pixels: paths drawn per case.
            seed: seed of the pixel draw.
            overwrite: replace an existing prior.
        """
        from hdl_monai.engines.interpolation import fit_timing_prior

        path = fit_timing_prior(dataset, model, split=split, out=out, overwrite=overwrite, pixels=int(pixels),
                                seed=int(seed), progress=sys.stderr.isatty())
        return f"timing prior written to {path}"

    def interpolated_inputs(
        self,
        dataset: str,
        out: str,
        k="3,6",
        interpolation_model: str | None = None,
        split: str = "training",
        device: str = "cpu",
        overwrite: bool = False,
    ) -> str:
        """Copies of a split's cases with the magnitude rebuilt from every (K+1)-th frame by the HDL
        interpolation network (phase, labels and the rest real): phase-generator training data for K > 0 twins.

        Writes OUT/cases/<case_id>_K<K>/ and OUT/datalist.json; train the phase bundle with
        --extra_training_datasets "['OUT']". See docs/phase_synthesis.md.

        Args:
            dataset: source dataset folder (magnitude, phase, labels on every frame).
            out: output dataset folder (refused if it exists, unless --overwrite).
            k: comma-separated K values.
            interpolation_model: model.pt of the interpolation bundle (default: its bundle's models/).
            split: the datalist split to copy.
            device: torch device (cpu, cuda).
            overwrite: replace an existing output folder.
        """
        from hdl_monai.interpolated_inputs import interpolated_inputs

        written = interpolated_inputs(dataset, out, ks=_int_list(k), interpolation_model=interpolation_model,
                                      split=split, device=device, overwrite=overwrite, progress=sys.stderr.isatty())
        return f"interpolated-input cases written to {written}"

    def synthesize_phase(
        self, case: str, out: str, model: str, device: str = "cpu", seed: int = 0, overwrite: bool = False,
        window_shift: int | None = None,
    ) -> str:
        """Write phase_x/y/z (0..4096) synthesised from a case's magnitude (and label), keeping the rest.

        Args:
            case: input case folder (magnitude over the whole cycle and LV labels for the ROI centre).
            out: output case folder.
            model: model.pt written by the phase-synthesis bundle (background_stats.json beside it).
            device: torch device (cpu, cuda).
            seed: seed of the background noise.
            overwrite: replace an existing output case.
            window_shift: pixels by which the generator's four blended windows move off the ROI (0: one
                window; default: the package's DEFAULT_WINDOW_SHIFT).
        """
        from hdl_monai.data.case import load_case, save_case
        from hdl_monai.phase_synthesis import DEFAULT_WINDOW_SHIFT, synthesize_phase

        shift = DEFAULT_WINDOW_SHIFT if window_shift is None else int(window_shift)

        source = load_case(case, skip=("phase", "velocity"))
        source.phase = synthesize_phase(source, model, device=device, seed=int(seed), window_shift=shift)
        if source.venc_cm_s is None:
            from hdl_monai.data.phantom import DEFAULT_VENC_CM_S

            source.venc_cm_s = dict(DEFAULT_VENC_CM_S)
        source.case_id = Path(out).name
        source.source = f"{source.source}+phase-synthesis"
        source.extra = {**source.extra, "phase_synthesis": {"model": str(model), "seed": int(seed),
                                                           "window_shift": shift}}
        save_case(source, out, overwrite=overwrite)
        return f"synthetic phase written to {out}"

    def evaluate_interpolation(
        self,
        dataset: str,
        out: str,
        k="1,2,3,4,5,6",
        methods="linear,optical_flow",
        split: str = "test",
        model: str | None = None,
        r2unet_model: str | None = None,
        gan_model: str | None = None,
        device: str = "cpu",
        timing: str | None = None,
    ) -> str:
        """Interpolation quality per method and K over a dataset split (Table III, Fig. 10 layout).

        Args:
            dataset: dataset folder (case format, with labels).
            out: folder for interpolation_metrics.json/.md and metrics_vs_k.png.
            k: comma-separated K values.
            methods: comma-separated methods (hdl, r2unet, gan, linear, optical_flow).
            split: datalist split to evaluate.
            model: model.pt of the HDL interpolation network (for method hdl).
            r2unet_model: model.pt of the plain R2U-Net baseline (for method r2unet).
            gan_model: model.pt of the GAN variant, trained with --gan True (for method gan).
            device: torch device for the network methods.
            timing: where the hdl model's flow guess places the in-between frames, one of learned, spline,
                cubic or linear (default as in hdl-monai interpolate: learned with a timing prior, else spline).
        """
        from hdl_monai.evaluate import evaluate_interpolation

        named = (("hdl", model), ("r2unet", r2unet_model), ("gan", gan_model))
        models = {name: path for name, path in named if path}
        results = evaluate_interpolation(
            dataset, out, ks=_int_list(k), methods=_str_list(methods), split=split, progress=sys.stderr.isatty(),
            models=models, device=device, timing=timing,
        )
        return f"interpolation metrics for K={sorted(results, key=int)} written to {out}"

    def velocity(
        self,
        path: str,
        out: str,
        overwrite: bool = False,
        source: str = "phase",
        exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
        unwrap: bool = False,
        plots: bool = True,
        skip_errors: bool = False,
        workers: int | None = None,
    ) -> str:
        """Velocity assessment of a case or dataset: curves, PSV/TPSV/PDV/TPDV/mean, plots, summary.

        Args:
            path: a case folder or a dataset folder.
            out: output folder (refused if it exists and is not empty, unless --overwrite).
            overwrite: replace an existing output folder.
            source: phase (phase images + venc) or velocity (a phantom's ground-truth velocity files).
            exclude_border_px: myocardium border pixels left out of the curves (partial volume); 0 = all.
            unwrap: temporal phase unwrapping before conversion (from the least aliased frame; docs/velocity.md).
            plots: write the PNG figures.
            skip_errors: for a dataset, skip cases that cannot be assessed (listed in summary.md).
            workers: processes for a dataset (default: one per CPU core).
        """
        from hdl_monai.velocity.report import assess_path

        written = assess_path(
            path, out, overwrite=overwrite, source=source, exclude_border_px=int(exclude_border_px), unwrap=unwrap,
            plots=plots, skip_errors=skip_errors, workers=workers, progress=sys.stderr.isatty(),
        )
        return f"velocity assessment written to {written}"

    def velocity_compare(
        self,
        reference: str,
        synthetic: str,
        out: str,
        overwrite: bool = False,
        reference_source: str = "phase",
        synthetic_source: str = "phase",
        exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
        plots: bool = True,
    ) -> str:
        """Compare velocities of two cases or datasets paired by case_id (Pearson r, index differences).

        Args:
            reference: reference case or dataset (e.g. the acquired scan, or a phantom).
            synthetic: synthetic case or dataset (e.g. the digital twin).
            out: output folder.
            overwrite: replace an existing output folder.
            reference_source: phase or velocity (ground-truth files) for the reference.
            synthetic_source: phase or velocity for the synthetic side.
            exclude_border_px: myocardium border pixels left out of the curves, on both sides.
            plots: write the overlay and box plots.
        """
        from hdl_monai.velocity.report import compare_paths

        written = compare_paths(
            reference, synthetic, out, overwrite=overwrite, reference_source=reference_source,
            synthetic_source=synthetic_source, exclude_border_px=int(exclude_border_px), plots=plots,
        )
        return f"velocity comparison written to {written}"

    def twin(
        self,
        path: str,
        k: int,
        out: str,
        interpolation_model: str | None = None,
        phase_model: str | None = None,
        device: str = "cpu",
        overwrite: bool = False,
        splits=None,
        seed: int = 0,
        exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
        plots: bool = True,
        window_shift: int | None = None,
    ) -> str:
        """The HDL digital twin of a case or dataset: interpolate (K), synthesise phase, assess velocity.

        Writes OUT/cases/<case_id>/ (the twins), OUT/datalist.json, OUT/velocity/, OUT/compare/ (when the
        input has phase), OUT/compare_truth/ (phantoms), OUT/twin.json and twin.md. See docs/twin.md.

        Args:
            path: a case folder or a dataset folder.
            k: K, frames dropped between kept frames (0 = use the magnitude as is).
            out: output folder (refused if it exists, unless --overwrite).
            interpolation_model: model.pt of the interpolation bundle (default: its bundle's models/).
            phase_model: model.pt of the phase-synthesis bundle (default: its bundle's models/).
            device: torch device (cpu, cuda).
            overwrite: replace an existing output folder.
            splits: comma-separated datalist splits to process (default: all).
            seed: seed of the synthetic background phase noise.
            exclude_border_px: myocardium border pixels left out of the velocity curves.
            plots: write the velocity figures.
            window_shift: pixels by which the phase generator's four blended windows move off the ROI (0: one
                window; default: the package's DEFAULT_WINDOW_SHIFT).
        """
        from hdl_monai.pipeline import run_twin

        written = run_twin(
            path, int(k), out, interpolation_model=interpolation_model, phase_model=phase_model, device=device,
            overwrite=overwrite, progress=sys.stderr.isatty(), splits=_str_list(splits) if splits else None,
            seed=int(seed), exclude_border_px=int(exclude_border_px), plots=plots,
            window_shift=None if window_shift is None else int(window_shift),
        )
        return f"digital twin (K={k}) written to {written}"

    def evaluate_phase(
        self,
        dataset: str,
        out: str,
        k="0,3,6",
        phase_model: str | None = None,
        vanilla_model: str | None = None,
        interpolation_model: str | None = None,
        split: str = "test",
        device: str = "cpu",
        seed: int = 0,
        exclude_border_px: int = DEFAULT_EXCLUDE_BORDER_PX,
        example_case: str | None = None,
        overwrite: bool = False,
        window_shift: int | None = None,
    ) -> str:
        """Phase synthesis quality (Table I) and velocity agreement (Table II, Fig. 7-9) per K.

        Args:
            dataset: dataset folder (cases with real phase and labels).
            out: folder for evaluate_phase.json/.md, table1_phase_metrics.md, error_budget.md/.png, table2_velocity.md and PNGs.
            k: comma-separated K values (0 = real magnitude, K > 0 = HDL-interpolated magnitude).
            phase_model: the proposed phase model.pt (default: the bundle's models/).
            vanilla_model: a baseline model.pt of scheme pix2pix (the paper's vanilla) or vanilla (adds "vanilla" rows).
            interpolation_model: the HDL interpolation model.pt for K > 0 (default: the bundle's models/).
            split: datalist split to evaluate.
            device: torch device.
            seed: seed of the synthetic background phase noise.
            exclude_border_px: myocardium border pixels left out of the velocity curves.
            example_case: case_id drawn in the example figures (default: the first).
            overwrite: replace an existing output folder.
            window_shift: pixels by which the generators' four blended windows move off the ROI, for both
                methods (0: one window; default: the package's DEFAULT_WINDOW_SHIFT).
        """
        from hdl_monai.evaluate_phase import evaluate_phase

        evaluate_phase(
            dataset, out, ks=_int_list(k), phase_model=phase_model, vanilla_model=vanilla_model,
            interpolation_model=interpolation_model, split=split, device=device, seed=int(seed),
            exclude_border_px=int(exclude_border_px), example_case=example_case, overwrite=overwrite,
            progress=sys.stderr.isatty(), window_shift=None if window_shift is None else int(window_shift),
        )
        return f"phase evaluation (Tables I and II) written to {out}"


def _str_list(value) -> list[str]:
    """Fire turns "a,b" into a tuple and "a" into a string; accept both."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def _int_list(value) -> list[int]:
    return [int(v) for v in _str_list(value)]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hdl-monai`` console script; library errors print as one clear line."""
    from hdl_monai.data.atomic import OverwriteError
    from hdl_monai.data.case import CaseError

    try:
        result = fire.Fire(Commands(), command=argv, name="hdl-monai")
    except (CaseError, OverwriteError, FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    del result


if __name__ == "__main__":
    main()

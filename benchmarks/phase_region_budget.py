"""Where trained phase generators' full-image error sits on the phantom, with the descending aorta split off.

Table I's full-image MSE pools regions whose phase the magnitude determines (the moving LV wall) with
regions it does not: air (noise), the blood pools (flow fields) and the descending aorta, which the label
map leaves at 0 ("other foreground" in evaluate-phase's error budget) although its through-plane phase is
aliased blood flow (peak 31-89 cm/s against a 30 cm/s venc on data/phantom20g). This script splits that
region into the aorta (:func:`hdl_monai.data.phantom.vessel_fractions`, rebuilt from the parameters each
phantom case keeps in case.json, read by load_case into ``case.extra``) and the still tissue, and scores the zero-phase predictor (every pixel at
zero velocity, no generator) beside the trained models.

    python benchmarks/phase_region_budget.py data/phantom20g --name phase_region_budget \\
        --title "..." --note "how the models were trained" \\
        --run proposed 2 runs/prop_s2/model.pt --run "vanilla pix2pix" 2 runs/van_s2/model.pt ...

Each `--run LABEL SEED MODEL` synthesises the test split's phase from the real magnitude as
`hdl-monai evaluate-phase --k 0` does (background seed 0, one window), so each run's regions add up to its
Table I full-image MSE there. Per region: the squared error on the normalised phase scale summed over the
region's pixels, divided by the pixel count of the image times 3 (directions), i.e. the region's share of
the full-image MSE. Then the first label against each other label per seed and region, and on how many test
cases it wins with and without the aorta (two-sided sign test).

Writes NAME.json and NAME.md under --out (benchmarks/results); 7 s per case and model on one CPU thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hdl_monai.data import load_case
from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.data.case import DIRECTIONS, CaseError
from hdl_monai.data.loading import datalist_items
from hdl_monai.data.phantom import PhantomParameters, vessel_fractions
from hdl_monai.evaluate_phase import _normalised_phases, region_masks, zero_phase
from hdl_monai.phase_synthesis import DEFAULT_WINDOW_SHIFT, load_phase_model, synthesize_phase

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phase_table1_compare import sign_test  # noqa: E402

REGIONS = ("air", "aorta", "still_tissue", "lv_myocardium", "lv_blood_pool", "rv_blood_pool")
ZERO = "zero phase"


def case_regions(case) -> dict[str, np.ndarray]:
    """(X, Y, T) masks of :data:`REGIONS` for a phantom case; a CaseError when it is not one."""
    phantom = case.extra.get("phantom", {})
    if "parameters" not in phantom:
        raise CaseError(f"{case.path}: not a phantom case (case.json has no phantom parameters), so no aorta mask")
    aorta = vessel_fractions(PhantomParameters.from_dict(phantom["parameters"]))["aorta"] > 0
    masks = region_masks(case)
    vessel = aorta[..., None] & masks["other_foreground"]
    return {"air": masks["background"], "aorta": vessel, "still_tissue": masks["other_foreground"] & ~vessel,
            "lv_myocardium": masks["lv_myocardium"], "lv_blood_pool": masks["lv_blood_pool"],
            "rv_blood_pool": masks["rv_blood_pool"]}


def region_errors(real: list[np.ndarray], fake: list[np.ndarray], regions: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{region: {direction: share of the full-image MSE}}: squared error summed in the region / (pixels x 3)."""
    n = real[0].size * len(real)
    return {k: {d: float(((f - r) ** 2)[m].sum() / n) for d, r, f in zip(DIRECTIONS, real, fake)} for k, m in regions.items()}


def total(errors: dict[str, dict[str, float]], skip: tuple[str, ...] = ()) -> float:
    return sum(sum(v.values()) for k, v in errors.items() if k not in skip)


def summarise(per_case: dict[str, dict[str, dict[str, dict[str, float]]]], runs: list[tuple[str, str]]) -> dict:
    """Means over cases per run (and the zero predictor), gaps of the first label, case wins."""
    cases = list(per_case)
    keys = [f"{label}|{seed}" for label, seed in runs] + [ZERO]

    def mean_region(key, region, direction=None):
        vals = [per_case[c][key][region] for c in cases]
        return float(np.mean([v[direction] if direction else sum(v.values()) for v in vals]))

    means = {key: {r: mean_region(key, r) for r in REGIONS} for key in keys}
    for key in keys:
        means[key]["full_image"] = sum(means[key][r] for r in REGIONS)
        means[key]["aorta_per_direction"] = {d: mean_region(key, "aorta", d) for d in DIRECTIONS}
    first = runs[0][0]
    comparisons = {}
    for label in dict.fromkeys(label for label, _ in runs):
        if label == first:
            continue
        seeds = [s for lab, s in runs if lab == first and (label, s) in runs]
        per_seed, wins = {}, {"full_image": 0, "without_aorta": 0, "cases": 0}
        for s in seeds:
            a, b = f"{first}|{s}", f"{label}|{s}"
            per_seed[s] = {r: means[a][r] - means[b][r] for r in (*REGIONS, "full_image")}
            full = sum(total(per_case[c][a]) < total(per_case[c][b]) for c in cases)
            bare = sum(total(per_case[c][a], ("aorta",)) < total(per_case[c][b], ("aorta",)) for c in cases)
            per_seed[s]["cases_won"] = {"full_image": full, "without_aorta": bare, "cases": len(cases)}
            wins["full_image"] += full
            wins["without_aorta"] += bare
            wins["cases"] += len(cases)
        wins["sign_test_p"] = {k: sign_test(wins[k], wins["cases"]) for k in ("full_image", "without_aorta")}
        comparisons[label] = {"per_seed": per_seed, "cases_won": wins}
    return {"means": means, "first_minus": comparisons}


def markdown(payload: dict) -> str:
    runs, means = payload["runs"], payload["summary"]["means"]
    keys = [f"{label}|{seed}" for label, seed in runs] + [ZERO]
    heads = [f"{label}, seed {seed}" for label, seed in runs] + [ZERO]
    share = payload["pixel_share_percent"]
    lines = [f"# {payload['title']}", "", payload["note"], "",
             "Share of the full-image MSE x100 per region (the rows add up to Table I's full-image MSE, "
             "K = 0), mean over the test cases; in brackets the region's share of the image's pixels.", "",
             "| region | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for r in (*REGIONS, "full_image"):
        name = f"{r.replace('_', ' ')} ({share[r]:.1f} %)" if r in share else "**full image**"
        lines.append(f"| {name} | " + " | ".join(f"{100 * means[k][r]:.3f}" for k in keys) + " |")
    lines.append("| aorta, z only | " + " | ".join(f"{100 * means[k]['aorta_per_direction']['z']:.3f}" for k in keys) + " |")
    first = runs[0][0]
    for label, comp in payload["summary"]["first_minus"].items():
        lines += ["", f"{first} minus {label} (negative: {first} better), x100:", "",
                  "| seed | " + " | ".join(r.replace("_", " ") for r in (*REGIONS, "full_image")) + " | cases won, full image | cases won, without the aorta |",
                  "|---|" + "---|" * (len(REGIONS) + 3)]
        for s, gap in comp["per_seed"].items():
            won = gap["cases_won"]
            lines.append(f"| {s} | " + " | ".join(f"{100 * gap[r]:+.3f}" for r in (*REGIONS, "full_image"))
                         + f" | {won['full_image']} / {won['cases']} | {won['without_aorta']} / {won['cases']} |")
        w = comp["cases_won"]
        lines += ["", f"Over the seeds: {first} wins {w['full_image']} of {w['cases']} (case, seed) pairs on the full image "
                  f"(sign test p {w['sign_test_p']['full_image']:.2g}) and {w['without_aorta']} of {w['cases']} without the "
                  f"aorta (p {w['sign_test_p']['without_aorta']:.2g})."]
    lines += ["", f"Machine: {payload['machine']}; {payload['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="phantom dataset folder (hdl-monai phantom --out ...)")
    ap.add_argument("--run", nargs=3, action="append", required=True, metavar=("LABEL", "SEED", "MODEL"),
                    help="a phase model (model.pt) under a label and a training seed; the first label is compared with the others")
    ap.add_argument("--split", default="test")
    ap.add_argument("--name", default="phase_region_budget")
    ap.add_argument("--title", default="Phase error per region on the phantom, the descending aorta split off")
    ap.add_argument("--note", default="")
    ap.add_argument("--machine", default="the project's 2-core CPU")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    runs = [(label, seed) for label, seed, _ in args.run]
    if len(set(runs)) != len(runs):
        raise SystemExit(f"error: a (label, seed) pair is given twice: {runs}")
    for _, _, path in args.run:
        if not Path(path).exists():
            raise SystemExit(f"error: {path}: no such phase model (model.pt or its folder)")
    models = {f"{label}|{seed}": load_phase_model(path) for label, seed, path in args.run}
    items = datalist_items(args.dataset, args.split)
    start = time.time()
    per_case: dict = {}
    counts = dict.fromkeys(REGIONS, 0)
    pixels = 0
    with tqdm(total=len(items) * len(models), desc="region budget", unit="case-model") as bar:
        for item in items:
            case = load_case(item["case"])
            regions = case_regions(case)
            for r in REGIONS:
                counts[r] += int(regions[r].sum())
            pixels += case.magnitude.size
            entry = {ZERO: region_errors(*_normalised_phases(case, zero_phase(case)), regions)}
            for key, model in models.items():
                bar.set_postfix_str(f"{case.case_id} {key}", refresh=False)
                phase = synthesize_phase(case, model, seed=0, window_shift=DEFAULT_WINDOW_SHIFT)
                entry[key] = region_errors(*_normalised_phases(case, phase), regions)
                bar.update()
            per_case[case.case_id] = entry
    payload = {
        "title": args.title,
        "note": args.note,
        "dataset": str(args.dataset),
        "split": args.split,
        "runs": runs,
        "models": {f"{label}|{seed}": path for label, seed, path in args.run},
        "synthesis": {"k": 0, "background_seed": 0, "window_shift": DEFAULT_WINDOW_SHIFT},
        "pixel_share_percent": {r: 100 * counts[r] / pixels for r in REGIONS},
        "summary": summarise(per_case, runs),
        "per_case": per_case,
        "machine": args.machine,
        "seconds": time.time() - start,
    }
    out = Path(args.out)
    atomic_write_json(out / f"{args.name}.json", payload)
    atomic_write_text(out / f"{args.name}.md", markdown(payload))
    print(markdown(payload))
    return payload


if __name__ == "__main__":
    main()

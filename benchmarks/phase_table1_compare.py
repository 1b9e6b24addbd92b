"""Put Table I rows of several `hdl-monai evaluate-phase` runs side by side, per training seed and over seeds.

Each `--run LABEL SEED DIR METHOD` takes the K-th Table I row of METHOD ("proposed" or "vanilla") from
DIR/evaluate_phase.json (written by `hdl-monai evaluate-phase ... --out DIR`; DIR may also be such a JSON
file, e.g. a copy under benchmarks/results) and files it under LABEL and SEED. DIR may also be a results
JSON this script wrote: METHOD is then one of its labels and SEED one of its seeds, so runs whose
evaluation directories are gone can still be pooled with new ones.

Rows: every (label, seed) (the mean over the test cases), then mean (std over seeds) per label, then how
many seeds the first label beats each other label on each metric, and on how many test cases (the same
case of the same seed paired; two-sided sign test) where the evaluations kept per-case values.

    python benchmarks/phase_table1_compare.py --k 0 --name phase_table1_schemes \\
        --title "Proposed vs the two baselines" --note "how the models were trained" \\
        --run proposed 0 runs/eval_a proposed --run "vanilla pix2pix" 0 runs/eval_b vanilla ...

Writes NAME.json and NAME.md under --out (benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from hdl_monai.data.atomic import atomic_write_json, atomic_write_text
from hdl_monai.evaluate_phase import FACTORS, HEADERS
from hdl_monai.evaluate_phase import METRICS as TABLE1_METRICS

METRICS = (  # key, header, scale, digits, higher is better: Table I's columns, then the curves' r
    *((m, HEADERS[m], float(FACTORS[m]), 2 if m == "psnr" else 3, m in ("psnr", "ssim")) for m in TABLE1_METRICS),
    ("r_pooled_vs_truth", "r pooled vs truth", 1.0, 3, True),
)


def read_row(
    directory: Path, method: str, k: int, seed: str | None = None
) -> tuple[dict[str, float], str, dict | None, dict | None, dict | None]:
    """The Table I means of ``method`` at ``k`` in ``directory``'s evaluate_phase.json, its model's scheme,
    its error budget and background floor (None in files written before evaluate-phase had them), and
    each Table I metric per test case ({metric: {case: value}}).
    A results JSON of this script is read by :func:`read_pooled_row` (``method`` a label, ``seed`` a seed)."""
    path = Path(directory)
    path = path if path.suffix == ".json" else path / "evaluate_phase.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluate_phase.json (run hdl-monai evaluate-phase --out {directory})")
    payload = json.loads(path.read_text())
    if "per_seed" in payload:
        return read_pooled_row(path, payload, method, k, seed)
    table = payload["table1"].get(str(k), {})
    if method not in table:
        raise KeyError(f"{path}: no {method!r} rows at K = {k} (it has K {list(payload['table1'])}, methods {list(table)})")
    row = {key: float(table[method][key]["mean"]) for key, *_ in METRICS if key in table[method]}
    row["r_pooled_vs_truth"] = float(payload["pearson_r_truth"][str(k)][method]["pooled"]["all"])
    budget = (payload.get("error_budget") or {}).get(str(k), {}).get(method)
    per_case = {key: dict(zip(payload["cases"], table[method][key]["values"]))
                for key in row if key in table[method] and "values" in table[method][key]}
    return row, payload["schemes"][method], budget, payload.get("background_floor"), per_case or None


def read_pooled_row(
    path: Path, payload: dict, label: str, k: int, seed: str | None
) -> tuple[dict[str, float], str, dict | None, dict | None, dict | None]:
    """One run of an earlier results JSON of this script: its row, scheme, and its own error budget,
    background floor and per-case values where the file kept them per run (files written before it did
    keep only the pooled budget, which is the run's own when the label had one run, and no cases)."""
    if int(payload["K"]) != k:
        raise ValueError(f"{path}: its rows are at K = {payload['K']}, not K = {k}")
    if label not in payload["per_seed"]:
        raise KeyError(f"{path}: no label {label!r} (it has {list(payload['per_seed'])})")
    rows = payload["per_seed"][label]
    if str(seed) not in rows:
        raise KeyError(f"{path}: {label!r} has no {payload.get('column', 'seed')} {seed!r} (it has {list(rows)})")
    run = (payload.get("runs") or {}).get(label, {}).get(str(seed))
    if run is not None:
        return rows[str(seed)], payload["schemes"][label], run["budget"], run["floor"], run.get("per_case")
    budget, floor = None, None
    pooled = payload.get("error_budget") or {}
    regions = pooled.get("regions", {}).get(label)
    if regions and all(v.get("n") == 1 for v in regions.values()):
        budget = {r: {key: v[key] for key in ("pixel_share", "mse", "error_share")} for r, v in regions.items()}
        floor = pooled.get("background_floor")
        seeds = {s for per_label in payload["per_seed"].values() for s in per_label}
        if floor and len(seeds) > 1:  # the draw's cost was pooled over several seeds' models
            floor = {**floor, "gaussian_draw": None}
    return rows[str(seed)], payload["schemes"][label], budget, floor, None


def sign_test(wins: int, n: int) -> float:
    """Two-sided sign-test p-value of ``wins`` out of ``n`` paired comparisons (no ties) under 50:50."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(wins, n - wins) + 1)) / 2**n
    return min(1.0, 2 * tail)


def case_wins(runs: dict[str, dict[str, dict]], first: str, other: str, keys: list) -> dict | None:
    """Test cases where ``first`` beats ``other`` on each metric, pairing the same case of the same seed,
    per seed and over all seeds with a sign test; None when no seed has per-case values for both.
    ``runs[label][seed]["per_case"]`` holds {metric: {case: value}} (or None)."""
    per_case = {label: {seed: run["per_case"] for seed, run in by_seed.items()} for label, by_seed in runs.items()}
    seeds = [s for s in per_case.get(first, {}) if per_case[first][s] and (per_case.get(other, {}).get(s))]
    if not seeds:
        return None
    result: dict[str, dict] = {}
    for key, _, _, _, higher in keys:
        per_seed, wins, total = {}, 0, 0
        for seed in seeds:
            a, b = per_case[first][seed].get(key), per_case[other][seed].get(key)
            if not a or not b:
                continue
            cases = [c for c in a if c in b and a[c] != b[c]]
            won = sum((a[c] > b[c]) == higher for c in cases)
            per_seed[seed] = {"wins": won, "cases": len(cases)}
            wins, total = wins + won, total + len(cases)
        if total:
            result[key] = {"per_seed": per_seed, "wins": wins, "cases": total, "sign_test_p": sign_test(wins, total)}
    return result


def budget_section(
    budgets: dict[str, dict[str, dict]], floors: list[tuple[str, dict]], first: str, column: str = "seed"
) -> tuple[list[str], dict]:
    """Markdown lines and JSON of the error budget per label (mean over its runs) and the gap to ``first``:
    each region's contribution to the full-image MSE is its pixel share times its MSE."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for label, per_seed in budgets.items():
        first_run = next(iter(per_seed.values()))
        regions = [r for r in first_run if first_run[r]["pixel_share"] > 0]
        summary[label] = {}
        for region in regions:
            values = [b[region] for b in per_seed.values()]
            mse = [v["mse"] for v in values]
            contribution = [v["pixel_share"] * v["mse"] for v in values]
            summary[label][region] = {
                "pixel_share": float(np.mean([v["pixel_share"] for v in values])),
                "mse": float(np.mean(mse)), "mse_std": float(np.std(mse)),
                "error_share": float(np.mean([v["error_share"] for v in values])),
                "contribution": float(np.mean(contribution)), "n": len(values),
            }
    several = any(len(per_seed) > 1 for per_seed in budgets.values())
    lines = ["## Where the squared error lies" + (f" (mean (std) over {column}s)" if several else ""), "",
             "Contribution = the region's pixel share x its MSE; the contributions add up to the full-image MSE.", "",
             "| method | region | pixels % | MSE x100 | share of squared error % | contribution to MSE x100 |",
             "|---|---|---|---|---|---|"]
    for label, regions in summary.items():
        for region, v in regions.items():
            lines.append(f"| {label} | {region.replace('_', ' ')} | {100 * v['pixel_share']:.1f} | "
                         f"{100 * v['mse']:.3f}" + (f" ({100 * v['mse_std']:.3f})" if several else "")
                         + f" | {100 * v['error_share']:.1f} | "
                         f"{100 * v['contribution']:.3f} |")
    lines.append("")
    gaps = {}
    for other in [label for label in summary if label != first]:
        common = [r for r in summary[first] if r in summary[other]]
        gaps[other] = {r: summary[first][r]["contribution"] - summary[other][r]["contribution"] for r in common}
        total = sum(gaps[other].values())
        lines.append(f"Full-image MSE x100, {first} minus {other}: {100 * total:+.3f} = "
                     + " ".join(f"{100 * g:+.3f} ({r.replace('_', ' ')})" for r, g in gaps[other].items()) + ".")
    floor = pooled_floor(floors)
    if floor is not None:
        draw = floor.get("gaussian_draw")
        lines.append(f"Background floor (real air phase variance, the least any one-value-per-pixel output can score): "
                     f"MSE x100 {100 * floor['mean_predictor']:.3f}"
                     + (f"; an independent draw from the proposed model's fitted Gaussian expects {100 * draw:.3f} (before its clip to [-1, 1])."
                        if draw is not None else "."))
    lines.append("")
    return lines, {"regions": summary, "gap_to_first": gaps, "background_floor": floor}


def budget_figure(budget_json: dict, k: int, path: Path) -> Path:
    """The pooled budget as :func:`hdl_monai.evaluate_phase.plot_error_budget` bars (one per label)."""
    from hdl_monai.evaluate_phase import plot_error_budget
    from hdl_monai.velocity.plots import save_figure

    save_figure(plot_error_budget({str(k): budget_json["regions"]}, budget_json["background_floor"]), path)
    return path


def pooled_floor(floors: list[tuple[str, dict]]) -> dict | None:
    """One background floor for runs that must share a test split: the mean predictor's floor is a
    property of the data, so runs that disagree on it were scored on different data (ValueError naming
    both). The expected cost of a Gaussian draw depends on each run's fitted Gaussian: the mean over runs."""
    if not floors:
        return None
    (source, first), *rest = floors
    for other_source, other in rest:
        if not np.isclose(other["mean_predictor"], first["mean_predictor"], rtol=1e-6, atol=0.0):
            raise ValueError(
                f"{other_source}: background floor {other['mean_predictor']:.6g} differs from {first['mean_predictor']:.6g} "
                f"in {source}; these runs were not evaluated on the same test split")
    draws = [f["gaussian_draw"] for _, f in floors if f.get("gaussian_draw") is not None]
    return {**first, "gaussian_draw": float(np.mean(draws)) if draws else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=4, action="append", required=True, metavar=("LABEL", "SEED", "DIR", "METHOD"))
    parser.add_argument("--k", type=int, default=0)
    parser.add_argument("--name", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--column", default="seed", help="what SEED stands for (e.g. epoch)")
    parser.add_argument("--no_summary", action="store_true", help="no mean (std) rows (SEED is not a seed)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    per_seed: dict[str, dict[str, dict[str, float]]] = {}
    schemes: dict[str, str] = {}
    sources: dict[str, dict[str, str]] = {}
    budgets: dict[str, dict[str, dict]] = {}
    floors: list[tuple[str, dict]] = []
    complete = True
    runs: dict[str, dict[str, dict]] = {}
    for label, seed, directory, method in args.run:
        row, scheme, budget, floor, cases = read_row(Path(directory), method, args.k, seed)
        runs.setdefault(label, {})[seed] = {"budget": budget, "floor": floor, "per_case": cases}
        if budget is None:
            complete = False
        else:
            budgets.setdefault(label, {})[seed] = budget
        if floor is not None:
            floors.append((directory, floor))
        if schemes.setdefault(label, scheme) != scheme:
            raise ValueError(f"{label!r}: runs of different schemes ({schemes[label]!r} and {scheme!r}, {directory})")
        per_seed.setdefault(label, {})[seed] = row
        sources.setdefault(label, {})[seed] = f"{directory} ({method})"
    labels = list(per_seed)
    keys = [m for m in METRICS if all(m[0] in row for rows in per_seed.values() for row in rows.values())]
    summary = {
        label: {key: {"mean": float(np.mean([r[key] for r in rows.values()])),
                      "std": float(np.std([r[key] for r in rows.values()])), "n": len(rows)}
                for key, *_ in keys}
        for label, rows in per_seed.items()
    }
    first = labels[0]
    wins: dict[str, dict[str, int]] = {}
    for other in labels[1:]:
        common = sorted(set(per_seed[first]) & set(per_seed[other]))
        wins[other] = {
            key: sum(per_seed[first][s][key] != per_seed[other][s][key]
                     and (per_seed[first][s][key] > per_seed[other][s][key]) == higher for s in common)
            for key, _, _, _, higher in keys
        }
        wins[other]["seeds"] = len(common)

    header = f"| method | {args.column} | " + " | ".join(h for _, h, *_ in keys) + " |"
    lines = [f"# {args.title}", "", args.note, "", header, "|" + "---|" * (len(keys) + 2)]

    def cell(value: float, scale: float, digits: int) -> str:
        return f"{value * scale:.{digits}f}"

    for label in labels:
        for seed, row in per_seed[label].items():
            lines.append(f"| {label} | {seed} | " + " | ".join(cell(row[k], s, d) for k, _, s, d, _ in keys) + " |")
    for label in [] if args.no_summary else labels:
        stats = summary[label]
        lines.append(f"| {label} | mean (std) | " + " | ".join(
            f"{cell(stats[k]['mean'], s, d)} ({cell(stats[k]['std'], s, d)})" for k, _, s, d, _ in keys) + " |")
    lines.append("")
    for other, counts in wins.items():
        lines.append(f"{args.column.capitalize()}s (of {counts['seeds']}) where {first} is better than {other}: "
                     + ", ".join(f"{k} {counts[k]}" for k, *_ in keys) + ".")
    paired = {other: case_wins(runs, first, other, keys) for other in labels[1:]}
    for other, counts in paired.items():
        if not counts:
            continue
        lines.append(f"Test cases where {first} is better than {other}, paired case by case within a {args.column} "
                     f"(two-sided sign test): " + ", ".join(
                         f"{k} {c['wins']}/{c['cases']} (p {c['sign_test_p']:.2g})" for k, c in counts.items())
                     + ". Per " + args.column + " on " + next(iter(counts)) + ": " + ", ".join(
                         f"{s} {v['wins']}/{v['cases']}" for s, v in next(iter(counts.values()))["per_seed"].items()) + ".")
    lines.append("")
    lines.append("Schemes: " + ", ".join(f"{label} = {schemes[label]!r}" for label in labels) + f"; K = {args.k}.")
    budget_json = None
    args.out.mkdir(parents=True, exist_ok=True)
    if complete:  # every run carries an error budget
        budget_lines, budget_json = budget_section(budgets, floors, first, args.column)
        lines += ["", *budget_lines]
        figure = budget_figure(budget_json, args.k, args.out / f"{args.name}_budget.png")
        lines += [f"![error budget]({figure.name})", ""]
    atomic_write_json(args.out / f"{args.name}.json", {
        "title": args.title, "note": args.note, "K": args.k, "schemes": schemes, "sources": sources,
        "column": args.column, "per_seed": per_seed, "summary": None if args.no_summary else summary,
        "first_beats_other_seeds": wins, "first_beats_other_cases": paired, "error_budget": budget_json, "runs": runs,
        "units": "MSE-type metrics on the normalised phase scale [-1, 1]; PSNR / SSIM with data range 2",
    })
    atomic_write_text(args.out / f"{args.name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

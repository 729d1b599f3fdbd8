"""The compare report: report.md, report.csv and tuning.png in the compare folder.

Per method: test metrics over the confirmation seeds (mean ± std), the first method minus the
second paired by seed with its 95% CI, the tuning curves on val, the budget, and what was controlled.
"""

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from siamese.compare.budget import Budget, budget, seconds_text
from siamese.compare.collect import CONFIRM, TUNE, Method, images_per_step, read_compare
from siamese.compare.controls import control_lines, controls
from siamese.compare.plot import plot_tuning
from siamese.config.overrides import override_key
from siamese.report.markdown import (
    ABSENT,
    MINUS,
    mean_pm_std,
    named_table,
    number,
    signed,
    verdict,
)
from siamese.report.stats import Difference, difference, mean_std
from siamese.report.table import PREFIX, higher_is_better, metric_order
from siamese.run.record import COMPLETED

NAMES = {"md": "report.md", "csv": "report.csv", "png": "tuning.png"}


def by_seed(method: Method, metric: str) -> dict[str, float]:
    return {
        j.seed: j.metrics[metric]
        for j in method.completed_confirm
        if j.seed is not None and metric in j.metrics
    }


def paired(a: Method, b: Method, metric: str) -> Difference | None:
    """a − b over the seeds both confirmed; None under 2 seeds."""
    xa, xb = by_seed(a, metric), by_seed(b, metric)
    return difference([xa[s] - xb[s] for s in sorted(xa.keys() & xb.keys(), key=_seed_key)])


def _seed_key(seed: str) -> tuple:
    return (0, int(seed), "") if seed.lstrip("-").isdigit() else (1, 0, seed)


@dataclass(frozen=True)
class Side:
    """One method's confirmation seeds on one metric."""

    mean: float | None
    std: float | None
    n: int


def side(method: Method, metric: str) -> Side:
    values = list(by_seed(method, metric).values())
    return Side(*mean_std(values), len(values))


def _metrics(methods: list[Method]) -> list[str]:
    return metric_order({k for m in methods for j in m.completed_confirm for k in j.metrics})


def _folds_lines(methods: list[Method]) -> list[str]:
    """What the search's objective was when it ran over class-disjoint folds (data.folds)."""
    if not any(m.folds for m in methods):
        return []
    each = ", ".join(
        f"{m.label} {m.folds} folds ({m.folds} jobs per trial)" if m.folds else f"{m.label} none"
        for m in methods
    )
    return [
        "",
        f"Folds: {each}. With data.folds=k the classes outside test are dealt into k "
        "class-disjoint folds; a trial trains k jobs, each validating on one fold, and its objective "
        "is their mean val metric (a failed fold fails the trial). Confirmation uses the usual "
        "split, folds off.",
    ]


def _monitor(methods: list[Method]) -> str:
    for m in methods:
        if m.best_config:
            return str(m.best_config.get("evaluation", {}).get("monitor", "objective"))
    return "objective"


def _header(folder: Path, meta: dict, methods: list[Method], monitor: str) -> list[str]:
    equal = "equal" if len({len(m.trials) for m in methods}) == 1 else "NOT equal"
    lines = [
        f"# Compare report: {Path(folder).name}",
        "",
        f"Folder: `{Path(folder).resolve()}`  ",
        "Trials per method: "
        + ", ".join(f"{m.label} {len(m.trials)}" for m in methods)
        + f" ({equal}).  ",
        "Confirmation seeds per method: "
        + ", ".join(f"{m.label} {len(m.completed_confirm)}/{len(m.confirm)}" for m in methods)
        + ".  ",
        f"Search objective: `{monitor}` on val; test metrics were not read by the search.",
    ]
    if meta.get("overrides"):
        lines.append("Every job: " + " ".join(f"`{o}`" for o in meta["overrides"]) + "  ")
    return lines


def _interval(metric: str, d: Difference | None) -> str:
    if d is None:
        return ABSENT
    star = " *" if d.significant and higher_is_better(metric) is not None else ""
    return f"{signed(d.mean)} ({signed(d.low)} to {signed(d.high)}){star}"


def _test_cells(a: Method, b: Method, metric: str) -> dict[str, str]:
    cells = {"metric": metric.removeprefix(PREFIX)}
    for m in (a, b):
        s = side(m, metric)
        cells[m.label] = mean_pm_std(s.mean, s.std)
    cells[f"{a.label} {MINUS} {b.label} (95% CI)"] = _interval(metric, paired(a, b, metric))
    return cells


def _test_section(a: Method, b: Method, metrics: list[str]) -> list[str]:
    rows = [_test_cells(a, b, m) for m in metrics]
    return [
        "## Test metrics of each method's best configuration (mean ± std over seeds)",
        "",
        named_table(rows) if rows else "No confirmation job completed.",
        "",
        "Paired by seed; * marks an interval that excludes 0. p_at_1_untrained is the untrained "
        "encoder's test P@1 (the baseline every trained run should beat).",
        "",
        *(f"- {verdict(m, paired(a, b, m), a.label, b.label, 'seeds')}" for m in metrics),
    ]


def _tuning_cells(method: Method) -> dict[str, str]:
    best = method.best_trial()
    # the values the search chose for the keys of its space
    chosen = [] if best is None else [o for o in best.overrides if override_key(o) in method.space]
    return {
        "method": method.label,
        "trials": str(len(method.trials)),
        "failed": str(sum(t.objective is None for t in method.trials)),
        "best val": ABSENT if best is None else number(best.objective),
        "best trial": ABSENT if best is None else str(best.number),
        "best values": " ".join(f"`{o}`" for o in chosen) or ABSENT,
    }


def _tuning_section(methods: list[Method], monitor: str) -> list[str]:
    return [
        f"## Tuning on val (`{monitor}`, {methods[0].direction})",
        "",
        named_table([_tuning_cells(m) for m in methods]),
        "",
        "A failed trial counts as a trial with the worst score.",
        "",
        f"![tuning curves]({NAMES['png']})",
    ]


def _budget_section(methods: list[Method], budgets: list[Budget]) -> list[str]:
    return [
        "## Budget per method (the search)",
        "",
        named_table([b.cells() for b in budgets]),
        "",
        "steps and images: planned by each trial's config (steps_per_epoch × max_epochs, images per "
        "step = data.images_per_step or batch × tuple size), summed over the jobs that wrote a "
        "config (jobs/trial of them per trial). Wall time is measured, not controlled.",
        *_folds_lines(methods),
    ]


def _controls_section(a: Method, b: Method, budgets: list[Budget]) -> list[str]:
    title = ["## Controlled / not controlled", ""]
    if not (a.best_config and b.best_config):
        return [*title, "No resolved config for both methods: nothing to compare."]
    ipa, ipb = images_per_step(a.best_config), images_per_step(b.best_config)
    walls = ", ".join(f"{x.label} search {seconds_text(x.search_s)}" for x in budgets)
    return [
        *title,
        *control_lines(controls(a.best_config, b.best_config, a.space, b.space), a.label, b.label),
        f"- images per step of the best configurations: {a.label} {ipa}, {b.label} {ipb}"
        + (" (equal)" if ipa == ipb else ""),
        f"- wall time: {walls} (measured, not controlled)",
    ]


def _problems_section(methods: list[Method]) -> list[str]:
    bad = [
        f"- {m.label} {phase} job {j.number}: {j.status}: {j.problem} — `{j.folder.resolve()}`"
        for m in methods
        for phase, jobs in ((TUNE, m.tune_jobs), (CONFIRM, m.confirm))
        for j in jobs
        if j.status != COMPLETED
    ]
    return ["## Failed and missing jobs", "", *(bad or ["None: every job completed."])]


def markdown_report(folder: Path, meta: dict, methods: list[Method]) -> str:
    a, b = methods[0], methods[1]
    monitor = _monitor(methods)
    budgets = [budget(m, meta.get("phases") or {}) for m in methods]
    sections = [
        _header(folder, meta, methods, monitor),
        _test_section(a, b, _metrics(methods)),
        _tuning_section(methods, monitor),
        _budget_section(methods, budgets),
        _controls_section(a, b, budgets),
        _problems_section(methods),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def csv_text(methods: list[Method]) -> str:
    a, b = methods[0], methods[1]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "metric",
            *(f"{m.name}_{s}" for m in (a, b) for s in ("mean", "std", "n")),
            "diff_mean",
            "diff_low",
            "diff_high",
            "pairs",
            "significant",
        ]
    )
    for metric in _metrics(methods):
        sides = [side(m, metric) for m in (a, b)]
        d = paired(a, b, metric)
        writer.writerow(
            [
                metric,
                *(x for s in sides for x in (_num(s.mean), _num(s.std), s.n)),
                *(
                    ["", "", "", 0, ""]
                    if d is None
                    else [_num(d.mean), _num(d.low), _num(d.high), d.n, str(d.significant).lower()]
                ),
            ]
        )
    return out.getvalue()


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.10g}"


def write_compare_report(folder: Path) -> dict[str, Path]:
    folder = Path(folder)
    meta, methods = read_compare(folder)
    paths = {kind: folder / name for kind, name in NAMES.items()}
    plot_tuning(methods, paths["png"], _monitor(methods))
    paths["csv"].write_text(csv_text(methods))
    paths["md"].write_text(markdown_report(folder, meta, methods))
    return paths

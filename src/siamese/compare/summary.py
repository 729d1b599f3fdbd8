"""The compare report: report.md, report.csv and tuning.png in the compare folder.

Per method: test metrics over the confirmation seeds (mean ± std), the first method minus the
second paired by seed with its 95% CI, the tuning curves on val, the budget, and what was controlled.
"""

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from siamese.compare.collect import (
    Method,
    images_per_step,
    job_seconds,
    planned_steps,
    read_compare,
)
from siamese.compare.controls import control_lines, controls
from siamese.report.pairing import Difference
from siamese.report.render import ABSENT, MINUS, _markdown_rows, mean_pm_std, number, signed
from siamese.report.stats import mean_confidence_interval, mean_std
from siamese.report.table import higher_is_better, metric_order

NAMES = {"md": "report.md", "csv": "report.csv", "png": "tuning.png"}
DPI = 150


def by_seed(method: Method, metric: str) -> dict[str, float]:
    return {
        j.seed: j.metrics[metric]
        for j in method.completed_confirm
        if j.seed is not None and metric in j.metrics
    }


def paired(a: Method, b: Method, metric: str) -> Difference | None:
    """a − b over the seeds both confirmed, with its 95% CI (Student t); None under 2 seeds."""
    xa, xb = by_seed(a, metric), by_seed(b, metric)
    diffs = [xa[s] - xb[s] for s in sorted(xa.keys() & xb.keys(), key=_seed_key)]
    interval = mean_confidence_interval(diffs)
    return None if interval is None else Difference(*interval, n=len(diffs))


def _seed_key(seed: str) -> tuple:
    return (0, int(seed), "") if seed.lstrip("-").isdigit() else (1, 0, seed)


def verdict(metric: str, diff: Difference | None, a: str, b: str) -> str:
    """One plain sentence per metric; a difference whose CI spans 0 is called not significant."""
    if diff is None:
        return f"{metric}: fewer than 2 seeds confirmed for both methods: no interval."
    head = (
        f"{metric}: {a} {MINUS} {b} = {signed(diff.mean)} "
        f"(95% CI {signed(diff.low)} to {signed(diff.high)}, n = {diff.n} seeds)"
    )
    if higher_is_better(metric) is None:
        return f"{head}: a baseline of the untrained network, not a result."
    if diff.low == diff.high == 0:
        return f"{head}: equal on every seed, no difference."
    if not diff.significant:
        return f"{head}: not significant, the interval includes 0: this run cannot tell {a} and {b} apart."
    better = (diff.mean > 0) == bool(higher_is_better(metric))
    return f"{head}: {a if better else b} is better, significant at 95%."


@dataclass
class Budget:
    trials: int
    completed: int
    failed: int
    epochs: str  # per trial: one value, or a range when it was tuned
    steps: int  # planned training steps, summed over the jobs
    images: int  # images those steps see
    job_s: float  # the jobs' own wall time, summed
    phase_s: float | None  # the whole search's wall time, from compare.json


def _span(values: list[int]) -> str:
    if not values:
        return ABSENT
    return str(values[0]) if min(values) == max(values) else f"{min(values)}–{max(values)}"


def budget(method: Method, phase_s: float | None) -> Budget:
    configs = list(method.tune_configs.values())
    steps = [s for c in configs if (s := planned_steps(c)) is not None]
    images = [
        s * i for c in configs if (s := planned_steps(c)) and (i := images_per_step(c)) is not None
    ]
    epochs = sorted(int(c["trainer"]["max_epochs"]) for c in configs if "trainer" in c)
    job_s = sum(job_seconds(j.folder) for j in method.tune_jobs)
    failed = sum(t.objective is None for t in method.trials)
    return Budget(
        len(method.trials),
        len(method.trials) - failed,
        failed,
        _span(epochs),
        sum(steps),
        sum(images),
        job_s,
        phase_s,
    )


def _folds_lines(methods: list[Method]) -> list[str]:
    """What the search's objective was when it ran over class-disjoint folds (data.folds)."""
    if not any(m.folds for m in methods):
        return []
    each = ", ".join(
        f"{m.label} {m.folds} folds ({m.folds} jobs per trial)" if m.folds else f"{m.label} none"
        for m in methods
    )
    return [
        f"Folds: {each}. With data.folds=k the classes outside test are dealt into k "
        "class-disjoint folds; a trial trains k jobs, each validating on one fold, and its objective "
        "is their mean val metric (a failed fold fails the trial). Confirmation uses the usual "
        "split, folds off.",
        "",
    ]


def _seconds(s: float | None) -> str:
    return ABSENT if s is None else f"{s:.0f} s"


def plot_tuning(methods: list[Method], path: Path, monitor: str) -> Path:
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for m in methods:
        curve = np.array(m.best_so_far(), dtype=float)
        if curve.size:
            (line,) = ax.plot(np.arange(1, curve.size + 1), curve, marker="o", ms=3, label=m.label)
            done = [(t.number + 1, t.objective) for t in m.trials if t.objective is not None]
            if done:
                ax.scatter(*zip(*done, strict=True), s=10, alpha=0.35, color=line.get_color())
    ax.set_xlabel("trial")
    ax.set_ylabel(f"best {monitor} so far (dots: each trial)")
    ax.set_title("Tuning curves on val, equal trials per method")
    ax.grid(alpha=0.3)
    if any(m.trials for m in methods):
        ax.legend(frameon=False)
    fig.savefig(path, dpi=DPI)
    return Path(path)


def _monitor(methods: list[Method]) -> str:
    for m in methods:
        if m.best_config:
            return str(m.best_config.get("evaluation", {}).get("monitor", "objective"))
    return "objective"


def _tuned_values(method: Method) -> str:
    best = method.best_trial()
    if best is None:
        return ABSENT
    keys = set(method.space)
    chosen = [o for o in best.overrides if o.split("=", 1)[0] in keys]
    return " ".join(f"`{o}`" for o in chosen) or ABSENT


def markdown(folder: Path, meta: dict, methods: list[Method]) -> str:
    a, b = methods[0], methods[1]
    monitor = _monitor(methods)
    metrics = metric_order({k for m in methods for j in m.completed_confirm for k in j.metrics})
    trials = [len(m.trials) for m in methods]
    equal = "equal" if len(set(trials)) == 1 else "NOT equal"
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
    header = ["metric", *(m.label for m in methods[:2]), f"{a.label} {MINUS} {b.label} (95% CI)"]
    rows = []
    for metric in metrics:
        cells = [metric.removeprefix("test/")]
        for m in (a, b):
            values = list(by_seed(m, metric).values())
            cells.append(mean_pm_std(*mean_std(values)))
        d = paired(a, b, metric)
        cells.append(
            ABSENT
            if d is None
            else f"{signed(d.mean)} ({signed(d.low)} to {signed(d.high)})"
            + (" *" if d.significant and higher_is_better(metric) is not None else "")
        )
        rows.append(cells)
    lines += [
        "",
        "## Test metrics of each method's best configuration (mean ± std over seeds)",
        "",
        "\n".join(_markdown_rows(header, rows)) if rows else "No confirmation job completed.",
        "",
        "Paired by seed; * marks an interval that excludes 0. p_at_1_untrained is the untrained "
        "encoder's test P@1 (the baseline every trained run should beat).",
        "",
        *(f"- {verdict(m, paired(a, b, m), a.label, b.label)}" for m in metrics),
        "",
        f"## Tuning on val (`{monitor}`, {methods[0].direction})",
        "",
    ]
    tune_rows = []
    for m in methods:
        best = m.best_trial()
        tune_rows.append(
            [
                m.label,
                str(len(m.trials)),
                str(sum(t.objective is None for t in m.trials)),
                ABSENT if best is None else number(best.objective),
                ABSENT if best is None else str(best.number),
                _tuned_values(m),
            ]
        )
    lines += [
        "\n".join(
            _markdown_rows(
                ["method", "trials", "failed", "best val", "best trial", "best values"], tune_rows
            )
        ),
        "",
        "A failed trial counts as a trial with the worst score.",
        "",
        f"![tuning curves]({NAMES['png']})",
        "",
        "## Budget per method (the search)",
        "",
    ]
    phases = meta.get("phases") or {}
    budget_rows = []
    for m in methods:
        bud = budget(m, (phases.get(f"tune/{m.name}") or {}).get("wall_s"))
        confirm_s = (phases.get(f"confirm/{m.name}") or {}).get("wall_s")
        budget_rows.append(
            [
                m.label,
                str(bud.trials),
                str(m.folds or 1),
                bud.epochs,
                str(bud.steps),
                str(bud.images),
                _seconds(bud.job_s),
                _seconds(bud.phase_s),
                _seconds(confirm_s),
            ]
        )
    lines += [
        "\n".join(
            _markdown_rows(
                [
                    "method",
                    "trials",
                    "jobs/trial",
                    "epochs/trial",
                    "steps",
                    "images seen",
                    "jobs' time",
                    "search wall",
                    "confirm wall",
                ],
                budget_rows,
            )
        ),
        "",
        "steps and images: planned by each trial's config (steps_per_epoch × max_epochs, images per "
        "step = data.images_per_step or batch × tuple size), summed over the jobs that wrote a "
        "config (jobs/trial of them per trial). Wall time is measured, not controlled.",
        "",
        *_folds_lines(methods),
        "## Controlled / not controlled",
        "",
    ]
    if a.best_config and b.best_config:
        c = controls(a.best_config, b.best_config, a.space, b.space)
        ipa, ipb = images_per_step(a.best_config), images_per_step(b.best_config)
        lines += control_lines(c, a.label, b.label)
        lines.append(
            f"- images per step of the best configurations: {a.label} {ipa}, {b.label} {ipb}"
            + (" (equal)" if ipa == ipb else "")
        )
        lines.append(
            "- wall time: "
            + ", ".join(f"{r[0]} search {r[7]}" for r in budget_rows)
            + " (measured, not controlled)"
        )
    else:
        lines.append("No resolved config for both methods: nothing to compare.")
    lines += ["", "## Failed and missing jobs", ""]
    bad = [
        f"- {m.label} {phase} job {j.number}: {j.status}: {j.problem} — `{j.folder.resolve()}`"
        for m in methods
        for phase, jobs in (("tune", m.tune_jobs), ("confirm", m.confirm))
        for j in jobs
        if j.status != "completed"
    ]
    lines += bad or ["None: every job completed."]
    return "\n".join(lines) + "\n"


def csv_text(methods: list[Method]) -> str:
    a, b = methods[0], methods[1]
    metrics = metric_order({k for m in methods for j in m.completed_confirm for k in j.metrics})
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
    for metric in metrics:
        row = [metric]
        for m in (a, b):
            values = list(by_seed(m, metric).values())
            mean, std = mean_std(values)
            row += [_num(mean), _num(std), len(values)]
        d = paired(a, b, metric)
        row += (
            ["", "", "", 0, ""]
            if d is None
            else [_num(d.mean), _num(d.low), _num(d.high), d.n, str(d.significant).lower()]
        )
        writer.writerow(row)
    return out.getvalue()


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.10g}"


def write_compare_report(folder: Path) -> dict[str, Path]:
    folder = Path(folder)
    meta, methods = read_compare(folder)
    paths = {kind: folder / name for kind, name in NAMES.items()}
    plot_tuning(methods, paths["png"], _monitor(methods))
    paths["csv"].write_text(csv_text(methods))
    paths["md"].write_text(markdown(folder, meta, methods))
    return paths

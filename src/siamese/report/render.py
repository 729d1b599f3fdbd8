"""The report as text: the Markdown table and sections, and the CSV."""

import csv
import io
from pathlib import Path

from siamese.config.overrides import override_key
from siamese.report.collect import Job
from siamese.report.markdown import ABSENT, MINUS, mean_pm_std, pipe_table, verdict
from siamese.report.pairing import A, B, paired_difference, skip_reason
from siamese.report.table import PREFIX, Table, higher_is_better
from siamese.run.record import COMPLETED, FAILED, MISSING


def markdown_table(table: Table) -> str:
    header = [*table.keys, *(m.removeprefix(PREFIX) for m in table.metrics), "n"]
    rows = []
    for row in table.rows:
        cells = [row.values.get(k, ABSENT) for k in table.keys]
        for m in table.metrics:
            text = mean_pm_std(*row.stats[m])
            cells.append(f"**{text}**" if row.label in table.best[m] else text)
        rows.append([*cells, str(row.n)])
    return pipe_table(header, rows)


def difference_section(jobs: list[Job], metrics: list[str]) -> list[str]:
    title = f"## {A.upper()} {MINUS} {B.upper()} (paired: same other overrides, same seed)"
    reason = skip_reason(jobs)
    if reason is not None:
        return [title, "", f"Skipped: {reason}."]
    return [
        title,
        "",
        "Mean of the per-pair differences with its 95% confidence interval (Student t, n − 1 "
        "degrees of freedom); significant when the interval excludes 0.",
        "",
        *(
            f"- {verdict(m, paired_difference(jobs, m), A.upper(), B.upper(), 'pairs')}"
            for m in metrics
        ),
    ]


def _job_line(job: Job, common: list[str]) -> str:
    if job.cell is None:
        cell = "(overrides unknown)"
    else:
        cell = " ".join(o for o in job.cell if o not in common) or "(no overrides)"
    seed = f" seed={job.seed}" if job.seed is not None else ""
    return (
        f"- {job.status} job {job.number} ({cell}{seed}): {job.problem} — `{job.folder.resolve()}`"
    )


def problems_section(failed: list[Job], missing: list[Job], common: list[str]) -> list[str]:
    title = "## Failed and missing jobs"
    bad = sorted([*failed, *missing], key=lambda j: j.number)
    if not bad:
        return [title, "", "None: every job completed."]
    return [title, "", *(_job_line(j, common) for j in bad)]


def _best_note(table: Table) -> str:
    lowest = [m.removeprefix(PREFIX) for m in table.metrics if higher_is_better(m) is False]
    unranked = [m.removeprefix(PREFIX) for m in table.metrics if higher_is_better(m) is None]
    notes = [f"lowest for {', '.join(lowest)}"] if lowest else []
    notes += [f"none for {', '.join(unranked)}, a baseline"] if unranked else []
    return "Best mean per column in **bold**" + (f" ({'; '.join(notes)})." if notes else ".")


def _header(
    sweep_dir: Path, table: Table, counts: dict[str, int], launched_with: list[str]
) -> list[str]:
    lines = [
        f"# Sweep report: {Path(sweep_dir).name}",
        "",
        f"Folder: `{Path(sweep_dir).resolve()}`  ",
        f"Jobs: {sum(counts.values())}: "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
        + ".  ",
    ]
    # multirun.yaml's view of the grid: the axes the cells differ by, and the seeds
    axes = {*table.keys, "seed"}
    grid = list(dict.fromkeys(o for o in launched_with if override_key(o) in axes))
    if grid:
        lines.append("Grid: " + " ".join(f"`{o}`" for o in grid) + "  ")
    if table.common:
        lines.append("Every job: " + " ".join(f"`{o}`" for o in table.common) + "  ")
    return lines


def markdown_report(
    sweep_dir: Path,
    table: Table,
    jobs: list[Job],
    failed: list[Job],
    missing: list[Job],
    launched_with: list[str],
    image: str | None = None,
) -> str:
    counts = {COMPLETED: len(jobs), FAILED: len(failed), MISSING: len(missing)}
    lines = [
        *_header(sweep_dir, table, counts, launched_with),
        "",
        "## Test metrics (mean ± std over seeds)",
        "",
        markdown_table(table) if table.rows else "No job has known overrides: no table.",
        "",
        "std: sample std (ddof = 1), — with a single seed; n: completed seeds. "
        + _best_note(table),
        "",
        *difference_section(jobs, table.metrics),
        "",
        *problems_section(failed, missing, table.common),
    ]
    if image:
        lines += ["", f"![test metrics per cell]({image})"]
    return "\n".join(lines) + "\n"


def csv_report(table: Table) -> str:
    """One row per cell: its overrides, each metric's mean and std, n, and the metrics it is best
    at (space-separated), so that every numeric column parses as a number."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "cell",
            *table.keys,
            *(f"{m}_{s}" for m in table.metrics for s in ("mean", "std")),
            "n",
            "best",
        ]
    )
    for row in table.rows:
        stats = ["" if x is None else f"{x:.10g}" for m in table.metrics for x in row.stats[m]]
        best = " ".join(m for m in table.metrics if row.label in table.best[m])
        writer.writerow(
            [row.label, *(row.values.get(k, "") for k in table.keys), *stats, row.n, best]
        )
    return out.getvalue()

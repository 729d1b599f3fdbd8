"""report.md, report.csv and report.png, written into the sweep folder."""

from pathlib import Path

from siamese.report.collect import collect, sweep_overrides
from siamese.report.plot import plot
from siamese.report.render import csv_report, markdown_report
from siamese.report.table import summarize

NAMES = {"md": "report.md", "csv": "report.csv", "png": "report.png"}


def write_report(sweep_dir: Path) -> dict[str, Path]:
    """Reads the sweep's jobs and writes the three files; returns their paths by kind."""
    sweep_dir = Path(sweep_dir)
    jobs, failed, missing = collect(sweep_dir)
    table = summarize(jobs, [*failed, *missing])
    paths = {kind: sweep_dir / name for kind, name in NAMES.items()}
    plot(table, paths["png"])
    paths["csv"].write_text(csv_report(table))
    text = markdown_report(
        sweep_dir, table, jobs, failed, missing, sweep_overrides(sweep_dir), NAMES["png"]
    )
    paths["md"].write_text(text)
    return paths

"""The sweep report: `python -m siamese.report [SWEEP_DIR]` reads a Hydra multirun folder's jobs
and writes report.md, report.csv and report.png into it."""

from siamese.report.collect import Job, SweepError, collect, latest_sweep
from siamese.report.pairing import paired_difference, pairs
from siamese.report.stats import Difference, difference, mean_std, t_cdf, t_quantile
from siamese.report.table import Row, Table, summarize
from siamese.report.write import write_report

__all__ = [
    "Difference",
    "Job",
    "Row",
    "SweepError",
    "Table",
    "collect",
    "difference",
    "latest_sweep",
    "mean_std",
    "paired_difference",
    "pairs",
    "summarize",
    "t_cdf",
    "t_quantile",
    "write_report",
]

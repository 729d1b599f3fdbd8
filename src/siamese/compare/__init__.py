"""A fair comparison of two methods: equal tuning budgets on val (`python train.py -m +tune=<method>`,
the `tune` sweeper), each best configuration re-run over seeds on test, and a report that says
what was controlled. `python -m siamese.compare` runs it all; `python -m siamese.report DIR` rewrites
the report of a compare folder."""

from siamese.compare.collect import Method, Trial, is_compare_folder, read_compare
from siamese.compare.controls import Controls, controls
from siamese.compare.run import CompareError, compare
from siamese.compare.summary import paired, write_compare_report

__all__ = [
    "CompareError",
    "Controls",
    "Method",
    "Trial",
    "compare",
    "controls",
    "is_compare_folder",
    "paired",
    "read_compare",
    "write_compare_report",
]

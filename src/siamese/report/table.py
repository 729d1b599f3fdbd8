"""One row per grid cell: each test metric's mean ± std over the cell's completed seeds."""

import re
from dataclasses import dataclass

from siamese.config.overrides import override_key, override_value
from siamese.report.collect import Job
from siamese.report.stats import mean_std
from siamese.run.record import COMPLETED

PREFIX = "test/"
LEFT_OUT = {"test/threshold"}  # τ is a setting fitted on val, not a score to compare
# a τ, and the false-match rate a τ reached: settings, not scores
SETTINGS = ("test/tau_at_fmr_", "test/fmr_at_fmr_")
LOWER_IS_BETTER = {"test/eer"}
UNRANKED = {"test/p_at_1_untrained"}  # a baseline of the untrained network: no "better"
DECIMALS = 3


@dataclass
class Row:
    label: str  # the varying overrides, e.g. "experiment=sprn optimizer=adam"
    values: dict[str, str]  # varying key -> value
    n: int  # completed seeds
    stats: dict[str, tuple[float | None, float | None]]  # metric -> (mean, std)


@dataclass
class Table:
    keys: list[str]  # the overrides that vary between cells, one column each
    common: list[str]  # the overrides every job shares
    metrics: list[str]
    rows: list[Row]
    best: dict[str, set[str]]  # metric -> labels of the rows that hold its best mean


def _metric_rank(name: str) -> tuple:
    short = name.removeprefix(PREFIX)
    number = re.search(r"(\d+)", short)
    k = int(number.group(1)) if number else 0
    order = [
        (r"p_at_1$", 0),
        (r"recall_at_\d+$", 1),
        (r"map_at_r$", 2),
        (r"auc$", 3),
        (r"eer$", 4),
        (r"accuracy$", 5),
        (r"one_shot_\d+way$", 6),
        (r"p_at_1_untrained$", 8),
    ]
    rank = next((r for pattern, r in order if re.match(pattern, short)), 7)
    return rank, k, short


def metric_order(names) -> list[str]:
    """The test metrics to report, retrieval first, then verification, then few-shot."""
    wanted = {
        n
        for n in names
        if n.startswith(PREFIX) and n not in LEFT_OUT and not n.startswith(SETTINGS)
    }
    return sorted(wanted, key=_metric_rank)


def higher_is_better(metric: str) -> bool | None:
    if metric in UNRANKED:
        return None
    return metric not in LOWER_IS_BETTER and not metric.startswith("test/fnmr_at_fmr_")


def _varying_keys(cells: list[tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """(keys whose value differs between cells, overrides shared by all cells)."""
    shared = set(cells[0]).intersection(*cells[1:]) if cells else set()
    keys = sorted({override_key(o) for cell in cells for o in cell if o not in shared})
    return keys, sorted(shared, key=override_key)


def summarize(jobs: list[Job], others: list[Job] = ()) -> Table:
    """The table of `jobs`' completed runs; `others` (failed, missing) add their cells with n = 0
    so that a cell where every seed failed still shows."""
    everyone = [j for j in [*jobs, *others] if j.cell is not None]
    cells = sorted({j.cell for j in everyone})
    keys, common = _varying_keys(cells)
    if len(cells) == 1:  # one cell: nothing varies, so its own overrides name it
        keys, common = sorted({override_key(o) for o in cells[0]}), []
    completed = [j for j in jobs if j.status == COMPLETED and j.cell is not None]
    metrics = metric_order({m for j in completed for m in j.metrics})
    rows = []
    for cell in cells:
        values = {override_key(o): override_value(o) for o in cell if override_key(o) in keys}
        members = [j for j in completed if j.cell == cell]
        stats = {m: mean_std([j.metrics[m] for j in members if m in j.metrics]) for m in metrics}
        label = " ".join(f"{k}={values[k]}" for k in keys if k in values) or "(no overrides)"
        rows.append(Row(label, values, len(members), stats))
    rows.sort(key=lambda r: r.label)
    return Table(keys, common, metrics, rows, {m: _best(rows, m) for m in metrics})


def _best(rows: list[Row], metric: str) -> set[str]:
    """Rows whose mean, as displayed, equals the best: a tie at the shown precision is a tie."""
    direction = higher_is_better(metric)
    shown = {
        r.label: round(r.stats[metric][0], DECIMALS) for r in rows if r.stats[metric][0] is not None
    }
    if direction is None or len(shown) < 2:
        return set()
    best = max(shown.values()) if direction else min(shown.values())
    winners = {label for label, mean in shown.items() if mean == best}
    return set() if len(winners) == len(shown) else winners  # all equal: none is best

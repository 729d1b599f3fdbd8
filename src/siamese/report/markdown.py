"""What the sweep report and the compare report write alike: numbers as shown, Markdown tables, and
the sentence on a paired difference."""

from siamese.report.stats import Difference
from siamese.report.table import DECIMALS, higher_is_better

MINUS = "\u2212"  # a typographic minus lines up with "+" and reads as one in prose
ABSENT = "—"


def number(x: float) -> str:
    return f"{x:.{DECIMALS}f}"


def signed(x: float) -> str:
    text = number(abs(x))
    if float(text) == 0:
        return text  # no "−0.000"
    return ("+" if x > 0 else MINUS) + text


def mean_pm_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ABSENT
    return f"{number(mean)} ± {number(std) if std is not None else ABSENT}"


def pipe_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, padded so that it also lines up where it is read raw, in a terminal."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def named_table(rows: list[dict[str, str]]) -> str:
    """A table of rows whose cells are keyed by their column's header; the first row's keys, in
    their order, are the columns."""
    header = list(rows[0])
    return pipe_table(header, [[row[h] for h in header] for row in rows])


def verdict(metric: str, diff: Difference | None, a: str, b: str, unit: str) -> str:
    """One plain sentence on `a` − `b` for a metric; `unit` says what was paired ("pairs",
    "seeds"). A difference whose interval includes 0 is called not significant."""
    if diff is None:
        return f"{metric}: fewer than 2 {unit} with a value from both {a} and {b}: no interval."
    head = (
        f"{metric}: {a} {MINUS} {b} = {signed(diff.mean)} "
        f"(95% CI {signed(diff.low)} to {signed(diff.high)}, n = {diff.n} {unit})"
    )
    direction = higher_is_better(metric)
    if direction is None:
        return f"{head}: a baseline of the untrained network, not a result."
    if diff.low == diff.high == 0:
        return f"{head}: no difference, equal in all {diff.n} {unit}."
    if not diff.significant:
        return (
            f"{head}: not significant, the interval includes 0: "
            f"this run cannot tell {a} and {b} apart."
        )
    better = a if (diff.mean > 0) == direction else b
    lower = "" if direction else " (lower is better)"
    return f"{head}: {better} is better{lower}, significant at 95%."

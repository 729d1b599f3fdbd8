"""report.png: grouped bars, one group per cell, one bar per key metric, std as error bars."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from siamese.report.table import PREFIX, Table

KEY_METRICS = ("test/p_at_1", "test/map_at_r", "test/auc")
DPI = 150


def plot(table: Table, path: Path) -> Path:
    # Figure without pyplot: no global backend or state, Agg is the default canvas for savefig
    metrics = [m for m in KEY_METRICS if m in table.metrics] or table.metrics[:3]
    rows = [r for r in table.rows if r.n > 0]
    # one override per line: long cell labels stay readable without rotating them
    labels = ["\n".join([*(f"{k}={v}" for k, v in r.values.items()), f"n={r.n}"]) for r in rows]
    # each group as wide as its longest label line (about 0.06 inch a character at 8 points)
    longest = max((len(line) for label in labels for line in label.splitlines()), default=0)
    group_inches = max(1.1, 0.06 * longest + 0.15)
    fig = Figure(figsize=(max(6.0, group_inches * len(rows) + 1.5), 4.8), layout="constrained")
    ax = fig.add_subplot()
    if not rows or not metrics:
        ax.text(0.5, 0.5, "no completed job: nothing to plot", ha="center", va="center")
        ax.set_axis_off()
        fig.savefig(path, dpi=DPI)
        return Path(path)
    x = np.arange(len(rows))
    width = 0.8 / len(metrics)
    top = 0.0
    for i, metric in enumerate(metrics):
        means = np.array([r.stats[metric][0] for r in rows], dtype=float)
        stds = np.array([r.stats[metric][1] or 0.0 for r in rows], dtype=float)
        means = np.nan_to_num(means)  # a cell that never measured it shows no bar
        ax.bar(
            x + (i - (len(metrics) - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            capsize=3,
            label=metric.removeprefix(PREFIX),
        )
        top = max(top, float(np.max(means + stds)))
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, max(1.0, top) * 1.15)  # headroom for the legend above the bars
    ax.set_ylabel("test score (mean ± std over seeds)")
    ax.set_title("Test metrics per grid cell")
    ax.legend(loc="upper center", ncols=len(metrics), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.savefig(path, dpi=DPI)
    return Path(path)

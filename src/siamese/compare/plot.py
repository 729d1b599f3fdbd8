"""tuning.png: each method's best val objective so far, trial by trial, and every trial's."""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from siamese.compare.collect import Method

DPI = 150


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

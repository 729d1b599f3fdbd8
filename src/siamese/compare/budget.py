"""Each method's search budget, as the compare report's budget table shows it."""

from dataclasses import dataclass

from siamese.compare.collect import CONFIRM, TUNE, Method, images_per_step, planned_steps
from siamese.report.markdown import ABSENT


@dataclass(frozen=True)
class Budget:
    """One method's search, as the budget table shows it."""

    label: str
    trials: int
    jobs_per_trial: int
    epochs: str  # per trial: one value, or a range when it was tuned
    steps: int  # planned training steps, summed over the jobs
    images: int  # images those steps see
    job_s: float  # the jobs' own wall time, summed
    search_s: float | None  # the whole search's wall time, from compare.json
    confirm_s: float | None  # the confirmation's, from compare.json

    def cells(self) -> dict[str, str]:
        return {
            "method": self.label,
            "trials": str(self.trials),
            "jobs/trial": str(self.jobs_per_trial),
            "epochs/trial": self.epochs,
            "steps": str(self.steps),
            "images seen": str(self.images),
            "jobs' time": seconds_text(self.job_s),
            "search wall": seconds_text(self.search_s),
            "confirm wall": seconds_text(self.confirm_s),
        }


def _span(values: list[int]) -> str:
    if not values:
        return ABSENT
    return str(values[0]) if min(values) == max(values) else f"{min(values)}–{max(values)}"


def budget(method: Method, phases: dict) -> Budget:
    """phases: compare.json's, each phase's wall time by name (tune/<method>, confirm/<method>)."""
    configs = list(method.tune_configs.values())
    steps = [s for c in configs if (s := planned_steps(c)) is not None]
    images = [
        s * i for c in configs if (s := planned_steps(c)) and (i := images_per_step(c)) is not None
    ]
    epochs = sorted(int(c["trainer"]["max_epochs"]) for c in configs if "trainer" in c)
    return Budget(
        method.label,
        len(method.trials),
        method.folds or 1,
        _span(epochs),
        sum(steps),
        sum(images),
        sum(j.seconds for j in method.tune_jobs),
        (phases.get(f"{TUNE}/{method.name}") or {}).get("wall_s"),
        (phases.get(f"{CONFIRM}/{method.name}") or {}).get("wall_s"),
    )


def seconds_text(s: float | None) -> str:
    return ABSENT if s is None else f"{s:.0f} s"

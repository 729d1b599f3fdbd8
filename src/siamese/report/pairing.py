"""SPRN − SDRN, paired: same other overrides, same seed, so only the experiment differs."""

from siamese.config.overrides import override_key, override_value
from siamese.report.collect import Job
from siamese.report.stats import Difference, difference

AXIS, A, B = "experiment", "sprn", "sdrn"


def _experiment(job: Job) -> str | None:
    values = [override_value(o) for o in job.cell or () if override_key(o) == AXIS]
    return values[-1] if values else None


def _partner_key(job: Job) -> tuple:
    return tuple(o for o in job.cell if override_key(o) != AXIS), job.seed


def pairs(jobs: list[Job]) -> list[tuple[Job, Job]]:
    """(sprn job, sdrn job) for every (other overrides, seed) that has both, in job order."""
    by_side: dict[str, dict[tuple, Job]] = {A: {}, B: {}}
    for job in jobs:
        side = _experiment(job)
        if side in by_side:
            by_side[side].setdefault(_partner_key(job), job)  # a rerun twice: the first counts
    return [(a, by_side[B][key]) for key, a in by_side[A].items() if key in by_side[B]]


def skip_reason(jobs: list[Job]) -> str | None:
    """Why the sweep has no SPRN − SDRN comparison, or None when it has one."""
    sides = {_experiment(j) for j in jobs}
    if not {A, B} <= sides:
        return f"the completed jobs do not span {AXIS}={A} and {AXIS}={B}: no comparison"
    found = len(pairs(jobs))
    if found < 2:
        return (
            f"{found} {A.upper()}/{B.upper()} pair(s) with the same other overrides and seed: "
            "a confidence interval needs at least 2"
        )
    return None


def paired_difference(jobs: list[Job], metric: str) -> Difference | None:
    """sprn − sdrn over the pairs that both measured `metric`; None under 2 such pairs."""
    return difference(
        [
            a.metrics[metric] - b.metrics[metric]
            for a, b in pairs(jobs)
            if metric in a.metrics and metric in b.metrics
        ]
    )

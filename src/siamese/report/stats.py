"""Mean, sample std, Student's t quantile and a paired difference's interval, in plain Python
(no scipy)."""

import math
import statistics
from dataclasses import dataclass


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """(mean, sample std with ddof=1); std is None with one value, both None with none."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # the fraction converges fast only on this side; the other side follows by symmetry
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(df: float, p: float = 0.975) -> float:
    """The p quantile of Student's t: t_cdf inverted by bisection (the cdf is monotone)."""
    if df <= 0 or not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs df > 0 and 0 < p < 1, got df={df}, p={p}")
    if p < 0.5:
        return -t_quantile(df, 1.0 - p)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Difference:
    """The mean of paired differences (a − b) with its 95% confidence interval."""

    mean: float
    low: float
    high: float
    n: int  # pairs

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def difference(diffs: list[float]) -> Difference | None:
    """mean ± t_{0.975, n-1} · sd / √n (Student t, n − 1 degrees of freedom); None under 2."""
    n = len(diffs)
    if n < 2:
        return None
    mean, sd = mean_std(diffs)
    half = t_quantile(n - 1, 0.975) * sd / math.sqrt(n)
    return Difference(mean, mean - half, mean + half, n)

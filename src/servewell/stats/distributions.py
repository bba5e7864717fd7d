"""Tail probabilities the drift tests need, in plain Python: the chi-square distribution
(as ``scipy.stats.chi2.sf``) and the Kolmogorov distribution (the two-sample KS test's
asymptotic p-value)."""

from __future__ import annotations

import math

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 10_000


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X chi-square distributed with ``dof`` degrees of freedom:
    the regularized upper incomplete gamma function Q(dof/2, statistic/2)."""
    if dof <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {dof}")
    if math.isnan(statistic):
        return math.nan
    if statistic <= 0:
        return 1.0
    if math.isinf(statistic):
        return 0.0
    a, x = dof / 2, statistic / 2
    if x < a + 1:
        return max(0.0, 1.0 - _lower_series(a, x))
    return _upper_fraction(a, x)


def _lower_series(a: float, x: float) -> float:
    """P(a, x) by its power series (converges fast for x < a + 1)."""
    term = total = 1.0 / a
    n = a
    for _ in range(_MAX_TERMS):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction (modified Lentz; converges for x >= a + 1)."""
    b = x + 1 - a
    c, d = 1 / _TINY, 1 / b
    fraction = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        fraction *= d * c
        if abs(d * c - 1) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * fraction


def kolmogorov_sf(statistic: float, rows: int, reference_rows: int) -> float:
    """The two-sample KS p-value of ``statistic`` for samples of ``rows`` and
    ``reference_rows``: Kolmogorov's limit distribution at Stephens' corrected
    ``(sqrt(en) + 0.12 + 0.11 / sqrt(en)) * D``, ``en = n m / (n + m)`` (within about
    0.001 of ``scipy.stats.ks_2samp``'s exact or asymptotic p-value where it matters,
    near 0.05, from a few hundred rows on)."""
    root = math.sqrt(rows * reference_rows / (rows + reference_rows))
    return kolmogorov_q((root + 0.12 + 0.11 / root) * statistic)


def kolmogorov_q(lam: float) -> float:
    """Q(lam) = P(K > lam) for the Kolmogorov distribution K."""
    if lam <= 0:
        return 1.0
    if lam < 1.0:  # the theta-function form converges fast for small lam
        small = math.fsum(
            math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * lam**2)) for k in range(1, 8)
        )
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / lam * small))
    large = math.fsum(
        (1.0 if k % 2 else -1.0) * math.exp(-2 * k**2 * lam**2) for k in range(1, 101)
    )
    return min(1.0, max(0.0, 2 * large))

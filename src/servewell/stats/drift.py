"""Drift tests of a window against the training reference, computed from sketches.

Each test gives its statistic, its p-value where it has one, its threshold and its
verdict, defined as Evidently's stattests define them (``evidently.legacy.calculations
.stattests``), so a figure means what a reader of their docs expects:

- **PSI** (``psi``, numbers and categories; default threshold 0.1, drift when
  ``psi >= threshold``): ``sum((r - c) * ln(r / c))`` over the bins, ``r`` and ``c``
  the reference's and the window's share of present values in each bin. An empty bin's
  share is replaced, separately for each side, by ``min(nonzero shares) / 10**6`` when
  the smallest non-zero share is at most 0.0001, else by 0.0001 (Evidently's
  ``get_binned_data(..., feel_zeroes=True)``). Numbers are binned on the reference's
  quantile edges (:data:`PSI_BINS` deciles, open ends, frequent values alone), not on
  Evidently's Sturges bins of both samples: a window's bins must not depend on the
  window. Categories: the reference's tracked ones plus "other".
- **KS** (``ks``, numbers; default alpha 0.05, drift when ``p <= alpha``): the largest gap
  between the two CDFs, read at every fine edge of the reference's sketch, so it is
  never above ``scipy.stats.ks_2samp``'s and at most the reference's share of one fine
  bin below it (for a reference of ``n`` rows, ``(ceil(n / FINE_BINS) + 1) / n``,
  about 1/:data:`~servewell.stats.reference.FINE_BINS`; exact for a feature with few
  distinct values, each in a bin of its own). p-value:
  :func:`~servewell.stats.distributions.kolmogorov_sf`.
- **chi-square** (``chisquare``, categories; default alpha 0.05, drift when ``p < alpha``):
  ``scipy.stats.chisquare(observed, expected)`` with the expected counts the
  reference's shares times the window's rows, over the categories either side has (a
  category the reference never had, seen in the window, is infinite: drift).
- **Wasserstein** (``wasserstein``, numbers; default threshold 0.1, drift when
  ``w >= threshold``): the first Wasserstein distance divided by
  ``max(std(reference), 0.001)`` (Evidently's norm), each side's values taken at their
  fine bin's mean (exact beyond the reference's range, where the other CDF is flat).

Missing values (None, NaN, ±inf) are left out of every test, as Evidently drops them;
a feature's missing share is reported beside its tests. A feature's verdict is its
PSI's: PSI does not grow more sensitive with more rows, so a 1,000-row window and a
1,000,000-row one are judged alike, and 100 windows of unchanged data hardly ever trip it
(the tests with a p-value trip alpha of them by construction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from servewell.stats.distributions import chi2_sf, kolmogorov_sf
from servewell.stats.sketch import NumericSketch

Array = np.ndarray[Any, Any]
TestName = Literal["psi", "ks", "chisquare", "wasserstein"]

#: Evidently's ``get_binned_data`` fill for an empty bin's share, and the smallest
#: non-zero share below which it fills a millionth of that share instead.
EMPTY_SHARE = 0.0001
WASSERSTEIN_MIN_NORM = 0.001


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each test's verdict turns to drift (Evidently's defaults)."""

    psi: float = 0.1
    ks: float = 0.05
    """alpha: drift when the p-value is at most this."""
    chi_square: float = 0.05
    """alpha: drift when the p-value is below this."""
    wasserstein: float = 0.1


@dataclass(frozen=True, slots=True)
class DriftTest:
    """One test's result on one feature's window."""

    test: TestName
    statistic: float
    p_value: float | None
    threshold: float
    drift: bool
    bins: tuple[float | str, ...] = ()
    """What the test compared on: the inner bin edges (bins are open at both ends) or
    the categories (then "other")."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "statistic": _finite_or_none(self.statistic),
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drift": self.drift,
            "bins": list(self.bins),
        }


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """Every test of one feature (or the predictions) on one window."""

    name: str
    kind: Literal["numeric", "categorical"]
    rows: int
    """Present values in the window."""
    missing: int
    tests: tuple[DriftTest, ...] = field(default=())

    @property
    def drift(self) -> bool | None:
        """PSI's verdict; None for a window without a present value."""
        found = self.test("psi")
        return None if found is None else found.drift

    @property
    def psi(self) -> float | None:
        found = self.test("psi")
        return None if found is None else found.statistic

    def test(self, name: TestName) -> DriftTest | None:
        return next((t for t in self.tests if t.test == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "missing": self.missing,
            "drift": self.drift,
            "tests": [t.to_dict() for t in self.tests],
        }


def psi(
    reference: Array, current: Array, *, threshold: float, bins: tuple[float | str, ...] = ()
) -> DriftTest:
    """PSI of two histograms (counts per bin, same bins), with Evidently's empty-bin fill."""
    r = _fill_empty(np.asarray(reference, np.float64) / np.sum(reference))
    c = _fill_empty(np.asarray(current, np.float64) / np.sum(current))
    value = float(np.sum((r - c) * np.log(r / c)))
    return DriftTest("psi", value, None, threshold, value >= threshold, bins)


def _fill_empty(shares: Array) -> Array:
    smallest = float(shares[shares != 0].min())
    fill = smallest / 10**6 if smallest <= EMPTY_SHARE else EMPTY_SHARE
    return np.where(shares == 0, fill, shares)


def chi_square(
    reference: Array, current: Array, *, alpha: float, bins: tuple[float | str, ...] = ()
) -> DriftTest:
    """Pearson's chi-square of the window's counts against the reference's shares."""
    ref = np.asarray(reference, np.float64)
    observed = np.asarray(current, np.float64)
    seen = (ref > 0) | (observed > 0)
    expected = ref[seen] / ref.sum() * observed.sum()
    observed = observed[seen]
    if np.any((expected == 0) & (observed > 0)):
        statistic = math.inf
    else:
        statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = len(observed) - 1
    p_value = chi2_sf(statistic, dof) if dof > 0 else 1.0
    return DriftTest("chisquare", statistic, p_value, alpha, p_value < alpha, bins)


def ks(reference: NumericSketch, current: NumericSketch, *, alpha: float) -> DriftTest:
    """Two-sample Kolmogorov-Smirnov from two sketches on the same fine edges."""
    gap = np.abs(_cdf_at_edges(reference) - _cdf_at_edges(current))
    statistic = float(gap.max()) if len(gap) else 0.0
    p_value = kolmogorov_sf(statistic, current.rows, reference.rows)
    bins = tuple(reference.edges.tolist())
    return DriftTest("ks", statistic, p_value, alpha, p_value <= alpha, bins)


def _cdf_at_edges(sketch: NumericSketch) -> Array:
    """P(X < edge) at every edge (bins are left-closed)."""
    below: Array = np.cumsum(sketch.counts)[:-1] / sketch.rows
    return below


def wasserstein(
    reference: NumericSketch, current: NumericSketch, *, std: float, threshold: float
) -> DriftTest:
    """The first Wasserstein distance over ``max(std, 0.001)``, each bin's values at
    their mean."""
    ref_points, ref_counts = reference.means()
    cur_points, cur_counts = current.means()
    points = np.concatenate([ref_points, cur_points])
    steps = np.concatenate([ref_counts / reference.rows, -cur_counts / current.rows])
    order = np.argsort(points, kind="stable")
    gaps = np.diff(points[order])
    distance = float(np.sum(np.abs(np.cumsum(steps[order])[:-1]) * gaps))
    value = distance / max(std, WASSERSTEIN_MIN_NORM)
    bins = tuple(reference.edges.tolist())
    return DriftTest("wasserstein", value, None, threshold, value >= threshold, bins)


def _finite_or_none(value: float) -> float | None:
    """JSON has no infinity: an infinite statistic (a new category) is written null."""
    return value if math.isfinite(value) else None

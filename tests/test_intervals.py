"""The 95 % intervals of the results tables: Wilson for rates, a seeded bootstrap for means."""

from __future__ import annotations

import math
import statistics

import pytest

from agentcritic.intervals import bootstrap_mean, wilson


def _wilson_closed_form(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson (1927) written as (2np + z² ± z·sqrt(z² + 4np(1-p))) / (2(n + z²)), independently."""
    p = successes / n
    root = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    return (2 * n * p + z * z - root) / (2 * (n + z * z)), (2 * n * p + z * z + root) / (2 * (n + z * z))


def test_wilson_matches_the_closed_form() -> None:
    low, high = wilson(7, 20, z=1.96)
    assert (low, high) == pytest.approx(_wilson_closed_form(7, 20))
    assert (low, high) == pytest.approx((0.1812, 0.5671), abs=1e-4)


@pytest.mark.parametrize(("successes", "n", "expected"), [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score, no correction)
    (81, 263, (0.2553, 0.3662)),
    (15, 148, (0.0624, 0.1605)),
    (0, 20, (0.0, 0.1611)),
    (1, 29, (0.0061, 0.1718)),
])
def test_wilson_matches_published_values(successes, n, expected) -> None:
    assert wilson(successes, n) == pytest.approx(expected, abs=1e-4)


def test_wilson_at_the_edges() -> None:
    assert wilson(0, 0) is None  # nothing to estimate from
    low, high = wilson(1, 1)
    assert high == 1.0 and low == pytest.approx(0.2065, abs=1e-4)  # one success says little
    assert wilson(20, 20)[1] == 1.0 and wilson(0, 20)[0] == 0.0
    # a fractional count (a rate averaged over samples) sits between its integer neighbours
    assert wilson(6, 20)[0] < wilson(6.5, 20)[0] < wilson(7, 20)[0]
    with pytest.raises(ValueError, match="successes=21"):
        wilson(21, 20)


def test_wilson_narrows_as_n_grows_at_the_same_rate() -> None:
    widths = [wilson(n * 0.35, n)[1] - wilson(n * 0.35, n)[0] for n in (20, 80, 320)]
    assert widths[0] > widths[1] > widths[2]
    assert all(lo < 0.35 < hi for lo, hi in (wilson(n * 0.35, n) for n in (20, 80, 320)))


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    assert bootstrap_mean([0.1] * 7) == (0.1, 0.1)
    assert bootstrap_mean([0.3]) == (0.3, 0.3)  # one value: a degenerate interval, read with its n
    assert bootstrap_mean([]) is None


def test_bootstrap_contains_the_mean_is_seeded_and_widens_with_fewer_values() -> None:
    values = [0.0, 0.2, 0.9, 0.4, 1.0, 0.5, 0.7, 0.1, 0.3, 0.6] * 4
    low, high = bootstrap_mean(values)
    assert low < statistics.fmean(values) < high
    # the normal approximation of the mean's interval, mean ± 1.96·s/√n, agrees to a few hundredths
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    assert (low, high) == pytest.approx((statistics.fmean(values) - half, statistics.fmean(values) + half), abs=0.03)
    assert bootstrap_mean(values) == (low, high) and bootstrap_mean(values, seed=1) != (low, high)
    few_low, few_high = bootstrap_mean(values[:10])
    assert few_high - few_low > high - low
    narrow = bootstrap_mean(values, level=0.5)
    assert low < narrow[0] < narrow[1] < high

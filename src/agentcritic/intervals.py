"""95 % intervals for the numbers the tables report: Wilson for success rates, a percentile
bootstrap for mean rewards.

Both return ``None`` when there is nothing to estimate from (n = 0), so a table cell with no records
shows no interval rather than a NaN. The bootstrap is seeded, so a report rebuilt from the same
records prints the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a rate of ``successes`` out of ``n`` (``None`` when ``n`` is 0).

    ``successes`` may be fractional: a rate averaged over several samples per task is passed as
    ``rate * n`` with ``n`` the number of tasks. Unlike the normal interval it stays inside [0, 1]
    and is not empty at 0/n or n/n; with n = 1 it is wide (1/1 gives about [0.21, 1]).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson needs 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean(values: Sequence[float], level: float = 0.95, resamples: int = 2000,
                   seed: int = 0) -> tuple[float, float] | None:
    """The percentile-bootstrap interval of the mean of ``values`` (``None`` when there are none).

    Deterministic given ``seed``. One value has no spread to resample: the interval is that value
    at both ends, so read it with its n. The bounds always lie within [min, max] of ``values``.
    """
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_mean needs 0 < level < 1, got {level}")
    xs = np.asarray(values, dtype=float)
    if xs.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = xs[rng.integers(0, xs.size, size=(resamples, xs.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    # clip the float noise of averaging equal values (a constant list gives exactly that constant)
    lo, hi = float(xs.min()), float(xs.max())
    return min(max(float(low), lo), hi), min(max(float(high), lo), hi)

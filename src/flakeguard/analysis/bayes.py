"""Beta-posterior helpers, stdlib only.

Why hand-written: scipy is not a dependency and pulling it in (~40 MB) for one function is not worth
it; the regularized incomplete beta function below is the textbook continued fraction (Numerical
Recipes, 3rd ed., section 6.4, modified Lentz), accurate to ~1e-12 for the parameters we use, and it
is checked against the exact binomial-sum identity for integer parameters in the unit tests.
"""

from __future__ import annotations

import math

_MAX_ITERATIONS = 500
_EPS = 3e-16
_TINY = 1e-300


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b): the CDF at x of a Beta(a, b) distribution (a, b > 0)."""
    if a <= 0 or b <= 0:
        raise ValueError("Beta parameters must be positive")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return min(1.0, max(0.0, front * _beta_continued_fraction(a, b, x) / a))
    return min(1.0, max(0.0, 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b))


def beta_sf(a: float, b: float, x: float) -> float:
    """P(p > x) for p ~ Beta(a, b)."""
    return 1.0 - regularized_incomplete_beta(a, b, x)


def beta_mean(a: float, b: float) -> float:
    return a / (a + b)


def posterior_predictive_streak(failures: int, passes: int, k: int) -> float:
    """E[p^k] for p ~ Beta(1 + failures, 1 + passes): the probability that a test whose failure
    probability has that posterior fails its next k executions in a row.

        E[p^k] = prod_{j=0}^{k-1} (1 + failures + j) / (2 + failures + passes + j)
    """
    a, total = 1.0 + failures, 2.0 + failures + passes
    probability = 1.0
    for j in range(k):
        probability *= (a + j) / (total + j)
    return probability

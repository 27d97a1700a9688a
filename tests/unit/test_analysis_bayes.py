"""The stdlib Beta helpers against exact identities."""

from __future__ import annotations

import math

import pytest

from flakeguard.analysis.bayes import beta_sf, posterior_predictive_streak, regularized_incomplete_beta


def binomial_cdf_identity(a: int, b: int, x: float) -> float:
    """I_x(a, b) = P(Binomial(a + b - 1, x) >= a) for integer a, b."""
    n = a + b - 1
    return sum(math.comb(n, j) * x**j * (1 - x) ** (n - j) for j in range(a, n + 1))


@pytest.mark.parametrize("a", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("b", [1, 2, 5, 30, 400])
@pytest.mark.parametrize("x", [0.001, 0.02, 0.1, 0.5, 0.93])
def test_incomplete_beta_matches_the_binomial_identity(a: int, b: int, x: float) -> None:
    assert regularized_incomplete_beta(a, b, x) == pytest.approx(binomial_cdf_identity(a, b, x), abs=1e-10)


def test_edges_and_symmetry() -> None:
    assert regularized_incomplete_beta(2.5, 3.5, 0.0) == 0.0
    assert regularized_incomplete_beta(2.5, 3.5, 1.0) == 1.0
    assert regularized_incomplete_beta(2.5, 3.5, 0.3) == pytest.approx(
        1 - regularized_incomplete_beta(3.5, 2.5, 0.7)
    )
    assert beta_sf(1, 1, 0.25) == pytest.approx(0.75)  # uniform
    with pytest.raises(ValueError):
        regularized_incomplete_beta(0, 1, 0.5)


def test_posterior_predictive_streak() -> None:
    assert posterior_predictive_streak(0, 0, 6) == pytest.approx(1 / 7)  # uniform prior: 1/(k+1)
    assert posterior_predictive_streak(0, 20, 2) == pytest.approx(1 / 22 * 2 / 23)
    assert posterior_predictive_streak(3, 5, 0) == 1.0

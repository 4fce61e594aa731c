"""The temperature's interpolation between grid points (MoP fit, issue 9 item 6)."""

from __future__ import annotations

import pytest
import torch

from mop_bench.mop.scoring import interpolate_logprob


def test_interpolation_is_linear_in_inverse_tau_and_differentiable() -> None:
    grid = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    ll = torch.tensor([[2.0, 1.0, 0.5]], dtype=torch.float64)  # = 1/tau exactly
    tau = torch.tensor([0.8], dtype=torch.float64, requires_grad=True)
    val = interpolate_logprob(ll, grid, tau)
    assert val.item() == pytest.approx(1 / 0.8)
    val.sum().backward()
    assert float(tau.grad) == pytest.approx(-1 / 0.8**2)
    at_grid = interpolate_logprob(ll, grid, torch.tensor([2.0], dtype=torch.float64))
    assert float(at_grid) == pytest.approx(0.5)


def test_cubic_interpolation_puts_the_optimum_between_grid_points() -> None:
    """A concave log-likelihood in beta = 1/tau whose maximum lies between two grid
    points: the linear chord's optimum sits on a grid point, the Hermite curve's near
    the true one."""
    grid = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], dtype=torch.float64)
    best = 1 / 0.74  # beta of the planted optimum
    ll = -((1 / grid - best) ** 2)[None, :]
    taus = torch.linspace(0.5, 1.0, 501, dtype=torch.float64)
    vals = interpolate_logprob(ll.expand(len(taus), -1), grid, taus)
    assert float(taus[int(vals.argmax())]) == pytest.approx(0.74, abs=0.003)
    # Exact at the knots.
    at = interpolate_logprob(ll.expand(6, -1), grid, grid)
    assert torch.allclose(at, ll[0])

"""Shared fixtures: devices to test on, seeds, small models."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from nets import make_mlp

if os.environ.get("ANALOGSIM_TEST_THREADS"):  # a fresh process at a set thread count
    torch.set_num_threads(int(os.environ["ANALOGSIM_TEST_THREADS"]))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def mlp_factory():
    return make_mlp


@pytest.fixture(autouse=True)
def seeded_global_rng() -> None:
    """Every test starts from the same global torch state, so no test's draws depend on which
    tests ran before it (a statistical test is judged on one fixed sample, not on the order)."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def keep_torch_threads() -> Iterator[None]:
    """Runs set torch's thread count (``--threads``); every test gets its own back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)

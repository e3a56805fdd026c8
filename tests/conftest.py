"""Shared fixtures: devices to test on, seeds, small models."""

from __future__ import annotations

import pytest
import torch
from nets import make_mlp

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def mlp_factory():
    return make_mlp

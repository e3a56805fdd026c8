"""``analogsim.evaluate`` (accuracy over device time, repeated reads) and ``analogize``'s
refusal of weight-bearing modules it cannot put on a chip."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import analogsim
from analogsim.analog import analog_layers
from analogsim.errors import HardwareError

YEAR_S = 365 * 86400.0


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, analogsim.data.Dataset]:
    """A small digits MLP trained digitally (Adam, 20 epochs, seed 0): about 95 % test acc."""
    torch.manual_seed(0)
    net = analogsim.models.mlp([64, 64, 10], seed=0)
    train, test = analogsim.data.load("digits", "train"), analogsim.data.load("digits", "test")
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(20):
        for i in range(0, len(train), 100):
            opt.zero_grad()
            nn.functional.cross_entropy(net(train.x[i:i + 100]), train.labels[i:i + 100]).backward()
            opt.step()
    return net, test


def test_ideal_profile_is_the_digital_accuracy_on_every_read(trained) -> None:
    net, test = trained
    with torch.no_grad():
        digital = (net(test.x).argmax(1) == test.labels).double().mean().item()
    ev = analogsim.evaluate(net, test, profile="ideal", times=[1, YEAR_S], n_reps=3)
    assert ev.accuracy is not None and ev.accuracy.shape == (2, 3)
    assert torch.all(ev.accuracy == digital)
    assert ev.sem() == [0.0, 0.0] and digital > 0.9


def test_pcm_reads_vary_and_drift_costs_accuracy_over_a_year(trained) -> None:
    net, test = trained
    ev = analogsim.evaluate(net, test, profile="pcm", times=[1, YEAR_S], n_reps=8, seed=0)
    (m1, my), (s1, sy) = ev.mean(), ev.sem()
    assert s1 > 0 and sy > 0  # every read draws fresh read noise
    # drift over a year costs more than 4 standard errors of the difference of the means
    assert my < m1 - 4 * math.hypot(s1, sy)
    assert "| 1 y |" in ev.table() and "8 reads" in ev.table()
    again = analogsim.evaluate(net, test, profile="pcm", times=[1, YEAR_S], n_reps=8, seed=0)
    assert torch.equal(again.accuracy, ev.accuracy)  # same seed, same reads


def test_analogized_net_and_label_pairs_and_caller_untouched(trained) -> None:
    net, test = trained
    chip = analogsim.analogize(net, "pcm", generator=torch.Generator().manual_seed(0))
    clock = analog_layers(chip)[0].clock
    before = [p.clone() for p in chip.parameters()]
    ev = analogsim.evaluate(chip, (test.x, test.labels), times=[1, 3600], n_reps=2)
    assert clock.now == 0.0 and all(torch.equal(a, b) for a, b in zip(before, chip.parameters()))
    via_profile = analogsim.evaluate(net, (test.x, test.labels), profile="pcm", times=[1, 3600],
                                     n_reps=2, seed=0)
    assert torch.equal(ev.accuracy, via_profile.accuracy)
    assert ev.loss.shape == (2, 2) and torch.all(ev.loss > 0)


def test_regression_targets_give_loss_only() -> None:
    net = analogsim.models.mlp([3, 8, 2])
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    ev = analogsim.evaluate(net, (x, torch.zeros(40, 2)), profile="pcm", times=[0, 60], n_reps=2)
    assert ev.accuracy is None and len(ev.mean("loss")) == 2
    with pytest.raises(ValueError, match="accuracy"):
        ev.mean()


@pytest.mark.parametrize("kwargs", [{"times": [60, 1]}, {"times": []}, {"n_reps": 0}])
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        analogsim.evaluate(analogsim.models.mlp([4, 2]), (torch.zeros(2, 4), torch.zeros(2, 2)),
                           profile="ideal", **kwargs)


def test_digital_net_without_profile_is_refused() -> None:
    with pytest.raises(HardwareError, match="profile"):
        analogsim.evaluate(analogsim.models.mlp([4, 2]), (torch.zeros(2, 4), torch.zeros(2, 2)))


class _Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3)
        self.norm = nn.BatchNorm1d(4)
        self.rnn = nn.GRU(4, 8)
        self.ln = nn.LayerNorm((4, 8))
        self.head = nn.Linear(8, 3)


def test_analogize_refuses_modules_it_cannot_convert_in_one_line() -> None:
    with pytest.raises(HardwareError) as err:
        analogsim.analogize(_Mixed(), "pcm")
    msg = str(err.value)
    assert "\n" not in msg and "conv (Conv1d)" in msg and "rnn (GRU)" in msg
    assert "norm" not in msg and "ln " not in msg and "head" not in msg
    assert "allow_digital=True" in msg
    with pytest.raises(HardwareError, match="<model> \\(LSTM\\)"):
        analogsim.analogize(nn.LSTM(3, 4), "ideal")


def test_allow_digital_keeps_them_digital_and_converts_the_rest() -> None:
    net = analogsim.analogize(_Mixed(), "pcm", allow_digital=True)
    assert isinstance(net.head, analogsim.AnalogLinear)
    assert type(net.conv) is nn.Conv1d and type(net.rnn) is nn.GRU

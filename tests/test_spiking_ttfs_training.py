"""TTFS training (Göltz et al. 2021's recipe): it learns, bumping revives silent neurons,
the loss pulls the label neuron early, bad settings are refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nonvon.errors import ConfigError
from nonvon.models.spiking.ttfs import ttfs_encode
from nonvon.models.spiking.ttfs_training import (
    TTFSNetwork,
    TTFSTrainConfig,
    predict_ttfs,
    train_ttfs,
    ttfs_loss,
)

FAST = TTFSTrainConfig(epochs=3, batch_size=20, lr=0.03)


def _encode(x: np.ndarray) -> torch.Tensor:
    return ttfs_encode(torch.from_numpy(x), t_max=2.0, t_min=0.15)


def test_training_learns_digits(digits_task, seed):
    net = TTFSNetwork((64, 32, 10), init=[(4.0, 2.0), (4.0, 2.0)],
                      generator=torch.Generator().manual_seed(seed))
    history = train_ttfs(net, _encode(digits_task.x_train), digits_task.y_train, FAST, seed=seed)
    with torch.no_grad():
        t_out = net(_encode(digits_task.x_test))[-1]
    accuracy = float((predict_ttfs(t_out).numpy() == digits_task.y_test).mean())
    assert history[-1]["train_accuracy"] > history[0]["train_accuracy"] + 0.2
    assert accuracy > 0.6, f"TTFS training reached only {accuracy:.2f} on 10-class digits"


def test_weight_bumping_revives_a_silent_network(digits_task, seed):
    def silent_net():
        net = TTFSNetwork((64, 16, 10), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            for w in net.weights:
                w.copy_(-w.abs())  # inhibitory only: nothing ever fires
        return net

    x, y = _encode(digits_task.x_train[:200]), digits_task.y_train[:200]
    one = TTFSTrainConfig(epochs=3, batch_size=20, lr=1e-3, bump=1.0)
    net = silent_net()
    train_ttfs(net, x, y, one, seed=seed)
    with torch.no_grad():
        hidden, out = net(x)
    assert torch.isfinite(hidden).float().mean() > 0.5
    assert torch.isfinite(out.gather(1, torch.as_tensor(y).unsqueeze(1))).float().mean() > 0.5
    # without bumping there is no spike time, hence no gradient: it stays silent
    net = silent_net()
    train_ttfs(net, x, y, TTFSTrainConfig(epochs=1, batch_size=50, lr=1e-3, bump=0.0), seed=seed)
    with torch.no_grad():
        assert not torch.isfinite(net(x)[-1]).any()


def test_loss_pulls_the_label_neuron_early():
    t = torch.tensor([[1.0, 1.2, math.inf]], requires_grad=True)
    loss = ttfs_loss(t, torch.tensor([0]))
    (g,) = torch.autograd.grad(loss, t)
    assert g[0, 0] > 0 and g[0, 1] < 0 and g[0, 2] == 0  # later label costs; later rival helps
    # a silent label neuron is charged at t_silent
    assert ttfs_loss(torch.tensor([[math.inf, 1.0]]), torch.tensor([0])) > 10


def test_time_budget_stops_training(digits_task):
    net = TTFSNetwork((64, 8, 10))
    cfg = TTFSTrainConfig(epochs=50, batch_size=100)
    history = train_ttfs(net, _encode(digits_task.x_train[:100]), digits_task.y_train[:100], cfg,
                         time_budget_s=1e-9)
    assert len(history) == 1


@pytest.mark.parametrize("bad", [{"lr": 0.0}, {"epochs": 0}, {"max_silent": (1.5,)},
                                 {"lr_gamma": 0.0}, {"bump": -1.0}, {"xi": -0.2}])
def test_bad_training_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        TTFSTrainConfig(**bad)


def test_bad_networks_are_refused():
    with pytest.raises(ConfigError, match="sizes"):
        TTFSNetwork((10,))
    with pytest.raises(ConfigError, match="theta"):
        TTFSNetwork((4, 2), theta=0.0)
    with pytest.raises(ConfigError, match="tau_syn"):
        TTFSNetwork((4, 2), tau_syn=-1.0)
    with pytest.raises(ConfigError, match="pairs"):
        TTFSNetwork((4, 3, 2), init=[(1.0, 1.0)])

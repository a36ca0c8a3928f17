"""TTFS training (Göltz et al. 2021's recipe): it learns, bumping revives silent neurons,
the loss pulls the label neuron early, bad settings are refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nonvon.errors import ConfigError
from nonvon.simulators.spiking.ttfs_kernels import ttfs_encode
from nonvon.simulators.spiking.ttfs_training import (
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


def _bump_reference(net, times, y, cfg, last, scale):
    """The bump rule as written in the module docstring, with host-side decisions."""
    limits = list(cfg.max_silent) + [cfg.max_silent[-1]] * (len(times) - len(cfg.max_silent))
    with torch.no_grad():
        for i, t in enumerate(times):
            silent = ~torch.isfinite(t)
            if i == len(times) - 1:
                silent = silent & torch.nn.functional.one_hot(y, t.shape[1]).bool()
                frac = float(silent.any(1).float().mean())
            else:
                frac = float(silent.float().mean())
            if frac > limits[i]:
                scale = 2.0 * scale if last == i else 1.0
                w = net.weights[i]
                w[silent.any(0)] += scale * cfg.bump * 4.0 * net.theta / w.shape[1]
                return i, scale
    return None, scale


def test_device_side_bump_matches_the_rule_step_by_step():
    from nonvon.simulators.spiking.ttfs_training import _bump, _silent_limits

    cfg = TTFSTrainConfig(bump=0.5, max_silent=(0.2, 0.0))
    gen = torch.Generator().manual_seed(3)
    ours = TTFSNetwork((12, 8, 4), generator=torch.Generator().manual_seed(0))
    ref = TTFSNetwork((12, 8, 4), generator=torch.Generator().manual_seed(0))
    limits = _silent_limits(cfg, 2, torch.device("cpu"))
    last, scale = torch.tensor(-1), torch.tensor(1.0, dtype=torch.float64)
    last_ref, scale_ref = None, 1.0
    seen = set()
    for _ in range(40):  # random silences: no bump, the hidden or the output layer, repeats
        y = torch.randint(0, 4, (6,), generator=gen)
        times = [torch.where(torch.rand(6, n, generator=gen) < p, math.inf, 1.0)
                 for n, p in ((8, float(torch.rand(1, generator=gen)) * 0.5), (4, 0.3))]
        last, scale = _bump(ours, times, y, cfg, last, scale, limits)
        last_ref, scale_ref = _bump_reference(ref, times, y, cfg, last_ref, scale_ref)
        assert int(last) == (-1 if last_ref is None else last_ref)
        assert float(scale) == scale_ref
        for a, b in zip(ours.weights, ref.weights, strict=True):
            assert torch.equal(a, b)
        seen.add((last_ref, scale_ref))
    # the walk covered no bump, both layers and a doubled scale
    assert {s[0] for s in seen} >= {None, 0, 1} and max(s[1] for s in seen) >= 2.0


def test_predrawn_noise_is_the_noise_forward_would_draw():
    """train_step takes its hidden-time noise drawn beforehand (so that a captured step has no
    random draw in it); drawn from the same generator it must be the noise forward draws."""
    net = TTFSNetwork((12, 9, 7, 4), generator=torch.Generator().manual_seed(0))
    t_in = 0.15 + 1.85 * torch.rand(5, 12, generator=torch.Generator().manual_seed(1))
    inside = net(t_in, 0.3, torch.Generator().manual_seed(7))
    noise = net.draw_noise(5, torch.Generator().manual_seed(7), "cpu")
    assert [z.shape for z in noise] == [(5, 9), (5, 7)]  # one per hidden layer
    for a, b in zip(inside, net(t_in, 0.3, noise=noise), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(inside[0], net(t_in, 0.0)[0])  # the noise did move the times


def test_train_step_updates_its_state_in_place(digits_task):
    """A step keeps every state tensor it was given (a captured graph holds their addresses)."""
    from nonvon.simulators.spiking.ttfs_training import StepState, train_step

    cfg = TTFSTrainConfig(bump=0.5, max_silent=(0.0, 0.0))  # any silence bumps
    net = TTFSNetwork((64, 8, 10), init=[(0.5, 0.1), (0.5, 0.1)],  # too weak: silent
                      generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    state = StepState.new(cfg, 2, "cpu")
    held = [id(t) for t in (state.bumped, state.scale, state.loss_sum, state.silent, state.bumps)]
    xb, yb = _encode(digits_task.x_train[:20].reshape(20, -1)), torch.as_tensor(digits_task.y_train[:20])
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        train_step(net, opt, cfg, xb, yb, net.draw_noise(20, None, "cpu"), state)
    assert [id(t) for t in (state.bumped, state.scale, state.loss_sum, state.silent, state.bumps)] == held
    assert int(state.bumps) == 2 and int(state.bumped) == 0  # the silent hidden layer, twice
    assert float(state.scale) == 2.0 and float(state.loss_sum) > 0  # doubled on the repeat
    state.new_epoch()
    assert float(state.loss_sum) == 0 and int(state.bumps) == 0 and int(state.bumped) == 0


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
                                 {"lr_gamma": 0.0}, {"bump": -1.0}, {"xi": -0.2},
                                 {"cuda_graph": 1}])
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CUDA graphs)")
@pytest.mark.parametrize("augment_shift", [0, 1])
def test_cuda_graph_training_equals_eager(digits_task, augment_shift):
    """The replayed graph computes what the eager steps compute: same weights, same history,
    over lr steps, bumps and a ragged last batch (230 samples in batches of 50)."""
    from nonvon.simulators.spiking.ttfs_training import shift_images

    x, y = _encode(digits_task.x_train[:230]), digits_task.y_train[:230]
    augment = shift_images(8, augment_shift, 2.0) if augment_shift else None
    runs = []
    for graph in (True, False):
        net = TTFSNetwork((64, 24, 10), generator=torch.Generator().manual_seed(0))
        cfg = TTFSTrainConfig(epochs=4, batch_size=50, lr=0.02, lr_step=2, cuda_graph=graph)
        hist = train_ttfs(net, x, y, cfg, seed=0, device="cuda", augment=augment)
        runs.append(([w.detach().cpu() for w in net.weights], hist))
    (w_graph, h_graph), (w_eager, h_eager) = runs
    for a, b in zip(w_graph, w_eager, strict=True):
        assert torch.equal(a, b)
    assert [h["loss"] for h in h_graph] == [h["loss"] for h in h_eager]
    assert sum(h["bump_rounds"] for h in h_graph) > 0  # the bump ran inside the graph too

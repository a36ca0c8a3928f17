"""Brian2 as the reference simulator for nonvon's spiking networks.

:func:`run_brian2` runs the neurons of a :class:`~nonvon.simulators.spiking.SpikingClassifier`
in Brian2 (Stimberg, Brette & Goodman, eLife 8:e47314, 2019): each layer is a Brian2
``NeuronGroup`` whose membrane is updated once per time step by the same discrete LIF
equation (``v = beta * v + I - r * theta`` with the delayed reset flag ``r``, or the
reset-to-zero form), fires on ``v > theta`` (Brian2's threshold) and sets ``r`` in Brian2's
reset. The synaptic currents of each layer are computed from the *Brian2* spikes of the
layer before, so any divergence in spiking propagates and is caught. Computation is in
float64 (Brian2's default); run the nonvon network in float64 too to compare exactly.

Needs the ``spiking`` extra (``brian2``). Uses Brian2's ``numpy`` code generation target,
so no compiler is needed.
"""

from __future__ import annotations

import numpy as np
import torch

from nonvon.simulators.spiking.coding import encode
from nonvon.simulators.spiking.networks import SpikingClassifier

__all__ = ["run_brian2"]


def _layer_in_brian(cur: np.ndarray, beta: float, theta: float, reset: str, spiking: bool):
    """Run one layer of ``N`` neurons for ``T`` steps; ``cur`` is ``(T, N)``.

    Returns:
        ``(spikes (T, N) as 0/1, final membrane (N,))``.
    """
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    T, N = cur.shape
    dt = 1 * b2.ms  # one discrete step; its value only labels time
    current = b2.TimedArray(cur, dt=dt)
    namespace = {"current": current, "beta": beta, "theta": theta}
    if spiking:
        group = b2.NeuronGroup(N, "v : 1\nr : 1", threshold="v > theta", reset="r = 1", dt=dt,
                               namespace=namespace)
        update = ("v = beta * v + current(t, i) - r * theta" if reset == "subtract"
                  else "v = beta * ((1 - r) * v) + current(t, i)")
        group.run_regularly(update + "\nr = 0", when="start", dt=dt)
        monitor = b2.SpikeMonitor(group)
        net = b2.Network(group, monitor)
    else:  # the integrating readout: no threshold, no leak
        group = b2.NeuronGroup(N, "v : 1", dt=dt, namespace=namespace)
        group.run_regularly("v = v + current(t, i)", when="start", dt=dt)
        net = b2.Network(group)
    net.run(T * dt, namespace=namespace)
    spikes = np.zeros((T, N))
    if spiking:
        steps = np.round(np.asarray(monitor.t / dt)).astype(int)
        spikes[steps, np.asarray(monitor.i)] = 1.0
    return spikes, np.asarray(group.v[:], dtype=np.float64)


def run_brian2(net: SpikingClassifier, x: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[list[np.ndarray], np.ndarray]:
    """Simulate ``net`` on inputs ``x`` with Brian2 neurons.

    Args:
        net: the network (its weights compute the synaptic currents; use ``net.double()``
            and a float64 ``x`` for exact comparisons).
        x: a batch ``(B, *input_shape)`` in [0, 1].
        generator: rate-coding draws (pass the same seed as to nonvon's run).

    Returns:
        ``(spike_counts, readout)``: for each spiking layer the spike count of every neuron,
        ``(B, n)``; and the readout's final membrane divided by ``T`` (the logits), ``(B, C)``.
    """
    c = net.lif
    T, B = c.timesteps, x.shape[0]
    s = encode(x, T, c.coding, generator=generator)
    counts = []
    with torch.no_grad():
        for i, layer in enumerate(net.layers):
            flat = net._shape_in(i, s.reshape(T * B, *s.shape[2:]))
            cur = layer(flat).reshape(T, B, -1)
            n = cur.shape[-1]
            last = i == len(net.layers) - 1
            spikes, v = _layer_in_brian(cur.reshape(T, B * n).double().numpy(), float(c.beta),
                                        float(c.threshold), c.reset, spiking=not last)
            if last:
                return counts, v.reshape(B, n) / T
            counts.append(spikes.reshape(T, B, n).sum(0))
            out_shape = layer(net._shape_in(i, s[0][:1])).shape[1:]
            s = torch.from_numpy(spikes).to(cur.dtype).reshape(T, B, *out_shape)
    raise AssertionError("unreachable")

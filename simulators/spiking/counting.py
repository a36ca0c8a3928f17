"""Counting what a spiking network executed, from the spikes it actually emitted.

For every synaptic layer the counts come from the recorded input spikes (one forward pass
of :class:`~nonvon.simulators.spiking.SpikingClassifier` with ``record=True``):

- **synaptic events**: each input spike reaches every *non-zero* synapse of its fan-out
  (a pruned or quantized-to-zero synapse is not stored on a chip and costs nothing);
  ``sum_j spikes_j * fanout_j`` over presynaptic neurons ``j``;
- **effective MACs**: an analog (direct-coded) first layer multiplies each non-zero input
  by each non-zero weight, once per inference (its input does not change over time);
- **neuron updates**: every LIF and readout neuron at every step, split into *active*
  (input arrived or the membrane is non-zero, so the state changes) and *idle*;
- **spike routing** (with a core mapping): each spike is sent once to every core that
  holds at least one of its targets; a packet costs one local delivery plus one router
  hop per mesh step (Manhattan distance between source and destination core).

Synaptic events, packets and hops caused by the input spikes of a spike-coded input are
also kept apart (``*_input``): they scale with the input coding, the rest with the hidden
layers' spike rate, and a break-even analysis needs the two separately.

The NeuroBench figures (defined in :mod:`nonvon.workload`; Yik et al., Nature
Communications 16:1545, 2025) follow from the same counts: effective ACs = synaptic events,
effective MACs as above, dense ops = the synaptic operations of the same network run
densely (every synapse with every real input at every step; a padded convolution's taps on
the padding are not operations, as in NeuroBench), activation sparsity = 1 - spikes /
(spiking neurons x steps). Where nonvon's choice differs from NeuroBench 2.3.0's it is a
field of :class:`~nonvon.workload.Conventions` (re-exported here), and
:data:`NEUROBENCH_CONVENTIONS` gives the package's figures exactly
(``Counts.neurobench(NEUROBENCH_CONVENTIONS)``): ``readout_in_sparsity`` (the non-spiking
readout's silent outputs in activation sparsity), ``direct_every_step`` (a direct-coded
first layer counted at each of the ``T`` steps rather than once) and
``acs_from_input_values`` (a direct-coded first layer whose analog input of a batch holds
only -1, 0 and 1 counted as ACs, not MACs).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from nonvon.simulators.spiking.networks import Recording, SpikingClassifier
from nonvon.workload import (
    NEUROBENCH_CONVENTIONS,
    NONVON_CONVENTIONS,
    Conventions,
    dense_ops_per_sample,
    spike_valued,
)

__all__ = ["Counts", "CoreMap", "Counter", "fanout_per_core", "population_sizes", "NeuroBench",
           "Conventions", "NONVON_CONVENTIONS", "NEUROBENCH_CONVENTIONS"]


@dataclasses.dataclass
class NeuroBench:
    """NeuroBench-style workload figures per inference (see the module docstring)."""

    effective_acs: float
    effective_macs: float
    dense_ops: float
    activation_sparsity: float

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Counts:
    """Totals over the samples of one or more batches (whole numbers)."""

    synops: int = 0
    effective_macs: int = 0
    dense_ops: int = 0
    effective_macs_every_step: int = 0  # a direct first layer counted at every step
    dense_ops_every_step: int = 0       # dense_ops with a direct first layer at every step
    spike_valued_macs: int = 0          # the part of effective_macs whose input held only -1, 0, 1
    spike_valued_macs_every_step: int = 0  # the same part of effective_macs_every_step
    neuron_updates_active: int = 0
    neuron_updates_idle: int = 0
    readout_updates: int = 0
    readout_active: int = 0
    spikes: int = 0            # spikes emitted by hidden (LIF) neurons
    input_spikes: int = 0      # spikes of a spike-coded input
    spiking_neuron_steps: int = 0
    input_neuron_steps: int = 0  # input population x steps, when the input is spike-coded
    packets: int = 0           # (spike, destination core) pairs
    hops: int = 0
    synops_input: int = 0      # the part of synops, packets and hops due to input spikes
    packets_input: int = 0
    hops_input: int = 0
    biased_updates: int = 0    # neuron-steps that add a bias current
    samples: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def neurobench(self, conventions: Conventions = NONVON_CONVENTIONS) -> NeuroBench:
        """The NeuroBench figures per inference, counted under ``conventions``."""
        n = max(self.samples, 1)
        steps = self.spiking_neuron_steps + (self.readout_updates if conventions.readout_in_sparsity
                                             else 0)
        sparsity = 1.0 - self.spikes / steps if steps else 0.0
        if conventions.direct_every_step:
            macs, dense = self.effective_macs_every_step, self.dense_ops_every_step
            as_acs = self.spike_valued_macs_every_step
        else:
            macs, dense, as_acs = self.effective_macs, self.dense_ops, self.spike_valued_macs
        acs = self.synops
        if conventions.acs_from_input_values:
            acs, macs = acs + as_acs, macs - as_acs
        return NeuroBench(acs / n, macs / n, dense / n, sparsity)


def _layer_in_shape(net: SpikingClassifier, i: int) -> tuple[int, ...]:
    """Shape of one sample's input to synaptic layer ``i`` (as the layer sees it)."""
    x = torch.zeros(1, *net.input_shape)
    with torch.no_grad():
        for j, layer in enumerate(net.layers):
            xi = net._shape_in(j, x)
            if j == i:
                return tuple(xi.shape[1:])
            x = layer(xi)
    raise IndexError(i)


def population_sizes(net: SpikingClassifier) -> list[int]:
    """Neurons per population: the input, then the targets of each synaptic layer."""
    sizes = [math.prod(net.input_shape)]
    x = torch.zeros(1, *net.input_shape)
    with torch.no_grad():
        for j, layer in enumerate(net.layers):
            x = layer(net._shape_in(j, x))
            sizes.append(x[0].numel())
    return sizes


def _apply_mask(layer: nn.Module, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, nn.Linear):
        return F.linear(x, mask)
    return F.conv2d(x, mask, None, layer.stride, layer.padding, layer.dilation, layer.groups)


def fanout_per_core(layer: nn.Module, in_shape: tuple[int, ...], core_of_target: torch.Tensor,
                    mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per presynaptic neuron: its non-zero fan-out, and its synapse count into each core.

    Args:
        layer: a ``Linear`` or ``Conv2d``.
        in_shape: one sample's input shape for the layer.
        core_of_target: core index of each (flattened) target neuron.
        mask: which synapses exist (default: the non-zero weights).

    Returns:
        ``(fanout, per_core)``: ``fanout`` flattened over the inputs; ``per_core`` of shape
        ``(n_cores_of_layer, n_inputs)``, cores numbered from ``core_of_target.min()``.
    """
    if mask is None:
        mask = layer.weight.detach().cpu() != 0  # 1 per stored (non-zero) synapse
    mask = mask.float()
    n_in = math.prod(in_shape)
    first = int(core_of_target.min())
    n_cores = int(core_of_target.max()) - first + 1
    if isinstance(layer, nn.Linear):
        per_core = torch.zeros(n_cores, n_in)
        per_core.index_add_(0, core_of_target - first, mask)
        return mask.sum(0), per_core
    x = torch.ones(1, *in_shape, requires_grad=True)
    out = _apply_mask(layer, mask, x)
    flat_core = (core_of_target - first).view(out.shape[1:])
    rows = []
    for k in range(n_cores):
        (g,) = torch.autograd.grad((out[0] * (flat_core == k)).sum(), x, retain_graph=True)
        rows.append(g.flatten())
    per_core = torch.stack(rows)
    return per_core.sum(0), per_core


@dataclasses.dataclass
class CoreMap:
    """Neurons placed on cores in order, population by population, cores on a 2-D mesh.

    Args:
        sizes: neurons per population (input first).
        neurons_per_core: neurons one core holds: one number for every population, or one
            per population (a chip whose synapse memory fills before its neuron slots holds
            fewer neurons of a wide-fan-in layer per core).
        mesh_width: cores per mesh row (hop distance is Manhattan on this grid).
    """

    sizes: list[int]
    neurons_per_core: int | list[int]
    mesh_width: int

    def __post_init__(self) -> None:
        per = self.neurons_per_core
        self.per_pop = [per] * len(self.sizes) if isinstance(per, int) else list(per)
        if len(self.per_pop) != len(self.sizes) or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.per_pop):
            raise ValueError(f"neurons_per_core={per!r}: one positive integer, or one per "
                             f"population ({len(self.sizes)})")
        self.first_core = []
        c = 0
        for n, k in zip(self.sizes, self.per_pop, strict=True):
            self.first_core.append(c)
            c += -(-n // k)
        self.n_cores = c

    def cores_of(self, pop: int) -> torch.Tensor:
        n = self.sizes[pop]
        return self.first_core[pop] + torch.arange(n) // self.per_pop[pop]

    def n_cores_of(self, pop: int) -> int:
        return -(-self.sizes[pop] // self.per_pop[pop])

    def distance(self, a: torch.Tensor, b: int) -> torch.Tensor:
        ax, ay = a % self.mesh_width, a // self.mesh_width
        bx, by = b % self.mesh_width, b // self.mesh_width
        return (ax - bx).abs() + (ay - by).abs()


class Counter:
    """Counts recordings of one network; routing tables are built once per network."""

    def __init__(self, net: SpikingClassifier, core_map: CoreMap | None = None):
        self.net = net
        self.core_map = core_map
        self.in_shapes = [_layer_in_shape(net, i) for i in range(len(net.layers))]
        self.sizes = population_sizes(net)
        self.fanout: list[torch.Tensor] = []
        self.routes: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        self.dense_per_step: list[int] = []
        for i, layer in enumerate(net.layers):
            targets = (core_map.cores_of(i + 1) if core_map is not None
                       else torch.zeros(self.sizes[i + 1], dtype=torch.long))
            fan, per_core = fanout_per_core(layer, self.in_shapes[i], targets)
            self.fanout.append(fan.round().long())
            if core_map is not None:
                first = int(targets.min())
                src = core_map.cores_of(i)
                has = per_core > 0                                     # (cores, inputs)
                dist = torch.stack([core_map.distance(src, first + k) for k in range(len(per_core))])
                self.routes.append((has.sum(0).long(), (has * dist).sum(0).long()))
            else:
                self.routes.append(None)
            # every synapse with every real input: a padded convolution's taps on the padding
            # are not operations
            self.dense_per_step.append(dense_ops_per_sample(layer, self.in_shapes[i]))

    def to(self, device) -> Counter:
        """Move the routing tables, so that recordings are counted where they were made (on a
        GPU, copying a convolutional network's recordings to the host costs more than the
        counting; the counts are sums of whole numbers, exact on either device)."""
        self.fanout = [f.to(device) for f in self.fanout]
        self.routes = [None if r is None else (r[0].to(device), r[1].to(device)) for r in self.routes]
        return self

    def count(self, rec: Recording) -> Counts:
        net, c = self.net, Counts()
        T = net.lif.timesteps
        B = rec.logits.shape[0]
        c.samples = B
        direct = net.lif.coding == "direct"
        for i, layer in enumerate(net.layers):
            inp = rec.inputs[i]
            if i == 0 and direct:
                nonzero = (inp[0] != 0).reshape(B, -1).sum(0)             # once per inference
                macs = int((nonzero * self.fanout[0]).sum())
                c.effective_macs += macs
                c.effective_macs_every_step += T * macs
                if spike_valued(inp[0]):  # NeuroBench's ACs (Conventions.acs_from_input_values)
                    c.spike_valued_macs += macs
                    c.spike_valued_macs_every_step += T * macs
                c.dense_ops += B * self.dense_per_step[0]
                c.dense_ops_every_step += T * B * self.dense_per_step[0]
            else:
                spikes = inp.reshape(T * B, -1).sum(0).round().long()      # per presynaptic neuron
                synops = int((spikes * self.fanout[i]).sum())
                c.synops += synops
                c.dense_ops += T * B * self.dense_per_step[i]
                c.dense_ops_every_step += T * B * self.dense_per_step[i]
                packets = hops = 0
                if self.routes[i] is not None:
                    n_dest, dist = self.routes[i]
                    packets, hops = int((spikes * n_dest).sum()), int((spikes * dist).sum())
                    c.packets += packets
                    c.hops += hops
                if i == 0:
                    c.input_spikes += int(spikes.sum())
                    c.input_neuron_steps += T * B * spikes.numel()
                    c.synops_input += synops
                    c.packets_input += packets
                    c.hops_input += hops
                else:
                    c.spikes += int(spikes.sum())
            # the neurons this layer drives: active when input arrives or state is non-zero
            cur = rec.currents[i].reshape(T, B, -1)
            mem = rec.mems[i].reshape(T, B, -1)
            prev = torch.cat([torch.zeros_like(mem[:1]), mem[:-1]])
            active = int(((cur != 0) | (prev != 0)).sum())
            total = T * B * cur.shape[-1]
            if layer.bias is not None:
                c.biased_updates += total
            if i == len(net.layers) - 1:
                c.readout_updates += total
                c.readout_active += active
            else:
                c.spiking_neuron_steps += total
            c.neuron_updates_active += active
            c.neuron_updates_idle += total - active
        return c

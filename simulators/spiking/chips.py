"""Neuromorphic chips: the same surrogate-trained LIF network, deployed under a chip's limits.

Each chip simulator trains like ``snn-mlp`` / ``snn-cnn``, then deploys the network as the
chip would hold it and refuses, with the limit and the value, a network that does not fit
(in a comparison with an output folder, chips and ``snn-mlp`` with the same training
settings share one training: :mod:`nonvon.training_memo`):

- **weights** are quantized (symmetric, one scale per layer, ``weight_bits``) and the network
  is fine-tuned with the quantized weights in the forward pass (straight-through
  gradients) for ``qat_epochs``; TrueNorth's are ternary per neuron (below);
- **neurons** are placed on cores in order, layer by layer (the input spikes arrive through
  input ports laid out like cores before the first layer). A core holds at most
  ``neurons_per_core`` neurons **and** at most ``synapse_bytes_per_core`` bytes of their
  fan-in synapses at the stored precision (``synapse_bits`` each, dense per neuron: an
  upper bound on what compressed formats store), so a wide-fan-in layer spreads over more
  cores (a 784 x 512 layer of 8-bit weights needs 4 Loihi cores, not 1). A network needing
  more cores than ``chips`` chips hold is refused before any training, naming the limit;
- **fan-in**: each core can receive from at most ``axons_per_core`` distinct inputs (where
  weights take their sign from the axon or synapse row, an input feeding a core with both
  signs takes two); any neuron's non-zero fan-in is at most ``max_fan_in``;
- **neuron dynamics**: TrueNorth neurons leak linearly, so only ``beta = 1`` (no multiplicative
  decay) is accepted; Loihi's decay is a 12-bit fraction, so ``beta`` is rounded to a
  multiple of 1/4096;
- **coding**: these chips route binary spikes, so ``coding`` must be ``rate`` or ``latency``;
- **time**: the digital chips count ``chip_timestep`` (``T`` per inference); their presets
  give the time per step (TrueNorth's 1 ms tick, SpiNNaker's 1 ms real-time step, a
  measured unthrottled Loihi step), so each has a latency and its static power is charged
  over it. BrainScaleS-2 runs on an accelerated analog time base, and its ledger is the
  emulation time ``emulation_s = T x step`` (its events, memory, routing and io are inside
  the measured chip power).

The digital chips' ledgers count, from the spikes emitted: ``synop`` (spike x non-zero
synapse), ``neuron_update`` / ``neuron_update_idle`` (every neuron every step, active when
input arrived or its state is non-zero), ``spike_local`` (one per spike and destination
core), ``spike_hop`` (router hops, Manhattan distance on the core mesh), ``chip_timestep``,
``input_spike`` (one per input spike injected into the chip) and ``host_transfer_byte``
(the class scores read out: ``n_classes`` membranes of ``score_bits`` each). The ledger's
``resident_bytes`` is the deployed synapses (dense, ``synapse_bits`` each) plus the neuron
state (``state_bits`` per neuron). The chip presets (``loihi``, ``truenorth``,
``spinnaker2``, ``brainscales2``) price them; a network spanning several chips is charged
one chip's static power by those presets (they price a chip, not a board).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from nonvon.config import integer, optional, positive_int
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.models.training import train_classifier
from nonvon.simulator import Capabilities
from nonvon.simulators.spiking.counting import (
    CoreMap,
    Counts,
    _layer_in_shape,
    fanout_per_core,
    population_sizes,
)
from nonvon.simulators.spiking.simulator import SNNConfig, SpikingSimulator
from nonvon.tasks import Task

__all__ = ["ChipSpec", "ChipConfig", "ChipSimulator", "Loihi", "TrueNorth", "SpiNNaker2",
           "BrainScaleS2", "quantize_symmetric", "ternarize_rows"]


@dataclasses.dataclass(frozen=True)
class ChipSpec:
    """What one chip holds. Sources are in each chip class's docstring.

    ``weight_bits``: (min, max, default) signed bits, or ``None`` for ternary weights.
    ``magnitude_bits``: weights are ``weight_bits`` of magnitude with the sign from the row.
    ``synapse_bytes_per_core``: synapse memory of one core; ``synapse_bits``: bits one
    stored synapse takes (``None``: the weight precision).
    ``state_bits``: stored state per neuron (0: analog); ``score_bits``: one class score as
    read out (``None``: not read out digitally).
    """

    name: str
    neurons_per_core: int
    cores_per_chip: int
    mesh_width: int
    axons_per_core: int | None
    signed_axons: bool
    max_fan_in: int | None
    weight_bits: tuple[int, int, int] | None
    magnitude_bits: bool = False
    linear_leak_only: bool = False
    decay_bits: int | None = None
    timestep_s: float | None = None
    synapse_bytes_per_core: int | None = None
    synapse_bits: int | None = None
    state_bits: int = 0
    score_bits: int | None = None
    # the chip's price list charges spike generation apart from the neuron update (spike_out)
    prices_spike_out: bool = False


def quantize_symmetric(w: torch.Tensor, levels: int) -> torch.Tensor:
    """Round to ``levels`` magnitudes per sign on one scale (``max|w| / levels``)."""
    scale = w.detach().abs().max().clamp_min(1e-12) / levels
    return torch.round(w / scale).clamp(-levels, levels) * scale


def ternarize_rows(w: torch.Tensor) -> torch.Tensor:
    """Per output neuron: ``{-a, 0, +a}`` with threshold ``0.7 mean|w|`` and ``a`` the mean
    magnitude above it (Li, Zhang & Liu, "Ternary weight networks", arXiv:1605.04711, 2016)."""
    flat = w.reshape(w.shape[0], -1)
    delta = 0.7 * flat.abs().mean(1, keepdim=True)
    keep = (flat.abs() > delta).to(w.dtype)
    a = (flat.abs() * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp_min(1)
    return (torch.sign(flat) * keep * a).reshape(w.shape)


class _FakeQuant(nn.Module):
    """Quantized weights in the forward pass, identity gradient (straight-through)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + (self.fn(w) - w).detach()


@dataclasses.dataclass(frozen=True)
class ChipConfig(SNNConfig):
    """:class:`SNNConfig` plus deployment settings.

    Args:
        weight_bits: weight precision (``None``: the chip's default; TrueNorth: ternary).
        chips: number of chips the network may span.
        qat_epochs: fine-tuning epochs with quantized weights after training (0: none).
    """

    weight_bits: int | None = None
    chips: int = 1
    qat_epochs: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        optional(integer, "weight_bits", self.weight_bits, example=8)  # the chip checks its range
        positive_int("chips", self.chips, example=1)
        integer("qat_epochs", self.qat_epochs, 0, example=2)


class ChipSimulator(SpikingSimulator):
    """A spiking network on a neuromorphic chip (subclasses set ``chip``)."""

    Config = ChipConfig
    chip: ClassVar[ChipSpec]

    def __init__(self, config: ChipConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        c, chip = self.config, self.chip
        if c.coding not in ("rate", "latency"):
            raise ConfigError(f"{chip.name} routes binary spikes; coding={c.coding!r} sends analog "
                              "values", "use coding='rate' or coding='latency'")
        if chip.weight_bits is None:
            if c.weight_bits is not None:
                raise ConfigError(f"{chip.name} weights are ternary per neuron (axon types); "
                                  f"weight_bits={c.weight_bits} cannot be set",
                                  "leave weight_bits=None")
        else:
            lo, hi, _ = chip.weight_bits
            if c.weight_bits is not None and not lo <= c.weight_bits <= hi:
                raise ConfigError(f"{chip.name} holds {lo}..{hi}-bit weights; got weight_bits="
                                  f"{c.weight_bits}", f"choose weight_bits in [{lo}, {hi}]")
        if chip.linear_leak_only and c.beta != 1.0:
            raise ConfigError(f"{chip.name} neurons leak linearly, not by a factor per step; "
                              f"beta={c.beta} is not available", "set beta=1.0 (integrate-and-fire)")
        self._map: CoreMap | None = None

    @property
    def op_kinds(self) -> frozenset[str]:
        kinds = {"synop", "neuron_update", "neuron_update_idle", "spike_local", "spike_hop",
                 "chip_timestep", "input_spike", "host_transfer_byte"}
        return frozenset(kinds | ({"spike_out"} if self.chip.prices_spike_out else set()))

    @property
    def precision(self) -> str:
        """The stored weight precision: ``int<b>`` for ``b``-bit two's-complement weights,
        ``int<b+1>`` for ``b`` magnitude bits with a sign (the same levels), ``ternary``."""
        if self.chip.weight_bits is None:
            return "ternary"
        bits = self.config.weight_bits or self.chip.weight_bits[2]
        return f"int{bits + 1}" if self.chip.magnitude_bits else f"int{bits}"

    @property
    def synapse_bits(self) -> int:
        if self.chip.synapse_bits is not None:
            return self.chip.synapse_bits
        return self.config.weight_bits or self.chip.weight_bits[2]

    @property
    def native_presets(self) -> tuple[str, ...]:
        return (self.chip.name,)  # this chip's constraints, priced on this chip's own figures

    @property
    def capabilities(self) -> Capabilities:
        base = super().capabilities
        limit = self.chip.axons_per_core
        if limit is not None and self.chip.signed_axons:
            limit //= 2
        if self.chip.max_fan_in is not None:
            limit = min(limit or self.chip.max_fan_in, self.chip.max_fan_in)
        return dataclasses.replace(base, max_features=limit)

    @property
    def weight_levels(self) -> int | None:
        """Magnitude levels per sign, or ``None`` for ternary."""
        if self.chip.weight_bits is None:
            return None
        bits = self.config.weight_bits or self.chip.weight_bits[2]
        return 2 ** bits - 1 if self.chip.magnitude_bits else 2 ** (bits - 1) - 1

    @property
    def beta_on_chip(self) -> float:
        b = self.config.beta
        if self.chip.decay_bits:
            step = 2 ** self.chip.decay_bits
            b = 1.0 - round((1.0 - b) * step) / step
        return b

    # -- limits ------------------------------------------------------------------------
    def _core_map(self) -> CoreMap:
        return self._map

    def check_task(self, task: Task) -> None:
        super().check_task(task)
        # structural limits do not depend on the weights: refuse before any training
        self._check_network(self._build(task))

    def _placement(self, net) -> tuple[list[int], list[int]]:
        """Population sizes (input first) and neurons per core of each population: the
        chip's neuron slots, or fewer where a core's synapse memory fills first."""
        chip, sizes = self.chip, population_sizes(net)
        per = [chip.neurons_per_core]
        for i, layer in enumerate(net.layers):
            k = chip.neurons_per_core
            if chip.synapse_bytes_per_core is not None:
                fan_in = layer.weight[0].numel()
                per_neuron = fan_in * self.synapse_bits / 8
                k = min(k, int(chip.synapse_bytes_per_core // per_neuron))
                if k < 1:
                    raise IncompatibleError(
                        f"{chip.name}: a layer-{i} neuron's {fan_in} synapses at "
                        f"{self.synapse_bits} bits take {per_neuron:,.0f} bytes; one core's "
                        f"synapse memory holds {chip.synapse_bytes_per_core:,} bytes",
                        "narrow the fan-in (downsample the input, smaller layers) or lower "
                        "weight_bits")
            per.append(k)
        return sizes, per

    def synapse_bytes(self, net) -> float:
        """Bytes of the deployed synapses at the stored precision (dense per neuron)."""
        return sum(layer.weight.numel() for layer in net.layers) * self.synapse_bits / 8

    def static_metrics(self) -> dict[str, float]:
        """``footprint_bytes``: the deployed synapses at the chip's synapse precision (what
        its synapse memory stores; biases and neuron state are left out); the connection
        sparsity counts synapses quantized to zero."""
        return {**super().static_metrics(), "footprint_bytes": float(self.synapse_bytes(self.network))}

    def resident_bytes(self) -> float:
        sizes = self._populations()
        return float(self.synapse_bytes(self.network) + sum(sizes[1:]) * self.chip.state_bits / 8)

    def _check_network(self, net) -> None:
        chip = self.chip
        sizes, per = self._placement(net)
        self._map = CoreMap(sizes, per, chip.mesh_width)
        used = self._map.n_cores - self._map.first_core[1]  # input ports are not neuron cores
        have = chip.cores_per_chip * self.config.chips
        if used > have:
            by_neurons = sum(-(-n // chip.neurons_per_core) for n in sizes[1:])
            what = f"{sum(sizes[1:])} neurons need {used} cores of {chip.neurons_per_core}"
            if used > by_neurons:  # synapse memory, not neuron slots, is the binding limit
                mem = chip.synapse_bytes_per_core
                what = (f"{self.synapse_bytes(net):,.0f} bytes of synapses at "
                        f"{self.synapse_bits} bits and {sum(sizes[1:])} neurons need {used} "
                        f"cores of {mem:,} synapse bytes and {chip.neurons_per_core} neurons "
                        f"each (synapse memory per chip: {mem * chip.cores_per_chip:,} bytes)")
            raise IncompatibleError(
                f"{chip.name}: the network's {what}; {self.config.chips} chip(s) hold {have} "
                "cores", "use smaller layers or lower weight_bits, or raise chips= (several "
                "chips: the chip presets charge one chip's static power)")
        if chip.max_fan_in is not None:
            for i, layer in enumerate(net.layers):
                fan_in = layer.weight[0].numel()
                if fan_in > chip.max_fan_in:
                    raise IncompatibleError(
                        f"{chip.name}: layer {i} neurons have fan-in {fan_in}; the chip allows "
                        f"{chip.max_fan_in}", "use narrower layers or downsample the input")

    def _check_axons(self, net) -> None:
        """Distinct (signed) inputs per core, from the deployed (quantized) weights."""
        chip = self.chip
        if chip.axons_per_core is None:
            return
        for i, layer in enumerate(net.layers):
            w = layer.weight.detach().cpu()
            targets = self._map.cores_of(i + 1)
            need = 0
            for mask in ((w > 0), (w < 0)) if chip.signed_axons else ((w != 0),):
                _, per_core = fanout_per_core(layer, _layer_in_shape(net, i), targets, mask)
                need = need + (per_core > 0).sum(1)
            worst = int(torch.as_tensor(need).max())
            if worst > chip.axons_per_core:
                kind = "signed input rows" if chip.signed_axons else "distinct inputs (axons)"
                raise IncompatibleError(
                    f"{chip.name}: layer {i} needs {worst} {kind} on one core; a core has "
                    f"{chip.axons_per_core}",
                    "use narrower layers (fan-in), downsample the input (task.downsample / pca), "
                    "or raise sparsity")

    # -- deployment --------------------------------------------------------------------
    def _quantizer(self):
        levels = self.weight_levels
        return ternarize_rows if levels is None else (lambda w: quantize_symmetric(w, levels))

    def _after_training(self, task: Task, *, seed: int, progress: bool) -> None:
        net, c = self.network, self.config
        q = self._quantizer()
        for layer in net.layers:
            parametrize.register_parametrization(layer, "weight", _FakeQuant(q))
        if c.qat_epochs:
            train_classifier(net, task.x_train, task.y_train, epochs=c.qat_epochs,
                             batch_size=c.batch_size, lr=c.lr / 10, weight_decay=c.weight_decay,
                             seed=seed + 1, device=self.device, progress=progress,
                             label=f"{self.name} quantized fine-tune")
        net.cpu()
        for layer in net.layers:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            if layer.bias is not None:  # biases on the weight grid of their layer
                with torch.no_grad():
                    scale = layer.weight.abs().max().clamp_min(1e-12) / (self.weight_levels or 1)
                    layer.bias.copy_(torch.round(layer.bias / scale) * scale)
        self._deploy(net)

    def _deploy(self, net) -> None:
        """Put deployed (quantized) weights on the chip: its neuron decay, its limits."""
        net.lif = dataclasses.replace(net.lif, beta=self.beta_on_chip)
        self._check_network(net)
        self._check_axons(net)
        self._counter = None

    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        super()._load_state_tensors(tensors, task)  # the deployed weights, as trained
        self._deploy(self.network.cpu())

    # -- the ledger --------------------------------------------------------------------
    def _ledger(self, c: Counts) -> dict[str, float]:
        if self.op_kinds == {"emulation_s"}:
            return {"emulation_s": c.samples * self.config.timesteps * self.chip.timestep_s}
        score_bytes = math.ceil(self.chip.score_bits / 8)
        ledger = {"synop": c.synops, "neuron_update": c.neuron_updates_active,
                  "neuron_update_idle": c.neuron_updates_idle, "spike_local": c.packets,
                  "spike_hop": c.hops, "chip_timestep": c.samples * self.config.timesteps,
                  "input_spike": c.input_spikes,
                  "host_transfer_byte": c.samples * self.network.n_classes * score_bytes}
        if self.chip.prices_spike_out:
            ledger["spike_out"] = c.spikes
        return ledger

    def _spike_driven(self, c: Counts) -> tuple[dict[str, float], dict[str, float]]:
        if self.op_kinds == {"emulation_s"}:
            return {}, {}  # chip power x time: nothing in the ledger scales with the spikes
        driven = ({"synop": c.synops, "spike_local": c.packets, "spike_hop": c.hops,
                   "input_spike": c.input_spikes},
                  {"synop": c.synops_input, "spike_local": c.packets_input,
                   "spike_hop": c.hops_input, "input_spike": c.input_spikes})
        if self.chip.prices_spike_out:  # hidden neurons' spikes; input spikes are not emitted here
            driven[0]["spike_out"], driven[1]["spike_out"] = c.spikes, 0
        return driven


class Loihi(ChipSimulator):
    """Intel Loihi (Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
    learning", IEEE Micro 38(1), 2018): 128 neuromorphic cores per chip with 1,024 neural
    compartments each, on a mesh network; signed synaptic weights of up to 8 bits here (the
    chip supports 1 to 9); 12-bit membrane decay. Per core, at most 4,096 input axons and
    128 KB of synaptic state ("The total synaptic fan-in state mapped to any core must not
    exceed 128 KB", p. 89; 16 MB per chip, p. 95). Neuron state: membrane and current of 24
    bits each (Dey & Dimitrov, Front. Neurosci. 16, 2022: "allotted +-23 bits each"); a
    class score is read out as one 24-bit membrane. These quotations were checked against a
    third-party transcription of the papers (dyigitpolat/mimarsinan,
    docs/research/physics/loihi_constants_research.md), not the papers themselves. The
    8-wide core mesh (hop counts use it) is a layout assumption. The time per step is the
    ``loihi`` preset's (``chip_timestep``).
    """

    cost_hint = 31.0
    chip = ChipSpec("loihi", neurons_per_core=1024, cores_per_chip=128, mesh_width=8,
                    axons_per_core=4096, signed_axons=False, max_fan_in=None,
                    weight_bits=(1, 8, 8), decay_bits=12, synapse_bytes_per_core=128 * 1024,
                    state_bits=48, score_bits=24, prices_spike_out=True)
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}


class TrueNorth(ChipSimulator):
    """IBM TrueNorth (Merolla et al., "A million spiking-neuron integrated circuit with a
    scalable communication network and interface", Science 345(6197), 2014): 4,096 cores
    on a 64 x 64 mesh, each a 256-axon x 256-neuron binary crossbar (one bit per synapse:
    256 million synapses per chip, abstract); a neuron's weight is
    one of 4 signed integers selected by the axon's type, so an input that excites some
    neurons of a core and inhibits others takes two axons; neurons leak linearly (no
    multiplicative decay); neuron state 20 bits (read out as a class score); one tick of
    1 ms per step in real-time operation (the ``truenorth`` preset's ``chip_timestep``).
    Weights are ternary per
    neuron (two axon types, +a and -a), trained as in Esser et al. (PNAS 113(41), 2016)
    with the ternarization of Li et al. 2016; a per-neuron magnitude ``a`` equals integer
    weights with a per-neuron threshold.
    """

    cost_hint = 17.0
    chip = ChipSpec("truenorth", neurons_per_core=256, cores_per_chip=4096, mesh_width=64,
                    axons_per_core=256, signed_axons=True, max_fan_in=256, weight_bits=None,
                    linear_leak_only=True, synapse_bytes_per_core=256 * 256 // 8,
                    synapse_bits=1, state_bits=20, score_bits=20)
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}

    defaults: ClassVar[dict] = {"hidden": (256,), "beta": 1.0}


class SpiNNaker2(ChipSimulator):
    """SpiNNaker 2 (Höppner et al., "Dynamic power management for neuromorphic many-core
    systems", IEEE TCAS-I 66(8), 2019; Mayr et al., arXiv:1911.02385, 2019): 152 ARM
    processing elements (PEs) per chip running neurons in software on a real-time 1 ms step
    (the ``spinnaker2`` preset's ``chip_timestep``), each with 128 KB of local code and
    data memory (SpiNNaker2 datasheet v0.03, 2021, Features 1a), taken here as the PE's
    synapse memory (an upper bound: code and neuron state share it). Neurons per PE are a
    software mapping choice (256 here); 16-bit weights by default, stored densely (an
    assumption); no hardware fan-in limit is modelled; neuron state and class scores 32-bit
    fixed point (an assumption). PE mesh width 8 is a layout assumption for hop counts.
    """

    cost_hint = 25.0
    chip = ChipSpec("spinnaker2", neurons_per_core=256, cores_per_chip=152, mesh_width=8,
                    axons_per_core=None, signed_axons=False, max_fan_in=None,
                    weight_bits=(1, 16, 16), synapse_bytes_per_core=128 * 1024,
                    state_bits=32, score_bits=32)
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}


class BrainScaleS2(ChipSimulator):
    """BrainScaleS-2 (Pehle et al., "The BrainScaleS-2 accelerated neuromorphic system with
    hybrid plasticity", Frontiers in Neuroscience 16, 2022): one 65 nm mixed-signal chip with
    512 analog neuron circuits in two halves of 256, each half fed by 256 synapse rows
    whose sign is set per row; 6-bit weight magnitudes (Weis et al., arXiv:2006.13177,
    2020); analog dynamics 1,000 times faster than biological time. Modelled here as two
    cores of 256 neurons and 256 signed rows (a 256 x 256 array of 6-bit synapses each);
    one discrete step is taken as 1 ms of
    biological time, i.e. ``timestep_s`` = 1 us of hardware time. Combining circuits into
    larger neurons (as the 256-246-10 network of Göltz et al. 2021 needs) is modelled by
    ``brainscales2-ttfs`` (:mod:`.ttfs`), not here: this simulator refuses such a network
    with the row limit. Precision ``int7``: 6 magnitude bits and the row's sign.

    Synapses, neurons, on-chip routing and the event interface are analog or part of the
    chip's measured power, so the ledger holds only ``emulation_s`` (priced by the
    ``brainscales2`` preset's power; the preset declares memory, interconnect, io and static
    included in it); the event counts of the run are in ``sim.neurobench`` and the metrics.
    """

    cost_hint = 15.0
    op_kinds = frozenset({"emulation_s"})

    chip = ChipSpec("brainscales2", neurons_per_core=256, cores_per_chip=2, mesh_width=2,
                    axons_per_core=256, signed_axons=True, max_fan_in=256,
                    weight_bits=(6, 6, 6), magnitude_bits=True, timestep_s=1e-6,
                    synapse_bytes_per_core=256 * 256 * 6 // 8, state_bits=0)
    quick: ClassVar[dict] = {"hidden": (32,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}

    defaults: ClassVar[dict] = {"hidden": (128,)}

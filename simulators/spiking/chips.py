"""Neuromorphic chips: the same surrogate-trained LIF network, deployed under a chip's limits.

Each chip simulator trains like ``snn-mlp`` / ``snn-cnn``, then deploys the network as the
chip would hold it and refuses, with the limit and the value, a network that does not fit
(in a comparison with an output folder, chips and ``snn-mlp`` with the same training
settings share one training: :mod:`nonvon.training_memo`):

- **weights** are quantized (symmetric, one scale per layer, ``weight_bits``) and the network
  is fine-tuned with the quantized weights in the forward pass (straight-through
  gradients) for ``qat_epochs``; TrueNorth's are ternary per neuron (below);
- **neurons** are placed on cores in order, layer by layer (the input spikes arrive through
  input ports laid out like cores before the first layer); a network needing more cores
  than ``chips`` chips hold is an error;
- **fan-in**: each core can receive from at most ``axons_per_core`` distinct inputs (where
  weights take their sign from the axon or synapse row, an input feeding a core with both
  signs takes two); any neuron's non-zero fan-in is at most ``max_fan_in``;
- **neuron dynamics**: TrueNorth neurons leak linearly, so only ``beta = 1`` (no multiplicative
  decay) is accepted; Loihi's decay is a 12-bit fraction, so ``beta`` is rounded to a
  multiple of 1/4096;
- **coding**: these chips route binary spikes, so ``coding`` must be ``rate`` or ``latency``;
- **time**: BrainScaleS-2 runs on an accelerated analog time base, and its ledger is the
  emulation time ``emulation_s = T x step`` (its events are inside the chip power). The
  digital chips' energy figures are per event, so their ledgers hold events only (TrueNorth's
  1 ms tick and SpiNNaker's real-time 1 ms step would set a latency, not an energy, with
  these presets; latency is not modelled for them).

The ledger counts, from the spikes emitted: ``synop`` (spike x non-zero synapse),
``neuron_update`` / ``neuron_update_idle`` (every neuron every step, active when input
arrived or its state is non-zero), ``spike_local`` (one per spike and destination core)
and ``spike_hop`` (router hops, Manhattan distance on the core mesh). The chip presets
(``loihi``, ``truenorth``, ``spinnaker2``, ``brainscales2``) price them.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

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
        if isinstance(self.chips, bool) or not isinstance(self.chips, int) or self.chips < 1:
            raise ConfigError(f"chips={self.chips!r} must be a positive integer", "e.g. chips=1")
        if isinstance(self.qat_epochs, bool) or not isinstance(self.qat_epochs, int) \
                or self.qat_epochs < 0:
            raise ConfigError(f"qat_epochs={self.qat_epochs!r} must be an integer >= 0", "e.g. 2")


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
        return frozenset({"synop", "neuron_update", "neuron_update_idle", "spike_local", "spike_hop"})

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

    def _check_network(self, net) -> None:
        chip, sizes = self.chip, population_sizes(net)
        self._map = CoreMap(sizes, chip.neurons_per_core, chip.mesh_width)
        used = self._map.n_cores - self._map.first_core[1]  # input ports are not neuron cores
        have = chip.cores_per_chip * self.config.chips
        if used > have:
            raise IncompatibleError(
                f"{chip.name}: the network's {sum(sizes[1:])} neurons need {used} cores of "
                f"{chip.neurons_per_core}; {self.config.chips} chip(s) hold {have}",
                "use smaller layers, or raise chips=")
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
        net.lif = dataclasses.replace(net.lif, beta=self.beta_on_chip)
        self._check_network(net)
        self._check_axons(net)
        super()._after_training(task, seed=seed, progress=progress)

    def _ledger(self, c: Counts) -> dict[str, float]:
        if self.op_kinds == {"emulation_s"}:
            return {"emulation_s": c.samples * self.config.timesteps * self.chip.timestep_s}
        return {"synop": c.synops, "neuron_update": c.neuron_updates_active,
                "neuron_update_idle": c.neuron_updates_idle, "spike_local": c.packets,
                "spike_hop": c.hops}


class Loihi(ChipSimulator):
    """Intel Loihi (Davies et al., "Loihi: a neuromorphic manycore processor with on-chip
    learning", IEEE Micro 38(1), 2018): 128 neuromorphic cores per chip with 1,024 neural
    compartments each, on a mesh network; signed synaptic weights of up to 8 bits here;
    12-bit membrane decay. Limits taken from the paper's description and not independently
    re-checked: 4,096 distinct input axons per core, an 8 x 16 core mesh (hop counts use it).
    Loihi's timestep is activity-dependent (no fixed step), so no ``emulation_s`` is counted.
    """

    chip = ChipSpec("loihi", neurons_per_core=1024, cores_per_chip=128, mesh_width=8,
                    axons_per_core=4096, signed_axons=False, max_fan_in=None,
                    weight_bits=(1, 8, 8), decay_bits=12)
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}

    def __init__(self, config: ChipConfig | None = None, /, **overrides):
        super().__init__(config or ChipConfig(model="mlp"), **overrides)


class TrueNorth(ChipSimulator):
    """IBM TrueNorth (Merolla et al., "A million spiking-neuron integrated circuit with a
    scalable communication network and interface", Science 345(6197), 2014): 4,096 cores
    on a 64 x 64 mesh, each a 256-axon x 256-neuron binary crossbar; a neuron's weight is
    one of 4 signed integers selected by the axon's type, so an input that excites some
    neurons of a core and inhibits others takes two axons; neurons leak linearly (no
    multiplicative decay); a 1 ms tick in real-time operation (not modelled: the preset's
    energy is per event). Weights are ternary per
    neuron (two axon types, +a and -a), trained as in Esser et al. (PNAS 113(41), 2016)
    with the ternarization of Li et al. 2016; a per-neuron magnitude ``a`` equals integer
    weights with a per-neuron threshold.
    """

    chip = ChipSpec("truenorth", neurons_per_core=256, cores_per_chip=4096, mesh_width=64,
                    axons_per_core=256, signed_axons=True, max_fan_in=256, weight_bits=None,
                    linear_leak_only=True)
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}

    def __init__(self, config: ChipConfig | None = None, /, **overrides):
        super().__init__(config or ChipConfig(model="mlp", hidden=(256,), beta=1.0), **overrides)


class SpiNNaker2(ChipSimulator):
    """SpiNNaker 2 (Höppner et al., "Dynamic power management for neuromorphic many-core
    systems", IEEE TCAS-I 66(8), 2019; Mayr et al., arXiv:1911.02385, 2019): 152 ARM
    processing elements per chip running neurons in software on a real-time 1 ms step.
    Neurons per PE are a software mapping choice (256 here); the 1 ms step is not modelled;
    16-bit weights by default; no hardware fan-in limit is modelled (synapse rows live in
    memory). PE mesh width 8 is a layout assumption for hop counts (routing is priced at zero in the preset).
    """

    chip = ChipSpec("spinnaker2", neurons_per_core=256, cores_per_chip=152, mesh_width=8,
                    axons_per_core=None, signed_axons=False, max_fan_in=None,
                    weight_bits=(1, 16, 16))
    quick: ClassVar[dict] = {"hidden": (64,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}

    def __init__(self, config: ChipConfig | None = None, /, **overrides):
        super().__init__(config or ChipConfig(model="mlp"), **overrides)


class BrainScaleS2(ChipSimulator):
    """BrainScaleS-2 (Pehle et al., "The BrainScaleS-2 accelerated neuromorphic system with
    hybrid plasticity", Frontiers in Neuroscience 16, 2022): one 65 nm mixed-signal chip with
    512 analog neuron circuits in two halves of 256, each half fed by 256 synapse rows
    whose sign is set per row; 6-bit weight magnitudes (Weis et al., arXiv:2006.13177,
    2020); analog dynamics 1,000 times faster than biological time. Modelled here as two
    cores of 256 neurons and 256 signed rows; one discrete step is taken as 1 ms of
    biological time, i.e. ``timestep_s`` = 1 us of hardware time. Combining circuits into
    larger neurons (as the 256-246-10 network of Göltz et al. 2021 needs) is modelled by
    ``brainscales2-ttfs`` (:mod:`.ttfs`), not here: this simulator refuses such a network
    with the row limit.

    Synapses, neurons and on-chip routing are analog or part of the chip's power, so the
    ledger holds only ``emulation_s`` (priced by the ``brainscales2`` preset's power); the
    event counts of the run are in ``sim.neurobench``.
    """

    op_kinds = frozenset({"emulation_s"})

    chip = ChipSpec("brainscales2", neurons_per_core=256, cores_per_chip=2, mesh_width=2,
                    axons_per_core=256, signed_axons=True, max_fan_in=256,
                    weight_bits=(6, 6, 6), magnitude_bits=True, timestep_s=1e-6)
    quick: ClassVar[dict] = {"hidden": (32,), "epochs": 5, "timesteps": 8, "batch_size": 32,
                             "lr": 5e-3, "qat_epochs": 1}

    def __init__(self, config: ChipConfig | None = None, /, **overrides):
        super().__init__(config or ChipConfig(model="mlp", hidden=(128,)), **overrides)

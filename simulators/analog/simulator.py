"""Analog in-memory computing simulators: ``analog-pcm`` (IBM HERMES-like PCM cores) and
``analog-rram`` (NeuRRAM-like RRAM cores), MLPs, and their CNN variants ``analog-pcm-cnn`` and
``analog-rram-cnn``.

An MLP (or a small CNN) is trained hardware-aware with IBM's aihwkit-lightning (:mod:`.training`), its layers
are mapped onto crossbar tiles (:mod:`.crossbar`), the weights programmed once as differential
conductance pairs with the device's programming noise (:mod:`.devices`), and every test input
runs through the tiles as they read ``t_inference_s`` seconds after programming: drift and
accumulated read noise (PCM) or relaxation (RRAM), a global drift compensation per tile, the
DAC, per-MVM output noise, the column ADC with its clipping, and the digital periphery.

The ledger counts what ran: tile MVMs, DAC and ADC conversions, the periphery's accumulations,
scalings and activations, activation-buffer bytes, bytes moved between cores and over the host
link, and one layer pass per layer (all of a layer's tiles work in parallel).

NeuroBench figures in the metrics (:mod:`nonvon.workload`): every crossbar MVM is analog
MACs, so ``effective_macs`` counts a non-zero input meeting a weight whose read conductance
pair is non-zero, ``dense_ops`` every weight with every real input (a convolution's padding
taps left out), ``activation_sparsity`` the zero outputs of the ReLUs, and
``connection_sparsity`` the zero read weights. ``footprint_bytes`` is the weights at the
bits their ``2L - 1`` signed levels need (``conductance_levels = L``); with continuous
conductances (``L = 0``) a weight has no bit count and the footprint is left out. No ACs.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nonvon.config import (
    choice,
    device,
    flag,
    integer,
    ints,
    non_negative,
    number,
    positive,
    positive_int,
    set_tuple,
)
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.models import cnn, mlp
from nonvon.simulator import Capabilities, Prediction, Simulator, execution_option
from nonvon.simulators.analog import kinds as K
from nonvon.simulators.analog.crossbar import (
    ProgrammedLayer,
    TileMap,
    analog_linear,
    program_layer,
    read_layer,
)
from nonvon.simulators.analog.devices import DEVICES
from nonvon.simulators.torch_backed import torch_device
from nonvon.tasks import Task
from nonvon.workload import Workload, connection_sparsity

__all__ = ["AnalogConfig", "AnalogCrossbar", "AnalogPCM", "AnalogRRAM", "AnalogPCMCNN",
           "AnalogRRAMCNN", "DRIFT_TIMES_S", "Layer"]

#: The drift curve's times after programming: 1 s, 1 hour, 1 day, 1 year.
DRIFT_TIMES_S = (1.0, 3600.0, 86400.0, 365 * 86400.0)
DIGITAL_KINDS = ("add_int32", "mul_int32", "cmp_int8", "sram_byte", "host_transfer_byte")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One weight layer of the plan: ``kind`` ``"dense"`` or ``"conv"``, its tile map, the MVMs
    one input needs through it, and (conv) the side of its input feature map."""

    kind: str
    tiles: TileMap
    mvms: int
    side: int = 0


@dataclasses.dataclass(frozen=True)
class AnalogConfig:
    """The network, the chip, the devices and the hardware-aware training.

    Args:
        model: ``"mlp"`` or ``"cnn"`` (fixed by the simulator).
        hidden: MLP hidden widths.
        channels, dense, kernel: the CNN's conv channels per block (each conv -> ReLU -> 2x2
            max-pool, "same" padding), its hidden dense width and its odd kernel size; every
            output position of a conv is one MVM of the unrolled ``C x k x k`` patch.
        device_type: ``"pcm"`` or ``"rram"`` (fixed by the simulator).
        tile_rows, tile_cols: weights one crossbar tile holds (rows = inputs, columns =
            outputs; each weight a differential pair of devices).
        max_tiles: tiles on the chip; a network needing more is refused before training.
        dac_bits, adc_bits: input DAC and column ADC resolution (``2^b - 1`` levels, signed).
        adc_range: ADC full scale in units of ``input range x column w_max`` (the ADC clips
            beyond it).
        conductance_levels: programmable levels per device (0: continuous); also the weight
            discretization used in training.
        t_inference_s: seconds after programming at which the test set is read (>= 0).
        prog_noise_scale, read_noise_scale, drift_scale: scale the device model's noises
            (1: as measured; 0: switch one off).
        out_noise: per-MVM output noise at inference, relative to ``w_max x input range``.
        drift_compensation: global drift compensation per tile (a reference read rescales
            the outputs).
        train_weight_noise, train_out_noise, clip_sigma: hardware-aware training: per-column
            weight-noise injection (relative to the column's w_max), output noise, and the
            per-column Gaussian weight clip (in standard deviations).
        epochs, batch_size, lr: Adam with cosine decay.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (where training runs).
        eval_batch_size: inputs read per batch in evaluation.
    """

    model: str = "mlp"
    hidden: tuple[int, ...] = (512, 512)
    channels: tuple[int, ...] = (16, 32)
    dense: int = 128
    kernel: int = 5
    device_type: str = "pcm"
    tile_rows: int = 256
    tile_cols: int = 256
    max_tiles: int = 64
    dac_bits: int = 8
    adc_bits: int = 8
    adc_range: float = 10.0
    conductance_levels: int = 0
    t_inference_s: float = 1.0
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    out_noise: float = 0.01
    drift_compensation: bool = True
    train_weight_noise: float = 0.05
    train_out_noise: float = 0.04
    clip_sigma: float = 2.5
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    device: str = execution_option("auto")
    eval_batch_size: int = execution_option(2000)

    def __post_init__(self) -> None:
        choice("model", self.model, ("mlp", "cnn"))
        set_tuple(self, "hidden", ints("hidden", self.hidden, example="(512, 512)"))
        set_tuple(self, "channels", ints("channels", self.channels, example="(16, 32)", nonempty=True))
        positive_int("dense", self.dense, example=128)
        if isinstance(self.kernel, bool) or not isinstance(self.kernel, int) or self.kernel < 1 \
                or self.kernel % 2 == 0:
            raise ConfigError(f"kernel={self.kernel!r} must be an odd positive integer", "e.g. kernel=5")
        choice("device_type", self.device_type, DEVICES)
        for name, example in (("tile_rows", 256), ("tile_cols", 256), ("max_tiles", 64),
                              ("epochs", 15), ("batch_size", 128), ("eval_batch_size", 2000)):
            positive_int(name, getattr(self, name), example=example)
        for name in ("dac_bits", "adc_bits"):
            integer(name, getattr(self, name), 2, 16, example=8)
        if self.conductance_levels != 0:
            integer("conductance_levels", self.conductance_levels, 2, 4096, example=16)
        positive("adc_range", self.adc_range, example=10.0)
        non_negative("t_inference_s", self.t_inference_s, example=1.0,
                     what=" (seconds after programming; a drift time cannot be negative)")
        for name in ("prog_noise_scale", "read_noise_scale", "drift_scale", "out_noise",
                     "train_weight_noise", "train_out_noise"):
            non_negative(name, getattr(self, name), example=1.0)
        number("clip_sigma", self.clip_sigma, 0, example=2.5, lo_open=True)
        positive("lr", self.lr, example=1e-3)
        flag("drift_compensation", self.drift_compensation)
        device(self.device)


class AnalogCrossbar(Simulator):
    """An MLP or CNN on analog crossbar tiles (see the module docstring). Subclasses fix the
    device and the network and state the chip's converter ranges."""

    paradigm = "analog"
    Config = AnalogConfig
    fixed: ClassVar[tuple[str, ...]] = ("device_type", "model")
    quick: ClassVar[dict] = {"hidden": (128,), "epochs": 2, "batch_size": 128, "lr": 5e-3}
    cost_hint: ClassVar[float] = 250.0  # 132 s alone (launch-bound), 240 to 263 s in the comparison
    op_kinds: ClassVar[frozenset[str]] = frozenset({k.name for k in K.KINDS} | set(DIGITAL_KINDS))
    #: The chip's DAC and ADC resolutions (inclusive), checked before any training.
    dac_bits_range: ClassVar[tuple[int, int]] = (1, 8)
    adc_bits_range: ClassVar[tuple[int, int]] = (1, 8)
    chip: ClassVar[str] = ""

    def __init__(self, config: AnalogConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        c = self.config
        for name, (lo, hi) in (("dac_bits", self.dac_bits_range), ("adc_bits", self.adc_bits_range)):
            v = getattr(c, name)
            if not lo <= v <= hi:
                raise ConfigError(f"{name}={v} is outside what {self.chip} supports ([{lo}, {hi}] bits)",
                                  f"use {name} between {lo} and {hi}")
        self.layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        self.programmed: list[ProgrammedLayer] | None = None
        self._plan: list[Layer] = []
        self._program_seed = 0

    @property
    def device_model(self):
        return DEVICES[self.config.device_type]

    @property
    def precision(self) -> str:
        return "analog"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(input_kinds=("image",) if self.config.model == "cnn" else ("image", "vector"))

    @property
    def n_params(self) -> int:
        return 0 if self.layers is None else sum(w.numel() + b.numel() for w, b, _ in self.layers)

    def plan(self, input_shape: tuple[int, ...], n_classes: int) -> list[Layer]:
        """The network's weight layers in order, each with its tile map and how many MVMs one
        input needs (1 for a dense layer, every output position for a conv)."""
        c = self.config
        tile = (c.tile_rows, c.tile_cols)
        if c.model == "mlp":
            sizes = [int(np.prod(input_shape)), *c.hidden, n_classes]
            return [Layer("dense", TileMap(a, b, *tile), 1) for a, b in zip(sizes, sizes[1:], strict=False)]
        side, ch, out = input_shape[0], 1, []
        for c_out in c.channels:
            out.append(Layer("conv", TileMap(ch * c.kernel**2, c_out, *tile), side * side, side))
            ch, side = c_out, side // 2
        out += [Layer("dense", TileMap(ch * side * side, c.dense, *tile), 1),
                Layer("dense", TileMap(c.dense, n_classes, *tile), 1)]
        return out

    def tile_maps(self, input_shape: tuple[int, ...], n_classes: int) -> list[TileMap]:
        return [layer.tiles for layer in self.plan(input_shape, n_classes)]

    def check_task(self, task: Task) -> None:
        super().check_task(task)
        c = self.config
        if c.model == "cnn":
            side = task.input_shape[0]
            if len(task.input_shape) != 2 or side != task.input_shape[1] or side < 2 ** len(c.channels):
                raise IncompatibleError(f"{self.name} takes square images of side >= "
                                        f"{2 ** len(c.channels)}; task {task.name!r} has "
                                        f"{task.input_shape}", "use the MLP simulator or fewer conv blocks")
        maps = self.tile_maps(task.input_shape, task.n_classes)
        need = sum(m.n_tiles for m in maps)
        if need > self.config.max_tiles:
            detail = ", ".join(f"{m.in_features}x{m.out_features}: {m.n_tiles}" for m in maps)
            raise IncompatibleError(
                f"{self.name}: the network needs {need} tiles of {self.config.tile_rows}x"
                f"{self.config.tile_cols} ({detail}) but the chip holds max_tiles="
                f"{self.config.max_tiles}", "use smaller hidden layers, larger tiles, or raise "
                "max_tiles to model a multi-chip system")

    # -- training --------------------------------------------------------------------------
    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        from nonvon.simulators.analog import training

        c = self.config
        training.aihwkit_lightning()
        torch.manual_seed(seed)
        digital = (mlp(task.n_features, c.hidden, task.n_classes) if c.model == "mlp" else
                   cnn(task.input_shape[0], c.channels, c.dense, task.n_classes, kernel=c.kernel))
        net = training.to_analog(digital, training.rpu_config(c))
        x = task.x_train.reshape(len(task.x_train), -1) if c.model == "mlp" else task.x_train
        training.train_hwa(net, x, task.y_train, epochs=c.epochs, batch_size=c.batch_size,
                           lr=c.lr, seed=seed, device=torch_device(c.device), progress=progress,
                           label=f"{self.name} hardware-aware training")
        # a conv's weight as its unrolled (out, C x k x k) matrix, as the tiles hold it
        self.layers = [(m.weight.detach().cpu().float().reshape(m.weight.shape[0], -1),
                        m.bias.detach().cpu().float(), m.input_range.detach().cpu().float())
                       for m in training.analog_layers(net)]
        self._plan = self.plan(task.input_shape, task.n_classes)
        self._program(seed)

    def _program(self, seed: int) -> None:
        c = self.config
        self._program_seed = seed
        gen = torch.Generator().manual_seed(10_007 * seed + 1)
        self.programmed = [program_layer(w, b, r, self.device_model, tile_rows=c.tile_rows,
                                         tile_cols=c.tile_cols, levels=c.conductance_levels,
                                         gen=gen, prog_scale=c.prog_noise_scale,
                                         drift_scale=c.drift_scale)
                           for w, b, r in self.layers]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {"program_seed": torch.tensor([self._program_seed], dtype=torch.int64)}
        for i, (w, b, r) in enumerate(self.layers):
            out |= {f"layer{i}.weight": w, f"layer{i}.bias": b, f"layer{i}.input_range": r}
        return out

    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        self._plan = self.plan(task.input_shape, task.n_classes)
        n = len(self._plan)
        want = {"program_seed"} | {f"layer{i}.{k}" for i in range(n)
                                   for k in ("weight", "bias", "input_range")}
        if set(tensors) != want:
            raise ConfigError(f"{self.name}: the state has tensors {sorted(tensors)}, expected "
                              f"{sorted(want)}", "load a state saved by the same simulator and network sizes")
        self.layers = [tuple(torch.as_tensor(tensors[f"layer{i}.{k}"]).float()
                             for k in ("weight", "bias", "input_range")) for i in range(n)]
        self._program(int(torch.as_tensor(tensors["program_seed"]).reshape(-1)[0]))

    # -- inference -------------------------------------------------------------------------
    def read_weights(self, t_s: float | None) -> tuple[list[list[torch.Tensor]], list[list[float]]]:
        """Every layer's effective weights read ``t_s`` seconds after programming, and the
        global drift compensation factor of each tile row slice."""
        c = self.config
        gen = torch.Generator().manual_seed(10_007 * self._program_seed + 2)
        weights, gdc = [], []
        for layer in self.programmed:
            now = read_layer(layer, self.device_model, t_s, gen, read_scale=c.read_noise_scale,
                             prog_scale=c.prog_noise_scale)
            factors = [1.0] * len(now)
            if c.drift_compensation and t_s is not None:
                ref = read_layer(layer, self.device_model, None, gen)
                # reference input: every row at full scale; the ratio of summed |currents|
                factors = [float(r.abs().sum(0).sum() / max(float(w.abs().sum(0).sum()), 1e-30))
                           for r, w in zip(ref, now, strict=True)]
            weights.append([w.float() for w in now])
            gdc.append(factors)
        return weights, gdc

    def _predict(self, x: np.ndarray) -> Prediction:
        c = self.config
        weights, gdc = self.read_weights(c.t_inference_s)
        floats = [dataclasses.replace(p, input_range=p.input_range.float(), bias=p.bias.float(),
                                      w_max=[m.float() for m in p.w_max]) for p in self.programmed]
        gen = torch.Generator().manual_seed(10_007 * self._program_seed + 3)
        xt = torch.from_numpy(x).float()
        if c.model == "mlp":
            xt = xt.reshape(len(x), -1)

        # NeuroBench figures (module docstring): a weight is a synapse where its read
        # conductance pair differs
        stored = [(torch.cat(w, dim=1) != 0).double() for w in weights]
        work = Workload(samples=len(x))

        def mvm(h, k, real=None):
            # real: which inputs exist (a convolution's unrolled padding does not)
            work.effective_macs += int(((h != 0).double() @ stored[k].T).sum())
            work.dense_ops += (h.numel() if real is None else int(real.sum())) * stored[k].shape[0]
            return analog_linear(h, weights[k], floats[k], dac_bits=c.dac_bits, adc_bits=c.adc_bits,
                                 adc_range=c.adc_range, out_noise=c.out_noise, gdc=gdc[k], gen=gen)

        def relu(y):
            y = torch.relu(y)
            work.activations += y.numel()
            work.zero_activations += y.numel() - int(torch.count_nonzero(y))
            return y

        labels = []
        with torch.inference_mode():
            for i in range(0, len(xt), c.eval_batch_size):
                h = xt[i:i + c.eval_batch_size]
                if c.model == "cnn":
                    h = h.unsqueeze(1)
                for k, layer in enumerate(self._plan):
                    if layer.kind == "conv":
                        b, side = len(h), layer.side
                        cols = F.unfold(h, c.kernel, padding=c.kernel // 2).transpose(1, 2)
                        real = F.unfold(torch.ones_like(h), c.kernel, padding=c.kernel // 2)
                        y = mvm(cols.reshape(b * side * side, -1), k, real)
                        h = F.max_pool2d(relu(y.reshape(b, side * side, -1).transpose(1, 2)
                                              .reshape(b, -1, side, side)), 2)
                    else:
                        h = mvm(h.reshape(len(h), -1), k)
                        if k < len(self._plan) - 1:
                            h = relu(h)
                labels.append(h.argmax(1))
        metrics = {**work.metrics(), "connection_sparsity": connection_sparsity(stored)}
        levels = c.conductance_levels
        if levels:  # 2L - 1 signed levels per differential pair; continuous: no bit count
            metrics["footprint_bytes"] = float(math.ceil(
                sum(int(s.numel()) for s in stored) * math.ceil(math.log2(2 * levels - 1)) / 8))
        return Prediction(torch.cat(labels).numpy(), self.count(len(x)), metrics=metrics)

    def count(self, n: int) -> OpLedger:
        """The ledger of ``n`` inputs through the programmed network (it depends only on the
        mapping: every tile of every layer runs once per MVM, a conv's once per position)."""
        per = Counter()
        for k, layer in enumerate(self._plan):
            m, reps = layer.tiles, layer.mvms
            t = {key: v * reps for key, v in m.counts().items()}
            per[K.TILE_MVM] += t["tile_mvm"]
            per[K.LAYER_PASS] += reps  # a layer's tiles in parallel, its MVMs in sequence
            per[K.DAC] += t["dac"]
            per[K.ADC] += t["adc"]
            per["mul_int32"] += t["adc"]  # per-column scale (w_max, drift compensation)
            per["add_int32"] += t["accumulate"] + t["outputs"]  # across row slices, then bias
            # 8-bit codes: inputs read from the buffer by every column block, outputs written
            per["sram_byte"] += t["dac"] + t["outputs"]
            per[K.LINK] += t["adc"] + t["dac"]  # ADC codes to the accumulator; inputs to tiles
            if layer.kind == "conv":  # ReLU on every output, 3 compares per 2x2 pooled output
                per["cmp_int8"] += t["outputs"] + 3 * (layer.side // 2) ** 2 * m.out_features
            else:  # ReLU, or the argmax over the classes
                per["cmp_int8"] += m.out_features - 1 if k == len(self._plan) - 1 else m.out_features
        first = self._plan[0]
        n_in = first.side**2 if first.kind == "conv" else first.tiles.in_features
        per["host_transfer_byte"] += n_in + 1  # input codes in, class out
        # the activation buffer holds a layer's input and output maps (a conv's input before
        # unrolling: C channels x side^2)
        resident = max((L.tiles.in_features // self.config.kernel**2 * L.side**2 if L.kind == "conv"
                        else L.tiles.in_features) + L.tiles.out_features * L.mvms for L in self._plan)
        return OpLedger({k: v * n for k, v in per.items()}, n_inferences=n, resident_bytes=resident)


class AnalogPCM(AnalogCrossbar):
    """MLP on phase-change-memory crossbars (IBM HERMES-like: 64 cores of 256x256 unit cells,
    Le Gallo et al., Nature Electronics 6, 680 (2023)); PCM drift over time."""

    defaults: ClassVar[dict] = {"device_type": "pcm", "model": "mlp"}
    native_presets: ClassVar[tuple[str, ...]] = ("hermes-pcm",)
    chip = "the HERMES PCM chip"


class AnalogRRAM(AnalogCrossbar):
    """MLP on RRAM crossbars (NeuRRAM-like: 48 cores of 256x256 RRAM, Wan et al., Nature 608,
    504 (2022)); RRAM conductance relaxation over time."""

    # 4-bit signed weights (Wan et al. 2022, abstract: accuracy "comparable to software models
    # quantized to four-bit weights"): 8 levels per device of a differential pair, 15 in all.
    # 48 cores: from secondary summaries of the paper, not checked in its body (assumption).
    defaults: ClassVar[dict] = {"device_type": "rram", "model": "mlp", "max_tiles": 48,
                                "conductance_levels": 8}
    native_presets: ClassVar[tuple[str, ...]] = ("neurram-rram",)
    chip = "the NeuRRAM chip"


# small CNNs learn slowly from few steps: the quick budget keeps many small batches
_CNN_QUICK = {"channels": (8, 16), "dense": 32, "kernel": 3, "epochs": 3, "batch_size": 32,
              "lr": 1e-2, "eval_batch_size": 500}


class AnalogPCMCNN(AnalogPCM):
    """A small CNN on the PCM crossbars: each conv's unrolled patches run through its tiles,
    one MVM per output position (as HERMES maps a ResNet's convolutions, Le Gallo et al. 2023)."""

    defaults: ClassVar[dict] = {"device_type": "pcm", "model": "cnn", "eval_batch_size": 250}
    quick: ClassVar[dict] = _CNN_QUICK
    cost_hint: ClassVar[float] = 200.0


class AnalogRRAMCNN(AnalogRRAM):
    """A small CNN on the RRAM crossbars (NeuRRAM ran a CNN on MNIST, Wan et al. 2022)."""

    defaults: ClassVar[dict] = {**AnalogRRAM.defaults, "model": "cnn", "eval_batch_size": 250}
    quick: ClassVar[dict] = _CNN_QUICK
    cost_hint: ClassVar[float] = 200.0

"""Count the operations a PyTorch network executes, from the tensors that ran.

Forward hooks on leaf modules see the real input and output shapes of every
call, so the counts follow what was executed (batch sizes, padding, pooling),
not a formula on the parameter count. A leaf module with no counter is an
error: an uncounted layer would be priced at zero.

Precision: float layers are counted at the counter's dtype (``mac_fp32``,
``mac_bf16``, ...); the layers of an int8 network (:mod:`.quantize`) at the
precision their arithmetic has:

* one ``mac_int8`` per int8 x int8 product. The product is accumulated into an
  int32 partial sum; that accumulate is part of the MAC (an int8 MAC unit has an
  int32 accumulator), and presets price ``mac_int8`` as such: from a tensor-core
  INT8 rate on a GPU, as an 8-bit multiply plus a 32-bit add on an int8 array
  (the ``npu-*`` presets), as an 8-bit multiply plus an 8-bit add on the bare
  ``cmos-*`` tables (which therefore under-price the accumulator's width);
* per output element: one ``add_int32`` for the int32 bias, then the
  requantization: one ``mul_int32`` (the fixed-point multiplier) and one
  ``add_int32`` (the rounding offset; the right shift is wiring once the shift is
  chosen per channel, so it is not counted), and two ``cmp_int32`` saturating to
  the int8 range except on the last layer, which stays int32 for the argmax;
* ReLU and max-pooling on int8 codes are ``cmp_int8``; the argmax over int32
  logits is ``cmp_int32``.

Memory model (stated in every report): each compute layer reads its input and
weights from on-chip memory and writes its output back (``sram_byte``), weights
once per batch; no fusion, no reuse across layers. Where that memory is (on-chip
SRAM, or off chip when the network does not fit) is decided by the preset at
pricing from :attr:`OpCounter.resident_bytes`: the weights at their stored
precision (int8 layers: int8 weights plus per-channel int32 bias, int32 multiplier
and 8-bit shift) plus the largest activation buffer one layer call needs (its
input and output for the whole batch, since weights are reused across the batch).

I/O: ``host_transfer_byte`` counts the inputs sent in at the precision the
network takes them (fp32, bf16 or int8 codes; int8 inputs are quantized by the
host, like a sensor delivering 8-bit pixels) and the class scores sent back at
the precision they are produced. One ``kernel_launch`` (io: a host command) per
compute layer call and one for the argmax.

NeuroBench figures (:meth:`OpCounter.neurobench_metrics`, defined in :mod:`nonvon.workload`):
the same hooks count effective MACs (a non-zero input meeting a non-zero weight: every
synaptic layer of these networks takes analog values, so there are no ACs) and dense ops
of every ``Linear`` / ``ConvNd`` call, and the zero outputs of the ``ReLU`` / ``Sigmoid``
layers (int8: ``IntReLU``); the footprint is the parameters and buffers of the network as
it runs (fp32, bf16, or the int8 network's integer weights and scales).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import torch
from torch import nn

from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError
from nonvon.simulators.gpu.quantize import IntMaxPool2d, IntReLU, QuantConv2d, QuantLinear
from nonvon.workload import ACTIVATION_LAYERS, WorkloadCounter, connection_sparsity, footprint_bytes

__all__ = ["OpCounter", "BYTES", "op_kinds_for", "LAYER_RULES"]

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}
_NO_COMPUTE = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
               nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_QUANT = (QuantLinear, QuantConv2d)
_INT32 = 4
_IO_AND_MEMORY = frozenset({"sram_byte", "kernel_launch", "host_transfer_byte"})


def op_kinds_for(dtype: str) -> frozenset[str]:
    """Every kind :class:`OpCounter` may count for a network at ``dtype``."""
    if dtype == "int8":
        return _IO_AND_MEMORY | {"mac_int8", "add_int32", "mul_int32", "cmp_int32", "cmp_int8"}
    return _IO_AND_MEMORY | {f"mac_{dtype}", f"add_{dtype}", f"cmp_{dtype}"}


def _float_counts(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> tuple[int, int, int]:
    """(MACs, adds, compares) of one call of a Linear, Conv2d, ReLU or MaxPool2d layer."""
    if isinstance(module, nn.Linear):
        rows = inp.numel() // module.in_features
        macs = rows * module.in_features * module.out_features
        return macs, (rows * module.out_features if module.bias is not None else 0), 0
    if isinstance(module, nn.Conv2d):
        per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        return out.numel() * per_output, (out.numel() if module.bias is not None else 0), 0
    if isinstance(module, nn.ReLU):
        return 0, 0, out.numel()
    if isinstance(module, nn.MaxPool2d):
        return 0, 0, out.numel() * (_window(module.kernel_size) - 1)
    raise _unsupported(module)


def _float_ops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> dict[str, int]:
    """``{"mac"|"add"|"mul"|"cmp": count}`` of one call of a float layer: the four layers of
    :func:`_float_counts` as before, then the rules of :data:`LAYER_RULES`."""
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d)):
        macs, adds, cmps = _float_counts(module, inp, out)
        return {"mac": macs, "add": adds, "cmp": cmps}
    for classes, rule in LAYER_RULES:
        if isinstance(module, classes):
            return rule(module, inp, out)
    raise _unsupported(module)


# Spiking neurons and transcendental activations: no op kind prices them on a digital preset
# (the catalog has mac/mul/add/cmp), so they are refused with the way out, never priced at zero.
_SPIKING_HINT = ("a spiking network runs on the spiking chips: export it to NIR (e.g. "
                 "snntorch.export_to_nir) and load that with nonvon.load_network")
_TRANSCENDENTAL = ("Sigmoid", "Tanh", "GELU", "SiLU", "Mish", "ELU", "SELU", "CELU", "Softplus",
                   "Softmax", "LogSoftmax", "Softsign", "Tanhshrink", "LogSigmoid")


def _unsupported(module: nn.Module) -> ConfigError:
    name = type(module).__name__
    origin = type(module).__module__.split(".")[0]
    if origin in ("snntorch", "norse", "spikingjelly", "sinabs", "lava"):
        hint = _SPIKING_HINT
    elif name in _TRANSCENDENTAL:
        hint = (f"nonvon's digital presets price mac/mul/add/cmp only, not the exponentials of "
                f"{name}: use ReLU, ReLU6, LeakyReLU, Hardtanh, Hardsigmoid or Hardswish")
    else:
        hint = ("supported layers: Linear, Conv1d/2d/3d, BatchNorm1d/2d/3d, LayerNorm, "
                "Max/Avg/AdaptiveMax/AdaptiveAvg pooling (1d/2d/3d), ReLU, ReLU6, LeakyReLU, "
                "Hardtanh, Hardsigmoid, Hardswish, Dropout, Flatten, Identity; rewrite the "
                "layer in these, or add a rule to nonvon.simulators.gpu.counting.LAYER_RULES")
    return ConfigError(f"no op counter for layer {name} ({type(module).__module__})", hint)


def _conv_nd(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> dict[str, int]:
    per_output = (m.in_channels // m.groups) * math.prod(m.kernel_size)
    return {"mac": out.numel() * per_output, "add": out.numel() if m.bias is not None else 0}


def _norm(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> dict[str, int]:
    # inference: the running statistics and the affine map fold into one scale and shift per
    # channel, applied as one multiply and one add per element
    return {"mul": out.numel(), "add": out.numel()}


def _layer_norm(m: nn.LayerNorm, inp: torch.Tensor, out: torch.Tensor) -> dict[str, int]:
    # per element: the mean's sum, x - mean, its square (a MAC into the variance), the
    # normalizing multiply, and the affine multiply and add; per row: one reciprocal square
    # root, counted as one multiply (an assumption: a table lookup and a Newton step cost more)
    n, rows = out.numel(), out.numel() // math.prod(m.normalized_shape)
    affine = m.elementwise_affine
    return {"add": 2 * n + (n if affine and m.bias is not None else 0), "mac": n,
            "mul": n + rows + (n if affine else 0)}


def _pool_window(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Inputs per output of a pooling layer (adaptive: the mean window, input over output)."""
    spatial = int(type(m).__name__[-2])  # MaxPool2d, AdaptiveAvgPool1d, ...: 2, 1, ...
    k = getattr(m, "kernel_size", None)
    if k is not None:
        return math.prod(k) if isinstance(k, tuple) else k ** spatial
    return max(1, round(math.prod(inp.shape[-spatial:]) / math.prod(out.shape[-spatial:])))


def _max_pool(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> dict[str, int]:
    return {"cmp": out.numel() * (_pool_window(m, inp, out) - 1)}


def _avg_pool(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> dict[str, int]:
    return {"add": out.numel() * (_pool_window(m, inp, out) - 1), "mul": out.numel()}


#: ``(layer classes, rule(module, input, output) -> {"mac"|"add"|"mul"|"cmp": count})`` for the
#: float layers beyond Linear, Conv2d, ReLU and MaxPool2d, first match wins; counts per call.
LAYER_RULES: tuple = (
    ((nn.Conv1d, nn.Conv3d), _conv_nd),
    ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), _norm),
    (nn.LayerNorm, _layer_norm),
    ((nn.MaxPool1d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
     _max_pool),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
      nn.AdaptiveAvgPool3d), _avg_pool),
    (nn.ReLU6, lambda m, i, o: {"cmp": 2 * o.numel()}),                      # max, then min
    (nn.Hardtanh, lambda m, i, o: {"cmp": 2 * o.numel()}),
    (nn.LeakyReLU, lambda m, i, o: {"cmp": o.numel(), "mul": o.numel()}),
    (nn.Hardsigmoid, lambda m, i, o: {"mul": o.numel(), "add": o.numel(), "cmp": 2 * o.numel()}),
    (nn.Hardswish, lambda m, i, o: {"mul": 2 * o.numel(), "add": o.numel(), "cmp": 2 * o.numel()}),
)


def _window(k) -> int:
    return k * k if isinstance(k, int) else k[0] * k[1]


def _stored_bytes(module: nn.Module, dtype_bytes: int) -> int:
    """Bytes of the weights a layer holds, at their stored precision."""
    if isinstance(module, _QUANT):
        per_channel = _INT32 + _INT32 + 1  # int32 bias, int32 multiplier, 8-bit shift
        return module.weight_q.numel() + module.out_channels * per_channel
    return sum(p.numel() for p in module.parameters(recurse=False)) * dtype_bytes


class OpCounter:
    """Context manager that counts ops of ``model``'s leaf modules while active.

    Example:
        >>> with OpCounter(model, "fp32") as counter:
        ...     counter.count_input(x)
        ...     logits = model(x)
        ...     counter.count_argmax(logits)
        >>> counter.ledger(len(x))
    """

    def __init__(self, model: nn.Module, dtype: str = "fp32"):
        if dtype not in BYTES:
            raise ConfigError(f"unknown dtype {dtype!r}", f"use one of {sorted(BYTES)}")
        self.model, self.dtype, self.bytes = model, dtype, BYTES[dtype]
        self.totals: Counter[str] = Counter()
        self._handles: list = []
        self._weights: dict[int, int] = {}  # id(module) -> stored bytes, each layer once
        self._peak_activation_bytes = 0
        self.workload = WorkloadCounter(model, (*ACTIVATION_LAYERS, IntReLU))

    @property
    def resident_bytes(self) -> int:
        """Weights at stored precision + the largest activation buffer a layer call needed."""
        return sum(self._weights.values()) + self._peak_activation_bytes

    def _hook(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if isinstance(module, _NO_COMPUTE):
            return  # views, or identity at inference: no kernel, no traffic
        inp = args[0]
        t = self.totals
        if isinstance(module, _QUANT):
            self._count_int8_layer(module, inp, out)
        elif isinstance(module, IntReLU):
            t["cmp_int8"] += out.numel()
        elif isinstance(module, IntMaxPool2d):
            t["cmp_int8"] += out.numel() * (_window(module.kernel_size) - 1)
        else:
            if self.dtype == "int8":
                raise ConfigError(f"a float {type(module).__name__} layer in an int8 count",
                                  "quantize the network (nonvon.simulators.gpu.quantize.quantize_int8) first")
            for op, n in _float_ops(module, inp, out).items():
                t[f"{op}_{self.dtype}"] += n
        weights = _stored_bytes(module, self.bytes)
        if weights:
            self._weights[id(module)] = weights
        activations = inp.numel() * inp.element_size() + out.numel() * out.element_size()
        self._peak_activation_bytes = max(self._peak_activation_bytes, activations)
        t["sram_byte"] += activations + weights
        t["kernel_launch"] += 1

    def _count_int8_layer(self, module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> None:
        t = self.totals
        n_out = out.numel()
        t["mac_int8"] += n_out * module.in_features
        t["add_int32"] += 2 * n_out        # bias, then the requantization's rounding offset
        t["mul_int32"] += n_out            # the fixed-point requantization multiplier
        if module.requantize_to_int8:
            t["cmp_int32"] += 2 * n_out    # saturate to [-127, 127]

    def count_input(self, x: torch.Tensor) -> None:
        """The inputs sent from the host, at the precision the network takes them."""
        self.totals["host_transfer_byte"] += x.numel() * x.element_size()

    def count_argmax(self, logits: torch.Tensor) -> None:
        """The prediction step: n_classes - 1 compares per row on the device, logits read and
        int64 labels written on chip, and the class scores sent back to the host."""
        rows, classes = logits.shape
        kind = "cmp_int32" if logits.dtype == torch.int32 else f"cmp_{self.dtype}"
        self.totals[kind] += rows * (classes - 1)
        score_bytes = logits.numel() * logits.element_size()
        self.totals["sram_byte"] += score_bytes + rows * 8
        self.totals["host_transfer_byte"] += score_bytes
        self.totals["kernel_launch"] += 1

    def __enter__(self) -> OpCounter:
        for m in self.model.modules():
            if not any(True for _ in m.children()):
                self._handles.append(m.register_forward_hook(self._hook))
        self.workload.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.workload.__exit__(*exc)
        # the network as it ran (a caller may cast it back to fp32 afterwards)
        self._static = {"footprint_bytes": float(footprint_bytes(self.model)),
                        "connection_sparsity": connection_sparsity(self.model)}
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def neurobench_metrics(self, n_inferences: int) -> dict[str, float]:
        """The NeuroBench figures of what ran, per inference (module docstring)."""
        work = dataclasses.replace(self.workload.workload, samples=n_inferences)
        return {**work.metrics(), **getattr(self, "_static", {})}

    def nonzero(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.totals.items() if v}

    def ledger(self, n_inferences: int) -> OpLedger:
        return OpLedger(self.nonzero(), n_inferences, resident_bytes=self.resident_bytes)

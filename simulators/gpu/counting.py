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
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError
from nonvon.simulators.gpu.quantize import IntMaxPool2d, IntReLU, QuantConv2d, QuantLinear

__all__ = ["OpCounter", "BYTES", "op_kinds_for"]

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}
_NO_COMPUTE = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)
_QUANT = (QuantLinear, QuantConv2d)
_INT32 = 4
_IO_AND_MEMORY = frozenset({"sram_byte", "kernel_launch", "host_transfer_byte"})


def op_kinds_for(dtype: str) -> frozenset[str]:
    """Every kind :class:`OpCounter` may count for a network at ``dtype``."""
    if dtype == "int8":
        return _IO_AND_MEMORY | {"mac_int8", "add_int32", "mul_int32", "cmp_int32", "cmp_int8"}
    return _IO_AND_MEMORY | {f"mac_{dtype}", f"add_{dtype}", f"cmp_{dtype}"}


def _float_counts(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> tuple[int, int, int]:
    """(MACs, adds, compares) of one call of a float layer."""
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
    raise ConfigError(f"no op counter for layer {type(module).__name__}",
                      "add one to nonvon/simulators/gpu/counting.py or use supported layers "
                      "(Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout)")


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
            macs, adds, cmps = _float_counts(module, inp, out)
            t[f"mac_{self.dtype}"] += macs
            t[f"add_{self.dtype}"] += adds
            t[f"cmp_{self.dtype}"] += cmps
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
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def nonzero(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.totals.items() if v}

    def ledger(self, n_inferences: int) -> OpLedger:
        return OpLedger(self.nonzero(), n_inferences, resident_bytes=self.resident_bytes)

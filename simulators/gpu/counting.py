"""Count the operations a PyTorch network executes, from the tensors that ran.

Forward hooks on leaf modules see the real input and output shapes of every
call, so the counts follow what was executed (batch sizes, padding, pooling),
not a formula on the parameter count. A leaf module with no counter is an
error: an uncounted layer would be priced at zero.

Memory traffic model (stated in every report): each compute layer reads its
input and weights from DRAM/HBM and writes its output back, weights once per
batch; no fusion, no cache reuse across layers. One kernel per compute layer.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from nonvon.errors import ConfigError

__all__ = ["OpCounter", "BYTES"]

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
_NO_COMPUTE = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)


def _macs_and_adds(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> tuple[int, int, int]:
    """(MACs, adds, compares) of one call."""
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
        k = module.kernel_size
        window = k * k if isinstance(k, int) else k[0] * k[1]
        return 0, 0, out.numel() * (window - 1)
    raise ConfigError(f"no op counter for layer {type(module).__name__}",
                      "add one to nonvon/simulators/gpu/counting.py or use supported layers "
                      "(Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout)")


class OpCounter:
    """Context manager that counts ops of ``model``'s leaf modules while active.

    Example:
        >>> with OpCounter(model, "fp32") as counter:
        ...     logits = model(x)
        >>> counter.totals["mac_fp32"]
    """

    def __init__(self, model: nn.Module, dtype: str = "fp32"):
        if dtype not in BYTES:
            raise ConfigError(f"unknown dtype {dtype!r}", f"use one of {sorted(BYTES)}")
        self.model, self.dtype, self.bytes = model, dtype, BYTES[dtype]
        self.totals: Counter[str] = Counter()
        self._handles: list = []

    def _hook(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if isinstance(module, _NO_COMPUTE):
            return  # views, or identity at inference: no kernel, no traffic
        inp = args[0]
        macs, adds, cmps = _macs_and_adds(module, inp, out)
        t = self.totals
        t[f"mac_{self.dtype}"] += macs
        t[f"add_{self.dtype}"] += adds
        t[f"cmp_{self.dtype}"] += cmps
        weights = sum(p.numel() for p in module.parameters(recurse=False))
        t["dram_byte"] += (inp.numel() + out.numel() + weights) * self.bytes
        t["kernel_launch"] += 1

    def count_argmax(self, logits: torch.Tensor) -> None:
        """The prediction step: n_classes - 1 compares per row, logits read, int64 labels written."""
        rows, classes = logits.shape
        self.totals[f"cmp_{self.dtype}"] += rows * (classes - 1)
        self.totals["dram_byte"] += logits.numel() * self.bytes + rows * 8
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

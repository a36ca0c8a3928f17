"""Post-training int8 quantization of the dense classifiers, run on the integer grid.

:func:`quantize_int8` turns a trained fp32 ``mlp`` or ``cnn`` into an :class:`Int8Network`
whose inference is integer arithmetic end to end, the way an int8 accelerator runs it:

* weights: symmetric, per output channel, int8 in [-127, 127] (scale = max |w| / 127);
* activations: symmetric, per tensor, int8, their scales calibrated on training data as
  the largest magnitude the fp32 network produces there (the inputs included);
* each layer multiplies int8 by int8 and accumulates in int32, adds an int32 bias
  quantized at the accumulator's scale, and requantizes to the next layer's int8 scale
  with a fixed-point multiplier (an int32 multiplier and a right shift, rounding), then
  saturates; ReLU and max-pooling act on the int8 codes directly (both commute with a
  positive scale);
* the last layer is requantized to one int32 scale shared by all classes, so the argmax
  compares integers on a common grid without a second rounding to int8.

The int8 x int8 products are summed exactly, so the accumulators are the int32 values an
integer MAC array would hold and CPU and CUDA give the same integers: on CUDA a fully
connected layer runs on the int8 tensor cores (``torch._int_mm``, int32 accumulation; that
is what an NVML measurement of the int8 MLP meters), everywhere else the products are summed
in float64, which represents every partial sum of these integers exactly (they stay below
2**53), and the result is checked to fit int32.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from nonvon.errors import ConfigError

__all__ = ["Int8Network", "QuantLinear", "QuantConv2d", "IntReLU", "IntMaxPool2d",
           "quantize_int8", "quantize_input", "int8_skeleton", "int8_matmul", "INT8_MAX"]

INT8_MAX = 127
_INT32_MAX = 2**31 - 1
# The fixed-point multiplier of a requantization: M ~ multiplier / 2**shift with the
# multiplier in [2**30, 2**31), so it carries 31 significant bits as an int32 would.
_MULT_BITS = 30


def _fixed_point(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real multipliers ``m > 0`` as (int64 multiplier in [2**30, 2**31), int64 shift)."""
    m = m.double()
    if not torch.all(m > 0) or not torch.all(torch.isfinite(m)):
        raise ConfigError("requantization multipliers must be finite and positive",
                          "a layer's calibration produced a zero or non-finite scale")
    exp = torch.floor(torch.log2(m))
    mult = torch.round(m * torch.pow(2.0, _MULT_BITS - exp)).to(torch.int64)
    shift = (_MULT_BITS - exp).to(torch.int64)
    carry = mult == 2**(_MULT_BITS + 1)  # rounding reached the next power of two
    mult = torch.where(carry, mult // 2, mult)
    shift = torch.where(carry, shift - 1, shift)
    if torch.any(shift < 1) or torch.any(shift > 62):
        raise ConfigError(f"requantization multiplier out of range ({m.min():.3g}..{m.max():.3g})",
                          "the calibrated scales are degenerate; check the training data")
    return mult, shift


def _requantize(acc: torch.Tensor, mult: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``round(acc * mult / 2**shift)`` in integer arithmetic (int64 intermediate)."""
    return (acc * mult + (1 << (shift - 1))) >> shift


def _scale_of(max_abs: float, where: str) -> float:
    if not math.isfinite(max_abs) or max_abs <= 0:
        raise ConfigError(f"int8 calibration: {where} is {max_abs} on the calibration data",
                          "calibrate on data that exercises the layer (the training split)")
    return max_abs / INT8_MAX


class _QuantLayer(nn.Module):
    """Shared state of an int8 layer: int8 weights, int32 bias, requantization.

    Built empty (the shapes only, for loading a saved state) and filled by :meth:`calibrate`.
    """

    def __init__(self, weight_shape: tuple[int, ...], requantize_to_int8: bool):
        super().__init__()
        out_ch = weight_shape[0]
        self.register_buffer("weight_q", torch.zeros(weight_shape, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_ch))
        self.register_buffer("bias_q", torch.zeros(out_ch, dtype=torch.int32))
        self.register_buffer("in_scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("out_scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("multiplier", torch.full((out_ch,), 2**_MULT_BITS, dtype=torch.int32))
        self.register_buffer("shift", torch.full((out_ch,), _MULT_BITS, dtype=torch.int8))
        # False on the last layer: its int32 outputs go to the argmax, not to another layer.
        self.requantize_to_int8 = requantize_to_int8

    @torch.no_grad()
    def calibrate(self, weight: torch.Tensor, bias: torch.Tensor | None, in_scale: float,
                  out_scale: float | None) -> _QuantLayer:
        """Quantize ``weight``/``bias`` for inputs at ``in_scale``; requantize the outputs to
        ``out_scale`` (None: the last layer, see the module docstring)."""
        out_ch = weight.shape[0]
        w = weight.detach().double().cpu()
        w_max = w.reshape(out_ch, -1).abs().amax(1)
        w_scale = torch.where(w_max > 0, w_max / INT8_MAX, torch.ones_like(w_max))
        shape = (out_ch,) + (1,) * (w.dim() - 1)
        w_q = torch.clamp(torch.round(w / w_scale.reshape(shape)), -INT8_MAX, INT8_MAX)
        acc_scale = in_scale * w_scale
        b = torch.zeros(out_ch, dtype=torch.float64) if bias is None else bias.detach().double().cpu()
        b_q = torch.round(b / acc_scale)
        fan_in = w[0].numel()
        worst = (INT8_MAX + 1) * INT8_MAX * fan_in + float(b_q.abs().max())
        if worst > _INT32_MAX:
            raise ConfigError(f"an int32 accumulator could overflow: fan-in {fan_in} gives up to "
                              f"{worst:.3g} > 2**31 - 1", "use narrower layers for the int8 path")
        # The last layer maps every class to the largest channel's accumulator scale, so the
        # argmax compares integers on one grid.
        target = out_scale if out_scale is not None else float(acc_scale.max())
        mult, shift = _fixed_point(acc_scale / target)
        self.weight_q.copy_(w_q.to(torch.int8))
        self.weight_scale.copy_(w_scale.float())
        self.bias_q.copy_(b_q.to(torch.int32))
        self.in_scale.fill_(in_scale)
        self.out_scale.fill_(target)
        self.multiplier.copy_(mult.to(torch.int32))
        self.shift.copy_(shift.to(torch.int8))
        return self

    @property
    def in_features(self) -> int:
        return self.weight_q[0].numel()

    def synaptic_weight(self) -> torch.Tensor:
        """The stored weights, for the NeuroBench counts (:mod:`nonvon.workload`)."""
        return self.weight_q

    @property
    def out_channels(self) -> int:
        return self.weight_q.shape[0]

    def _accumulate(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.int8:
            raise ConfigError(f"{type(self).__name__} takes int8 inputs, got {x.dtype}",
                              "quantize the inputs with quantize_input() first")
        acc = self._accumulate(x)  # exact integers, as int32 or held in float64
        if acc.dtype == torch.float64 and acc.abs().max() > _INT32_MAX:
            raise RuntimeError("int32 accumulator overflow")  # excluded by the check at build
        acc = acc.to(torch.int64)
        shape = (1, -1) + (1,) * (acc.dim() - 2)
        acc = acc + self.bias_q.to(torch.int64).reshape(shape)
        y = _requantize(acc, self.multiplier.to(torch.int64).reshape(shape),
                        self.shift.to(torch.int64).reshape(shape))
        if self.requantize_to_int8:
            return torch.clamp(y, -INT8_MAX, INT8_MAX).to(torch.int8)
        return y.to(torch.int32)


def int8_matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w.T`` of int8 matrices as exact int32, on the int8 tensor cores.

    ``torch._int_mm``'s CUDA kernel needs more than 16 rows and both inner and output widths
    divisible by 8, so the operands are zero-padded to those shapes (zeros add nothing to
    a sum) and the result is cut back. The CPU kernel takes the same padded shapes."""
    rows, k, n = x.shape[0], x.shape[1], w.shape[0]
    pad_rows, pad_k, pad_n = max(17 - rows, 0), -k % 8, -n % 8
    xp = nn.functional.pad(x, (0, pad_k, 0, pad_rows))
    wp = nn.functional.pad(w, (0, pad_k, 0, pad_n))
    return torch._int_mm(xp, wp.T)[:rows, :n]


class QuantLinear(_QuantLayer):
    """int8 x int8 -> int32 fully connected layer."""

    def __init__(self, linear: nn.Linear, requantize_to_int8: bool):
        super().__init__(tuple(linear.weight.shape), requantize_to_int8)

    def _accumulate(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            return int8_matmul(x, self.weight_q)
        return x.double() @ self.weight_q.double().T


class QuantConv2d(_QuantLayer):
    """int8 x int8 -> int32 convolution (stride 1, 'same' padding as in models.cnn)."""

    def __init__(self, conv: nn.Conv2d, requantize_to_int8: bool):
        super().__init__(tuple(conv.weight.shape), requantize_to_int8)
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.kernel_size = conv.kernel_size

    def _accumulate(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x.double(), self.weight_q.double(), None, self.stride,
                                    self.padding, self.dilation, self.groups)


class IntReLU(nn.Module):
    """ReLU on int8 codes: max(q, 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp_min(x, 0)


class IntMaxPool2d(nn.Module):
    """Max-pooling on int8 codes. The window maximum is taken in float32, which holds every
    int8 value exactly, so the result is the integer maximum and one code path serves every
    device's pooling kernels."""

    def __init__(self, pool: nn.MaxPool2d):
        super().__init__()
        self.kernel_size, self.stride = pool.kernel_size, pool.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.max_pool2d(x.float(), self.kernel_size, self.stride).to(torch.int8)


class Int8Network(nn.Sequential):
    """The int8 network: takes int8 inputs (see :func:`quantize_input`), returns int32 logits."""

    def __init__(self, layers: list[nn.Module], input_scale: float):
        super().__init__(*layers)
        self.register_buffer("input_scale", torch.tensor(input_scale, dtype=torch.float64))


def quantize_input(x: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """fp32 inputs to int8 codes at the calibrated input scale (saturating)."""
    return torch.clamp(torch.round(x.double() / float(scale)), -INT8_MAX, INT8_MAX).to(torch.int8)


_PASS = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)


@torch.no_grad()
def _calibrate(net: nn.Sequential, x: torch.Tensor, batch: int) -> list[float]:
    """Largest |input| of every module of ``net`` over ``x`` (a list aligned with ``net``)."""
    peaks = [0.0] * len(net)
    for i in range(0, len(x), batch):
        h = x[i:i + batch]
        for j, m in enumerate(net):
            peaks[j] = max(peaks[j], float(h.abs().max()))
            h = m(h)
    return peaks


def int8_skeleton(net: nn.Sequential) -> Int8Network:
    """The :class:`Int8Network` of ``net``'s architecture with empty quantized state (to load a
    saved state into, or to fill with :func:`quantize_int8`)."""
    if not isinstance(net, nn.Sequential):
        raise ConfigError(f"int8 quantization takes an nn.Sequential, got {type(net).__name__}")
    compute = [j for j, m in enumerate(net) if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not compute:
        raise ConfigError("int8 quantization: the network has no Linear or Conv2d layer")
    layers: list[nn.Module] = []
    for j, m in enumerate(net):
        if isinstance(m, nn.Linear):
            layers.append(QuantLinear(m, j != compute[-1]))
        elif isinstance(m, nn.Conv2d):
            layers.append(QuantConv2d(m, j != compute[-1]))
        elif isinstance(m, nn.ReLU):
            layers.append(IntReLU())
        elif isinstance(m, nn.MaxPool2d):
            layers.append(IntMaxPool2d(m))
        elif isinstance(m, _PASS):
            # Dropout is the identity at inference: no layer, no kernel.
            layers.append(nn.Identity() if isinstance(m, nn.Dropout) else m)
        else:
            raise ConfigError(f"int8 quantization: no int8 version of layer {type(m).__name__}",
                              "use Linear, Conv2d, ReLU, MaxPool2d, Flatten, Unflatten, Dropout")
    return Int8Network(layers, 1.0)


@torch.no_grad()
def quantize_int8(net: nn.Sequential, x_calib: torch.Tensor, *, batch: int = 4096) -> Int8Network:
    """Post-training int8 quantization of a trained ``models.mlp`` / ``models.cnn``.

    Args:
        net: the trained fp32 network (an ``nn.Sequential`` of Linear, Conv2d, ReLU, MaxPool2d,
            Flatten, Unflatten and Dropout).
        x_calib: calibration inputs (training data), fp32.

    Returns:
        An :class:`Int8Network` on the CPU.
    """
    qnet = int8_skeleton(net)
    net = copy.deepcopy(net).float().cpu().eval()  # leave the caller's network where it is
    peaks = _calibrate(net, torch.as_tensor(x_calib, dtype=torch.float32).cpu(), batch)
    compute = [j for j, m in enumerate(net) if isinstance(m, (nn.Linear, nn.Conv2d))]
    # A compute layer's output scale is the input scale of the next compute layer (ReLU,
    # pooling and reshapes in between do not change the scale of the codes).
    in_scale = {j: _scale_of(peaks[j], f"the largest input of layer {j} ({type(net[j]).__name__})")
                for j in compute}
    for j, nxt in zip(compute, compute[1:] + [None], strict=True):
        qnet[j].calibrate(net[j].weight, net[j].bias, in_scale[j],
                          in_scale[nxt] if nxt is not None else None)
    qnet.input_scale.fill_(in_scale[compute[0]])
    return qnet

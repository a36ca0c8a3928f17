"""Leaky integrate-and-fire dynamics: a reference step and a fused multi-timestep path.

The neuron is snnTorch's ``Leaky`` (first-order LIF, discrete time, reset delayed by one
step, Eshraghian et al., "Training spiking neural networks using lessons from deep
learning", Proc. IEEE 111(9), 2023), with the same update order so that the two agree
bit for bit on the CPU::

    r[t] = H(m[t-1] - theta)                   # reset from the previous step (no gradient)
    m[t] = beta * m[t-1] + I[t] - r[t] * theta # reset by subtraction, or
    m[t] = beta * (1 - r[t]) * m[t-1] + I[t]   # reset to zero
    s[t] = H(m[t] - theta)                     # spike; dS/dU from a surrogate

:func:`lif_step` is that step as a pure function (the reference).
:func:`lif_sequence` runs all ``T`` steps in one autograd node: the forward pass keeps only
the membrane trace, and the backward pass is one reverse sweep of the adjoint
``dL/dm[t] = dL/dm[t]|_out + dL/ds[t] * g'(m[t] - theta) + beta * dL/dm[t+1]`` (times
``1 - r[t+1]`` for reset to zero). This skips the per-step autograd graph that makes
step-by-step training slow; on CUDA the sweep is one Triton kernel per direction
(:mod:`nonvon.simulators.spiking._triton_lif`) instead of ``~10 T`` small kernels.
Thresholds are fixed (not learned); ``beta`` may be a learned tensor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn

from nonvon.errors import ConfigError

__all__ = ["Surrogate", "SURROGATES", "lif_step", "lif_sequence", "FusedLeaky", "check_lif_params",
           "RESETS"]

RESETS = ("subtract", "zero")


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """A surrogate derivative of the Heaviside spike function, as defined in snnTorch.

    Args:
        name: ``"atan"`` (snnTorch's default, ``alpha`` = 2), ``"fast_sigmoid"``
            (SuperSpike, Zenke & Ganguli 2018, ``slope`` = 25) or ``"sigmoid"`` (``slope`` = 25).
        param: ``alpha`` for atan, ``slope`` for the sigmoids.

    The derivatives, written as ``snntorch.surrogate`` computes them (version 1.0):
    atan ``alpha/2 / (1 + (pi/2 * alpha * u)^2)``; fast_sigmoid ``1 / (slope |u| + 1)^2``;
    sigmoid ``slope e^(-slope u) / (e^(-slope u) + 1)^2``, which we evaluate as
    ``slope * sigma(slope u) * sigma(-slope u)`` (the same function; snnTorch's form gives
    NaN once ``e^(-slope u)`` overflows, for ``slope u < -88`` in fp32).
    ``tests/test_spiking_lif.py`` checks each against snnTorch's autograd.
    """

    name: str = "atan"
    param: float | None = None

    def __post_init__(self) -> None:
        if self.name not in _SURROGATE_DEFAULTS:
            raise ConfigError(f"unknown surrogate {self.name!r}",
                              f"use one of {sorted(_SURROGATE_DEFAULTS)}")
        if self.param is None:
            object.__setattr__(self, "param", _SURROGATE_DEFAULTS[self.name])
        if not (isinstance(self.param, (int, float)) and math.isfinite(self.param) and self.param > 0):
            raise ConfigError(f"surrogate parameter {self.param!r} must be a positive number",
                              "e.g. Surrogate('atan', 2.0)")
        object.__setattr__(self, "param", float(self.param))

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        """``dS/dU`` at ``u = m - theta``."""
        p = self.param
        if self.name == "atan":
            return p / 2 / (1 + (math.pi / 2 * p * u) ** 2)
        if self.name == "fast_sigmoid":
            return 1.0 / (p * u.abs() + 1.0) ** 2
        # = p e^-pu / (e^-pu + 1)^2, without its overflow (inf / inf) or cancellation (1 - sig)
        return p * torch.sigmoid(p * u) * torch.sigmoid(-p * u)

    def snntorch(self) -> Callable:
        """The same surrogate as an ``snntorch.surrogate`` function (imports snnTorch)."""
        from snntorch import surrogate

        return {"atan": lambda: surrogate.atan(alpha=self.param),
                "fast_sigmoid": lambda: surrogate.fast_sigmoid(slope=self.param),
                "sigmoid": lambda: surrogate.sigmoid(slope=self.param)}[self.name]()


_SURROGATE_DEFAULTS = {"atan": 2.0, "fast_sigmoid": 25.0, "sigmoid": 25.0}
SURROGATES = tuple(_SURROGATE_DEFAULTS)


def check_lif_params(beta, threshold: float, reset: str = "subtract") -> None:
    """Raise :class:`ConfigError` for a threshold <= 0, beta outside [0, 1] or an unknown reset."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold) or threshold <= 0:
        raise ConfigError(f"threshold={threshold!r} must be a finite number > 0",
                          "e.g. threshold=1.0")
    b = torch.as_tensor(beta, dtype=torch.float64)
    if not torch.isfinite(b).all() or (b < 0).any() or (b > 1).any():
        raise ConfigError(f"beta={beta!r} must lie in [0, 1] (the membrane decay per step)",
                          "e.g. beta=0.9, or exp(-dt / tau_mem)")
    if reset not in RESETS:
        raise ConfigError(f"unknown reset {reset!r}", f"use one of {RESETS}")


def lif_step(x: torch.Tensor, mem: torch.Tensor, beta, threshold: float = 1.0,
             reset: str = "subtract", surrogate: Surrogate | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF step, as snnTorch's ``Leaky.forward`` (``reset_delay=True``) computes it.

    Args:
        x: input current ``I[t]``.
        mem: membrane ``m[t-1]``.
        beta: decay (float or tensor broadcastable to ``x``), clamped to [0, 1].
        threshold: firing threshold ``theta`` > 0.
        reset: ``"subtract"`` or ``"zero"``.
        surrogate: spike derivative for autograd (default atan, alpha = 2).

    Returns:
        ``(spike, mem)``: ``s[t]`` and ``m[t]``.
    """
    surrogate = surrogate or Surrogate()
    beta = torch.as_tensor(beta, dtype=x.dtype, device=x.device).clamp(0, 1)
    r = (mem - threshold > 0).to(x.dtype)
    mem = beta * mem + x - r * threshold if reset == "subtract" else beta * ((1 - r) * mem) + x
    return _Spike.apply(mem - threshold, surrogate), mem


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, surrogate):
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * ctx.surrogate.grad(u), None


def _forward_loop(x: torch.Tensor, beta: torch.Tensor, threshold: float, zero: bool,
                  mem0: torch.Tensor) -> torch.Tensor:
    """The membrane trace ``m[0..T-1]``, written in place with snnTorch's operation order
    (``(beta * m + I) - r * theta``), so results agree bit for bit on the CPU."""
    mems = torch.empty_like(x)
    prev = mem0
    for t in range(x.shape[0]):
        r = prev > threshold
        out = mems[t]
        if zero:
            torch.mul(prev.masked_fill(r, 0.0), beta, out=out)
            out.add_(x[t])
        else:
            torch.mul(prev, beta, out=out)
            out.add_(x[t])
            out.sub_(r.to(x.dtype) * threshold)
        prev = out
    return mems


def _backward_loop(g_spk: torch.Tensor | None, g_mem: torch.Tensor | None, mems: torch.Tensor,
                   mem0: torch.Tensor, beta: torch.Tensor, threshold: float, zero: bool,
                   surrogate: Surrogate, want_beta: bool
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Reverse sweep: (dL/dI, dL/dm0, dL/dbeta per element or None)."""
    T = mems.shape[0]
    dx = torch.empty_like(mems) if g_mem is None else g_mem.clone()
    if g_mem is None:
        dx.zero_()
    if g_spk is not None:
        dx.addcmul_(g_spk, surrogate.grad(mems - threshold))  # local terms, all steps at once
    carry = torch.zeros_like(mems[0])
    dbeta = torch.zeros_like(mems[0]) if want_beta else None
    for t in range(T - 1, -1, -1):
        d = dx[t]
        d.add_(carry)  # dL/dm[t] = local + beta * (1 - r[t+1]) * dL/dm[t+1]
        prev = mems[t - 1] if t > 0 else mem0
        if zero:
            keep = prev <= threshold  # 1 - r[t]
            if want_beta:
                dbeta.add_(torch.where(keep, d * prev, 0.0))
            carry = torch.where(keep, beta * d, 0.0)
        else:
            if want_beta:
                dbeta.addcmul_(d, prev)
            carry = beta * d
    return dx, carry, dbeta


def _use_triton(x: torch.Tensor) -> bool:
    if x.device.type != "cuda":
        return False
    from nonvon.simulators.spiking import _triton_lif

    return _triton_lif.available()


class _LIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, mem0, threshold, zero, surrogate):
        beta_c = beta.clamp(0, 1)
        if _use_triton(x):
            from nonvon.simulators.spiking import _triton_lif

            mems = _triton_lif.forward(x, beta_c, mem0, threshold, zero)
        else:
            mems = _forward_loop(x, beta_c, threshold, zero, mem0)
        spk = (mems > threshold).to(x.dtype)
        ctx.save_for_backward(mems, mem0, beta)
        ctx.threshold, ctx.zero, ctx.surrogate = threshold, zero, surrogate
        ctx.set_materialize_grads(False)  # an unused output brings None, not a zero tensor
        return spk, mems

    @staticmethod
    def backward(ctx, g_spk, g_mem):
        mems, mem0, beta = ctx.saved_tensors
        beta_c = beta.clamp(0, 1)
        want_beta = ctx.needs_input_grad[1]
        if _use_triton(mems):
            from nonvon.simulators.spiking import _triton_lif

            dx, dm0, dbeta = _triton_lif.backward(g_spk, g_mem, mems, mem0, beta_c, ctx.threshold,
                                                  ctx.zero, ctx.surrogate, want_beta)
        else:
            dx, dm0, dbeta = _backward_loop(g_spk, g_mem, mems, mem0, beta_c, ctx.threshold, ctx.zero,
                                            ctx.surrogate, want_beta)
        g_beta = None
        if want_beta:
            g_beta = _sum_to(dbeta, beta.shape) * ((beta >= 0) & (beta <= 1)).to(dbeta.dtype)
        return dx, g_beta, dm0 if ctx.needs_input_grad[2] else None, None, None, None


def _sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Reduce a broadcast gradient back to ``shape``."""
    while t.dim() > len(shape):
        t = t.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and t.shape[i] != 1:
            t = t.sum(i, keepdim=True)
    return t


def lif_sequence(x: torch.Tensor, beta, threshold: float = 1.0, *, reset: str = "subtract",
                 surrogate: Surrogate | None = None, mem0: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF layer over all timesteps at once (fused forward and backward).

    Equivalent to calling :func:`lif_step` (or snnTorch's ``Leaky``) for ``t = 0..T-1``
    from ``mem0`` (zeros by default), including the gradients with respect to ``x``,
    ``mem0`` and a tensor ``beta``.

    Args:
        x: input currents, shape ``(T, *neurons)`` (time first).
        beta: decay per step, float or tensor broadcastable to ``x.shape[1:]``.
        threshold: firing threshold > 0.
        reset: ``"subtract"`` (default) or ``"zero"``.
        surrogate: spike derivative (default atan, alpha = 2).
        mem0: initial membrane, shape ``x.shape[1:]``.

    Returns:
        ``(spikes, mems)``, both shaped like ``x``.

    Example:
        >>> x = torch.randn(25, 16, 100, requires_grad=True)
        >>> spk, mem = lif_sequence(x, beta=0.9)
        >>> spk.sum().backward()
    """
    if x.dim() < 2:
        raise ConfigError(f"lif_sequence takes (T, *neurons) inputs, got shape {tuple(x.shape)}",
                          "put time first, e.g. x of shape (T, batch, neurons)")
    if x.shape[0] < 1:
        raise ConfigError("lif_sequence got T = 0 timesteps", "give at least one timestep")
    # a learned beta may drift outside [0, 1] in training; it is clamped like snnTorch's
    check_lif_params(0.5 if torch.is_tensor(beta) else beta, threshold, reset)
    surrogate = surrogate or Surrogate()
    beta_t = beta if torch.is_tensor(beta) else torch.tensor(float(beta))
    beta_t = beta_t.to(device=x.device, dtype=x.dtype)
    if mem0 is None:
        mem0 = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
    return _LIFSequence.apply(x.contiguous(), beta_t, mem0.contiguous(), float(threshold),
                              reset == "zero", surrogate)


class FusedLeaky(nn.Module):
    """Multi-step LIF layer: snnTorch's ``Leaky`` over a whole ``(T, ...)`` sequence at once.

    Args:
        beta: decay per step in [0, 1]; with ``learn_beta`` a learned parameter (clamped to
            [0, 1] in the forward pass, like snnTorch's).
        threshold: firing threshold > 0 (fixed).
        reset: ``"subtract"`` or ``"zero"``.
        surrogate: spike derivative (default atan, alpha = 2).
        learn_beta: make ``beta`` a parameter.

    ``forward(x)`` with ``x`` of shape ``(T, *neurons)`` returns ``(spikes, mems)``.
    """

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, reset: str = "subtract",
                 surrogate: Surrogate | None = None, learn_beta: bool = False):
        super().__init__()
        check_lif_params(beta, threshold, reset)
        self.threshold, self.reset = float(threshold), reset
        self.surrogate = surrogate or Surrogate()
        b = torch.as_tensor(float(beta)) if not torch.is_tensor(beta) else beta.detach().clone()
        if learn_beta:
            self.beta = nn.Parameter(b)
        else:
            self.register_buffer("beta", b)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return lif_sequence(x, self.beta, self.threshold, reset=self.reset, surrogate=self.surrogate)

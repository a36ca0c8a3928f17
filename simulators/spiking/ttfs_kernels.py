"""Time-to-first-spike (TTFS) neurons: closed-form first-spike times (Göltz et al. 2021).

Neurons are current-based LIF neurons with ``tau_mem = 2 tau_syn`` (Göltz, Kriener et al.,
"Fast and energy-efficient neuromorphic deep learning with first-spike times", Nature
Machine Intelligence 3, 823-835, 2021). An input spike at ``t_i`` with weight ``w_i`` adds
``w_i (exp(-(t - t_i)/tau_m) - exp(-(t - t_i)/tau_s))`` to the membrane (the solution of
``tau_s dI/dt = -I`` with a jump ``I += w_i`` and ``tau_m dV/dt = -V + I``). With
``x = exp(-t / tau_m)`` and the inputs that arrived so far, ``V = A x - B x^2`` where
``A = sum w_i exp(t_i / tau_m)``, ``B = sum w_i exp(t_i / tau_s)``, so the first crossing of
the threshold ``theta`` is the larger root of a quadratic:

    t* = tau_m ln( 2 B / (A + sqrt(A^2 - 4 B theta)) ) = tau_m ln( (A - sqrt(A^2 - 4 B theta)) / (2 theta) )

It is valid for the set of the ``k`` earliest inputs if it falls after the ``k``-th input
and before the ``(k+1)``-th (causality); the earliest valid ``k`` gives the neuron's single
spike, and a neuron with no valid ``k`` stays silent (``inf``).

Gradients are exact. With ``S = sqrt(A^2 - 4 B theta)`` and ``u = A - S``:
``dt*/dA = -tau_m / S`` and ``dt*/dB = 2 theta tau_m / (u S)``, and ``A``, ``B`` are sums
over the inputs of the selected set, so ``dA/dw_i = exp(t_i/tau_m)``,
``dA/dt_i = w_i exp(t_i/tau_m) / tau_m`` (``B`` likewise with ``tau_s``). Two
implementations compute the same thing:

- :func:`first_spike_times`: a custom autograd function. Inputs that share a spike time
  change the state at once, so candidate crossings are checked once per distinct input
  time (about 70 per MNIST image instead of 784); ``A`` and ``B`` per distinct time come
  from sparse matrix products; only the selected ``A``, ``B`` and set per neuron are kept
  for the backward pass, and work arrays are processed in batch chunks, so memory stays
  bounded;
- :func:`first_spike_times_autograd`: the same closed form written with plain tensor ops
  and differentiated by autograd; the reference the fused version is tested against.

``tests/test_spiking_ttfs.py`` checks the times against a fine-step integration of the two
differential equations (single and multilayer) and the gradients against finite
differences. Training (loss, regularizer, weight bumping) is in
:mod:`nonvon.simulators.spiking.ttfs_training`.
"""

from __future__ import annotations

import math
import warnings

import torch

from nonvon.errors import ConfigError
from nonvon.simulators.spiking import _triton_ttfs

__all__ = ["first_spike_times", "first_spike_times_autograd", "ttfs_encode", "check_neuron",
           "update_counts"]


def check_neuron(tau_syn: float, theta: float) -> None:
    """Raise :class:`ConfigError` unless ``tau_syn`` and ``theta`` are finite and > 0."""
    for name, v in (("theta", theta), ("tau_syn", tau_syn)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ConfigError(f"{name}={v!r} must be a finite number > 0",
                              f"e.g. {name}=1.0 (theta=1.0 and tau_syn=1.0 set the units)")


def _sorted_inputs(t_in: torch.Tensor, tau_m: float):
    """Inputs sorted by time, their exponentials relative to the row's first spike."""
    order = torch.argsort(t_in, dim=1)
    ts = torch.gather(t_in, 1, order)
    finite = torch.isfinite(ts)
    ref = torch.where(finite[:, :1], ts[:, :1], torch.zeros_like(ts[:, :1]))
    ea = torch.where(finite, torch.exp((torch.where(finite, ts, ref) - ref) / tau_m),
                     torch.zeros_like(ts))
    next_t = torch.cat([ts[:, 1:], torch.full_like(ts[:, :1], math.inf)], dim=1)
    return order, ts, finite, ref, ea, next_t


def _segments(ts: torch.Tensor):
    """Group equal input times: a neuron's state only changes between distinct times, so
    candidate crossings need checking once per distinct time (MNIST pixels take ~70
    distinct values per image, so this shrinks the work ~10-fold on the input layer).

    Returns ``seg`` (segment of each sorted input) and ``t_seg`` ``(B, S)``, the segment
    times (``inf`` for padding: rows have different numbers of distinct times)."""
    B, n = ts.shape
    new = torch.ones_like(ts, dtype=torch.bool)
    new[:, 1:] = ts[:, 1:] != ts[:, :-1]
    seg = torch.cumsum(new.to(torch.long), dim=1) - 1
    n_seg = int(seg[:, -1].max()) + 1 if n else 0
    t_seg = torch.full((B, n_seg), math.inf, dtype=ts.dtype, device=ts.device)
    t_seg.scatter_(1, seg, ts)
    return seg, t_seg


def _crossings(a, b, ts, finite, ref, next_t, tau_m, theta):
    """Candidate crossing time of each input set (``A``, ``B`` given per set) and whether it
    is causal: after the set's last input and before the next one."""
    disc = a * a - 4.0 * theta * b
    pos = disc > 0
    s = torch.where(pos, torch.sqrt(torch.where(pos, disc, torch.ones_like(disc))), torch.zeros_like(disc))
    u = a - s
    ok = (disc >= 0) & (u > 0) & finite.unsqueeze(-1)
    t_star = ref.unsqueeze(-1) + tau_m * torch.log(torch.where(ok, u, torch.ones_like(u)) / (2 * theta))
    valid = ok & (t_star >= ts.unsqueeze(-1)) & (t_star < next_t.unsqueeze(-1))
    return t_star, valid


def _first_crossing(a, b, ts, next_t, ref, tau_m, theta):
    """The earliest causal crossing of each neuron: ``(idx, fired, t_out)``.

    Same selection as :func:`_crossings` (whose plain form the autograd reference keeps), with
    causality tested on ``u = A - sqrt(disc)`` rather than on the time: ``t* = ref + tau_m
    log(u / 2 theta)`` is increasing in ``u``, so ``ts <= t* < next_t`` is ``2 theta e(ts) <=
    u < 2 theta e(next_t)`` with ``e(t) = exp((t - ref) / tau_m)`` (``inf`` for ``inf``, which
    also rules out padding and silent inputs). The logarithm is taken for the selected set
    only, and the big ``(batch, sets, neurons)`` arrays see about half as many passes.
    """
    lo = (2.0 * theta) * torch.exp((ts - ref) / tau_m)                 # (B, S)
    hi = (2.0 * theta) * torch.exp((next_t - ref) / tau_m)
    disc = torch.addcmul(b * (-4.0 * theta), a, a)
    u = a - torch.sqrt(torch.clamp(disc, min=0.0))
    valid = (disc >= 0) & (u >= lo.unsqueeze(-1)) & (u < hi.unsqueeze(-1))
    idx = torch.argmax(valid.to(torch.int8), dim=1, keepdim=True)
    fired = valid.any(dim=1)
    u_sel = torch.gather(u, 1, idx).squeeze(1)
    t_out = ref + tau_m * torch.log(torch.where(fired, u_sel, 2.0 * theta) / (2.0 * theta))
    return idx, fired, torch.where(fired, t_out, math.inf)


def first_spike_times_autograd(t_in: torch.Tensor, w: torch.Tensor, tau_syn: float = 1.0,
                               theta: float = 1.0) -> torch.Tensor:
    """Reference implementation of :func:`first_spike_times` (plain autograd; memory grows as
    ``batch x inputs x neurons`` kept for the backward pass)."""
    check_neuron(tau_syn, theta)
    tau_m = 2.0 * tau_syn
    order, ts, finite, ref, ea, next_t = _sorted_inputs(t_in, tau_m)
    ws = w.t()[order]                                                  # (B, n, n_out)
    a = torch.cumsum(ws * ea.unsqueeze(-1), dim=1)
    b = torch.cumsum(ws * (ea * ea).unsqueeze(-1), dim=1)
    t_star, valid = _crossings(a, b, ts, finite, ref, next_t, tau_m, theta)
    idx = torch.argmax(valid.to(torch.int8), dim=1, keepdim=True)      # earliest valid set
    chosen = torch.gather(t_star, 1, idx).squeeze(1)
    return torch.where(valid.any(dim=1), chosen, torch.full_like(chosen, math.inf))


def _chunk_rows(per_row: int, device: torch.device) -> int:
    budget = 2 ** 26 if device.type == "cuda" else 2 ** 22           # elements per work array
    return max(1, budget // max(1, per_row))


def _segment_sums(seg_in: torch.Tensor, e_in: torch.Tensor, n_seg: int, w: torch.Tensor,
                  power: int) -> torch.Tensor:
    """``sum over inputs i in segment s of e_i^power w[o, i]``, shape ``(B, S, n_out)``.

    The segment matrix ``E[(b, s), i] = e_in[b, i]^power`` (input ``i`` in segment ``s`` of
    row ``b``) has one entry per input, so it is applied as a sparse matrix: the work is
    ``B x n_in x n_out``, not ``B x S x n_in x n_out``."""
    E = _segment_matrix(seg_in, e_in ** power, n_seg)
    return torch.sparse.mm(E, w.t()).view(len(seg_in), n_seg, w.shape[0])


def _segment_matrix(seg_in: torch.Tensor, values: torch.Tensor, n_seg: int,
                    transpose: bool = False) -> torch.Tensor:
    B, n = values.shape
    rows = (seg_in + n_seg * torch.arange(B, device=seg_in.device).unsqueeze(1)).reshape(-1)
    cols = torch.arange(n, device=seg_in.device).repeat(B)
    idx = torch.stack([cols, rows] if transpose else [rows, cols])
    size = (n, B * n_seg) if transpose else (B * n_seg, n)
    with warnings.catch_warnings():
        # some torch versions warn that the checks are off even when asked for explicitly;
        # the indices are built above, one entry per input, so they are valid
        warnings.filterwarnings("ignore", message="Sparse invariant checks", category=UserWarning)
        return torch.sparse_coo_tensor(idx, values.reshape(-1), size, check_invariants=False)


class _FirstSpike(torch.autograd.Function):
    """Forward: per distinct input time, ``A`` and ``B`` by sparse matrix products and
    cumulative sums; candidate crossings checked on ``(batch, distinct times, neurons)``.
    Backward: the selected set of each neuron is a prefix of its row's segments, so the
    weight gradient is a sparse product with the segment matrix and the input-time
    gradient a dense one (no ``(batch, inputs, neurons)`` array is kept)."""

    @staticmethod
    def forward(ctx, t_in, w, tau_m, theta):
        B, n = t_in.shape
        n_out = w.shape[0]
        order, ts, _, ref, ea, _ = _sorted_inputs(t_in, tau_m)
        seg, t_seg = _segments(ts)
        n_seg = t_seg.shape[1]
        seg_in = torch.empty_like(seg).scatter_(1, order, seg)         # segment of each input
        e_in = torch.zeros_like(ea).scatter_(1, order, ea)              # unsorted exponentials
        next_seg = torch.cat([t_seg[:, 1:], torch.full_like(t_seg[:, :1], math.inf)], dim=1)
        out = torch.full((B, n_out), math.inf, dtype=t_in.dtype, device=t_in.device)
        k = torch.zeros((B, n_out), dtype=torch.long, device=t_in.device)
        a_sel = torch.zeros_like(out)
        b_sel = torch.zeros_like(out)
        fired = torch.zeros((B, n_out), dtype=torch.bool, device=t_in.device)
        step = _chunk_rows(n_seg * n_out, t_in.device)
        for r in range(0, B, step):
            sl = slice(r, r + step)
            a = torch.cumsum(_segment_sums(seg_in[sl], e_in[sl], n_seg, w, 1), dim=1)
            b = torch.cumsum(_segment_sums(seg_in[sl], e_in[sl], n_seg, w, 2), dim=1)
            idx, fired[sl], out[sl] = _first_crossing(a, b, t_seg[sl], next_seg[sl], ref[sl], tau_m, theta)
            k[sl] = idx.squeeze(1)
            a_sel[sl] = torch.gather(a, 1, idx).squeeze(1)
            b_sel[sl] = torch.gather(b, 1, idx).squeeze(1)
        ctx.save_for_backward(w, seg_in, e_in, k, fired, a_sel, b_sel)
        ctx.tau_m, ctx.theta, ctx.n_seg = tau_m, theta, n_seg
        return out

    @staticmethod
    def backward(ctx, g):
        w, seg_in, e_in, k, fired, a_sel, b_sel = ctx.saved_tensors
        tau_m, n_seg = ctx.tau_m, ctx.n_seg
        p, q = _set_gradients(g, fired, a_sel, b_sel, tau_m, ctx.theta)   # dL/dA, dL/dB
        B, n = e_in.shape
        n_out = w.shape[0]
        need_t, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_w = torch.zeros_like(w) if need_w else None
        grad_t = torch.zeros_like(e_in) if need_t else None
        step = _chunk_rows(n_seg * max(n_out, n if need_t else 1), e_in.device)
        segs = torch.arange(n_seg, device=e_in.device).view(1, -1, 1)
        for r in range(0, B, step):
            sl = slice(r, r + step)
            upto = (segs <= k[sl].unsqueeze(1)).to(e_in.dtype)         # (b, S, n_out): in the set
            ps, qs = upto * p[sl].unsqueeze(1), upto * q[sl].unsqueeze(1)
            ei = e_in[sl]
            if need_w:
                ea_t = _segment_matrix(seg_in[sl], ei, n_seg, transpose=True)
                eb_t = _segment_matrix(seg_in[sl], ei * ei, n_seg, transpose=True)
                grad_w += (torch.sparse.mm(ea_t, ps.reshape(-1, n_out))
                           + torch.sparse.mm(eb_t, qs.reshape(-1, n_out))).t()
            if need_t:
                idx = seg_in[sl].unsqueeze(1)
                ga = torch.gather(ps @ w, 1, idx).squeeze(1)              # (b, n)
                gb = torch.gather(qs @ w, 1, idx).squeeze(1)
                grad_t[sl] = (ei * ga + 2.0 * ei * ei * gb) / tau_m
        return grad_t, grad_w, None, None


class _FirstSpikeDense(torch.autograd.Function):
    """The same function over every sorted input (no grouping of equal times, no sparse
    products): more arithmetic, far fewer and larger kernels, no host synchronisation. On a
    GPU the per-step cost of the grouped version is kernel launches, not arithmetic."""

    @staticmethod
    def forward(ctx, t_in, w, tau_m, theta, triton=False):
        B, n = t_in.shape
        n_out = w.shape[0]
        order, ts, finite, ref, ea, next_t = _sorted_inputs(t_in, tau_m)
        if triton:  # the running sums in registers (see _triton_ttfs)
            lo = (2.0 * theta) * torch.exp((ts - ref) / tau_m)
            hi = (2.0 * theta) * torch.exp((next_t - ref) / tau_m)
            k, u, a_sel, b_sel, fired = _triton_ttfs.forward(order, ea, lo, hi, w, theta)
            t_out = ref + tau_m * torch.log(torch.where(fired, u, 2.0 * theta) / (2.0 * theta))
            out = torch.where(fired, t_out, math.inf)
        else:
            wt = w.t()
            out = torch.empty((B, n_out), dtype=t_in.dtype, device=t_in.device)
            k = torch.empty((B, n_out), dtype=torch.long, device=t_in.device)
            a_sel, b_sel = torch.empty_like(out), torch.empty_like(out)
            fired = torch.empty((B, n_out), dtype=torch.bool, device=t_in.device)
            step = _chunk_rows(n * n_out, t_in.device)
            for r in range(0, B, step):
                sl = slice(r, r + step)
                ws = wt[order[sl]]                                       # (b, n, n_out)
                a = torch.cumsum(ws * ea[sl].unsqueeze(-1), dim=1)
                b = torch.cumsum(ws * (ea[sl] * ea[sl]).unsqueeze(-1), dim=1)
                idx, fired[sl], out[sl] = _first_crossing(a, b, ts[sl], next_t[sl], ref[sl], tau_m, theta)
                k[sl] = idx.squeeze(1)
                a_sel[sl] = torch.gather(a, 1, idx).squeeze(1)
                b_sel[sl] = torch.gather(b, 1, idx).squeeze(1)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=t_in.device).expand(B, n))
        e_in = torch.zeros_like(ea).scatter_(1, order, ea)
        ctx.save_for_backward(w, rank, e_in, k, fired, a_sel, b_sel)
        ctx.tau_m, ctx.theta, ctx.triton = tau_m, theta, triton
        return out

    @staticmethod
    def backward(ctx, g):
        w, rank, e_in, k, fired, a_sel, b_sel = ctx.saved_tensors
        p, q = _set_gradients(g, fired, a_sel, b_sel, ctx.tau_m, ctx.theta)
        B, n = e_in.shape
        need_t, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if ctx.triton:
            grad_t, grad_w = _triton_ttfs.backward(rank, e_in, k, p, q, w, ctx.tau_m, need_t, need_w)
            return grad_t, grad_w, None, None, None
        grad_w = torch.zeros_like(w.t()) if need_w else None
        grad_t = torch.zeros_like(e_in) if need_t else None
        wt = w.t()
        for r in range(0, B, _chunk_rows(n * w.shape[0], e_in.device)):
            sl = slice(r, r + _chunk_rows(n * w.shape[0], e_in.device))
            mask = rank[sl].unsqueeze(-1) <= k[sl].unsqueeze(1)          # (b, n, n_out): in the set
            mp = torch.where(mask, p[sl].unsqueeze(1), 0.0)
            mq = torch.where(mask, q[sl].unsqueeze(1), 0.0)
            ea, eb = e_in[sl], e_in[sl] * e_in[sl]
            if need_w:  # contractions over the batch: batched matrix products, no temporaries
                grad_w += torch.einsum("bno,bn->no", mp, ea) + torch.einsum("bno,bn->no", mq, eb)
            if need_t:
                grad_t[sl] = ((mp * wt).sum(-1) * ea + 2.0 * (mq * wt).sum(-1) * eb) / ctx.tau_m
        return grad_t, (grad_w.t() if need_w else None), None, None, None


def _set_gradients(g, fired, a_sel, b_sel, tau_m, theta):
    """``dL/dA`` and ``dL/dB`` of each neuron's selected set (zero for silent neurons)."""
    s = torch.sqrt(torch.clamp(a_sel * a_sel - 4.0 * theta * b_sel, min=0.0))
    s = torch.clamp(s, min=1e-6 * float(theta))                      # grazing crossings: huge, finite
    u = torch.clamp(a_sel - s, min=1e-12)
    g = torch.where(fired & torch.isfinite(g), g, torch.zeros_like(g))
    return g * (-tau_m / s), g * (2.0 * theta * tau_m / (u * s))


METHODS = ("auto", "grouped", "dense", "triton")
DENSE_MAX_SYNAPSES = 16_384  # on a CPU, smaller layers are cheaper dense (fewer kernels)


def first_spike_times(t_in: torch.Tensor, w: torch.Tensor, tau_syn: float = 1.0,
                      theta: float = 1.0, method: str = "auto") -> torch.Tensor:
    """First spike time of each output neuron (exact, differentiable in ``t_in`` and ``w``).

    Args:
        t_in: input spike times ``(B, n_in)``; ``inf`` for inputs that never spike.
        w: weights ``(n_out, n_in)``.
        tau_syn: synaptic time constant ``tau_s`` (``tau_m = 2 tau_s``).
        theta: threshold > 0.
        method: ``"grouped"`` (one candidate per distinct input time, sparse products: least
            arithmetic, suits CPUs), ``"dense"`` (every sorted input, few large kernels:
            suits GPUs and small layers), ``"triton"`` (the dense method as Triton kernels
            that keep the running sums in registers; CUDA, float32) or ``"auto"`` (triton
            on CUDA when Triton is installed, else dense on CUDA or for layers of at most
            ``DENSE_MAX_SYNAPSES`` synapses, grouped otherwise). Same results, to rounding.

    Returns:
        ``(B, n_out)`` spike times, ``inf`` where a neuron does not fire.

    Raises:
        ConfigError: ``theta`` or ``tau_syn`` not > 0, shapes that do not match, or an
            unknown ``method``.

    Example:
        >>> t = first_spike_times(torch.zeros(1, 1, dtype=torch.float64),
        ...                       torch.tensor([[3.0]], dtype=torch.float64), 1.0, 0.5)
        >>> round(float(t), 6)
        0.474802
    """
    check_neuron(tau_syn, theta)
    if t_in.dim() != 2 or w.dim() != 2 or t_in.shape[1] != w.shape[1]:
        raise ConfigError(f"input times {tuple(t_in.shape)} do not match weights {tuple(w.shape)}",
                          "give t_in as (batch, n_in) and w as (n_out, n_in)")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}", f"use one of {METHODS}")
    tau_m, theta = 2.0 * float(tau_syn), float(theta)
    triton_ok = _triton_ttfs.usable(t_in) and w.dtype == t_in.dtype
    if method == "triton" and not triton_ok:
        raise ConfigError("method='triton' needs float32 input times and weights on a CUDA "
                          "device, and the triton package", "use method='auto'")
    if method == "triton" or (method == "auto" and t_in.is_cuda and triton_ok):
        return _FirstSpikeDense.apply(t_in, w, tau_m, theta, True)
    if method == "dense" or (method == "auto" and (t_in.is_cuda or w.numel() <= DENSE_MAX_SYNAPSES)):
        return _FirstSpikeDense.apply(t_in, w, tau_m, theta)
    return _FirstSpike.apply(t_in, w, tau_m, theta)


@torch.no_grad()
def update_counts(t_in: torch.Tensor, w: torch.Tensor, tau_syn: float = 1.0,
                  theta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """What an event-driven implementation of the closed form does per neuron.

    A neuron's state ``(A, B)`` changes once per distinct input time; at each such time it
    tests the discriminant and, when ``A^2 >= 4 B theta`` with ``A > sqrt(.)``, solves for
    the crossing time and checks it against the next input. After its one spike it
    ignores further input.

    Returns:
        ``(updates, solves)``, each ``(B, n_out)`` int64: the state updates (distinct finite
        input times up to and including the one that made it fire; all of them if it stays
        silent) and the candidate crossings solved among those.
    """
    check_neuron(tau_syn, theta)
    tau_m = 2.0 * tau_syn
    B, n = t_in.shape
    n_out = w.shape[0]
    order, ts, _, ref, ea, _ = _sorted_inputs(t_in, tau_m)
    seg, t_seg = _segments(ts)
    n_seg = t_seg.shape[1]
    seg_in = torch.empty_like(seg).scatter_(1, order, seg)
    e_in = torch.zeros_like(ea).scatter_(1, order, ea)
    fin_seg = torch.isfinite(t_seg)
    next_seg = torch.cat([t_seg[:, 1:], torch.full_like(t_seg[:, :1], math.inf)], dim=1)
    updates = torch.zeros((B, n_out), dtype=torch.long, device=t_in.device)
    solves = torch.zeros_like(updates)
    step = _chunk_rows(n_seg * n_out, t_in.device)
    for r in range(0, B, step):
        sl = slice(r, r + step)
        a = torch.cumsum(_segment_sums(seg_in[sl], e_in[sl], n_seg, w, 1), dim=1)
        b = torch.cumsum(_segment_sums(seg_in[sl], e_in[sl], n_seg, w, 2), dim=1)
        _, valid = _crossings(a, b, t_seg[sl], fin_seg[sl], ref[sl], next_seg[sl], tau_m, theta)
        disc = a * a - 4.0 * theta * b
        candidate = (disc >= 0) & (a > 0) & (b > 0) & fin_seg[sl].unsqueeze(-1)
        fired = valid.any(dim=1)
        k = torch.argmax(valid.to(torch.int8), dim=1)                   # firing segment
        n_fin = fin_seg[sl].sum(1, keepdim=True)
        last = torch.where(fired, k, n_fin - 1)                         # last segment processed
        upto = torch.arange(n_seg, device=t_in.device).view(1, -1, 1) <= last.unsqueeze(1)
        updates[sl] = torch.where(fired, k + 1, n_fin.expand_as(k))
        solves[sl] = (candidate & upto).sum(1)
    return updates, solves


def ttfs_encode(x: torch.Tensor, t_max: float = 2.0, t_min: float = 0.0) -> torch.Tensor:
    """Brighter pixels spike earlier: ``t = t_min + (1 - x) (t_max - t_min)``; black pixels at
    ``t_max`` (as in Göltz et al., every input spikes once)."""
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1 or bool(torch.isnan(x).any())):
        raise ConfigError("TTFS coding needs inputs in [0, 1]", "scale the data to [0, 1]")
    if not 0 <= t_min < t_max or not math.isfinite(t_max):
        raise ConfigError(f"TTFS coding needs 0 <= t_min < t_max < inf; got t_min={t_min}, "
                          f"t_max={t_max}", "e.g. t_min=0.15, t_max=2.0 (Göltz et al. 2021)")
    return t_min + (1.0 - x.flatten(1)) * (t_max - t_min)

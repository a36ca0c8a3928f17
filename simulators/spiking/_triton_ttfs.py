"""Triton kernels for the dense path of :func:`nonvon.simulators.spiking.ttfs_kernels.first_spike_times`.

The torch dense path builds ``(batch, inputs, neurons)`` arrays (the weights gathered in
input-time order, their two running sums, the candidate crossings, the masks of the
backward pass): on Göltz et al.'s 784-350-10 network at batch 100 that is 27 million
elements per array and some twenty passes over them per training step. These kernels keep
the running sums in registers instead:

- forward: one program per (sample, block of neurons) walks the sample's inputs in time
  order, accumulates ``A`` and ``B`` and keeps the first causal crossing (the same
  selection as ``_first_crossing``), writing only ``(batch, neurons)`` results;
- weight gradient: one program per (block of inputs, block of neurons) sums over the batch
  the contributions of the inputs inside each neuron's selected set;
- input-time gradient: one program per (sample, block of inputs) sums over the neurons.

The sums run in another order than ``torch.cumsum`` and ``einsum``, so results agree with the
torch path to rounding (``tests/test_spiking_ttfs.py`` compares them), not bit for bit.
"""

from __future__ import annotations

import functools
import os

import torch

from nonvon.simulators.spiking._triton_lif import available  # one check for both kernel modules

BLOCK_OUT = 128   # neurons per forward program
BLOCK_IN = 64     # inputs per gradient program
BLOCK_GRAD_OUT = 64


def usable(t: torch.Tensor) -> bool:
    """The kernels run on CUDA float32 tensors (or anywhere under ``TRITON_INTERPRET=1``)."""
    on_device = t.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    return on_device and t.dtype == torch.float32 and available()


@functools.cache
def _kernels():
    import triton
    import triton.language as tl

    @triton.jit
    def fwd(ORDER, EA, LO, HI, WT, K, U, A_SEL, B_SEL, FIRED, n, n_out, theta,
            BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n_out
        acc_a = tl.zeros([BLOCK], dtype=tl.float32)
        acc_b = tl.zeros([BLOCK], dtype=tl.float32)
        a_sel = tl.zeros([BLOCK], dtype=tl.float32)
        b_sel = tl.zeros([BLOCK], dtype=tl.float32)
        u_sel = tl.zeros([BLOCK], dtype=tl.float32)
        k = tl.zeros([BLOCK], dtype=tl.int64)
        found = tl.zeros([BLOCK], dtype=tl.int1)
        for i in range(n):
            j = tl.load(ORDER + row * n + i)                # the i-th input in time order
            e = tl.load(EA + row * n + i)
            lo = tl.load(LO + row * n + i)
            hi = tl.load(HI + row * n + i)
            w = tl.load(WT + j * n_out + offs, mask=mask, other=0.0)
            acc_a += w * e
            acc_b += w * (e * e)
            disc = acc_b * (-4.0 * theta) + acc_a * acc_a
            u = acc_a - tl.sqrt_rn(tl.maximum(disc, 0.0))
            valid = (disc >= 0) & (u >= lo) & (u < hi)
            # the first valid set; set 0 when none is (as argmax over all-false picks 0)
            take = (found == 0) & (valid | (i == 0))
            a_sel = tl.where(take, acc_a, a_sel)
            b_sel = tl.where(take, acc_b, b_sel)
            u_sel = tl.where(take, u, u_sel)
            k = tl.where(take, i, k)
            found = found | valid
        out = row * n_out + offs
        tl.store(K + out, k, mask=mask)
        tl.store(U + out, u_sel, mask=mask)
        tl.store(A_SEL + out, a_sel, mask=mask)
        tl.store(B_SEL + out, b_sel, mask=mask)
        tl.store(FIRED + out, found.to(tl.int8), mask=mask)

    @triton.jit
    def grad_w(RANK, E_IN, K, P, Q, GWT, n_rows, n, n_out,
               BLOCK_I: tl.constexpr, BLOCK_O: tl.constexpr):
        ii = tl.program_id(0) * BLOCK_I + tl.arange(0, BLOCK_I)
        oo = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
        mi, mo = ii < n, oo < n_out
        acc = tl.zeros([BLOCK_I, BLOCK_O], dtype=tl.float32)
        for r in range(n_rows):
            base_i = r * n
            base_o = r * n_out
            rank = tl.load(RANK + base_i + ii, mask=mi, other=n)
            e = tl.load(E_IN + base_i + ii, mask=mi, other=0.0)
            k = tl.load(K + base_o + oo, mask=mo, other=-1)
            p = tl.load(P + base_o + oo, mask=mo, other=0.0)
            q = tl.load(Q + base_o + oo, mask=mo, other=0.0)
            inside = rank[:, None] <= k[None, :]              # input in the neuron's set
            term = p[None, :] * e[:, None] + q[None, :] * (e * e)[:, None]
            acc += tl.where(inside, term, 0.0)
        tl.store(GWT + ii[:, None] * n_out + oo[None, :], acc, mask=mi[:, None] & mo[None, :])

    @triton.jit
    def grad_t(RANK, E_IN, K, P, Q, WT, GT, n, n_out, tau_m,
               BLOCK_I: tl.constexpr, BLOCK_O: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        ii = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
        mi = ii < n
        rank = tl.load(RANK + row * n + ii, mask=mi, other=n)
        e = tl.load(E_IN + row * n + ii, mask=mi, other=0.0)
        sp = tl.zeros([BLOCK_I], dtype=tl.float32)
        sq = tl.zeros([BLOCK_I], dtype=tl.float32)
        for start in range(0, n_out, BLOCK_O):
            oo = start + tl.arange(0, BLOCK_O)
            mo = oo < n_out
            k = tl.load(K + row * n_out + oo, mask=mo, other=-1)
            p = tl.load(P + row * n_out + oo, mask=mo, other=0.0)
            q = tl.load(Q + row * n_out + oo, mask=mo, other=0.0)
            w = tl.load(WT + ii[:, None] * n_out + oo[None, :], mask=mi[:, None] & mo[None, :], other=0.0)
            inside = rank[:, None] <= k[None, :]
            sp += tl.sum(tl.where(inside, p[None, :] * w, 0.0), axis=1)
            sq += tl.sum(tl.where(inside, q[None, :] * w, 0.0), axis=1)
        tl.store(GT + row * n + ii, (sp * e + 2.0 * sq * (e * e)) / tau_m, mask=mi)

    return fwd, grad_w, grad_t


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def forward(order, ea, lo, hi, w, theta):
    """The first causal crossing of each neuron: ``(k, u, a_sel, b_sel, fired)``, each
    ``(batch, neurons)``; ``k`` is the position, in time order, of the last input of the
    selected set and ``u = A - sqrt(A^2 - 4 theta B)`` there (see ``_first_crossing``)."""
    fwd, _, _ = _kernels()
    B, n = order.shape
    n_out = w.shape[0]
    wt = w.t().contiguous()
    k = torch.empty((B, n_out), dtype=torch.long, device=w.device)
    u, a_sel, b_sel = (torch.empty((B, n_out), dtype=w.dtype, device=w.device) for _ in range(3))
    fired = torch.empty((B, n_out), dtype=torch.int8, device=w.device)
    fwd[(B, _cdiv(n_out, BLOCK_OUT))](order.contiguous(), ea.contiguous(), lo.contiguous(),
                                      hi.contiguous(), wt, k, u, a_sel, b_sel, fired, n, n_out,
                                      float(theta), BLOCK=BLOCK_OUT, enable_fp_fusion=False)
    return k, u, a_sel, b_sel, fired.bool()


def backward(rank, e_in, k, p, q, w, tau_m, need_t: bool, need_w: bool):
    """``(dL/dt_in, dL/dw)`` (``None`` where not needed) from the selected sets and
    ``p = dL/dA``, ``q = dL/dB`` per neuron."""
    _, gw_kernel, gt_kernel = _kernels()
    B, n = e_in.shape
    n_out = w.shape[0]
    rank, e_in, k, p, q = (t.contiguous() for t in (rank, e_in, k, p, q))
    grad_w = grad_t = None
    if need_w:
        gwt = torch.empty((n, n_out), dtype=w.dtype, device=w.device)
        gw_kernel[(_cdiv(n, BLOCK_IN), _cdiv(n_out, BLOCK_GRAD_OUT))](
            rank, e_in, k, p, q, gwt, B, n, n_out, BLOCK_I=BLOCK_IN, BLOCK_O=BLOCK_GRAD_OUT,
            enable_fp_fusion=False)
        grad_w = gwt.t()
    if need_t:
        grad_t = torch.empty_like(e_in)
        gt_kernel[(B, _cdiv(n, BLOCK_IN))](rank, e_in, k, p, q, w.t().contiguous(), grad_t, n, n_out,
                                            float(tau_m), BLOCK_I=BLOCK_IN, BLOCK_O=BLOCK_GRAD_OUT,
                                            enable_fp_fusion=False)
    return grad_t, grad_w

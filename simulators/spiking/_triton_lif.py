"""Triton kernels for :func:`nonvon.simulators.spiking.lif_kernels.lif_sequence` on CUDA.

One program handles ``BLOCK`` neurons and loops over all ``T`` timesteps in registers, so
the forward pass is one kernel that reads each input current once and writes each
membrane once, and the backward pass is one reverse sweep. Floating-point contraction is
disabled (``enable_fp_fusion=False``) so ``beta * m + I`` rounds exactly like PyTorch's
separate multiply and add, and the spikes equal the reference loop's.
"""

from __future__ import annotations

import functools

import torch

_SURROGATE_ID = {"atan": 0, "fast_sigmoid": 1, "sigmoid": 2}
BLOCK = 256


@functools.cache
def available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _kernels():
    import triton
    import triton.language as tl

    @triton.jit
    def fwd(X, MEM0, BETA, MEMS, N, T, thr, ZERO: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        m = tl.load(MEM0 + offs, mask=mask, other=0.0)
        b = tl.load(BETA + offs, mask=mask, other=0.0)
        for t in range(T):
            base = t * N
            x = tl.load(X + base + offs, mask=mask, other=0.0)
            r = m > thr
            if ZERO:
                m = tl.where(r, 0.0, m)
                m = b * m + x
            else:
                m = b * m + x
                m = m - tl.where(r, thr, 0.0)
            tl.store(MEMS + base + offs, m, mask=mask)

    @triton.jit
    def bwd(GS, GM, MEMS, MEM0, BETA, DX, DM0, DBETA, N, T, thr, p,
            ZERO: tl.constexpr, SURR: tl.constexpr, HAS_GS: tl.constexpr, HAS_GM: tl.constexpr,
            WANT_BETA: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        b = tl.load(BETA + offs, mask=mask, other=0.0)
        m0 = tl.load(MEM0 + offs, mask=mask, other=0.0)
        carry = tl.zeros([BLOCK], dtype=tl.float32)
        dbeta = tl.zeros([BLOCK], dtype=tl.float32)
        m = tl.load(MEMS + (T - 1) * N + offs, mask=mask, other=0.0).to(tl.float32)
        for i in range(T):
            t = T - 1 - i
            base = t * N
            d = carry
            if HAS_GM:
                d += tl.load(GM + base + offs, mask=mask, other=0.0).to(tl.float32)
            if HAS_GS:
                u = m - thr
                if SURR == 0:
                    v = 1.5707963267948966 * p * u
                    sg = p / 2 / (1 + v * v)
                elif SURR == 1:
                    w = p * tl.abs(u) + 1.0
                    sg = 1.0 / (w * w)
                else:
                    sg = p / (1.0 + tl.exp(-p * u)) / (1.0 + tl.exp(p * u))
                d += tl.load(GS + base + offs, mask=mask, other=0.0).to(tl.float32) * sg
            tl.store(DX + base + offs, d, mask=mask)
            prev = tl.load(MEMS + (t - 1) * N + offs, mask=mask & (t > 0), other=0.0).to(tl.float32)
            prev = tl.where(t > 0, prev, m0)
            if ZERO:
                keep = prev <= thr
                if WANT_BETA:
                    dbeta += tl.where(keep, d * prev, 0.0)
                carry = tl.where(keep, b * d, 0.0)
            else:
                if WANT_BETA:
                    dbeta += d * prev
                carry = b * d
            m = prev
        tl.store(DM0 + offs, carry, mask=mask)
        if WANT_BETA:
            tl.store(DBETA + offs, dbeta, mask=mask)

    return fwd, bwd


def _grid(n: int) -> tuple[int]:
    return ((n + BLOCK - 1) // BLOCK,)


def forward(x: torch.Tensor, beta: torch.Tensor, mem0: torch.Tensor, threshold: float,
            zero: bool) -> torch.Tensor:
    fwd, _ = _kernels()
    T = x.shape[0]
    n = x[0].numel()
    beta_e = beta.expand(x.shape[1:]).contiguous()
    mems = torch.empty_like(x)
    fwd[_grid(n)](x, mem0, beta_e, mems, n, T, threshold, ZERO=zero, BLOCK=BLOCK,
                  enable_fp_fusion=False)
    return mems


def backward(g_spk, g_mem, mems, mem0, beta, threshold, zero, surrogate, want_beta):
    _, bwd = _kernels()
    T = mems.shape[0]
    n = mems[0].numel()
    beta_e = beta.expand(mems.shape[1:]).contiguous()
    dx = torch.empty_like(mems)
    dm0 = torch.empty_like(mem0)
    dbeta = torch.empty_like(mem0) if want_beta else dm0
    gs = g_spk.contiguous() if g_spk is not None else mems
    gm = g_mem.contiguous() if g_mem is not None else mems
    bwd[_grid(n)](gs, gm, mems, mem0, beta_e, dx, dm0, dbeta, n, T, threshold, surrogate.param,
                  ZERO=zero, SURR=_SURROGATE_ID[surrogate.name], HAS_GS=g_spk is not None,
                  HAS_GM=g_mem is not None, WANT_BETA=want_beta, BLOCK=BLOCK,
                  enable_fp_fusion=False)
    return dx, dm0, (dbeta if want_beta else None)

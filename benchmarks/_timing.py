"""Timing shared by the benchmark scripts: best of ``reps`` runs, GPU work synchronized."""

from __future__ import annotations

import time

import torch


def best_time(fn, device: str, reps: int) -> float:
    """Seconds of the fastest of ``reps`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best

"""Binary HDC inference at D = 10,000: nonvon's bit-packed search vs torchhd's own.

Both classify the same binary (BSC) query hypervectors against the same class
hypervectors, in one process, and their predictions are asserted equal:

* peer: ``torchhd.hamming_similarity(queries, classes).argmax(-1)`` on ``BSCTensor``s
  (one bool per bit). Where torchhd is not installed (the GPU machine), the same
  expression in plain torch (torchhd 5.8.4's ``hamming_similarity`` body:
  ``(q[:, None, :] == c[None, :, :]).sum(-1)``), labelled as such in the output;
* nonvon: the vectors packed into 64-bit words (10,000 bits -> 157 words, zero-padded),
  ``popcount(q XOR c)`` summed per class, ``argmin``: NumPy's ``bitwise_count`` on the
  CPU, the plain-torch SWAR popcount (:func:`nonvon.simulators.hdc.popcount64`) on CUDA.

Timed: the associative search on already-encoded queries (encoding is the same for
both and not part of what packing changes). ``ratio`` is peer time / nonvon time with
nonvon's queries arriving packed (as a bit-serial encoder emits them);
``ratio_incl_packing`` also charges nonvon for packing torchhd's bool queries. For
context, ``ratio_vs_dense_gemm`` compares with a bipolar float32 matrix product, the
fastest unpacked route in plain torch (it needs 32x the memory per class vector).

    python benchmarks/hdc_inference.py --quick
    python benchmarks/hdc_inference.py --device cuda [--compile]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from nonvon.simulators.hdc import hamming_packed, memory_bytes, pack_bits, popcount64

try:
    import torchhd
except ImportError:  # the GPU machine has no torchhd
    torchhd = None


def plain_hamming_similarity(q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """torchhd 5.8.4's ``hamming_similarity`` body for 2-D inputs, in plain torch."""
    return torch.sum(q.unsqueeze(-2) == c.unsqueeze(-3), dim=-1, dtype=torch.long)


def peer_labels(q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    if torchhd is not None:
        return torchhd.hamming_similarity(q.as_subclass(torchhd.BSCTensor),
                                          c.as_subclass(torchhd.BSCTensor)).argmax(-1)
    return plain_hamming_similarity(q, c).argmax(-1)


def _packed_search(q_words: torch.Tensor, c_words: torch.Tensor) -> torch.Tensor:
    """XOR + popcount + arg-min on int64 words in one expression (fusable by torch.compile)."""
    return popcount64(q_words[:, None, :] ^ c_words[None, :, :]).sum(-1).argmin(1)


def _time(fn, device: str, reps: int) -> tuple[float, object]:
    out = fn()
    best = float("inf")
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer queries and repetitions")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dimensions", type=int, default=10_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--compile", action="store_true",
                    help="nonvon's search as torch tensors fused by torch.compile (default: eager "
                         "plain torch on CUDA, NumPy bitwise_count on the CPU)")
    args = ap.parse_args()
    n = args.queries or (2_000 if args.quick else 10_000)
    reps = 3 if args.quick else 10
    dev, d = args.device, args.dimensions
    g = torch.Generator().manual_seed(0)
    q_bits = torch.rand(n, d, generator=g) < 0.5
    c_bits = torch.rand(args.classes, d, generator=g) < 0.5
    c_words = pack_bits(c_bits, pad=True)
    if torchhd is not None:  # the plain-torch stand-in used where torchhd is absent is exact
        assert torch.equal(plain_hamming_similarity(q_bits[:256], c_bits), torchhd.hamming_similarity(
            q_bits[:256].as_subclass(torchhd.BSCTensor), c_bits.as_subclass(torchhd.BSCTensor)))
    search = torch.compile(_packed_search, dynamic=False) if args.compile else None
    if dev == "cuda" or search is not None:
        q_dev, c_dev = q_bits.to(dev), c_bits.to(dev)
        c_words_dev = torch.from_numpy(c_words.view(np.int64)).to(dev)
        q_words_dev = torch.from_numpy(pack_bits(q_bits, pad=True).view(np.int64)).to(dev)

        def ours():
            if search is not None:
                return search(q_words_dev, c_words_dev)
            return hamming_packed(q_words_dev, c_words_dev, chunk=n).argmin(1)

        def ours_with_packing():  # pack on the host from bool, copy, search
            w = torch.from_numpy(pack_bits(q_bits, pad=True).view(np.int64)).to(dev)
            if search is not None:
                return search(w, c_words_dev)
            return hamming_packed(w, c_words_dev, chunk=n).argmin(1)

        def peer():
            return peer_labels(q_dev, c_dev)
    else:
        q_words = pack_bits(q_bits, pad=True)

        def ours():
            return hamming_packed(q_words, c_words).argmin(1)

        def ours_with_packing():
            return hamming_packed(pack_bits(q_bits, pad=True), c_words).argmin(1)

        def peer():
            return peer_labels(q_bits, c_bits)

    qf, cf = (q_dev, c_dev) if dev == "cuda" or search is not None else (q_bits, c_bits)
    qf, cf = qf.to(torch.float32) * 2 - 1, cf.to(torch.float32) * 2 - 1

    def dense():  # unpacked bipolar float32 GEMM: the fastest unpacked route in plain torch
        return (qf @ cf.T).argmax(1)

    t_peer, lp = _time(peer, dev, reps)
    t_dense, ld = _time(dense, dev, reps)
    t_ours, lo = _time(ours, dev, reps)
    t_pack, lw = _time(ours_with_packing, dev, reps)
    lp = lp.cpu().numpy() if isinstance(lp, torch.Tensor) else lp
    for got in (lo, lw, ld):
        got = got.cpu().numpy() if isinstance(got, torch.Tensor) else got
        assert np.array_equal(got, lp), "packed and torchhd predictions differ"
    mem = memory_bytes(d)
    print(json.dumps({
        "bench": "hdc_inference", "peer": "torchhd.hamming_similarity" if torchhd is not None
        else "plain-torch copy of torchhd 5.8.4 hamming_similarity (torchhd not installed)",
        "device": dev, "nonvon_kernel": "torch.compile" if args.compile else
        ("plain torch (eager)" if dev == "cuda" else "numpy bitwise_count"),
        "dimensions": d, "classes": args.classes, "queries": n,
        "peer_s": t_peer, "nonvon_s": t_ours, "nonvon_incl_packing_s": t_pack,
        "peer_queries_per_s": n / t_peer, "nonvon_queries_per_s": n / t_ours,
        "ratio": t_peer / t_ours, "ratio_incl_packing": t_peer / t_pack,
        "dense_float32_gemm_s": t_dense, "ratio_vs_dense_gemm": t_dense / t_ours,
        "same_predictions": True, "bytes_per_class_vector": mem,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()

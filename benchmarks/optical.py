"""Optical layers, forward + backward: nonvon vs plain-torch references, with the cost-vs-size curve.

* **MZI mesh** (N modes, Clements, a batch of input vectors, gradients to every phase):
  nonvon's ``mesh_unitary`` (columns built in band storage, blocks multiplied in a tree, then
  one matrix product with the batch) against the direct plain-torch simulation that applies the
  mesh column by column to the batch (gather the two modes of every MZI of a column, 2 x 2
  update, scatter; the per-column indices are built once, outside the timing). Outputs and
  gradients are asserted equal. The time of a dense ``x @ W^T`` with an N x N
  complex weight is reported beside them as the floor (what the layer would cost if it were
  not a mesh). torchonn was the intended peer; its 0.0.8 sdist does not install (its setup
  imports the package, which needs torch and mmengine at build time: ``pip download torchonn``
  fails in "preparing metadata", checked again 2026-11-23), so the reference is written here.
* **Diffractive propagation** (P x P pixels, padded 2x, 5 phase layers, angular spectrum):
  ``DiffractiveNetwork.fields`` against the same computation written inline with ``torch.fft``
  (zero-padding around the field, the transfer function built once); outputs asserted equal.
  The ratio shows the model's overhead over bare FFTs (about 1; the model pads inside ``fft2``).

Both are timed at several sizes (the MZI layer always at N = 64 and 256, the diffractive stack
always at 200 x 200), and ``--out DIR`` writes the cost-vs-size curves (``optical_bench.png``)
and the JSON there. Prints, as its last line, one JSON object: ``ratio`` (reference / nonvon
time of the MZI layer at N = 256), ``ratio_mzi_64``, ``ratio_diffractive_200`` and every point.

    python benchmarks/optical.py --quick                       # CPU, well under a minute
    python benchmarks/optical.py --device cuda --out results/bench-optical
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from _timing import best_time  # benchmarks/ is on sys.path when run as a script

from nonvon._io import atomic_savefig, atomic_write_text
from nonvon.simulators.optical.diffraction import (
    DiffractiveGeometry,
    DiffractiveNetwork,
    angular_spectrum_transfer,
)
from nonvon.simulators.optical.mesh import MZIMesh, mzi_transfer


def column_indices(mesh: MZIMesh, device) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per column of the mesh: (MZI indices, top modes, bottom modes), on ``device``.

    Built once, outside the timed region, so the reference does not pay a host sync per column.
    """
    col, top = mesh.layout.index
    out = []
    for c in range(mesh.layout.n_columns):
        k = torch.nonzero(col == c).flatten()
        out.append((k.to(device), top[k].to(device), (top[k] + 1).to(device)))
    return out


def reference_mesh(x: torch.Tensor, mesh: MZIMesh, columns=None) -> torch.Tensor:
    """The mesh applied to a batch column by column (the direct simulation), ``(B, N)``."""
    columns = columns if columns is not None else column_indices(mesh, x.device)
    t00, t01, t10, t11 = mzi_transfer(mesh.theta, mesh.phi)
    for k, i, j in columns:
        a, b = x[:, i], x[:, j]
        x = x.index_copy(1, i, t00[k] * a + t01[k] * b).index_copy(1, j, t10[k] * a + t11[k] * b)
    return x * torch.polar(torch.ones_like(mesh.out_phase), mesh.out_phase)


def bench_mzi(n: int, batch: int, device: str, reps: int) -> dict:
    torch.manual_seed(n)
    mesh = MZIMesh(n).to(device)
    x = torch.randn(batch, n, dtype=torch.complex64, device=device)
    target = torch.randn(batch, n, dtype=torch.complex64, device=device)

    def loss(y):
        return (y - target).abs().pow(2).mean()

    def ours():
        mesh.zero_grad(set_to_none=True)
        loss(mesh(x)).backward()

    columns = column_indices(mesh, device)

    def ref():
        mesh.zero_grad(set_to_none=True)
        loss(reference_mesh(x, mesh, columns)).backward()

    w = torch.randn(n, n, dtype=torch.complex64, device=device, requires_grad=True)

    def dense():
        w.grad = None
        loss(x @ w.T).backward()

    with torch.no_grad():
        err = (mesh(x) - reference_mesh(x, mesh)).abs().max().item()
    assert err < 1e-4 * math.sqrt(n), f"N={n}: nonvon and the reference differ by {err}"
    mesh.zero_grad(set_to_none=True)
    loss(mesh(x)).backward()
    g1 = mesh.theta.grad.clone()
    mesh.zero_grad(set_to_none=True)
    loss(reference_mesh(x, mesh)).backward()
    assert torch.allclose(g1, mesh.theta.grad, atol=1e-4, rtol=1e-3), f"N={n}: gradients differ"
    t_ours, t_ref, t_dense = (best_time(f, device, reps) for f in (ours, ref, dense))
    return {"n": n, "batch": batch, "nonvon_s": t_ours, "reference_s": t_ref, "dense_matmul_s": t_dense,
            "ratio": t_ref / t_ours, "max_abs_diff": err}


def reference_fields(net: DiffractiveNetwork, images: torch.Tensor,
                     h: torch.Tensor | None = None) -> torch.Tensor:
    """The same stack with bare torch.fft calls (``h``: the transfer function, built here if not given)."""
    g = net.geometry
    n, m = g.n_pixels, g.n_pixels * g.pad
    lo = (m - n) // 2
    if h is None:
        h = angular_spectrum_transfer(m, g.pitch_m, g.wavelength_m, g.spacing_m).to(images.device)

    def prop(u):
        big = torch.zeros(u.shape[0], m, m, dtype=u.dtype, device=u.device)
        big[:, lo:lo + n, lo:lo + n] = u
        return torch.fft.ifft2(torch.fft.fft2(big) * h)[:, lo:lo + n, lo:lo + n]

    u = prop(net.encode(images))
    for k in range(g.n_layers):
        u = prop(u * torch.exp(1j * net.phase[k]))
    return u


def bench_diffractive(p: int, batch: int, device: str, reps: int) -> dict:
    geo = DiffractiveGeometry.from_pixels(frequency_hz=0.4e12, n_pixels=p, pitch_m=400e-6, spacing_m=0.03,
                                          n_layers=5)
    torch.manual_seed(p)
    net = DiffractiveNetwork(geo, 10).to(device)
    with torch.no_grad():
        net.phase.uniform_(0, 2 * math.pi)
    x = torch.rand(batch, 28, 28, device=device)

    def ours():
        net.zero_grad(set_to_none=True)
        net.fields(x).abs().pow(2).sum().backward()

    h = angular_spectrum_transfer(geo.n_pixels * geo.pad, geo.pitch_m, geo.wavelength_m,
                                  geo.spacing_m).to(device)

    def ref():
        net.zero_grad(set_to_none=True)
        reference_fields(net, x, h).abs().pow(2).sum().backward()

    with torch.no_grad():
        a, b = net.fields(x), reference_fields(net, x)
        err = ((a - b).abs().max() / a.abs().max()).item()
    assert err < 1e-4, f"P={p}: diffractive outputs differ by {err}"
    t_ours, t_ref = best_time(ours, device, reps), best_time(ref, device, reps)
    return {"pixels": p, "batch": batch, "nonvon_s": t_ours, "reference_s": t_ref, "ratio": t_ref / t_ours,
            "rel_diff": err}


def plot(mzi: list[dict], diff: list[dict], device: str, path: Path) -> None:
    """Cost vs size: the MZI layer (with the dense-matmul floor) and the diffractive stack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    n = [r["n"] for r in mzi]
    a.loglog(n, [1e3 * r["nonvon_s"] for r in mzi], "o-", label="nonvon mesh_unitary (banded blocks, tree)")
    a.loglog(n, [1e3 * r["reference_s"] for r in mzi], "s--", label="column-by-column reference")
    a.loglog(n, [1e3 * r["dense_matmul_s"] for r in mzi], "^:", label="dense x @ W^T (no mesh, floor)")
    a.set(xlabel="mesh size N (modes)", ylabel="forward + backward (ms)",
          title=f"MZI layer, batch {mzi[0]['batch']}, {device}")
    p = [r["pixels"] for r in diff]
    b.loglog(p, [1e3 * r["nonvon_s"] for r in diff], "o-", label="nonvon DiffractiveNetwork.fields")
    b.loglog(p, [1e3 * r["reference_s"] for r in diff], "s--", label="bare torch.fft reference")
    b.set(xlabel="layer side P (pixels; grid 2P x 2P)", ylabel="forward + backward (ms)",
          title=f"diffractive stack, 5 layers, batch {diff[0]['batch']}, {device}")
    for ax, ticks in ((a, n), (b, p)):
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer sizes and smaller batches (CPU, under a minute)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: steadier timings on a shared machine; "
                         "0 = torch's default)")
    ap.add_argument("--out", default=None, help="folder for optical_bench.png and optical_bench.json")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        mzi_sizes, d_sizes, batch, d_batch, reps = (16, 64, 256), (50, 100, 200), 64, 2, 2
    else:
        mzi_sizes, d_sizes = (16, 32, 64, 128, 256, 512), (50, 100, 150, 200, 300)
        batch, d_batch, reps = 256, 16, 5
    mzi = []
    for n in mzi_sizes:
        mzi.append(bench_mzi(n, batch, args.device, reps))
        r = mzi[-1]
        print(f"MZI N={n:4d}: nonvon {1e3 * r['nonvon_s']:8.2f} ms  column-by-column "
              f"{1e3 * r['reference_s']:8.2f} ms  ratio {r['ratio']:6.2f}   dense matmul "
              f"{1e3 * r['dense_matmul_s']:7.2f} ms", flush=True)
    diff = []
    for p in d_sizes:
        diff.append(bench_diffractive(p, d_batch, args.device, reps))
        r = diff[-1]
        print(f"diffractive {p}x{p}, 5 layers: nonvon {1e3 * r['nonvon_s']:8.2f} ms  bare torch.fft "
              f"{1e3 * r['reference_s']:8.2f} ms  ratio {r['ratio']:5.2f}", flush=True)
    by_n = {r["n"]: r for r in mzi}
    by_p = {r["pixels"]: r for r in diff}
    line = {"bench": "optical",
            "peer": "plain torch (column-by-column mesh; bare torch.fft); torchonn does not install",
            "device": args.device,
            "machine": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "ratio": by_n[256]["ratio"],
            "ratio_mzi_64": by_n[64]["ratio"],
            "ratio_diffractive_200": by_p[200]["ratio"], "mzi": mzi, "diffractive": diff}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot(mzi, diff, args.device, out / "optical_bench.png")
        atomic_write_text(out / "optical_bench.json", json.dumps(line, indent=1))
    print(json.dumps(line))


if __name__ == "__main__":
    main()

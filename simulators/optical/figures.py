"""The photon-budget figure of ``nonvon compare``: accuracy vs detected photons, from results rows.

``onn-mzi`` and ``onn-diffractive`` store an accuracy-vs-photons curve in each result's
``metrics`` as flat keys ``photon_curve.<i>.<field>`` (``results.json`` carries them in each
row's ``metrics``). :func:`photon_curves` reads them back; :func:`photon_budget_png` draws
every curve found in a list of rows (``None`` when there is none), beside Wang et al. 2022;
:func:`write_photon_budget` writes that figure and a report section (``photon_budget.png`` and
``photon_budget.section.json``, the form ``nonvon.report.load_sections`` reads) into a results
folder. A report writer calls, before it renders::

    from nonvon.simulators.optical.figures import write_photon_budget

    write_photon_budget(rows, out_dir)   # writes nothing when no row carries a curve

and on a finished results folder: ``python -m nonvon.simulators.optical.figures RESULTS_DIR``.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nonvon.simulators.optical.common import photon_energy_j

__all__ = ["WANG_2022", "HAMERLY_2019_J_PER_MAC", "PHOTON_BUDGET_FIGURE", "PHOTON_BUDGET_SECTION",
           "photon_curves", "curves_in_rows", "accuracy_at", "photon_budget_png", "photon_budget_section",
           "write_photon_budget", "main"]

PHOTON_BUDGET_FIGURE = "photon_budget.png"
PHOTON_BUDGET_SECTION = "photon_budget.section.json"

# (detected photons per multiplication, MNIST test accuracy): Wang et al., "An optical neural
# network using less than 1 photon per multiplication", Nat. Commun. 13, 123 (2022), abstract
# and Fig. 3: 99% at about 3.1 photons per multiplication, about 90% at 0.66 (a free-space,
# incoherent optical matrix-vector multiplier; the photons are signal photons, no local oscillator).
WANG_2022 = ((3.1, 0.99), (0.66, 0.90))
# Hamerly et al., Phys. Rev. X 9, 021032 (2019), abstract: the standard quantum limit of optical
# neural networks "can be as low as 50 zJ/MAC".
HAMERLY_2019_J_PER_MAC = 50e-21
PREFIX = "photon_curve."


def photon_curves(metrics: Mapping[str, float]) -> list[dict[str, float]]:
    """The points of the curve stored in ``metrics`` (``photon_curve.<i>.<field>``), in budget order."""
    points: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        if not key.startswith(PREFIX):
            continue
        parts = key[len(PREFIX):].split(".", 1)
        if len(parts) == 2 and parts[0].isdigit():
            points.setdefault(int(parts[0]), {})[parts[1]] = float(value)
    return [points[i] for i in sorted(points)]


def curves_in_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (task, simulator, seed) cell whose metrics hold a photon curve.

    Rows of the same cell priced on several presets carry the same metrics; the cell is kept once.
    Each entry: ``task``, ``simulator``, ``seed``, ``n_samples``, ``points``.
    """
    seen, out = set(), []
    for r in rows:
        metrics = r.get("metrics") or {}
        key = (r.get("task"), r.get("simulator"), r.get("seed"))
        if key in seen:
            continue
        points = photon_curves(metrics)
        if points:
            seen.add(key)
            out.append({"task": key[0], "simulator": key[1], "seed": key[2], "points": points,
                        "n_samples": int(metrics.get(PREFIX + "n_samples", 0))})
    return out


def photon_budget_png(rows: Iterable[Mapping[str, Any]], *, wavelength_nm: float = 1550.0) -> bytes | None:
    """Accuracy vs detected photons for every curve in ``rows``; ``None`` if there is none.

    Left panel: per multiply-accumulate (``onn-mzi``; signal plus local oscillator, solid, and
    signal alone, dashed), with Wang et al. 2022 and the 50 zJ/MAC bound (in photons at
    ``wavelength_nm``). Right panel: per inference, all detectors together (``onn-diffractive``).
    """
    curves = curves_in_rows(rows)
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_mac = [c for c in curves if "photons_per_mac" in c["points"][0]]
    per_inf = [c for c in curves if "photons_per_inference" in c["points"][0]]
    panels = [p for p in (per_mac, per_inf) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    seeds = {c["seed"] for c in curves}
    for ax, group in zip(axes[0], panels, strict=True):
        for i, c in enumerate(group):
            label = f"{c['simulator']} on {c['task']}" + (f" (seed {c['seed']})" if len(seeds) > 1 else "")
            label += f", {c['n_samples']} test samples"
            color = plt.get_cmap("tab10")(i % 10)
            acc = [100 * p["accuracy"] for p in c["points"]]
            if group is per_mac:
                ax.semilogx([p["detected_photons_per_mac"] for p in c["points"]], acc, "o-", color=color,
                            label=label + ": signal + LO")
                ax.semilogx([p["detected_signal_photons_per_mac"] for p in c["points"]], acc, "s--",
                            color=color, alpha=0.6, label=label + ": signal only")
            else:
                ax.semilogx([p["detected_photons"] for p in c["points"]], acc, "o-", color=color, label=label)
        if group is per_mac:
            ax.plot(*zip(*[(p, 100 * a) for p, a in WANG_2022], strict=True), "r*", ms=13,
                    label="Wang et al. 2022 (incoherent, MNIST)")
            ax.axvline(HAMERLY_2019_J_PER_MAC / photon_energy_j(wavelength_nm * 1e-9), color="gray", ls=":",
                       label=f"50 zJ/MAC at {wavelength_nm:.0f} nm (Hamerly et al. 2019)")
            ax.set(xlabel="detected photons per MAC", title="MZI mesh: shot noise at the homodyne receivers")
        else:
            ax.set(xlabel="detected photons per inference (all detectors)",
                   title="diffractive stack: shot noise at the class detectors")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Accuracy vs photon budget (every other setting as configured)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def accuracy_at(photons: list[float], accuracy: list[float], x: float) -> float | None:
    """Accuracy at ``x`` photons, linear in log photons between measured points (``None`` outside)."""
    pts = sorted((math.log10(p), a) for p, a in zip(photons, accuracy, strict=True) if p > 0)
    lx = math.log10(x)
    if not pts or not pts[0][0] <= lx <= pts[-1][0]:
        return None
    for (x0, a0), (x1, a1) in zip(pts, pts[1:], strict=False):
        if x0 <= lx <= x1:
            return a0 if x1 == x0 else a0 + (a1 - a0) * (lx - x0) / (x1 - x0)
    return pts[0][1]  # a single point at x


def photon_budget_section(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A report section (``nonvon.report.load_sections`` form) on the curves in ``rows``, or ``None``.

    Its table puts each MZI curve beside Wang et al. 2022 at their photon counts, with the ratio.
    """
    curves = curves_in_rows(rows)
    if not curves:
        return None
    table = []
    for c in curves:
        if "photons_per_mac" not in c["points"][0]:
            continue
        acc = [p["accuracy"] for p in c["points"]]
        for photons, theirs in WANG_2022:
            cells = [c["simulator"], c["task"], f"{photons:g}", f"{100 * theirs:.0f}%"]
            for field in ("detected_photons_per_mac", "detected_signal_photons_per_mac"):
                ours = accuracy_at([p[field] for p in c["points"]], acc, photons)
                cells.append("outside the curve" if ours is None
                             else f"{100 * ours:.2f}% ({ours / theirs:.3f})")
            table.append(cells)
    blocks: list[dict[str, Any]] = [
        {"p": "Each optical simulator re-ran the first test samples at several photon budgets (shot noise "
              "on, every other device setting as configured; the photon_curve option) and stored the "
              "curve in its results (metrics photon_curve.<i>.<field> in results.json). MZI meshes "
              "count photons per multiply-accumulate at the homodyne photodiodes, with the local "
              "oscillator (what the laser must supply) and without it; diffractive stacks count the "
              "photons all class detectors collect per inference."},
        {"img": PHOTON_BUDGET_FIGURE, "alt": "accuracy vs detected photons"}]
    if table:
        blocks += [{"p": "Beside Wang et al., Nat. Commun. 13, 123 (2022) (an incoherent free-space "
                         "multiplier, MNIST, signal photons only): ours at their photon counts, "
                         "interpolated in log photons, and the ratio ours / theirs."},
                   {"table": {"header": ["simulator", "task", "photons per MAC", "Wang et al. 2022",
                                         "ours, signal + LO (ratio)", "ours, signal only (ratio)"],
                              "rows": table}}]
    return {"title": "Accuracy vs photon budget (optical)", "order": 50, "blocks": blocks}


def write_photon_budget(rows: Iterable[Mapping[str, Any]], out_dir: str | Path) -> Path | None:
    """Write ``photon_budget.png`` and ``photon_budget.section.json`` into ``out_dir`` (atomically).

    Returns the figure's path, or ``None`` (and writes nothing) when no row carries a curve.
    """
    from nonvon._io import atomic_write_bytes, atomic_write_text

    rows = list(rows)
    png = photon_budget_png(rows)
    if png is None:
        return None
    out = Path(out_dir)
    atomic_write_bytes(out / PHOTON_BUDGET_FIGURE, png)
    atomic_write_text(out / PHOTON_BUDGET_SECTION, json.dumps(photon_budget_section(rows), indent=1))
    return out / PHOTON_BUDGET_FIGURE


def main(argv: list[str] | None = None) -> int:
    """``python -m nonvon.simulators.optical.figures RESULTS_DIR``: write the figure and section there."""
    from nonvon.errors import ConfigError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nonvon.simulators.optical.figures RESULTS_DIR", file=sys.stderr)
        return 2
    path = Path(args[0]) / "results.json"
    try:
        rows = json.loads(path.read_text())["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TypeError("rows is not a list of objects")
    except (OSError, ValueError, KeyError, TypeError) as e:
        err = ConfigError(f"cannot read rows from {path}: {e}",
                          "point at a folder written by `nonvon compare`")
        print(f"error: {err}", file=sys.stderr)
        return 2
    written = write_photon_budget(rows, args[0])
    if written is None:
        print(f"no photon-budget curve in {path} "
              "(onn-mzi and onn-diffractive write one unless photon_curve=())")
        return 1
    print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

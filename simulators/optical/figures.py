"""The photon-budget section of the ``nonvon compare`` report: accuracy vs detected photons.

``onn-mzi`` and ``onn-diffractive`` attach a :class:`~nonvon.simulators.optical.extras.PhotonCurve`
to each result's extras (``results.json`` carries it in each row's ``extras["photon_curve"]``;
results written earlier hold it as flat ``photon_curve.<i>.<field>`` metrics, read too).
:func:`curves_in_rows` finds them; :func:`photon_budget_png` draws every curve beside Wang et
al. 2022; :func:`report_section` is this package's entry in the ``nonvon.report_sections``
group, so ``nonvon compare`` and ``nonvon report`` add the figure and its table by themselves.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nonvon.result import extras_from_dict, find_extra
from nonvon.simulators.optical.device import photon_energy_j
from nonvon.simulators.optical.extras import PER_MAC, PhotonCurve

__all__ = ["WANG_2022", "HAMERLY_2019_J_PER_MAC", "PHOTON_BUDGET_FIGURE", "curve_of_row",
           "curves_in_rows", "accuracy_at", "photon_budget_png", "photon_budget_section",
           "report_section"]

PHOTON_BUDGET_FIGURE = "photon_budget.png"

# (detected photons per multiplication, MNIST test accuracy): Wang et al., "An optical neural
# network using less than 1 photon per multiplication", Nat. Commun. 13, 123 (2022), abstract
# and Fig. 3: 99% at about 3.1 photons per multiplication, about 90% at 0.66 (a free-space,
# incoherent optical matrix-vector multiplier; the photons are signal photons, no local oscillator).
WANG_2022 = ((3.1, 0.99), (0.66, 0.90))
# Hamerly et al., Phys. Rev. X 9, 021032 (2019), abstract: the standard quantum limit of optical
# neural networks "can be as low as 50 zJ/MAC".
HAMERLY_2019_J_PER_MAC = 50e-21


def curve_of_row(row: Mapping[str, Any]) -> PhotonCurve | None:
    """The photon curve a results row carries: its ``extras``, else the flat metric keys of
    results written before typed extras; ``None`` when it has none."""
    extras = row.get("extras")
    if isinstance(extras, Mapping) and extras:
        curve = find_extra(extras_from_dict(dict(extras)), PhotonCurve)
        if curve is not None:
            return curve
    metrics = row.get("metrics")
    return PhotonCurve.from_metrics(metrics) if isinstance(metrics, Mapping) else None


def curves_in_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (task, simulator, seed) cell whose metrics hold a photon curve.

    Rows of the same cell priced on several presets carry the same metrics; the cell is kept once.
    Each entry: ``task``, ``simulator``, ``seed``, ``n_samples``, ``points``.
    """
    seen, out = set(), []
    for r in rows:
        key = (r.get("task"), r.get("simulator"), r.get("seed"))
        if key in seen:
            continue
        curve = curve_of_row(r)
        if curve is not None and curve.budgets:
            seen.add(key)
            out.append({"task": key[0], "simulator": key[1], "seed": key[2], "curve": curve,
                        "points": curve.points(), "n_samples": curve.n_samples})
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

    per_mac = [c for c in curves if c["curve"].unit == PER_MAC]
    per_inf = [c for c in curves if c["curve"].unit != PER_MAC]
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
    """The title, order and blocks of the report section on the curves in ``rows``, or ``None``.

    Its table puts each MZI curve beside Wang et al. 2022 at their photon counts, with the ratio.
    """
    curves = curves_in_rows(rows)
    if not curves:
        return None
    table = []
    for c in curves:
        if c["curve"].unit != PER_MAC:
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
              "curve in its results (extras.photon_curve of each row in results.json). MZI meshes "
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


def report_section(rows: Iterable[Mapping[str, Any]], out_dir: str | Path):
    """The ``nonvon.report_sections`` entry: the photon-budget figure and its table, or ``None``
    when no row carries a curve (the report then has no such section)."""
    from nonvon.report import ReportSection

    rows = list(rows)
    png = photon_budget_png(rows)
    if png is None:
        return None
    section = photon_budget_section(rows)
    return ReportSection(title=section["title"], blocks=tuple(section["blocks"]), order=section["order"],
                         images={PHOTON_BUDGET_FIGURE: png})

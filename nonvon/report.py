"""Report and figures from result rows (``nonvon report`` rebuilds them from results.json).

``write_report(rows, out_dir)`` writes, each atomically:

- ``accuracy_vs_energy.png``: one panel per task, accuracy against energy per inference on a
  log axis, with the Pareto front, the hardware measurements (stars) apart from the modelled
  points, and the physical limits for the networks that ran (Landauer for digital bits, the
  optical shot-noise bound);
- ``energy_breakdown.png``: where each simulator's modelled energy goes, per preset and task;
- ``latency.png``: modelled (and measured) device latency per inference;
- each figure also as ``.svg`` and ``.pdf`` beside its PNG (vector, for papers; no dates or
  random ids in them, so the same rows give the same bytes);
- ``report.md`` and ``report.html``: the same tables, the HTML page self-contained (figures
  inline as data URIs, no external assets).

Plugins add sections through the ``nonvon.report_sections`` entry-point group (a callable
``f(rows, out_dir)`` returning a :class:`ReportSection`, a list of them or ``None``; the
optical photon-budget figure comes this way), and studies by writing ``<name>.section.json``
into the results folder (see :func:`load_sections`); ``nonvon report`` builds both again when
it rebuilds. Paradigms' order, colours and headline presets come from the paradigm registry
(:mod:`nonvon.paradigms`), bounds from each preset's ``bound`` field: this module names no
plugin.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import itertools
import json
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_bytes, atomic_write_text
from nonvon.energy_models import landauer_j
from nonvon.errors import ConfigError, NonvonError
from nonvon.paradigms import DEFAULT_COLOUR

__all__ = ["write_report", "markdown_table", "format_si", "pareto_front", "physical_limits",
           "is_bound_preset", "optical_macs_per_inference", "load_sections", "FIGURES",
           "SHOT_NOISE_J_PER_MAC", "paradigm_colour", "render_markdown",
           "render_html", "headline_rows", "headline_markdown", "row_boundary",
           "cheapest_sentence", "break_even_rows", "BOUNDARY_ORDER", "ReportSection",
           "plugin_sections", "DEFAULT_TITLE"]

FIGURES = ("accuracy_vs_energy.png", "energy_breakdown.png", "latency.png")
DEFAULT_TITLE = "nonvon comparison"  # a report's title unless a sweep's grid describes itself

# Hamerly et al., "Large-Scale Optical Neural Networks Based on Photoelectric Multiplication",
# Phys. Rev. X 9, 021032 (2019), abstract: the standard quantum (shot-noise) limit of optical
# energy is "as low as 50 zJ/MAC" (the figure behind the photonic-limit preset).
SHOT_NOISE_J_PER_MAC = 50e-21
_MARKERS = "osD^vPX<>phd8"  # the most distinct shapes first
_MEASURED_MARKER = "*"


def _registry():
    from nonvon.registry import registry

    return registry()


def _paradigm(name: str):
    return _registry().paradigms.get(name)


def __getattr__(name: str):
    if name == "PARADIGM_ORDER":  # the registered paradigms in display order (a live view)
        return tuple(_registry().paradigms)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def paradigm_colour(paradigm: str) -> str:
    """The main colour of a paradigm in every figure (grey for one nothing declares here)."""
    p = _paradigm(paradigm)
    return p.colour if p else DEFAULT_COLOUR


def format_si(value: float | None, unit: str) -> str:
    """``3.2e-6, "J"`` -> ``"3.20 µJ"``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return f"0 {unit}"
    prefixes = [(1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"),
                (1e-15, "f"), (1e-18, "a"), (1e-21, "z")]
    for scale, p in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {p}{unit}"
    return f"{value:.3g} {unit}"


def is_bound_preset(name: str) -> bool:
    """Whether the registered preset ``name`` prices a physical bound, not a device (its TOML
    says ``bound = true``, e.g. ``photonic-limit``); ``False`` for a name not registered here.

    Its points are drawn hollow and kept off the Pareto front and the energy breakdown.
    """
    p = _registry().presets.get(name)
    return bool(p and p.bound)


def _row_label(row: dict[str, Any]) -> str:
    return f"{sim_label(row)} @ {row['preset']}"


def sim_label(row: dict[str, Any]) -> str:
    """``simulator[config label]``: the simulator and what tells this config of it from the
    others of a sweep (rows of :func:`seed_summary` already carry it in ``simulator``)."""
    cfg = row.get("config_label")
    return f"{row['simulator']}[{cfg}]" if cfg and not row.get("n_seeds") else row["simulator"]


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def seed_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, simulator config, preset, kind): the rows of its seeds merged.

    Each is the group's first row with ``simulator`` set to :func:`sim_label`, the accuracy,
    energies (nominal, low, high, by class, per kind) and latency replaced by their means over
    the seeds, and ``n_seeds``, ``seeds``, ``accuracy_sd`` and ``energy_sd_j`` (sample
    standard deviations) added. Figures and the headline, Pareto and across-seeds tables
    are drawn from these, so a sweep's configs stay apart and its seeds give error bars.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        key = (r["task"], sim_label(r), r["preset"], r["kind"], row_boundary(r))
        groups.setdefault(key, []).append(r)
    out = []
    for (_, label, *_), rs in groups.items():
        acc, acc_sd = _mean_sd([r["accuracy"] for r in rs])
        energy, e_sd = _mean_sd([r["energy_per_inference_j"] for r in rs])
        merged = {**rs[0], "simulator": label, "accuracy": acc, "energy_per_inference_j": energy,
                  "accuracy_sd": acc_sd, "energy_sd_j": e_sd, "n_seeds": len(rs),
                  "seeds": [r.get("seed") for r in rs]}
        for field in ("energy_low_j", "energy_high_j", "latency_per_inference_s"):
            vals = [r.get(field) for r in rs]
            if all(isinstance(v, (int, float)) for v in vals):
                merged[field] = statistics.fmean(vals)
        for field in ("energy_by_class_j", "energy_breakdown_j"):
            dicts = [r.get(field) or {} for r in rs]
            keys = dict.fromkeys(k for d in dicts for k in d)
            merged[field] = {k: (statistics.fmean(d.get(k) or 0.0 for d in dicts)
                                 if any(d.get(k) is not None for d in dicts) else None)
                             for k in keys}
        out.append(merged)
    return out


def _pm(mean: float, sd: float, n: int, fmt) -> str:
    """``mean ± sd`` when there is more than one seed, else the value alone."""
    return f"{fmt(mean)} ± {fmt(sd)}" if n > 1 else fmt(mean)


def _acc(r: dict[str, Any]) -> str:
    return _pm(r["accuracy"], r.get("accuracy_sd", 0.0), r.get("n_seeds", 1),
               lambda v: f"{100 * v:.2f}%")


def _energy_text(r: dict[str, Any]) -> str:
    return _pm(r["energy_per_inference_j"], r.get("energy_sd_j", 0.0), r.get("n_seeds", 1),
               lambda v: format_si(v, "J"))


# -- rows -------------------------------------------------------------------------------------
def _check_rows(rows: Sequence[Any]) -> None:
    """Refuse rows a figure cannot draw, naming the row and the fix (results.json is input)."""
    needed = {"task": str, "simulator": str, "paradigm": str, "preset": str, "kind": str,
              "accuracy": (int, float), "energy_per_inference_j": (int, float)}
    for i, r in enumerate(rows):
        bad = ("is not an object" if not isinstance(r, dict) else
               next((f"field {k!r} is missing or not a {t.__name__ if isinstance(t, type) else 'number'}"
                     for k, t in needed.items()
                     if not isinstance(r.get(k), t) or isinstance(r.get(k), bool)), None))
        if bad:
            raise ConfigError(f"results row {i} {bad}",
                              "rerun `nonvon compare` to regenerate results.json")


def _energy(r: dict[str, Any]) -> float | None:
    e = r.get("energy_per_inference_j")
    # a measurement at or below the counter's noise floor cannot go on a log axis
    return float(e) if isinstance(e, (int, float)) and math.isfinite(e) and e > 0 else None


def _device_rows(rows):
    """Rows that stand for a device: measured, or modelled on a preset that is not a bound."""
    return [r for r in rows if r["kind"] == "measured" or not is_bound_preset(r["preset"])]


#: Rankings compare rows at one boundary only (DESIGN.md 2b); panels and tables in this order.
BOUNDARY_ORDER = ("chip", "system", "core")


def row_boundary(r: dict[str, Any]) -> str:
    """The boundary a row is priced at: its preset's, ``system`` for a wall-power measurement,
    ``unstated`` for rows written before boundaries existed (ranked only among themselves)."""
    b = r.get("boundary")
    if isinstance(b, str) and b:
        return b
    return "system" if r.get("kind") == "measured" else "unstated"


def _boundaries(rows) -> list[str]:
    present = list(dict.fromkeys(row_boundary(r) for r in rows))
    return sorted(present, key=lambda b: (BOUNDARY_ORDER.index(b) if b in BOUNDARY_ORDER
                                          else len(BOUNDARY_ORDER), b))


def _order_key(r: dict[str, Any]):
    p = r.get("paradigm", "")
    known = _paradigm(p)
    # declared paradigms by their order; any other (its plugin not installed here) after them
    return ((0, known.order) if known else (1, 0), p,
            r["simulator"], r["kind"] != "modelled", r["preset"])


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points on the (energy, accuracy) Pareto front, cheapest first.

    A point is on the front when no other point costs no more energy and is at least as
    accurate, with one of the two strictly better. Of identical points the first is kept.

    Args:
        points: ``(energy_j, accuracy)`` pairs; energies must be finite.

    Returns:
        Indices into ``points``, by increasing energy (and so increasing accuracy).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def optical_macs_per_inference(row: dict[str, Any]) -> float | None:
    """Optical multiply-accumulates per inference of the network behind a row, if known.

    Read from the row's ``metrics["optical_macs_per_inference"]``, which a simulator whose
    network multiplies with light reports (``onn-mzi`` does). ``None`` for other networks (a
    diffractive stack has no MAC count of its own).
    """
    metrics = row.get("metrics") or {}
    macs = metrics.get("optical_macs_per_inference") if isinstance(metrics, dict) else None
    if isinstance(macs, (int, float)) and not isinstance(macs, bool) and macs > 0:
        return float(macs)
    return None


def _landauer_of(row) -> float | None:
    ledger = row.get("ledger")
    if row["kind"] != "modelled" or not isinstance(ledger, dict):
        return None
    try:
        bound = landauer_j(ledger)
    except (NonvonError, TypeError, ValueError):  # a plugin's op kind not registered here
        return None
    return bound if bound > 0 else None


def physical_limits(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """The physical floors for the networks in ``rows`` (one task's rows).

    Returns:
        ``{"landauer": {"energy_j", "simulator"} | None, "shot_noise": {...} | None}``:
        the Landauer bound (kT ln 2 per digital bit overwritten, 300 K) of the cheapest
        digital ledger (of the paradigms whose floor it is: ``Paradigm.landauer_floor``), and
        the optical shot-noise bound (``SHOT_NOISE_J_PER_MAC`` x optical MACs per inference)
        of the smallest network whose optical MAC count is known.
    """
    out: dict[str, dict[str, Any] | None] = {"landauer": None, "shot_noise": None}
    for r in rows:
        p = _paradigm(r.get("paradigm", ""))
        if p is not None and not p.landauer_floor:
            continue  # e.g. light: its digital periphery is not the network's floor
        b = _landauer_of(r)
        if b and (out["landauer"] is None or b < out["landauer"]["energy_j"]):
            out["landauer"] = {"energy_j": b, "simulator": r["simulator"]}
    for r in rows:
        if r["kind"] != "modelled":
            continue
        macs = optical_macs_per_inference(r)
        if macs:
            b = macs * SHOT_NOISE_J_PER_MAC
            if out["shot_noise"] is None or b < out["shot_noise"]["energy_j"]:
                out["shot_noise"] = {"energy_j": b, "simulator": r["simulator"], "macs": macs}
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The full results table (one line per row) in Markdown."""
    header, body = _results_table(rows)
    return _md_table(header, body)


def _results_table(rows):
    header = ["task", "simulator", "config", "seed", "precision", "preset", "boundary", "kind",
              "accuracy", "energy / inference (low-high)", "latency / inference", "fit time",
              "eval time"]
    body = []
    for r in rows:
        rng = (f" ({format_si(r.get('energy_low_j'), 'J')} - {format_si(r.get('energy_high_j'), 'J')})"
               if r["kind"] == "modelled" else "")
        body.append([r["task"], r["simulator"], r.get("config_label") or "default",
                     str(r.get("seed", "")), r.get("precision") or "n/a", r["preset"],
                     row_boundary(r), r["kind"], f"{100 * r['accuracy']:.2f}%",
                     f"{format_si(r['energy_per_inference_j'], 'J')}{rng}",
                     format_si(r.get("latency_per_inference_s"), "s"),
                     _fit_time(r, 1), f"{r.get('sim_wall_s') or 0.0:.2f} s"])
    return header, body


# -- figures ----------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class FigureBytes(bytes):
    """A figure's PNG bytes, with the same figure as SVG (``svg``) and PDF (``pdf``) for
    papers."""

    svg: bytes | None = None
    pdf: bytes | None = None


#: The vector formats written beside each PNG figure, and what keeps them byte-stable: no
#: date, and (SVG) element ids from a fixed salt, so the same rows give the same files.
_VECTOR_FORMATS = {"svg": {"metadata": {"Date": None}},
                   "pdf": {"metadata": {"CreationDate": None}}}


def _png(fig) -> bytes:
    """The figure as PNG bytes (a :class:`FigureBytes` that also holds its SVG and PDF)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    out = FigureBytes(buf.getvalue())
    with _pyplot().rc_context({"svg.hashsalt": "nonvon"}):
        for fmt, kwargs in _VECTOR_FORMATS.items():
            vec = io.BytesIO()
            fig.savefig(vec, format=fmt, bbox_inches="tight", **kwargs)
            setattr(out, fmt, vec.getvalue())
    _pyplot().close(fig)
    return out


def _simulator_colours(rows) -> dict[str, str]:
    """One colour per simulator: a shade of its paradigm's hue (tab10 for undeclared paradigms)."""
    plt = _pyplot()
    sims = sorted({(r.get("paradigm", ""), r["simulator"]) for r in rows},
                  key=lambda ps: _order_key({"paradigm": ps[0], "simulator": ps[1], "kind": "",
                                             "preset": ""}))
    used: dict[str, int] = {}
    colours = {}
    for paradigm, sim in sims:
        k = used.get(paradigm, 0)
        used[paradigm] = k + 1
        declared = _paradigm(paradigm)
        shades = declared.colours if declared else None
        colours[sim] = shades[k % len(shades)] if shades else plt.get_cmap("tab10")(k % 10)
    return colours


def _preset_markers(rows) -> dict[str, tuple[str, str]]:
    """Marker shape and fill per preset; more presets than shapes cycle with half-filled shapes."""
    presets = list(dict.fromkeys(r["preset"] for r in sorted(rows, key=_order_key)
                                 if r["kind"] == "modelled"))
    fills = itertools.cycle([(m, f) for f in ("full", "left") for m in _MARKERS])
    return {p: next(fills) for p in presets}


def accuracy_vs_energy_png(rows: list[dict[str, Any]]) -> bytes:
    """One panel per task: colour = simulator, marker = preset, stars = hardware measurements.

    Modelled points carry their preset's low-high range as error bars; hollow points are
    priced on a bound preset (``bound = true``). The black staircase is the Pareto front of the
    device points (modelled and measured), each front point labelled. Floors, each drawn at
    its own network's accuracy as a line from the floor (the tick) to that network's cheapest
    point: the Landauer bound of the cheapest digital ledger and the optical shot-noise bound
    of the smallest optical network (when one ran and its MAC count is known).
    """
    plt = _pyplot()
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    bounds = _boundaries(rows)
    colours = _simulator_colours(rows)
    markers = _preset_markers(rows)
    fig, axes = plt.subplots(len(bounds), len(tasks), figsize=(7.5 * len(tasks), 6.4 * len(bounds)),
                             squeeze=False)
    drawn = set()
    panels = [(b, t) for b in bounds for t in tasks]
    for ax, (boundary, task) in zip(axes.flat, panels, strict=True):
        trow = [r for r in rows if r["task"] == task and row_boundary(r) == boundary]
        if not trow:
            ax.set_axis_off()
            ax.set_title(f"{task}, {boundary} boundary: no rows", fontsize=10)
            continue
        for r in trow:
            e = _energy(r)
            if e is None:
                continue
            acc = 100 * r["accuracy"]
            c = colours[r["simulator"]]
            yerr = 100 * r.get("accuracy_sd", 0.0)  # across seeds (seed_summary rows)
            if r["kind"] == "measured":
                ax.plot(e, acc, _MEASURED_MARKER, color=c, mec="black", ms=17, mew=1.2, zorder=5)
                if yerr:
                    ax.errorbar(e, acc, yerr=yerr, fmt="none", ecolor=c, capsize=3, zorder=5)
                continue
            shape, fill = markers[r["preset"]]
            bound = is_bound_preset(r["preset"])
            lo, hi = r.get("energy_low_j") or e, r.get("energy_high_j") or e
            ax.errorbar(e, acc, xerr=[[max(e - lo, 0.0)], [max(hi - e, 0.0)]],
                        yerr=yerr or None, fmt=shape,
                        color=c, ecolor=c, mec=c if bound else "black", ms=8, capsize=3,
                        fillstyle="none" if bound else fill, mfc="none" if bound else c,
                        mfcalt="white", zorder=4)
        # the Pareto front of the device points
        dev = [r for r in _device_rows(trow) if _energy(r)]
        front = [dev[i] for i in pareto_front([(_energy(r), r["accuracy"]) for r in dev])]
        if front:
            xs = [_energy(r) for r in front]
            ys = [100 * r["accuracy"] for r in front]
            ax.step(xs + [xs[-1] * 30], ys + [ys[-1]], where="post", color="black", lw=1.3,
                    alpha=0.7, zorder=3)
            listing = []
            for k, r in enumerate(front, 1):
                ax.annotate(str(k), (xs[k - 1], ys[k - 1]), xytext=(5, 5), textcoords="offset points",
                            fontsize=7.5, fontweight="bold", zorder=6)
                what = (f"{r['simulator']}, measured {r['preset']}" if r["kind"] == "measured"
                        else _row_label(r))
                sd = (f" ± {100 * r['accuracy_sd']:.1f}" if r.get("n_seeds", 1) > 1 else "")
                listing.append(f"{k}. {what}: {format_si(xs[k - 1], 'J')}, {ys[k - 1]:.1f}{sd}%")
            ax.text(0.0, -0.13, "Pareto front:\n" + "\n".join(listing), transform=ax.transAxes,
                    va="top", ha="left", fontsize=7.5, family="monospace")
        limits = physical_limits(trow)
        for key, style, colour in (("landauer", "--", "black"), ("shot_noise", ":", "#d62728")):
            lim = limits[key]
            own = [r for r in trow if r["simulator"] == (lim or {}).get("simulator") and _energy(r)]
            if not own:
                continue
            # a bound belongs to one network: drawn at its accuracy, from the floor to its
            # cheapest point, so that no other network's point reads as crossing it
            drawn.add(key)
            floor, acc = lim["energy_j"], 100 * max(r["accuracy"] for r in own)
            ax.plot([floor, min(_energy(r) for r in own)], [acc, acc], color=colour, ls=style,
                    lw=1.2, zorder=2)
            ax.plot(floor, acc, marker="|", ms=16, mew=2, color=colour, zorder=2)
            ax.annotate(lim["simulator"], (floor, acc), xytext=(-3, 9), textcoords="offset points",
                        fontsize=7, color=colour, ha="left", va="bottom")
        ax.set_xscale("log")
        lo_x = [v["energy_j"] for v in limits.values() if v]
        energies = [e for e in (_energy(r) for r in trow) if e]
        if energies:
            ax.set_xlim(min(energies + lo_x) / 8, max(energies) * 40)
        ax.set_xlabel("energy per inference (J, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{task}, {boundary} boundary (ranked only against each other)", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    line = plt.Line2D
    handles = [line([], [], marker="s", ls="", ms=8, color=c, label=s) for s, c in colours.items()]
    handles += [line([], [], marker=m, ls="", ms=7, color="#777777", mec="black", fillstyle=f,
                     mfcalt="white", label=p) for p, (m, f) in markers.items()
                if not is_bound_preset(p)]
    handles += [line([], [], marker=m, ls="", ms=7, color="#777777", fillstyle="none",
                     label=f"{p} (a bound, not a device)") for p, (m, _) in markers.items()
                if is_bound_preset(p)]
    if any(r["kind"] == "measured" for r in rows):
        handles.append(line([], [], marker=_MEASURED_MARKER, ls="", ms=12, color="#777777",
                            mec="black", label="measured on hardware (NVML)"))
    handles.append(line([], [], color="black", lw=1.3, alpha=0.7, label="Pareto front (devices)"))
    if "landauer" in drawn:
        handles.append(line([], [], color="black", ls="--", lw=1.2,
                            marker="|", ms=10, mew=2,
                            label="Landauer bound (digital bits) of the named network"))
    if "shot_noise" in drawn:
        handles.append(line([], [], color="#d62728", ls=":", lw=1.2,
                            marker="|", ms=10, mew=2,
                            label="optical shot-noise bound of the named network"))
    fig.legend(handles=handles, fontsize=7.5, loc="center left", ncol=1 if len(handles) <= 18 else 2,
               bbox_to_anchor=(1.0, 0.55), frameon=False,
               title="colour: simulator\nmarker: preset (bar: low-high)" + (
                   "\nvertical bar: accuracy sd over seeds"
                   if any(r.get("n_seeds", 1) > 1 for r in rows) else ""), title_fontsize=8)
    fig.suptitle("Accuracy vs energy per inference, one panel per task and boundary")
    fig.tight_layout()
    return _png(fig)


# kinds that keep their own colour however small their share: the photonic breakdown the
# optical issue asks to see (laser, converters, detectors, holding power) is the point of it
ALWAYS_SHOWN = frozenset({"laser_optical_zj", "dac_conversion_step", "adc_conversion_step",
                          "modulator_symbol", "photodetector_read", "phase_shifter_hold"})


def _breakdown_kinds(rows, other_below: float = 0.02) -> list[str]:
    """Op kinds worth a colour: those with at least ``other_below`` of some row's energy,
    and the :data:`ALWAYS_SHOWN` kinds of any row that has them."""
    keep = set()
    for r in rows:
        keep |= ALWAYS_SHOWN & set(r.get("energy_breakdown_j") or {})
        total = r["energy_per_inference_j"] or 0.0
        for k, v in (r.get("energy_breakdown_j") or {}).items():
            if total > 0 and v / total >= other_below:
                keep.add(k)
    return sorted(keep - {"static"}) + (["static"] if "static" in keep else [])


def _breakdown_colours(rows, kinds: Sequence[str]) -> dict[str, Any]:
    """A colour per op kind, plus "other"; "static" is always dark grey.

    The kinds with the largest share of some bar take tab20's distinct dark shades first
    (its light shades and tab20b after them), so that the dominant kinds of neighbouring
    bars never get one hue's dark and light shade."""
    plt = _pyplot()
    palette = [*[plt.get_cmap("tab20")(i) for i in range(0, 20, 2) if i != 14],  # no greys:
               *[plt.get_cmap("tab20")(i) for i in range(1, 20, 2) if i != 15],  # they are
               *[plt.get_cmap("tab20b")(i) for i in range(0, 20, 4)]]            # static, other

    def top_share(kind):
        return max(((r.get("energy_breakdown_j") or {}).get(kind, 0.0) / r["energy_per_inference_j"]
                    for r in rows if r["energy_per_inference_j"]), default=0.0)

    by_share = sorted((k for k in kinds if k != "static"), key=lambda k: (-top_share(k), k))
    colour = {k: palette[i % len(palette)] for i, k in enumerate(by_share)}
    colour["static"] = "#4d4d4d"
    colour["other"] = "#d9d9d9"
    return colour


def energy_breakdown_png(rows: list[dict[str, Any]]) -> bytes:
    """Share of each op kind in the modelled energy, one bar per simulator and preset.

    One column per task (the same bars in the same order), the total at the end of each
    bar; kinds below 2% of every bar are pooled as "other". Bound presets are left out.
    """
    plt = _pyplot()
    modelled = [r for r in rows if r["kind"] == "modelled" and not is_bound_preset(r["preset"])]
    if not modelled:
        return _empty_png("no modelled rows to break down")
    tasks = list(dict.fromkeys(r["task"] for r in modelled))
    bars = list(dict.fromkeys((r["simulator"], r["preset"])
                              for r in sorted(modelled, key=_order_key)))
    kinds = _breakdown_kinds(modelled)
    colour = _breakdown_colours(modelled, kinds)
    height = 0.3 * len(bars) + 1.6
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks) + 2.4, height),
                             squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks, strict=True):
        by_bar = {(r["simulator"], r["preset"]): r for r in modelled if r["task"] == task}
        for i, key in enumerate(bars):
            r = by_bar.get(key)
            if r is None:
                ax.text(1, i, "not run", va="center", fontsize=7, color="grey")
                continue
            total = r["energy_per_inference_j"] or 0.0
            parts = r.get("energy_breakdown_j") or {}
            left = 0.0
            if total > 0:
                shares = {k: 100 * parts.get(k, 0.0) / total for k in kinds}
                shares["other"] = max(0.0, 100.0 - sum(shares.values()))
                for k in [*kinds, "other"]:
                    if shares[k] > 0:
                        ax.barh(i, shares[k], left=left, color=colour[k], height=0.75)
                        left += shares[k]
            ax.text(101.5, i, format_si(total, "J"), va="center", fontsize=7)
        _paradigm_separators(ax, bars, modelled)
        ax.set_xlim(0, 122)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_ylim(len(bars) - 0.5, -0.5)
        ax.set_xlabel("share of modelled energy per inference (%)", fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(bars)), [f"{s} @ {p}" for s, p in bars], fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[k], label=k) for k in [*kinds, "other"]]
    fig.legend(handles=handles, fontsize=7, loc="upper center", ncol=min(6, len(handles)),
               bbox_to_anchor=(0.5, 0.0), frameon=False,
               title="op kind (other: kinds under 2% of every bar)", title_fontsize=8)
    fig.suptitle("Where the modelled energy goes")
    fig.tight_layout()
    return _png(fig)


def _paradigm_separators(ax, bars, rows) -> None:
    """Thin lines between the bars of different paradigms (bars are in paradigm order)."""
    paradigm = {r["simulator"]: r.get("paradigm", "") for r in rows}
    for i in range(1, len(bars)):
        if paradigm.get(bars[i][0]) != paradigm.get(bars[i - 1][0]):
            ax.axhline(i - 0.5, color="black", lw=0.6, alpha=0.6)


def latency_png(rows: list[dict[str, Any]]) -> bytes:
    """Device latency per inference (log axis), one bar per simulator and preset, per task.

    Modelled latencies come from the preset's timing (a roofline plus serial steps);
    measured ones (hatched) are wall time per inference on the hardware. Rows whose preset
    gives no timing are listed under the figure instead of drawn.
    """
    plt = _pyplot()
    timed = [r for r in rows if isinstance(r.get("latency_per_inference_s"), (int, float))
             and r["latency_per_inference_s"] > 0]
    # no-break spaces keep each "simulator @ preset" on one line when the list wraps
    untimed = sorted({_row_label(r).replace(" ", "\u00a0") for r in rows
                      if r not in timed and r["kind"] == "modelled"})
    if not timed:
        return _empty_png("no preset in these results gives a device latency\n(no timing in: "
                          + ", ".join(untimed) + ")")
    tasks = list(dict.fromkeys(r["task"] for r in timed))
    bars = list(dict.fromkeys((r["simulator"], r["preset"]) for r in sorted(timed, key=_order_key)))
    colours = _simulator_colours(rows)
    kinds = {(r["simulator"], r["preset"]): r["kind"] for r in timed}
    all_t = [r["latency_per_inference_s"] for r in timed]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.0 * len(tasks) + 2.4, 0.32 * len(bars) + 1.8),
                             squeeze=False, sharey=True)
    for ax, task in zip(axes[0], tasks, strict=True):
        by_bar = {(r["simulator"], r["preset"]): r for r in timed if r["task"] == task}
        for i, key in enumerate(bars):
            r = by_bar.get(key)
            if r is None:
                continue
            t = r["latency_per_inference_s"]
            ax.barh(i, t, left=min(all_t) / 10, color=colours[key[0]], height=0.7,
                    hatch="///" if r["kind"] == "measured" else None, edgecolor="black", lw=0.4)
            ax.text(t * 1.4, i, format_si(t, "s"), va="center", fontsize=7)
        _paradigm_separators(ax, bars, rows)
        ax.set_xscale("log")
        ax.set_xlim(min(all_t) / 10, max(all_t) * 300)
        ax.set_ylim(len(bars) - 0.5, -0.5)
        ax.set_xlabel("device latency per inference (s, log scale)", fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.grid(True, axis="x", which="major", alpha=0.3)
    axes[0][0].set_yticks(range(len(bars)), [
        f"{s} @ {p}" + (" (measured)" if kinds[(s, p)] == "measured" else "") for s, p in bars],
        fontsize=7)
    note = "hatched: measured on hardware (wall time / inferences); plain: modelled from the preset"
    if untimed:
        note += "\nnot drawn, the preset gives no timing: " + _wrap(", ".join(untimed), 130)
    fig.text(0.5, 0.0, note, ha="center", va="top", fontsize=7, wrap=True)
    fig.suptitle("Device latency per inference")
    fig.tight_layout()
    return _png(fig)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def _empty_png(message: str) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9)
    return _png(fig)


# -- report sections ----------------------------------------------------------------------
# A report is a list of blocks rendered twice, to Markdown and to HTML:
#   {"h": text} {"h3": text} {"p": text} {"ul": [text, ...]}
#   {"table": {"header": [...], "rows": [[...], ...]}} {"img": file name, "alt": text}
_SECTION_SUFFIX = ".section.json"
_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")


@dataclasses.dataclass(frozen=True)
class ReportSection:
    """A section a plugin adds to the report (the ``nonvon.report_sections`` entry points).

    Args:
        title: the section's heading.
        blocks: its content in the block kinds above; an ``{"img": name}`` block names one of
            ``images`` (or a PNG already in the results folder).
        order: where it goes among the extra sections (smaller first; studies' default 100).
        images: PNG files to write into the results folder, ``{file name: bytes}``.
    """

    title: str
    blocks: tuple[dict[str, Any], ...]
    order: float = 100
    images: Mapping[str, bytes] = dataclasses.field(default_factory=dict)


def plugin_sections(rows: list[dict[str, Any]], out_dir: Path) -> list[ReportSection]:
    """The sections every ``nonvon.report_sections`` entry point gives for ``rows``.

    A section that raises, or returns something else, becomes a section saying so (the
    report still renders: one plugin must not take the page down, nor vanish silently).
    """
    out = []
    for name, make in _registry().report_sections.items():
        try:
            got = make(rows, out_dir)
            got = [] if got is None else [got] if isinstance(got, ReportSection) else list(got)
            bad = [g for g in got if not isinstance(g, ReportSection)
                   or any(not _SAFE_FILE.match(k) or not isinstance(v, bytes)
                          for k, v in g.images.items())]
            if bad:
                raise TypeError(f"returned {bad[0]!r:.80}; give ReportSection objects with "
                                "images as {'name.png': png bytes}")
        except Exception as e:  # noqa: BLE001 - shown in the page, never a silent gap
            got = [ReportSection(f"{name} (failed)", ({"p": f"The report section {name!r} failed: "
                                                          f"{type(e).__name__}: {e}"},), 1000)]
        out += got
    return out


def load_sections(out_dir: Path) -> list[dict[str, Any]]:
    """Extra report sections written by studies as ``<name>.section.json`` in ``out_dir``.

    Each file is one JSON object ``{"title": str, "order": int (optional), "blocks": [...]}``
    with the block kinds above; an image names a PNG file in the same folder. A file that
    does not parse or has the wrong shape is reported in the page, not executed or trusted.
    """
    sections = []
    for path in sorted(Path(out_dir).glob(f"*{_SECTION_SUFFIX}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            title, blocks = data["title"], data["blocks"]
            if not isinstance(title, str) or not isinstance(blocks, list):
                raise TypeError
            order = data.get("order", 100)
            if isinstance(order, bool) or not isinstance(order, (int, float)):
                raise TypeError
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            sections.append({"title": path.name, "order": 1000, "blocks": [
                {"p": f"{path.name} is not a valid report section and was skipped."}]})
            continue
        sections.append({"title": title, "order": order, "blocks": blocks})
    return sorted(sections, key=lambda s: (s["order"], s["title"]))


def _front_table(rows):
    header = ["task", "boundary", "rank", "simulator", "preset / measurement", "accuracy",
              "energy / inference", "latency / inference"]
    body = []
    for task, boundary in itertools.product(dict.fromkeys(r["task"] for r in rows),
                                            _boundaries(rows)):
        dev = [r for r in _device_rows([r for r in rows if r["task"] == task
                                        and row_boundary(r) == boundary]) if _energy(r)]
        front = [dev[i] for i in pareto_front([(_energy(r), r["accuracy"]) for r in dev])]
        for k, r in enumerate(front, 1):
            body.append([task, boundary, str(k), r["simulator"],
                         r["preset"] + (" (measured)" if r["kind"] == "measured" else ""),
                         _acc(r), _energy_text(r), format_si(r.get("latency_per_inference_s"), "s")])
    return header, body


def headline_rows(rows: Sequence[dict[str, Any]], boundary: str = "chip") -> list[dict[str, Any]]:
    """One modelled row per (task, simulator, seed) at ``boundary``, plus measured rows when
    ``boundary`` is ``system`` (a wall-power measurement is a system figure).

    Of a simulator's presets at that boundary the first of its paradigm's
    ``headline_presets`` (:mod:`nonvon.paradigms`) is taken (else its first): the figure a
    reader would quote for that paradigm. Rows at another boundary never enter, so the table
    ranks like with like.
    """
    reg = _registry()
    modelled: dict[tuple, list[dict[str, Any]]] = {}
    measured: dict[tuple, list[dict[str, Any]]] = {}
    for r in _device_rows(rows):  # grouped once, in the rows' order
        if row_boundary(r) != boundary:
            continue
        key = (r["task"], sim_label(r), r.get("seed"))
        (measured if r["kind"] == "measured" else modelled).setdefault(key, []).append(r)
    out = []
    for key, mine in modelled.items():
        rank = reg.headline_rank(mine[0].get("paradigm", ""))
        out.append(min(mine, key=lambda x: rank.get(x["preset"], len(rank))))
        out += measured.get(key, [])
    return out


def _fit_time(r: dict[str, Any], digits: int) -> str:
    """A cell's fit time; a cell that loaded another cell's training says so (its time is the
    deployment alone, see nonvon.training_memo)."""
    shared = (r.get("metrics") or {}).get("training_shared")
    return f"{r.get('fit_wall_s') or 0.0:.{digits}f} s" + (" (training shared)" if shared else "")


def _headline_table(rows, boundary: str = "chip", compact: bool = False):
    header = ["task", "simulator", "paradigm", "precision", "preset / measurement", "accuracy",
              "energy / inference", "device latency / inference", "fit time", "eval time",
              "ran on"]
    keep = 8 if compact else len(header)  # compact: what was computed, not how long it took
    body = []
    chosen = headline_rows(rows, boundary)
    if any(r.get("n_seeds", 1) > 1 for r in seed_summary(rows)):
        chosen = headline_rows(seed_summary(rows), boundary)  # mean ± sd over seeds
    for r in sorted(chosen, key=lambda r: (r["task"], r["energy_per_inference_j"] or 0.0)):
        body.append([r["task"], sim_label(r), r.get("paradigm", ""), r.get("precision") or "n/a",
                     r["preset"] + (" (measured)" if r["kind"] == "measured" else ""),
                     _acc(r), _energy_text(r),
                     format_si(r.get("latency_per_inference_s"), "s"),
                     _fit_time(r, 0), f"{r.get('sim_wall_s') or 0.0:.1f} s",
                     r.get("machine") or "n/a"][:keep])
    return header[:keep], body


def headline_markdown(rows: list[dict[str, Any]], boundary: str = "chip", compact: bool = False) -> str:
    """The headline table at ``boundary`` (see :func:`headline_rows`) in Markdown, cheapest
    first per task; ``compact`` leaves out the timing and machine columns (the README's)."""
    return _md_table(*_headline_table(rows, boundary, compact))


def cheapest_sentence(rows: Sequence[dict[str, Any]], boundary: str = "chip") -> str:
    """One sentence per task: which paradigm is cheapest at ``boundary``, and which is the
    cheapest at least as accurate as the most accurate row (the answer the README ends with)."""
    parts = []
    for task in dict.fromkeys(r["task"] for r in rows):
        head = [r for r in headline_rows([r for r in rows if r["task"] == task], boundary)
                if _energy(r)]
        if not head:
            continue
        cheap = min(head, key=_energy)
        best = max(r["accuracy"] for r in head)
        front = [head[i] for i in pareto_front([(_energy(r), r["accuracy"]) for r in head])]
        text = (f"on {task} at the {boundary} boundary the cheapest row is {cheap['simulator']} "
                f"({cheap.get('paradigm', '')}, {cheap['preset']}) at "
                f"{format_si(_energy(cheap), 'J')} and {100 * cheap['accuracy']:.2f}%")
        top = front[-1] if front else cheap
        if top is not cheap:
            text += (f"; the most accurate, {top['simulator']} ({top.get('paradigm', '')}, "
                     f"{top['preset']}) at {100 * best:.2f}%, costs {format_si(_energy(top), 'J')}")
        parts.append(text)
    return ("; ".join(parts) + ".") if parts else ""


def reference_simulator() -> str | None:
    """The simulator a spiking row's break-even spike rate is computed against: the first
    paradigm (in display order) that declares a ``reference_simulator``."""
    return next((p.reference_simulator for p in _registry().paradigms.values() if p.reference_simulator),
                None)


def _spike_driven_j(r: dict[str, Any], metrics: dict[str, float]) -> float:
    """Energy of the spike-driven counts: each kind's share of its priced energy. On-chip
    accesses that spilled off chip (``memory_placement``) are priced under ``dram_byte``, so
    the spike-driven share of ``sram_byte`` takes its part of the spilled DRAM energy too."""
    ledger, parts = r.get("ledger") or {}, r.get("energy_breakdown_j") or {}
    spilled = (r.get("memory_placement") or {}).get("spilled_fraction", 0.0)
    total = []
    for key, count in metrics.items():
        if not key.startswith("spike_driven.") or not ledger.get(key[len("spike_driven."):]):
            continue
        kind = key[len("spike_driven."):]
        energy = parts.get(kind, 0.0)
        if kind == "sram_byte" and spilled:
            moved = ledger[kind] * spilled
            energy += parts.get("dram_byte", 0.0) * moved / (ledger.get("dram_byte", 0.0) + moved)
        total.append(energy * count / ledger[kind])
    return math.fsum(total)


def break_even_rows(rows: Sequence[dict[str, Any]], boundary: str = "chip") -> list[dict[str, Any]]:
    """For each spiking headline row at ``boundary``: the spike rate at which it would cost
    as much as the int8 dense baseline's headline row on the same task and boundary.

    A spiking ledger splits into a spike-driven part, proportional to the spike rate (the
    simulator reports it as ``metrics['spike_driven.<kind>']`` counts per inference), and a
    fixed part (neuron updates, static power, io). With ``E(r) = E_fixed + E_spk * r / r0``
    at the measured rate ``r0``, the break-even rate is ``r0 * (E_int8 - E_fixed) / E_spk``;
    none exists when the fixed part alone costs more than the baseline.
    """
    out = []
    heads = headline_rows(rows, boundary)
    reference = reference_simulator()
    base = {r["task"]: r for r in heads if reference and r["simulator"] == reference}
    for r in heads:
        m = r.get("metrics") or {}
        if "spike_rate" not in m or r["task"] not in base:
            continue
        e_spk = _spike_driven_j(r, m)
        e_total, e_base = r["energy_per_inference_j"], base[r["task"]]["energy_per_inference_j"]
        e_fixed = e_total - e_spk
        rate = m["spike_rate"]
        be = rate * (e_base - e_fixed) / e_spk if e_spk > 0 and e_base > e_fixed else None
        out.append({"task": r["task"], "simulator": r["simulator"], "preset": r["preset"],
                    "accuracy": r["accuracy"], "energy_j": e_total, "spike_driven_j": e_spk,
                    "spike_rate": rate, "baseline_preset": base[r["task"]]["preset"],
                    "baseline_accuracy": base[r["task"]]["accuracy"], "baseline_j": e_base,
                    "break_even_rate": be})
    return out


def _not_at_boundary(rows, boundary: str) -> list[str]:
    """Simulators that ran but have no row at ``boundary``, each with the reason the simulator
    gives (``Simulator.chip_boundary_absent``) when it is installed here."""
    at = {r["simulator"] for r in rows if row_boundary(r) == boundary}
    out = []
    for name in dict.fromkeys(r["simulator"] for r in rows):
        if name in at:
            continue
        reason = ""
        try:
            from nonvon.registry import registry

            reason = getattr(registry().simulators.get(name), "chip_boundary_absent", "") or ""
        except Exception:  # noqa: BLE001 - a report must render without the plugin installed
            reason = ""
        out.append(f"{name}: {reason}" if reason else name)
    return out


def _class_table(rows, boundary: str = "chip"):
    from nonvon.energy_models.catalog import COST_CLASSES

    header = ["task", "row", *COST_CLASSES, "total"]
    body = []
    for r in sorted(headline_rows(rows, boundary), key=lambda r: (r["task"], r["simulator"])):
        by = r.get("energy_by_class_j") or {}
        if r["kind"] != "modelled" or not by:
            continue
        body.append([r["task"], f"{r['simulator']} @ {r['preset']}",
                     *(format_si(by.get(c), "J") for c in COST_CLASSES),
                     format_si(r["energy_per_inference_j"], "J")])
    return header, body


def _break_even_table(rows):
    header = ["task", "spiking row", "accuracy", "energy", "spike-driven share",
              "measured spike rate", f"reference ({reference_simulator()})", "break-even spike rate"]
    body = []
    for b in break_even_rows(rows):
        body.append([b["task"], f"{b['simulator']} @ {b['preset']}", f"{100 * b['accuracy']:.2f}%",
                     format_si(b["energy_j"], "J"), f"{100 * b['spike_driven_j'] / b['energy_j']:.0f}%",
                     f"{b['spike_rate']:.4f}",
                     f"{format_si(b['baseline_j'], 'J')}, {100 * b['baseline_accuracy']:.2f}% "
                     f"@ {b['baseline_preset']}",
                     "none: the fixed part alone costs more" if b["break_even_rate"] is None
                     else f"{b['break_even_rate']:.4f}"])
    return header, body


def _limits_table(rows):
    header = ["task", "Landauer bound (digital bits, 300 K)", "of the ledger of",
              "optical shot-noise bound (50 zJ/MAC)", "of the network of"]
    body = []
    for task in dict.fromkeys(r["task"] for r in rows):
        lim = physical_limits([r for r in rows if r["task"] == task])
        la, sn = lim["landauer"], lim["shot_noise"]
        body.append([task, format_si(la["energy_j"], "J") if la else "n/a",
                     la["simulator"] if la else "",
                     format_si(sn["energy_j"], "J") if sn else "n/a",
                     f"{sn['simulator']} ({sn['macs']:.4g} MACs)" if sn else
                     "no optical network with a known MAC count"])
    return header, body


def _measured_table(rows):
    header = ["task", "simulator", "measurement", "batch", "accuracy", "energy / inference "
              "(above idle)", "gross (with idle)", "latency / inference", "device"]
    body = []
    for r in rows:
        if r["kind"] != "measured":
            continue
        d = r.get("details") if isinstance(r.get("details"), dict) else {}
        body.append([r["task"], r["simulator"], r["preset"], str(r.get("batch_size", "")),
                     f"{100 * r['accuracy']:.2f}%", format_si(r["energy_per_inference_j"], "J"),
                     format_si(d.get("gross_energy_per_inference_j"), "J"),
                     format_si(r.get("latency_per_inference_s"), "s"), str(d.get("device", ""))])
    return header, body


def _blocks(rows, out_dir: Path, extra: Sequence[ReportSection] = ()) -> list[dict[str, Any]]:
    data = sorted({r.get("data_source", "") for r in rows} - {""})
    b: list[dict[str, Any]] = [
        {"p": "Modelled rows price each simulator's counted operations on a device preset "
              "(low-high: every constant of the preset at its bound); measured rows come from "
              "hardware counters (NVML), idle power subtracted. Energies and latencies are per "
              "inference."},
        {"p": "Every preset declares a boundary: core (compute and on-chip memory), chip (core, "
              "interconnect, on-chip io and the chip's static power over the modelled latency) or "
              "system (chip, off-chip memory, host io, power delivery, cooling). Rows are ranked "
              "only against rows at the same boundary."},
        {"h": "Headline at the chip boundary"},
        {"p": "One row per simulator and task at the chip boundary, cheapest first, priced on the "
              "device it stands for (a chip's own preset first; digital networks on the 7 nm "
              "digital accelerator). Fit and eval times are host wall times on the machine in the "
              "last column. Every preset's figure is under All results."},
        {"table": dict(zip(("header", "rows"), _headline_table(rows, "chip"), strict=True))},
        {"p": "In one sentence: " + (cheapest_sentence(rows, "chip") or "no chip-boundary rows.")},
    ]
    missing = _not_at_boundary(rows, "chip")
    if missing:
        b += [{"p": "Not at the chip boundary (no preset there prices them):"}, {"ul": missing}]
    system = _headline_table(rows, "system")
    if system[1]:
        b += [{"h": "Headline at the system boundary"},
              {"p": "Whole systems (GPU board with its idle power, QPU with its cryostat and "
                    "control rack) and the hardware measurements, which are wall-power figures."},
              {"table": dict(zip(("header", "rows"), system, strict=True))}]
    classes = _class_table(rows, "chip")
    if classes[1]:
        b += [{"h": "Energy by cost class at the chip boundary"},
              {"p": "The headline rows split into compute, memory (at the level that holds the "
                    "data), interconnect, io (input encoding and injection, converters, host "
                    "transfers) and static power over the modelled latency. A class a preset "
                    "declares absent is 0 here; its reason is under Assumptions."},
              {"table": dict(zip(("header", "rows"), classes, strict=True))}]
    breakeven = _break_even_table(rows)
    if breakeven[1]:
        b += [{"h": "Spike-rate break-even against the int8 baseline"},
              {"p": "For each spiking headline row: the spike rate (spikes per neuron per "
                    "timestep) at which it would cost as much as the int8 dense baseline at the "
                    "same boundary, with the fixed part of its energy held and the spike-driven "
                    "part scaled with the rate (Dampfhoffer et al., IEEE TETCI 2023, frame the "
                    "question this way). Below the break-even rate the spiking row is cheaper."},
              {"table": dict(zip(("header", "rows"), breakeven, strict=True))}]
    b += [
        {"h": "Pareto front per task and boundary"},
        {"p": "Device points (modelled and measured; bound presets excluded) that no other point "
              "at the same boundary beats on both energy and accuracy, cheapest first."},
        {"table": dict(zip(("header", "rows"), _front_table(seed_summary(rows)), strict=True))},
        {"img": FIGURES[0], "alt": "accuracy vs energy per inference"},
        {"h": "Physical limits"},
        {"p": "Floors for the networks that ran, drawn above at their network's accuracy (a tick "
              "at the floor, a line to the network's cheapest point): the Landauer bound (kT ln 2 "
              "per digital bit the cheapest digital ledger overwrites) and the "
              "optical shot-noise bound (Hamerly et al., Phys. Rev. X 9, 021032 (2019): 50 zJ "
              "of light per MAC) of the smallest optical network whose MAC count is known. A "
              "floor holds for its own network only: another network can sit left of it."},
        {"table": dict(zip(("header", "rows"), _limits_table(rows), strict=True))},
    ]
    measured = _measured_table(rows)
    if measured[1]:
        b += [{"h": "Measured on hardware"},
              {"table": dict(zip(("header", "rows"), measured, strict=True))}]
    b += [{"h": "Where the energy goes"}, {"img": FIGURES[1], "alt": "energy breakdown"},
          {"h": "Device latency"}, {"img": FIGURES[2], "alt": "latency per inference"}]
    sections = load_sections(out_dir) + [
        {"title": s.title, "order": s.order, "blocks": list(s.blocks)} for s in extra]
    for s in sorted(sections, key=lambda s: (s["order"], s["title"])):
        b += [{"h": s["title"]}, *s["blocks"]]
    seeds = _seeds_table(rows)
    if seeds[1]:
        b += [{"h": "Across seeds"},
              {"p": "Each simulator config on each preset over the seeds it ran with: mean ± "
                    "sample standard deviation (n - 1). The figures draw these means, the "
                    "accuracy's standard deviation as a vertical error bar."},
              {"table": dict(zip(("header", "rows"), seeds, strict=True))}]
    b += [{"h": "All results"},
          {"table": dict(zip(("header", "rows"), _results_table(rows), strict=True))},
          {"h": "Data"}, {"ul": data or ["(not recorded)"]},
          {"h": "Assumptions behind each modelled figure"}]
    seen = set()
    for r in rows:
        if r["kind"] != "modelled" or r["preset"] in seen:
            continue
        seen.add(r["preset"])
        b += [{"h3": r["preset"]}, {"ul": [str(a) for a in r.get("assumptions") or []]}]
    return b


def _seeds_table(rows):
    """Mean ± sd over seeds per (task, simulator config, preset); empty when no group has more
    than one seed."""
    summary = seed_summary(rows)
    if not any(r["n_seeds"] > 1 for r in summary):
        return [], []
    header = ["task", "simulator", "preset / measurement", "boundary", "seeds", "accuracy",
              "energy / inference", "latency / inference"]
    body = [[r["task"], r["simulator"],
             r["preset"] + (" (measured)" if r["kind"] == "measured" else ""), row_boundary(r),
             f"{r['n_seeds']} ({', '.join(map(str, r['seeds']))})", _acc(r), _energy_text(r),
             format_si(r.get("latency_per_inference_s"), "s")]
            for r in sorted(summary, key=_order_key)]
    return header, body


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(header, body) -> str:
    lines = ["| " + " | ".join(map(_md_cell, header)) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _image_name(block) -> str | None:
    name = block.get("img")
    return name if isinstance(name, str) and _SAFE_FILE.match(name) else None


def render_markdown(blocks: list[dict[str, Any]], title: str = DEFAULT_TITLE) -> str:
    out = [f"# {title}\n"]
    for bl in blocks:
        if not isinstance(bl, dict):
            continue
        if "h" in bl:
            out.append(f"\n## {bl['h']}\n")
        elif "h3" in bl:
            out.append(f"\n**{bl['h3']}**\n")
        elif "p" in bl:
            out.append(f"\n{bl['p']}\n")
        elif "ul" in bl and isinstance(bl["ul"], list):
            out.append("\n" + "".join(f"- {item}\n" for item in bl["ul"]))
        elif "table" in bl and isinstance(bl["table"], dict):
            out.append("\n" + _md_table(bl["table"].get("header", []), bl["table"].get("rows", [])))
        elif "img" in bl and _image_name(bl):
            out.append(f"\n![{bl.get('alt', '')}]({_image_name(bl)})\n")
    return "".join(out)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1.5em; color: #1a1a1a; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; padding-bottom: .15em; }
table { border-collapse: collapse; font-size: 13px; margin: .6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
.scroll { overflow-x: auto; }
img { max-width: 100%; height: auto; border: 1px solid #e2e2e2; margin: .5em 0; }
figure { margin: 1em 0; }
figcaption { font-size: 13px; color: #555; }
li { font-size: 14px; }
"""


def html_table(header: Sequence[Any], body: Sequence[Any]) -> str:
    """An HTML ``<table>`` of ``header`` and the rows of ``body`` (lists), every cell escaped."""
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>\n"
                   for row in body if isinstance(row, list))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody></table>"


def results_html(rows: Sequence[dict[str, Any]]) -> str:
    """The "All results" table of ``rows`` as HTML (what Jupyter shows for a result)."""
    return html_table(*_results_table(rows))


def render_html(blocks: list[dict[str, Any]], out_dir: Path, images: dict[str, bytes] | None = None,
                title: str = DEFAULT_TITLE) -> str:
    """A self-contained page: inline CSS, every figure a base64 data URI, no scripts or links."""
    images = images or {}
    e = html.escape
    out = ["<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
           f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{e(title)}</h1>\n"]
    for bl in blocks:
        if not isinstance(bl, dict):
            continue
        if "h" in bl:
            out.append(f"<h2>{e(str(bl['h']))}</h2>\n")
        elif "h3" in bl:
            out.append(f"<h3>{e(str(bl['h3']))}</h3>\n")
        elif "p" in bl:
            out.append(f"<p>{e(str(bl['p']))}</p>\n")
        elif "ul" in bl and isinstance(bl["ul"], list):
            out.append("<ul>\n" + "".join(f"<li>{e(str(i))}</li>\n" for i in bl["ul"]) + "</ul>\n")
        elif "table" in bl and isinstance(bl["table"], dict):
            t = bl["table"]
            out.append(f"<div class=\"scroll\">{html_table(t.get('header', []), t.get('rows', []))}"
                       "</div>\n")
        elif "img" in bl:
            name = _image_name(bl)
            data = images.get(name) if name else None
            if data is None and name and (out_dir / name).is_file():
                data = (out_dir / name).read_bytes()
            if data is None or not data.startswith(b"\x89PNG\r\n\x1a\n"):
                out.append(f"<p><em>figure {e(str(bl.get('img')))} is missing</em></p>\n")
                continue
            uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            alt = e(str(bl.get("alt", "")))
            out.append(f"<figure><img alt=\"{alt}\" src=\"{uri}\">"
                       f"<figcaption>{alt}</figcaption></figure>\n")
    out.append("</body>\n</html>\n")
    return "".join(out)


def write_report(rows: list[dict[str, Any]], out_dir: Path, *, title: str | None = None) -> None:
    """report.md, report.html and the figures (PNG, and SVG and PDF beside each), each written
    atomically. Rows of several seeds of one config are drawn as their mean with error bars
    (:func:`seed_summary`). ``title`` heads both pages (a sweep passes its grid's
    description); ``None``: :data:`DEFAULT_TITLE`.

    Raises:
        ConfigError: a row lacks a field the report needs (e.g. a hand-edited results.json).
    """
    out_dir = Path(out_dir)
    _check_rows(rows)
    merged = seed_summary(rows)  # one point or bar per config and preset, seeds averaged
    images = {FIGURES[0]: accuracy_vs_energy_png(merged),
              FIGURES[1]: energy_breakdown_png(merged), FIGURES[2]: latency_png(merged)}
    for name, data in list(images.items()):
        for fmt in _VECTOR_FORMATS:
            vec = getattr(data, fmt, None)
            if vec:
                atomic_write_bytes(out_dir / name.replace(".png", f".{fmt}"), vec)
    sections = plugin_sections(rows, out_dir)
    for s in sections:
        images.update(s.images)
    for name, data in images.items():
        atomic_write_bytes(out_dir / name, data)
    blocks = _blocks(rows, out_dir, sections)
    title = " ".join((title or "").split()) or DEFAULT_TITLE  # one line: a heading
    atomic_write_text(out_dir / "report.md", render_markdown(blocks, title))
    atomic_write_text(out_dir / "report.html", render_html(blocks, out_dir, images, title))

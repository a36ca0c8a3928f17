"""Energy sensitivity: how the ranking of paradigms moves when preset constants span their bounds.

Every modelled row of a comparison keeps its op ledger, so it can be re-priced without running
anything again. This study re-prices each ledger with every preset constant (an op's energy, a
time kind's power, a static power) moved to its ``low`` and to its ``high`` bound, one at a
time, and with all constants low and all high together. For each task it ranks the paradigms by

- **energy at the task**: each paradigm's cheapest device row (bound presets such as
  ``photonic-limit`` are not devices and are left out), and
- **energy at matched accuracy**: the cheapest row reaching the GPU baseline's best accuracy
  minus 1 pp (``--match``), where a paradigm reaches it,

and reports, for every pair of paradigms, which constants flip their order within the bounds
and the break-even value (e.g. "optical beats gpu unless photonic-mzi.phase_shifter_hold >
X pJ"). Outputs in ``--out`` (default: the results folder), each written atomically:
``sensitivity.json``, ``sensitivity.md``, ``sensitivity_tornado.png`` and
``sensitivity.section.json`` (which ``nonvon report`` includes in report.md / report.html).

    python studies/energy_sensitivity.py results/mnist-comparison
    python studies/energy_sensitivity.py --run --task digits --sim gpu-mlp,snn-mlp,onn-mzi --quick --out res
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import nonvon
from nonvon._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from nonvon.compare import load_rows
from nonvon.energy_models import OpLedger, Preset, price
from nonvon.energy_models.catalog import TIME_UNIT, get_op_kind
from nonvon.errors import ConfigError, NonvonError
from nonvon.report import (
    PARADIGM_ORDER,
    format_si,
    is_bound_preset,
    paradigm_colour,
    render_markdown,
    write_report,
)

MATCH_MARGIN = 0.01  # matched accuracy: the GPU baseline's best minus 1 pp
STATIC = "static"


@dataclasses.dataclass(frozen=True)
class Constant:
    """One number of one preset that has a low/high range."""

    preset: str
    kind: str  # an op kind, or "static"
    nominal: float
    low: float
    high: float
    unit: str  # "pJ" per count, or "W"
    source: str

    @property
    def name(self) -> str:
        return f"{self.preset}.{self.kind}"

    def fmt(self, value: float) -> str:
        return f"{value:.4g} {self.unit}"


def constants_of(preset: Preset, *, bounded_only: bool = True) -> list[Constant]:
    """The constants of ``preset``: those whose bounds differ from the nominal value, or all."""
    out = []
    for kind, p in sorted(preset.ops.items()):
        if p.low < p.high or not bounded_only:
            unit = "W" if get_op_kind(kind).unit == TIME_UNIT else "pJ"
            out.append(Constant(preset.name, kind, p.value, p.low, p.high, unit, p.source))
    if preset.static_low_w < preset.static_high_w or (not bounded_only and preset.static_high_w > 0):
        out.append(Constant(preset.name, STATIC, preset.static_power_w, preset.static_low_w,
                            preset.static_high_w, "W", preset.static_source))
    return out


def with_value(preset: Preset, kind: str, value: float) -> Preset:
    """``preset`` with one constant's nominal value replaced (bounds unchanged)."""
    if kind == STATIC:
        return dataclasses.replace(preset, static_power_w=value)
    ops = dict(preset.ops)
    ops[kind] = dataclasses.replace(ops[kind], value=value)
    return dataclasses.replace(preset, ops=MappingProxyType(ops))


def at_bound(preset: Preset, bound: str) -> Preset:
    """``preset`` with every constant at its ``"low"`` or ``"high"`` bound."""
    for c in constants_of(preset):
        preset = with_value(preset, c.kind, getattr(c, bound))
    return preset


@dataclasses.dataclass(frozen=True)
class Cell:
    """A modelled row that can be re-priced: its ledger and where it sits."""

    task: str
    paradigm: str
    simulator: str
    preset: str
    accuracy: float
    ledger: OpLedger

    @property
    def label(self) -> str:
        return f"{self.simulator} @ {self.preset}"


def cells_from_rows(rows: Sequence[dict[str, Any]], presets: dict[str, Preset],
                    log: Callable[[str], None] = print) -> list[Cell]:
    """Modelled device rows with a saved ledger on a preset we can load; others are skipped."""
    cells, missing = [], set()
    for r in rows:
        if r.get("kind") != "modelled" or is_bound_preset(r.get("preset", "")):
            continue
        if r["preset"] not in presets:
            missing.add(r["preset"])
            continue
        where = f"{r.get('simulator')} @ {r['preset']} on {r.get('task')}"
        try:
            ledger = OpLedger.from_dict(r["ledger_totals"])
        except NonvonError as e:  # e.g. an op kind this installation does not know
            log(f"note: {where} left out: {e.message}")
            continue
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"row {where} has no readable ledger_totals",
                              "rerun `nonvon compare` to regenerate results.json") from None
        cell = Cell(r["task"], r["paradigm"], r["simulator"], r["preset"], float(r["accuracy"]),
                    ledger)
        e = price(ledger, presets[r["preset"]]).energy_j
        if not math.isclose(e, r["energy_per_inference_j"], rel_tol=1e-6):
            log(f"note: {cell.label} on {cell.task} re-prices to {format_si(e, 'J')}, not the "
                f"{format_si(r['energy_per_inference_j'], 'J')} saved (the preset changed since "
                "the run); the current preset is used")
        cells.append(cell)
    if missing:
        log(f"note: presets {sorted(missing)} are not registered here; their rows are left out")
    return cells


class Repricer:
    """Energies of every cell with one constant moved (the others at their nominal values).

    Pricing is linear in each constant (``docs/energy-model.md``: static power is charged over
    a latency that does not depend on it), so each cell's energy is its nominal energy plus a
    slope times the change, the slope taken from one re-pricing.
    """

    def __init__(self, cells: list[Cell], presets: dict[str, Preset]):
        self.cells, self.presets = cells, presets
        self.nominal = [price(c.ledger, presets[c.preset]).energy_j for c in cells]
        self._slopes: dict[str, list[tuple[int, float]]] = {}

    def energies(self, changed: dict[str, Preset]) -> list[float]:
        """Energies with the presets in ``changed`` (by name) replacing the registered ones."""
        return [price(c.ledger, changed[c.preset]).energy_j if c.preset in changed else e
                for c, e in zip(self.cells, self.nominal, strict=True)]

    def slopes(self, const: Constant) -> list[tuple[int, float]]:
        """``(cell index, dE/dvalue)`` for the cells priced on the constant's preset."""
        if const.name not in self._slopes:
            step = (const.high - const.low) or max(const.nominal, 1.0)
            moved = with_value(self.presets[const.preset], const.kind, const.nominal + step)
            self._slopes[const.name] = [
                (i, (price(c.ledger, moved).energy_j - self.nominal[i]) / step)
                for i, c in enumerate(self.cells) if c.preset == const.preset]
        return self._slopes[const.name]

    def with_constant(self, const: Constant, value: float) -> list[float]:
        energies = list(self.nominal)
        for i, slope in self.slopes(const):
            energies[i] += slope * (value - const.nominal)
        return energies


def best_per_paradigm(cells: list[Cell], energies: list[float], task: str,
                      min_accuracy: float | None = None) -> dict[str, tuple[float, int]]:
    """``{paradigm: (energy, cell index)}``: each paradigm's cheapest row on ``task``."""
    best: dict[str, tuple[float, int]] = {}
    for i, (c, e) in enumerate(zip(cells, energies, strict=True)):
        if c.task != task or (min_accuracy is not None and c.accuracy < min_accuracy):
            continue
        if c.paradigm not in best or e < best[c.paradigm][0]:
            best[c.paradigm] = (e, i)
    return best


def ranking(best: dict[str, tuple[float, int]]) -> list[str]:
    return sorted(best, key=lambda p: (best[p][0], p))


def _break_even(f: Callable[[float], float], x0: float, x1: float, iters: int = 80) -> float:
    """A root of ``f`` between ``x0`` (f < 0) and ``x1`` (f > 0), by bisection."""
    for _ in range(iters):
        mid = 0.5 * (x0 + x1)
        if f(mid) > 0:
            x1 = mid
        else:
            x0 = mid
    return 0.5 * (x0 + x1)


def match_threshold(cells: list[Cell], task: str, spec: str) -> float | None:
    """Matched accuracy for ``task``: ``"gpu"`` (best GPU-paradigm accuracy - 1 pp), a number, or off."""
    if spec == "off":
        return None
    if spec == "gpu":
        gpu = [c.accuracy for c in cells if c.task == task and c.paradigm == "gpu"]
        return max(gpu) - MATCH_MARGIN if gpu else None
    try:
        value = float(spec)
    except ValueError:
        raise ConfigError(f"--match {spec!r} is not 'gpu', 'off' or an accuracy",
                          "e.g. --match gpu, or --match 0.95") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"--match {value} is not a fraction in [0, 1]", "e.g. --match 0.95")
    return value


def analyse(rows: Sequence[dict[str, Any]], *, reg: nonvon.Registry | None = None,
            match: str = "gpu", log: Callable[[str], None] = print) -> dict[str, Any]:
    """The sensitivity of every task's paradigm ranking to every preset constant.

    Args:
        rows: result rows (``results.json``); modelled rows need ``ledger_totals``.
        reg: where presets are looked up by name (default: the registry).
        match: matched-accuracy threshold, see :func:`match_threshold`.

    Returns:
        A JSON-ready dict: ``constants``, and per task the nominal ranking, every scenario's
        ranking, and ``conclusions`` (per pair of paradigms: the margin and the constants it
        hinges on, with break-even values).
    """
    reg = reg or nonvon.registry()
    presets = {}
    for name in sorted({r.get("preset") for r in rows if r.get("kind") == "modelled"}):
        with contextlib.suppress(NonvonError):  # a missing one is reported by cells_from_rows
            presets[name] = reg.preset(name)
    cells = cells_from_rows(rows, presets, log)
    if not cells:
        raise ConfigError("no modelled rows with ledgers on registered device presets",
                          "point at a folder written by `nonvon compare`")
    used = sorted({c.preset for c in cells})
    constants = [k for p in used for k in constants_of(presets[p])]
    every = [k for p in used for k in constants_of(presets[p], bounded_only=False)]
    rp = Repricer(cells, presets)
    scenarios: list[tuple[str, Constant | None, str, list[float]]] = []
    for c in constants:
        for bound in ("low", "high"):
            scenarios.append((f"{c.name} {bound}", c, bound, rp.with_constant(c, getattr(c, bound))))
    for bound in ("low", "high"):
        scenarios.append((f"all {bound}", None, bound,
                          rp.energies({p: at_bound(presets[p], bound) for p in used})))

    tasks = list(dict.fromkeys(c.task for c in cells))
    out: dict[str, Any] = {"study": "energy_sensitivity", "match": match, "tasks": {},
                           "constants": [{"name": c.name, **dataclasses.asdict(c)} for c in constants],
                           "constants_without_bounds": [c.name for c in every if c not in constants]}
    for task in tasks:
        threshold = match_threshold(cells, task, match)
        metrics = {"energy": None, "matched": threshold}
        t_out: dict[str, Any] = {"matched_accuracy": threshold, "nominal": {}, "scenarios": [],
                                 "conclusions": []}
        for metric, thr in metrics.items():
            if metric == "matched" and thr is None:
                continue
            best = best_per_paradigm(cells, rp.nominal, task, thr)
            t_out["nominal"][metric] = {
                "ranking": ranking(best),
                "best": {p: {"energy_j": e, "row": cells[i].label, "accuracy": cells[i].accuracy}
                         for p, (e, i) in best.items()}}
        for name, const, bound, energies in scenarios:
            entry = {"scenario": name, "constant": const.name if const else None, "bound": bound,
                     "value": getattr(const, bound) if const else None,
                     "unit": const.unit if const else None}
            for metric in t_out["nominal"]:
                best = best_per_paradigm(cells, energies, task, metrics[metric])
                entry[metric] = {"ranking": ranking(best),
                                 "best_j": {p: e for p, (e, _) in best.items()},
                                 "changed": ranking(best) != t_out["nominal"][metric]["ranking"]}
            t_out["scenarios"].append(entry)
        for metric, nom in t_out["nominal"].items():
            t_out["conclusions"] += _conclusions(task, metric, metrics[metric], nom, cells, rp,
                                                 constants, every, t_out["scenarios"])
        out["tasks"][task] = t_out
    return out


MAX_FACTOR = 1e3  # how far from its nominal value a constant is searched for a break-even


def _closest_call(gap: Callable[[float], float], c: Constant) -> float | None:
    """The value of ``c`` within ``MAX_FACTOR`` of its nominal where ``gap`` turns positive,
    the nearest (as a ratio) of the one below and the one above the nominal value."""
    found = []
    x = c.nominal
    while c.nominal > 0 and x >= c.nominal / MAX_FACTOR:
        x /= 2.0
        if gap(x) > 0:
            found.append(_break_even(gap, c.nominal, x))
            break
    scale = c.nominal or c.high or 1e-3
    x = scale
    while x <= scale * MAX_FACTOR:
        x *= 2.0
        if gap(x) > 0:
            found.append(_break_even(gap, c.nominal, x))
            break
    found = [v for v in found if c.nominal == 0 or 1 / MAX_FACTOR <= v / c.nominal <= MAX_FACTOR]
    if not found:
        return None
    return min(found, key=lambda v: abs(math.log(max(v, 1e-300) / scale)))


def _distance(x: float, c: Constant) -> float:
    """How far ``x`` is from the constant's nominal value, as |log ratio| (inf from zero)."""
    return abs(math.log(max(x, 1e-300) / c.nominal)) if c.nominal > 0 else math.inf


def _conclusions(task, metric, threshold, nom, cells, rp, constants, every, scenarios) -> list[dict]:
    """Per pair (winner above loser at nominal): the constants that flip it, within bounds,
    and the single constant that needs the smallest change to flip it."""
    out = []
    order = nom["ranking"]
    for a, b in itertools.combinations(order, 2):
        ea, eb = nom["best"][a]["energy_j"], nom["best"][b]["energy_j"]
        hinges, closest, closest_distance = [], None, math.inf
        for c in every:
            if not any(cells[i].task == task and cells[i].paradigm in (a, b) for i, _ in rp.slopes(c)):
                continue

            def gap(x, c=c, a=a, b=b):
                best = best_per_paradigm(cells, rp.with_constant(c, x), task, threshold)
                return best[a][0] - best[b][0]
            if c in constants:
                for bound in ("low", "high"):
                    x = getattr(c, bound)
                    if x != c.nominal and gap(x) > 0:
                        xb = _break_even(gap, c.nominal, x)
                        hinges.append({"constant": c.name, "bound": bound, "break_even": xb,
                                       "nominal": c.nominal, "low": c.low, "high": c.high,
                                       "unit": c.unit,
                                       "text": f"{c.name} {'>' if bound == 'high' else '<'} "
                                               f"{c.fmt(xb)} (nominal {c.fmt(c.nominal)}, "
                                               f"bound {c.fmt(x)})"})
            xb = _closest_call(gap, c)
            if xb is not None and (closest is None or _distance(xb, c) < closest_distance):
                closest_distance = _distance(xb, c)
                factor = f"{xb / c.nominal:.3g}x its nominal" if c.nominal else "nominal"
                closest = {"constant": c.name, "break_even": xb, "nominal": c.nominal,
                           "low": c.low, "high": c.high, "unit": c.unit,
                           "factor": xb / c.nominal if c.nominal else None,
                           "within_bounds": c.low <= xb <= c.high,
                           "text": f"{c.name} {'>' if xb > c.nominal else '<'} {c.fmt(xb)} "
                                   f"({factor} {c.fmt(c.nominal)}"
                                   + (f"; bounds {c.fmt(c.low)} - {c.fmt(c.high)})"
                                      if c.low < c.high else "; no bounds given)")}
        joint = {}
        for s in scenarios:
            if s["constant"] is None and metric in s:
                best = s[metric]["best_j"]
                joint[s["bound"]] = best[a] > best[b]
        ratio = eb / ea if ea > 0 else None  # None: the winner costs nothing (strict JSON)
        by = f"{ratio:.3g}x" if ratio is not None else "an unbounded factor"
        text = (f"{a} ({nom['best'][a]['row']}, {format_si(ea, 'J')}) beats {b} "
                f"({nom['best'][b]['row']}, {format_si(eb, 'J')}) by {by}")
        if hinges:
            text += "; within the bounds it flips if " + " or ".join(h["text"] for h in hinges)
        else:
            text += "; no single constant flips it within its bounds"
        flips = [f"all constants {k}" for k, v in joint.items() if v]
        if flips:
            text += "; flips with " + " and with ".join(flips)
        if closest and not hinges:
            text += f"; closest call: {closest['text']}"
        elif not closest:
            text += f"; no single constant within {MAX_FACTOR:g}x of its nominal value flips it"
        out.append({"metric": metric, "winner": a, "loser": b, "ratio": ratio, "hinges": hinges,
                    "closest": closest, "flips_all_low": joint.get("low", False),
                    "flips_all_high": joint.get("high", False),
                    "robust": not hinges and not flips, "text": text})
    return out


# -- outputs ----------------------------------------------------------------------------------
def tornado_png(result: dict[str, Any], rows_per_task: int = 14) -> bytes:
    """Per task: how far each constant's low..high range moves each paradigm's best energy.

    A bar spans best energy at the constant's low bound / nominal to high bound / nominal
    (log axis); "all constants" bars (hatched) move every constant together. Bars whose
    range flips the order of two paradigms are named on the right.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"])
    panels = []
    for task in tasks:
        t = result["tasks"][task]
        nominal = {p: v["energy_j"] for p, v in t["nominal"]["energy"]["best"].items()}
        bars = []
        by_const: dict[str, dict[str, dict]] = {}
        for s in t["scenarios"]:
            by_const.setdefault(s["constant"] or "all constants", {})[s["bound"]] = s["energy"]["best_j"]
        flips = {}
        for c in t["conclusions"]:
            if c["metric"] != "energy":
                continue
            for h in c["hinges"]:
                flips.setdefault(h["constant"], set()).add(f"{c['winner']}/{c['loser']}")
            if c["flips_all_low"] or c["flips_all_high"]:
                flips.setdefault("all constants", set()).add(f"{c['winner']}/{c['loser']}")
        for const, ends in by_const.items():
            for p, e0 in nominal.items():
                if e0 <= 0:
                    continue  # no ratio to a zero energy
                lo, hi = ends["low"].get(p, e0) / e0, ends["high"].get(p, e0) / e0
                if abs(math.log(hi) - math.log(lo)) > 1e-3 or const == "all constants":
                    bars.append((const, p, lo, hi))
        joint = [b for b in bars if b[0] == "all constants"]
        single = sorted((b for b in bars if b[0] != "all constants"),
                        key=lambda b: -abs(math.log(b[3]) - math.log(b[2])))[:rows_per_task]
        panels.append((task, joint + single, flips))
    n = max(len(b) for _, b, _ in panels)
    fig, axes = plt.subplots(1, len(tasks), figsize=(7.2 * len(tasks), 0.34 * n + 1.8), squeeze=False)
    for ax, (task, bars, flips) in zip(axes[0], panels, strict=True):
        for i, (const, p, lo, hi) in enumerate(bars):
            left, right = min(lo, hi), max(lo, hi)
            ax.barh(i, right - left, left=left, color=paradigm_colour(p), height=0.7,
                    hatch="///" if const == "all constants" else None, edgecolor="black", lw=0.4)
            ax.plot([lo], [i], marker="<", color="black", ms=4)
            ax.plot([hi], [i], marker=">", color="black", ms=4)
            if flips.get(const):
                ax.annotate("flips " + ", ".join(sorted(flips[const])), (right, i), xytext=(6, 0),
                            textcoords="offset points", va="center", fontsize=6.5, color="#b00000")
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(bars)), [f"{c}  [{p}]" for c, p, _, _ in bars], fontsize=7)
        ax.set_ylim(len(bars) - 0.5, -0.5)
        lo_all = min([min(b[2], b[3]) for b in bars] + [0.5])
        hi_all = max([max(b[2], b[3]) for b in bars] + [2.0])
        x_lo, x_hi = lo_all / 1.5, hi_all * (30 if flips else 1.5)  # room for "flips ..." notes
        ax.set_xlim(x_lo, x_hi)
        ticks = [2.0 ** k for k in range(-40, 41) if x_lo <= 2.0 ** k <= x_hi]
        if len(ticks) > 8:
            ticks = [t for t in ticks if abs(math.log2(t)) % round(len(ticks) / 8) == 0]
        ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("paradigm's best energy / nominal  (< low bound ... high bound >)", fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.grid(True, axis="x", which="major", alpha=0.3)
    seen = dict.fromkeys(p for _, bars, _ in panels for _, p, _, _ in bars)
    order = sorted(seen, key=lambda p: PARADIGM_ORDER.index(p) if p in PARADIGM_ORDER else 99)
    handles = [plt.Rectangle((0, 0), 1, 1, color=paradigm_colour(p), label=p) for p in order]
    handles.append(plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", hatch="///",
                                 label="all constants together"))
    fig.legend(handles=handles, fontsize=7.5, loc="upper center", ncol=len(handles),
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle("Which preset constants move each paradigm's best energy per inference")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def blocks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The report blocks (see nonvon.report) of the study: tables, the tornado figure."""
    out: list[dict[str, Any]] = [{"p": (
        "Each modelled ledger re-priced with every preset constant at its low and at its high "
        "bound, one at a time, and with all constants low / all high. Ranking: each paradigm's "
        "cheapest device row (bound presets left out); matched: the cheapest row reaching the "
        "GPU baseline's best accuracy minus 1 pp. A conclusion 'hinges' on a constant when that "
        "constant alone, within its bounds, flips it; the break-even value is where it flips.")}]
    for task, t in result["tasks"].items():
        out.append({"h3": task})
        head = ["rank", "paradigm", "cheapest row", "accuracy", "energy / inference",
                "all constants low - high"]
        nom = t["nominal"]["energy"]
        joint = {s["bound"]: s["energy"]["best_j"] for s in t["scenarios"] if s["constant"] is None}
        body = [[str(k), p, nom["best"][p]["row"], f"{100 * nom['best'][p]['accuracy']:.2f}%",
                 format_si(nom["best"][p]["energy_j"], "J"),
                 f"{format_si(joint['low'].get(p), 'J')} - {format_si(joint['high'].get(p), 'J')}"]
                for k, p in enumerate(nom["ranking"], 1)]
        out.append({"table": {"header": head, "rows": body}})
        if "matched" in t["nominal"]:
            m = t["nominal"]["matched"]
            thr = t["matched_accuracy"]
            reached = ", ".join(f"{p} {format_si(m['best'][p]['energy_j'], 'J')} "
                                f"({m['best'][p]['row']})" for p in m["ranking"]) or "none"
            missing = sorted(set(nom["ranking"]) - set(m["ranking"]))
            out.append({"p": f"At matched accuracy (>= {100 * thr:.2f}%): {reached}."
                             + (f" Not reached by: {', '.join(missing)}." if missing else "")})
        out.append({"table": {"header": ["metric", "cheaper", "than", "by", "flips within the bounds if",
                                         "flips with all constants", "closest single-constant "
                                         "break-even"], "rows": _conclusion_rows(t)}})
        changed = [[s["scenario"], f"{s['value']:.4g} {s['unit']}" if s["value"] is not None else "",
                    " < ".join(s["energy"]["ranking"]),
                    " < ".join(s["matched"]["ranking"]) if "matched" in s else ""]
                   for s in t["scenarios"]
                   if s["energy"]["changed"] or s.get("matched", {}).get("changed")]
        nominal_line = [["nominal", "", " < ".join(nom["ranking"]),
                         " < ".join(t["nominal"]["matched"]["ranking"]) if "matched" in t["nominal"]
                         else ""]]
        out.append({"p": "Scenarios that change a ranking (cheapest first):" if changed else
                    "No single bound and neither all-low nor all-high changes a ranking."})
        out.append({"table": {"header": ["scenario", "value", "ranking by energy",
                                         "ranking at matched accuracy"], "rows": nominal_line + changed}})
    out.append({"img": "sensitivity_tornado.png", "alt": "energy sensitivity tornado"})
    return out


def _conclusion_rows(t: dict[str, Any]) -> list[list[str]]:
    """One line per conclusion; a matched-accuracy one only where it compares other rows."""
    rows, seen = [], set()
    for c in t["conclusions"]:
        nom = t["nominal"][c["metric"]]["best"]
        wa, lb = nom[c["winner"]], nom[c["loser"]]
        key = (wa["row"], lb["row"])
        if key in seen:
            continue
        seen.add(key)
        joint = [k for k in ("low", "high") if c[f"flips_all_{k}"]]
        closest = c["closest"]
        rows.append([
            c["metric"], f"{c['winner']}: {wa['row']}, {format_si(wa['energy_j'], 'J')}",
            f"{c['loser']}: {lb['row']}, {format_si(lb['energy_j'], 'J')}",
            f"{c['ratio']:.3g}x" if c["ratio"] is not None else "n/a",
            "; ".join(h["text"] for h in c["hinges"]) or "none",
            " and ".join(f"all {k}" for k in joint) or "no",
            closest["text"] if closest else f"none within {MAX_FACTOR:g}x of the nominal values"])
    return rows


def write_outputs(result: dict[str, Any], out_dir: Path) -> None:
    """sensitivity.json, .md, _tornado.png and the report section, each atomically."""
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "sensitivity.json", result)
    atomic_write_bytes(out_dir / "sensitivity_tornado.png", tornado_png(result))
    bl = blocks(result)
    atomic_write_text(out_dir / "sensitivity.md", render_markdown(bl, "Energy sensitivity"))
    atomic_write_json(out_dir / "sensitivity.section.json",
                      {"title": "Energy sensitivity", "order": 50, "blocks": bl})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", help="a folder written by `nonvon compare`")
    ap.add_argument("--run", action="store_true", help="run a comparison first (into --out)")
    ap.add_argument("--task", default="digits", help="with --run: comma-separated tasks")
    ap.add_argument("--sim", default="gpu-mlp,snn-mlp,hdc-projection,onn-mzi",
                    help="with --run: comma-separated simulators, or 'all'")
    ap.add_argument("--quick", action="store_true", help="with --run: the small budget")
    ap.add_argument("--out", default=None, help="output folder (default: the results folder)")
    ap.add_argument("--match", default="gpu",
                    help="matched accuracy: 'gpu' (best GPU accuracy - 1 pp), a fraction, or 'off'")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.run:
            out = Path(args.out or "sensitivity-results")
            outcome = nonvon.compare(args.task.split(","), args.sim.split(","), quick=args.quick,
                                     out_dir=out, progress=not args.no_progress,
                                     log=lambda m: print(m, file=sys.stderr))
            rows = outcome.rows
        elif args.results:
            rows = load_rows(args.results)
            out = Path(args.out or args.results)
        else:
            raise ConfigError("no results folder given", "pass RESULTS_DIR, or --run to make one")
        result = analyse(rows, match=args.match, log=lambda m: print(m, file=sys.stderr))
        write_outputs(result, out)
        write_report(rows, out)  # report.md / report.html now include the sensitivity section
    except NonvonError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"  fix: {e.hint}", file=sys.stderr)
        return 2
    for task, t in result["tasks"].items():
        print(f"\n{task}: " + " < ".join(t["nominal"]["energy"]["ranking"]))
        for c in t["conclusions"]:
            print(f"  [{c['metric']}] {c['text']}")
    print(f"\nwrote {out}/sensitivity.json, sensitivity.md, sensitivity_tornado.png, report.html",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

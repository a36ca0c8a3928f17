"""Markdown report and figures from result rows (``nonvon report`` rebuilds them)."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_bytes, atomic_write_text
from nonvon.energy_models import landauer_j

__all__ = ["write_report", "markdown_table", "format_si"]

FIGURES = ("accuracy_vs_energy.png", "energy_breakdown.png")


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


def _row_label(row: dict[str, Any]) -> str:
    return f"{row['simulator']} @ {row['preset']}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ("| task | simulator | preset | kind | accuracy | energy / inference (low-high) "
            "| latency / inference | fit time | eval time |\n|---|---|---|---|---|---|---|---|---|\n")
    body = []
    for r in rows:
        rng = (f" ({format_si(r['energy_low_j'], 'J')} - {format_si(r['energy_high_j'], 'J')})"
               if r["kind"] == "modelled" else "")
        body.append(f"| {r['task']} | {r['simulator']} | {r['preset']} | {r['kind']} | "
                    f"{100 * r['accuracy']:.2f}% | {format_si(r['energy_per_inference_j'], 'J')}{rng} | "
                    f"{format_si(r['latency_per_inference_s'], 's')} | {r['fit_wall_s']:.1f} s | "
                    f"{r['sim_wall_s']:.2f} s |")
    return head + "\n".join(body) + "\n"


def _landauer(rows) -> float | None:
    bounds = [landauer_j(r["ledger"]) for r in rows if r["kind"] == "modelled" and r.get("ledger")]
    bounds = [b for b in bounds if b > 0]
    return min(bounds) if bounds else None


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    return buf.getvalue()


def accuracy_vs_energy_png(rows: list[dict[str, Any]]) -> bytes:
    """One panel per task: colour = simulator, marker = preset (stars are measurements)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    sims = list(dict.fromkeys(r["simulator"] for r in rows))
    presets = list(dict.fromkeys(r["preset"] for r in rows if r["kind"] == "modelled"))
    measured = list(dict.fromkeys(r["preset"] for r in rows if r["kind"] == "measured"))
    colors = {s: plt.get_cmap("tab20")(i % 20) for i, s in enumerate(sims)}
    # cycle: there may be more presets than distinct marker shapes
    markers = dict(zip(presets, itertools.cycle("osD^vP<>hXd"), strict=False))
    markers |= dict(zip(measured, itertools.cycle("*pH8"), strict=False))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.8), squeeze=False)
    bound = _landauer(rows)
    for ax, task in zip(axes[0], tasks, strict=True):
        for r in (r for r in rows if r["task"] == task):
            e = r["energy_per_inference_j"]
            if not (e and e > 0):
                continue  # a measurement at or below the noise floor cannot go on a log axis
            acc, kw = 100 * r["accuracy"], {"color": colors[r["simulator"]], "mec": "black",
                                            "ms": 13 if r["kind"] == "measured" else 8}
            if r["kind"] == "measured":
                ax.plot(e, acc, markers[r["preset"]], **kw)
            else:
                ax.errorbar(e, acc, xerr=[[e - r["energy_low_j"]], [r["energy_high_j"] - e]],
                            fmt=markers[r["preset"]], capsize=3, **kw)
        if bound:
            ax.axvline(bound, color="black", ls="--", lw=1)
            ax.annotate("Landauer bound\n(cheapest ledger, 300 K)", (bound, 0.02),
                        xycoords=("data", "axes fraction"), fontsize=7, xytext=(4, 0),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("energy per inference (J, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(task, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], marker="s", ls="", color=c, label=s) for s, c in colors.items()]
    handles += [plt.Line2D([], [], marker=m, ls="", color="white", mec="black",
                           label=f"{p} ({'measured' if p in measured else 'modelled, low-high'})")
                for p, m in markers.items()]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Accuracy vs energy per inference")
    fig.tight_layout(rect=(0, 0.06 + 0.025 * (len(handles) // 4), 1, 1))
    data = _png(fig)
    plt.close(fig)
    return data


def energy_breakdown_png(rows: list[dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modelled = [r for r in rows if r["kind"] == "modelled"]
    kinds = sorted({k for r in modelled for k in r["energy_breakdown_j"]})
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(modelled), 2) + 1.5))
    for i, r in enumerate(modelled):
        total = r["energy_per_inference_j"] or 1.0
        left = 0.0
        for j, k in enumerate(kinds):
            share = 100 * r["energy_breakdown_j"].get(k, 0.0) / total
            ax.barh(i, share, left=left, color=cmap(j % 20), label=k if i == 0 else None)
            left += share
        ax.text(101, i, format_si(r["energy_per_inference_j"], "J"), va="center", fontsize=7)
    ax.set_yticks(range(len(modelled)), [_row_label(r) for r in modelled], fontsize=7)
    ax.set_xlim(0, 115)
    ax.set_xlabel("share of modelled energy per inference (%)")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title("Where the energy goes")
    data = _png(fig)
    plt.close(fig)
    return data


def write_report(rows: list[dict[str, Any]], out_dir: Path) -> None:
    """report.md plus the PNG figures it links, each written atomically."""
    atomic_write_bytes(out_dir / FIGURES[0], accuracy_vs_energy_png(rows))
    atomic_write_bytes(out_dir / FIGURES[1], energy_breakdown_png(rows))
    data = sorted({r.get("data_source", "") for r in rows} - {""})
    md = ["# nonvon comparison\n", markdown_table(rows),
          "\nModelled rows price the simulator's counted operations on the preset; "
          "measured rows come from hardware counters (NVML), idle power subtracted.\n",
          "\n## Data\n", *[f"- {d}\n" for d in data],
          f"\n![accuracy vs energy]({FIGURES[0]})\n", f"\n![energy breakdown]({FIGURES[1]})\n",
          "\n## Assumptions behind each modelled figure\n"]
    seen = set()
    for r in rows:
        if r["kind"] != "modelled" or r["preset"] in seen:
            continue
        seen.add(r["preset"])
        md.append(f"\n**{r['preset']}**\n\n" + "".join(f"- {a}\n" for a in r["assumptions"]))
    atomic_write_text(out_dir / "report.md", "".join(md))

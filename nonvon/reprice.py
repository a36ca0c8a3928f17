"""``nonvon energy``: price the saved ledgers of a results folder on another preset.

Pricing needs nothing but a row's ledger (``ledger_totals``) and the preset, so a shared
``results.json`` can be re-priced without its simulators, its cache or its data. Every cell
the preset can price gets a row on it (replacing an older row of the same cell and preset);
every cell it cannot is listed with the reason, and nothing is ever priced at zero.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nonvon.cells import load_rows, load_title, write_results
from nonvon.energy_models import OpLedger, Preset, price
from nonvon.errors import ConfigError, NonvonError
from nonvon.result import priced_fields

__all__ = ["RepriceOutcome", "reprice_rows", "reprice_folder"]


@dataclasses.dataclass
class RepriceOutcome:
    """What :func:`reprice_rows` did: the new rows on the preset (``priced``), the cells it
    could not price as ``(cell label, why)`` (``unpriced``), and every row of the folder
    with the new ones in place (``rows``)."""

    preset: Preset
    priced: list[dict[str, Any]]
    unpriced: list[tuple[str, str]]
    rows: list[dict[str, Any]]

    @property
    def complete(self) -> bool:
        """True when every chosen cell was priced."""
        return not self.unpriced


def cell_label(row: dict[str, Any]) -> str:
    """``task / simulator[config] / seed N`` of a row."""
    cfg = f"[{row['config_label']}]" if row.get("config_label") else ""
    return f"{row.get('task')} / {row.get('simulator')}{cfg} / seed {row.get('seed')}"


def _identity(row: dict[str, Any]) -> str:
    """One cell: its cache key when the row has one, else what defines it."""
    if isinstance(row.get("cell"), str):
        return row["cell"]
    return json.dumps([row.get("task"), row.get("simulator"), row.get("seed"),
                       row.get("sim_config"), row.get("config_label")], sort_keys=True, default=str)


def _why_not(row: dict[str, Any], preset: Preset) -> tuple[str | None, dict[str, Any] | None]:
    """(reason it cannot be priced, None) or (None, the new row)."""
    paradigm = row.get("paradigm")
    if paradigm not in preset.paradigms:
        return (f"preset {preset.name!r} prices the paradigms {', '.join(preset.paradigms)}, "
                f"not {paradigm!r}"), None
    totals = row.get("ledger_totals")
    if not isinstance(totals, dict):
        return "the row holds no ledger (ledger_totals); rerun `nonvon compare` to write one", None
    try:
        ledger = OpLedger.from_dict(totals)
    except NonvonError as e:  # e.g. an op kind of a plugin not installed here
        return (f"its ledger cannot be read: {e.message} (install the plugin that counts it, or "
                "use a preset that declares the kind in its [kinds] table)"), None
    missing = preset.can_price(ledger.totals)
    if missing:
        return f"no price for op kind(s) {', '.join(missing)}", None
    try:
        report = price(ledger, preset)
    except NonvonError as e:
        return e.message, None
    versions = {**(row.get("versions") or {}), **preset.provided_by}
    return None, {**row, **priced_fields(report, ledger), "versions": versions}


def reprice_rows(rows: Sequence[dict[str, Any]], preset: Preset, *,
                 simulators: Sequence[str] | None = None) -> RepriceOutcome:
    """Price each cell of ``rows`` (its first modelled row's ledger) on ``preset``.

    Args:
        rows: results.json rows (docs/schema.md).
        preset: the preset to price on.
        simulators: only the cells of these simulators (``None``: every cell).

    Returns:
        The priced rows, the unpriced cells with the reason, and ``rows`` with each new row
        in place of the cell's old row on ``preset`` (or after the cell's last row).

    Raises:
        ConfigError: ``simulators`` names one that ``rows`` do not hold, or ``rows`` hold no
            modelled row (no ledger) to price.
    """
    present = sorted({r.get("simulator") for r in rows if r.get("kind") == "modelled"})
    if not present:
        raise ConfigError("the results hold no modelled row (no saved ledger) to price",
                          "point at a folder written by `nonvon compare` or `nonvon sweep`")
    if simulators is not None:
        unknown = sorted(set(simulators) - set(present))
        if unknown:
            raise ConfigError(f"--sim {','.join(unknown)}: no cell of it in these results (they "
                              f"hold {', '.join(present)})", "name simulators the results hold")
    cells: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("kind") == "modelled" and (simulators is None or r.get("simulator") in simulators):
            cells.setdefault(_identity(r), r)
    priced: dict[str, dict[str, Any]] = {}
    unpriced = []
    for ident, row in cells.items():
        why, new = _why_not(row, preset)
        if new is None:
            unpriced.append((cell_label(row), why))
        else:
            priced[ident] = new
    out: list[dict[str, Any]] = []
    last: dict[str, int] = {}
    for r in rows:
        ident = _identity(r)
        if ident in priced and r.get("kind") == "modelled" and r.get("preset") == preset.name:
            continue  # the old row of this cell on this preset: replaced below
        out.append(r)
        last[ident] = len(out)
    for ident, new in sorted(priced.items(), key=lambda kv: -last[kv[0]]):
        out.insert(last[ident], new)  # from the back, so earlier positions stay valid
    return RepriceOutcome(preset, list(priced.values()), unpriced, out)


def reprice_folder(folder: str | Path, preset: Preset, *, simulators: Sequence[str] | None = None,
                   write: bool = True) -> RepriceOutcome:
    """:func:`reprice_rows` over a results folder (or its results.json), then (``write``)
    results.json, results.csv, report.md, report.html and the figures rewritten with the new
    rows; nothing is written when no cell could be priced."""
    from nonvon.executors import folder_lock

    folder = Path(folder)
    if folder.name == "results.json" and folder.is_file():
        folder = folder.parent
    outcome = reprice_rows(load_rows(folder), preset, simulators=simulators)
    if write and outcome.priced:
        locked = folder_lock(folder) if (folder / ".sweep.lock").exists() \
            else contextlib.nullcontext()
        with locked:
            write_results(outcome.rows, folder, title=load_title(folder))
    return outcome

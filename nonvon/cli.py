"""The ``nonvon`` command line: list, compare, report, energy, recount, sweep, evaluate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nonvon.errors import ConfigError, NonvonError, invalid

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: same format, exit 2
        self.print_usage(sys.stderr)
        _fail(ConfigError(message, f"see `{self.prog} --help`"))


def _fail(err: NonvonError):
    print(f"error: {err.message}", file=sys.stderr)
    if err.hint:
        print(f"  fix: {err.hint}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def _csv(value: str) -> list[str]:
    return [v for v in (s.strip() for s in value.split(",")) if v]


_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity",
               "-infinity"}


def _refuse_constant(name: str):
    raise ValueError(name)


def _parse_value(text: str, where: str = "--set") -> Any:
    """A ``--set`` value: JSON (a list becomes a tuple), else the text itself; NaN and
    infinity, in any spelling, are refused."""
    if text.strip().lower() in _NON_FINITE:
        raise invalid(where, f"{text!r} is not a finite number", "a finite number",
                      "give a finite value, e.g. --set gpu-mlp.lr=0.001")
    try:
        v = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:  # JSONDecodeError, or NaN / Infinity inside a list
        if any(tok in text.lower() for tok in ("nan", "inf")) and text.lstrip()[:1] in "[{":
            raise invalid(where, f"{text!r} holds a number that is not finite",
                          "finite numbers", "give finite values, e.g. [64, 64]") from None
        return text
    return _tuples(v)


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["gpu-mlp.epochs=3", "gpu-cnn.channels=[8,16]"]`` -> ``{"gpu-mlp": {"epochs": 3}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        sim, dot, option = key.partition(".")
        if not (sep and dot and sim and option):
            raise ConfigError(f"cannot read --set {item!r}",
                              "write SIMULATOR.OPTION=VALUE, e.g. --set gpu-mlp.epochs=3")
        if option in out.get(sim, {}):
            raise invalid(f"--set {key}", "is given twice", "one value per option",
                          f"keep one of the --set {key}=... arguments")
        out.setdefault(sim, {})[option] = _parse_value(value, f"--set {key}")
    return out


# -- commands ---------------------------------------------------------------------------
def cmd_list(args) -> None:
    from nonvon.registry import registry

    reg = registry()
    broken = list(reg.broken)  # the registry is shared: do not add to its own list
    sims = []
    for name in sorted(reg.simulators):
        try:
            sim = reg.simulator(name)
            sims.append({"name": name, "paradigm": sim.paradigm, "op_kinds": sorted(sim.op_kinds),
                         "description": (type(sim).__doc__ or "").strip().splitlines()[0]})
        except Exception as e:  # a plugin that cannot even be built is broken, not fatal
            from nonvon.registry import SIMULATORS, Broken

            broken.append(Broken(SIMULATORS, name, f"{type(e).__name__}: {e}"))
    info = {"tasks": sorted(reg.tasks), "simulators": sims,
            "paradigms": [{"name": p.name, "label": p.label, "order": p.order, "colour": p.colour,
                           "headline_presets": list(p.headline_presets)}
                          for p in reg.paradigms.values()],
            "presets": [{"name": p.name, "paradigms": list(p.paradigms), "boundary": p.boundary,
                         "absent": dict(p.absent), "ops": sorted(p.ops),
                         "description": p.description, "path": p.path}
                        for p in sorted(reg.presets.values(), key=lambda p: p.name)],
            "broken": [{"name": b.name, "group": b.group, "error": b.error} for b in broken]}
    if args.ops:  # after the simulators were built: their plugins' kinds are registered
        _list_ops(reg, args.json)
        return
    if args.json:
        print(json.dumps(info, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    con = _console()
    con.print("[bold]tasks:[/] " + ", ".join(info["tasks"]))
    t = Table("paradigm", "label", "colour", "headline presets", title="paradigms")
    for p in info["paradigms"]:
        t.add_row(p["name"], p["label"], f"[{p['colour']}]{p['colour']}[/]",
                  ", ".join(p["headline_presets"]))
    con.print(t)
    t = Table("simulator", "paradigm", "description", title="simulators")
    for s in sims:  # plugin text is shown as written, never read as Rich markup
        t.add_row(*map(escape, (s["name"], s["paradigm"], s["description"])))
    con.print(t)
    t = Table("preset", "boundary", "paradigms", "description", title="presets")
    for p in info["presets"]:
        t.add_row(*map(escape, (p["name"], p["boundary"], ", ".join(p["paradigms"]),
                                p["description"])))
    con.print(t)
    if info["broken"]:
        t = Table("plugin", "group", "error", title="[red]broken plugins (skipped)")
        for b in info["broken"]:
            t.add_row(*map(escape, (b["name"], b["group"], b["error"])))
        con.print(t)


def op_catalog(reg) -> list[dict[str, Any]]:
    """Every op kind in the catalog: unit, cost class, memory level, description, who
    defined it (``nonvon``, a plugin's module or a preset file) and the registered presets
    that price it."""
    from nonvon.energy_models.catalog import CATALOG, COST_CLASSES, ORIGINS

    return [{"name": k.name, "unit": k.unit, "cost_class": k.cost_class,
             "memory_level": k.memory_level, "output_bits": k.output_bits,
             "description": k.description, "defined_by": ORIGINS.get(k.name, "?"),
             "presets": sorted(p.name for p in reg.presets.values() if k.name in p.ops)}
            for k in sorted(CATALOG.values(), key=lambda k: (COST_CLASSES.index(k.cost_class), k.name))]


def _list_ops(reg, as_json: bool) -> None:
    ops = op_catalog(reg)
    if as_json:
        print(json.dumps({"ops": ops}, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table("op kind", "unit", "class", "priced by", "description",
              title=f"op catalog ({len(ops)} kinds)")
    for o in ops:
        cls = o["cost_class"] + (f" ({o['memory_level']})" if o["memory_level"] else "")
        origin = "" if o["defined_by"] == "nonvon" else f" [defined by {o['defined_by']}]"
        t.add_row(*map(escape, (o["name"], o["unit"], cls, ", ".join(o["presets"]) or "-",
                                o["description"] + origin)))
    _console().print(t)


def _print_table(rows) -> None:
    from rich.markup import escape
    from rich.table import Table

    from nonvon.report import format_si

    t = Table("task", "simulator", "preset", "kind", "accuracy", "energy/inference",
              "latency/inference", "fit", title="nonvon compare")
    for r in rows:
        cfg = f"[{r['config_label']}]" if r.get("config_label") else ""
        t.add_row(*map(escape, (r["task"], r["simulator"] + cfg, r["preset"], r["kind"])),
                  f"{100 * r['accuracy']:.2f}%",
                  format_si(r["energy_per_inference_j"], "J"),
                  format_si(r["latency_per_inference_s"], "s"), f"{r['fit_wall_s']:.1f} s")
    _console().print(t)


def _console():
    from rich.console import Console

    # Piped output (CI logs, files) gets a table wide enough to read, not 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def cmd_compare(args) -> None:
    from nonvon.compare import check_seeds, compare

    try:
        seeds = [int(s) for s in _csv(args.seeds)]
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r} must be comma-separated integers",
                          "e.g. --seeds 0,1,2") from None
    check_seeds(seeds, "--seeds")
    outcome = compare(_csv(args.task), _csv(args.sim),
                      presets=_csv(args.preset) if args.preset else None, seeds=seeds,
                      out_dir=args.out, quick=args.quick, overrides=parse_overrides(args.set),
                      data_dir=args.data_dir, progress=not args.no_progress, jobs=args.jobs,
                      log=lambda m: print(m, file=sys.stderr))
    _print_table(outcome.rows)
    print(f"wrote {args.out}/results.json, results.csv, report.md, report.html and figures",
          file=sys.stderr)


def cmd_report(args) -> None:
    from nonvon.cells import load_title
    from nonvon.compare import load_rows
    from nonvon.report import write_report

    rows = load_rows(args.results)
    write_report(rows, Path(args.results), title=load_title(args.results))
    _print_table(rows)
    print(f"wrote {args.results}/report.md, report.html and figures", file=sys.stderr)


def cmd_energy(args) -> None:
    """Price saved ledgers (a results folder, results.json or a result JSON) on a preset: every
    cell it can price, the rest listed with the reason; exit 1 when some were left unpriced."""
    from nonvon.compare import load_cell
    from nonvon.registry import registry
    from nonvon.report import format_si
    from nonvon.reprice import reprice_folder, reprice_rows

    path = Path(args.source)
    preset = registry().preset(args.preset)  # first: it may declare the op kinds of the ledgers
    sims = [n for item in args.sim for n in _csv(item)] or None
    if path.is_dir() or path.name == "results.json":
        outcome = reprice_folder(path, preset, simulators=sims, write=not args.no_write)
        written = outcome.priced and not args.no_write
    else:
        cell = load_cell(path)  # a cached cell, or a Result saved on its own
        r = cell.result
        row = {**r._base_row(), "kind": "modelled", "ledger_totals": r.ledger.to_dict()}
        outcome = reprice_rows([row], preset, simulators=sims)
        written = False
    if args.json:
        print(json.dumps({"preset": preset.name, "priced": [
            {"cell": _cell_label(r), "energy_j": r["energy_per_inference_j"],
             "low_j": r["energy_low_j"], "high_j": r["energy_high_j"],
             "latency_s": r["latency_per_inference_s"], "boundary": r["boundary"],
             "energy_by_class_j": r["energy_by_class_j"], "breakdown_j": r["energy_breakdown_j"]}
            for r in outcome.priced],
            "unpriced": [{"cell": c, "why": why} for c, why in outcome.unpriced]}, indent=2))
    else:
        for r in outcome.priced:
            lat = r["latency_per_inference_s"]
            print(f"{_cell_label(r)}: {format_si(r['energy_per_inference_j'], 'J')} per inference "
                  f"on {preset.name} ({format_si(r['energy_low_j'], 'J')} - "
                  f"{format_si(r['energy_high_j'], 'J')}), latency {format_si(lat, 's')}")
            for k, v in sorted(r["energy_breakdown_j"].items(), key=lambda kv: -kv[1]):
                print(f"    {k:<20} {format_si(v, 'J')}")
    for c, why in outcome.unpriced:
        print(f"not priced on {preset.name}: {c}: {why}", file=sys.stderr)
    print(f"priced {len(outcome.priced)} cell(s) on {preset.name}, {len(outcome.unpriced)} left "
          "unpriced" + (f"; rewrote {path if path.is_dir() else path.parent}/results.json, "
                        "results.csv, report.md, report.html and figures" if written else ""),
          file=sys.stderr)
    if outcome.unpriced:
        sys.exit(1)


def _cell_label(row) -> str:
    from nonvon.reprice import cell_label

    return cell_label(row)


def cmd_recount(args) -> None:
    """Evaluate cached cells again from their stored parameters; exit 1 when some failed."""
    from nonvon.compare import recount

    sims = [n for item in args.sim for n in item.split(",") if n] or None
    out = recount(args.folder, data_dir=args.data_dir, presets=args.preset, simulators=sims,
                  progress=not args.no_progress, log=lambda m: print(m, file=sys.stderr))
    c = out.counts
    print(f"recounted {c['recounted']} cell(s) ({c['changed']} with a changed ledger or "
          f"accuracy) in {out.wall_s:.1f} s; {c['no_parameters']} without parameters, "
          f"{c['unreadable']} with unreadable parameters, {c['failed']} failed",
          file=sys.stderr)
    for title, items in (("no parameters", out.no_parameters), ("unreadable", out.unreadable),
                         ("FAILED", out.failed)):
        for label, why in items:
            print(f"  {title}: {label}: {why}", file=sys.stderr)
    if out.rows is None:
        print(f"no results.json beside {out.cache_dir}: cells rewritten, no table to re-price",
              file=sys.stderr)
    else:
        stale = f" ({out.stale_rows} row(s) without a cached cell kept as they were)" \
            if out.stale_rows else ""
        print(f"re-priced {len(out.rows)} row(s){stale}; wrote {out.results_dir}/results.json, "
              "results.csv" + (", report.md, report.html and figures"
                               if (out.results_dir / "report.md").exists() else ""),
              file=sys.stderr)
    if out.failed:
        sys.exit(1)


def cmd_sweep(args) -> None:
    """Run a grid (docs/sweeps.md); exit 1 when cells failed, 2 on bad input."""
    from nonvon.sweep import print_plan, print_summary, run_sweep

    outcome = run_sweep(args.grid, out_dir=args.out, executor=args.executor, jobs=args.jobs,
                        address=args.address, retry_failed=args.retry_failed,
                        data_dir=args.data_dir, threads=args.threads,
                        progress=not args.no_progress, dry_run=args.dry_run,
                        log=lambda m: print(m, file=sys.stderr))
    if args.dry_run:
        print_plan(outcome, _console())
        return
    print_summary(outcome, _console())
    written = "results.json, results.csv, report.md" if outcome.rows else "results.json"
    print(f"wrote {outcome.out_dir}/{written}, sweep.json (cell results in cache/, failures "
          "in failed/)", file=sys.stderr)
    if outcome.failed:
        print(f"{len(outcome.failed)} cell(s) failed; each traceback is in "
              f"{outcome.out_dir}/failed/; rerun with --retry-failed once fixed", file=sys.stderr)
        sys.exit(1)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nonvon", description="Simulate unconventional AI hardware and compare it, "
                "in joules, against a GPU on the same task.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("list", help="registered tasks, simulators, presets and broken plugins")
    s.add_argument("--json", action="store_true", help="machine-readable (docs/schema.md)")
    s.add_argument("--ops", action="store_true", help="the op catalog: every op kind with its "
                   "unit, cost class and the presets that price it")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("compare", help="train, evaluate and price simulators on tasks")
    s.add_argument("--task", default="mnist", help="comma-separated task names (default: mnist)")
    s.add_argument("--sim", default="all", help="comma-separated simulator names, or 'all'")
    s.add_argument("--preset", default=None,
                   help="comma-separated preset names or TOML paths (default: every preset that "
                        "fits each simulator)")
    s.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    s.add_argument("--out", default="results", help="results folder (default: ./results)")
    s.add_argument("--quick", action="store_true", help="small budget for demos and smoke checks")
    s.add_argument("--set", action="append", default=[], metavar="SIM.OPTION=VALUE",
                   help="config override, e.g. --set gpu-mlp.epochs=3 (repeatable)")
    s.add_argument("--data-dir", default=None, help="where to look for dataset files")
    s.add_argument("--jobs", type=_positive_int, default=1,
                   help="compute the cells in this many worker processes first, longest first "
                        "(default 1: one after another); NVML-measured GPU cells still run alone")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("report", help="rebuild report.md, a self-contained report.html and the "
                       "figures from a results folder")
    s.add_argument("results", help="folder written by `nonvon compare`")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("energy", help="price saved ledgers on another preset and rebuild the report; "
                       "exit 1 when some cells could not be priced")
    s.add_argument("source", help="results folder, results.json, or a saved result JSON")
    s.add_argument("--preset", required=True, help="preset name or TOML path")
    s.add_argument("--sim", action="append", default=[], metavar="NAME[,NAME]",
                   help="price only these simulators' cells (repeatable)")
    s.add_argument("--no-write", action="store_true",
                   help="print the prices only; leave results.json and the report as they are")
    s.add_argument("--json", action="store_true",
                   help='{"preset", "priced": [...], "unpriced": [{"cell", "why"}]} on stdout')
    s.set_defaults(func=cmd_energy)

    s = sub.add_parser("recount", help="evaluate cached cells again from their stored parameters "
                       "(no training), then re-price and rewrite the results and report")
    s.add_argument("folder", help="results folder written by `nonvon compare` or `nonvon sweep`, "
                   "or its cache folder")
    s.add_argument("--data-dir", default=None, help="where to look for dataset files (nothing is "
                   "downloaded)")
    s.add_argument("--preset", action="append", default=[], metavar="PATH",
                   help="preset TOML file for rows priced on an unregistered preset (repeatable)")
    s.add_argument("--sim", action="append", default=[], metavar="NAME[,NAME]",
                   help="re-evaluate only these simulators' cells (every row is still re-priced)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_recount)

    s = sub.add_parser("sweep", help="run a TOML grid of tasks x simulator configs x seeds, "
                       "resumable, on local processes or Ray")
    s.add_argument("grid", help="grid TOML file (see docs/sweeps.md)")
    s.add_argument("--out", default=None, help="results folder (default: the grid's `out`, "
                   "else ./<grid name>-results)")
    s.add_argument("--executor", choices=("local", "ray", "inline"), default="local",
                   help="local worker processes (default), a Ray cluster, or inline (this "
                        "process, for debugging)")
    s.add_argument("--jobs", type=_positive_int, default=None,
                   help="cells run at once (default: the number of CPUs)")
    s.add_argument("--address", default=None,
                   help="Ray cluster to join, e.g. auto or ray://head:10001 (default: start a "
                        "local Ray instance)")
    s.add_argument("--retry-failed", action="store_true", help="rerun cells that failed before")
    s.add_argument("--threads", type=_positive_int, default=1,
                   help="torch threads per cell (default 1: results independent of --jobs)")
    s.add_argument("--data-dir", default=None, help="where to look for dataset files")
    s.add_argument("--dry-run", action="store_true",
                   help="check the grid and list every cell's status; run and write nothing")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_sweep)

    from nonvon import evaluate_cli  # price a network trained elsewhere (docs/bring-your-own.md)

    evaluate_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except NonvonError as e:
        _fail(e)
    except KeyboardInterrupt:
        print("interrupted; finished cells are cached and will not be recomputed", file=sys.stderr)
        sys.exit(130)


def run(*args: str) -> int:
    """``nonvon ARGS...`` in this process, returning its exit code instead of exiting (for
    scripts and tests: 0 done, 1 some cells failed, 2 bad input, 130 interrupted)."""
    try:
        main(list(args))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    main()

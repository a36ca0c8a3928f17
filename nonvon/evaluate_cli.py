"""``nonvon evaluate FILE --task T --preset P``: price a network exported elsewhere.

``FILE`` is any file an installed importer reads (``.nir``, ``.qasm``, ...; see
:mod:`nonvon.importers`). ``--device`` names what it runs on (a chip or QPU preset, or a
simulator such as ``snn-mlp``; default: the preset), ``--preset`` the price list, and
``--set key=value`` passes an importer option (``--set timesteps=8 --set coding=rate``).
Prints the accuracy and joules per inference; ``--json`` prints the priced row as JSON,
``--out`` saves the :class:`~nonvon.result.Result`. Bad input exits with code 2 before any
work, as every ``nonvon`` command does.

Registered in ``nonvon/cli.py``'s ``build_parser`` by::

    from nonvon import evaluate_cli
    evaluate_cli.register(sub)
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

from nonvon.errors import ConfigError

__all__ = ["register", "main", "parse_settings"]


def parse_settings(items: list[str] | None) -> dict:
    """``["timesteps=8", "coding=rate"]`` -> ``{"timesteps": 8, "coding": "rate"}`` (values read
    as Python literals where they are one, else kept as text)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} is not key=value", "e.g. --set timesteps=8")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def register(sub) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``nonvon``'s subparsers."""
    s = sub.add_parser("evaluate", help="price a network exported elsewhere (a NIR graph, an "
                       "OpenQASM 3 circuit, ...) on a task")
    s.add_argument("file", help="the exported network (.nir, .qasm, ...)")
    s.add_argument("--task", required=True, help="task name, e.g. digits")
    s.add_argument("--preset", required=True, help="the preset that prices it, e.g. loihi")
    s.add_argument("--device", help="what it runs on: a chip or QPU preset, or a simulator "
                   "(e.g. snn-mlp); default: the preset")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings",
                   help="an importer option, e.g. --set timesteps=8 (repeatable)")
    s.add_argument("--limit", type=int, help="evaluate the first N test samples")
    s.add_argument("--json", action="store_true", help="print the priced row as JSON")
    s.add_argument("--out", type=Path, help="save the Result as JSON here")
    s.set_defaults(func=main)
    return s


def main(args: argparse.Namespace) -> None:
    from nonvon.importers import load_network
    from nonvon.registry import registry

    reg = registry()
    preset = reg.preset(args.preset)
    task = reg.task(args.task)
    sim = load_network(args.file, device=args.device or preset.name, preset=preset,
                       **parse_settings(args.settings))
    result = sim.evaluate(task, limit=args.limit)
    if args.out is not None:
        result.save(args.out)
    row = result.modelled_row()
    if args.json:
        print(json.dumps(row, default=str))
        return
    print(f"{sim.name} on {task.name}, priced on {preset.name} ({row['boundary']} boundary): "
          f"accuracy {result.accuracy:.4f}, {row['energy_per_inference_j']:.3e} J per inference")

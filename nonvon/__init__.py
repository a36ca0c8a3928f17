"""nonvon: simulate unconventional AI hardware and compare it, in joules, against a GPU.

The public API is what this module exports; everything in underscore modules may change.

Example:
    >>> import nonvon
    >>> reg = nonvon.registry()
    >>> task = reg.task("digits")
    >>> sim = reg.simulator("gpu-mlp", epochs=3).fit(task, seed=0)
    >>> result = sim.evaluate(task).priced(reg.preset("cmos-45nm"))
    >>> result.energy.energy_j  # joules per inference
"""

from nonvon.compare import compare
from nonvon.context import RunContext
from nonvon.energy_models import (
                                  CATALOG,
                                  EnergyReport,
                                  OpKind,
                                  OpLedger,
                                  Preset,
                                  load_preset,
                                  price,
                                  register_op_kind,
)
from nonvon.errors import (
                                  ConfigError,
                                  DataError,
                                  IncompatibleError,
                                  NonvonError,
                                  PresetError,
                                  UnknownNameError,
)
from nonvon.importers import load_network
from nonvon.registry import Registry, registry
from nonvon.result import Measurement, Result
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.tables import ResultsTable
from nonvon.tasks import Task

__all__ = [
    "CATALOG", "Capabilities", "ConfigError", "DataError", "EnergyReport", "IncompatibleError",
    "Measurement", "NonvonError", "OpKind", "OpLedger", "Prediction", "Preset", "PresetError",
    "Registry", "Result", "ResultsTable", "RunContext", "Simulator", "Task", "UnknownNameError",
    "compare", "load_network", "load_preset", "price", "register_op_kind", "registry",
]

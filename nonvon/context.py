"""The run context: what a runner tells a simulator about the run its cell is part of.

It is passed explicitly (``Simulator.fit(task, context=...)``, kept as ``sim.context`` for
``_fit`` and ``_predict``), never through environment variables, so a simulator built and
fitted by user code sees the empty default and behaves as on its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from nonvon.errors import ConfigError

__all__ = ["RunContext"]


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What the runner knows that a simulator may use.

    Attributes:
        training_memo: folder where cells that train the same network alike share one
            training (:func:`nonvon.training_memo.shared_training`); ``None``: each cell trains.
        concurrent_cells: how many cells the machine computes at once; recorded with each
            result (:func:`nonvon.result.machine_description`), since wall times depend on it.
        prefetch: this fit only fills the training memo for a cell computed later (a runner's
            fit-only cell): a training that another process is doing already is left to it.
    """

    training_memo: Path | None = None
    concurrent_cells: int = 1
    prefetch: bool = False

    def __post_init__(self) -> None:
        if self.training_memo is not None and not isinstance(self.training_memo, Path):
            object.__setattr__(self, "training_memo", Path(self.training_memo))
        if (isinstance(self.concurrent_cells, bool) or not isinstance(self.concurrent_cells, int)
                or self.concurrent_cells < 1):
            raise ConfigError(f"concurrent_cells={self.concurrent_cells!r} must be a positive "
                              "integer", "e.g. RunContext(concurrent_cells=4)")

    def to_json(self) -> dict[str, Any]:
        """As plain JSON, for a worker process to rebuild with :meth:`from_json`."""
        return {"training_memo": str(self.training_memo) if self.training_memo else None,
                "concurrent_cells": self.concurrent_cells, "prefetch": self.prefetch}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> RunContext:
        d = d or {}
        return cls(d.get("training_memo") or None, int(d.get("concurrent_cells", 1)),
                   bool(d.get("prefetch", False)))

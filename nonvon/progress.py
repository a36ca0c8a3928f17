"""Progress bars on long steps (rich), silent when disabled or not on a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Silent:
    def add_task(self, *a, **k) -> int:
        return 0

    def update(self, *a, **k) -> None:
        pass

    def advance(self, *a, **k) -> None:
        pass


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress | _Silent]:
    """Yield a rich ``Progress`` (or a no-op stand-in when ``enabled`` is false). The status
    column is plain text: a cell label such as ``gpu-mlp[epochs=2]`` is not Rich markup."""
    if not enabled:
        yield _Silent()
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}", markup=False), TimeElapsedColumn(),
                  TimeRemainingColumn(), transient=False) as bar:
        yield bar

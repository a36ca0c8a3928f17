"""A results folder as a table, for notebooks: Jupyter shows it (``_repr_html_``) and
:meth:`ResultsTable.to_pandas` converts it (pandas optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nonvon.cells import load_rows
from nonvon.result import rows_frame

__all__ = ["ResultsTable"]


class ResultsTable:
    """The rows of a results folder (``results.json``), for notebooks: shown as a table in
    Jupyter, and :meth:`to_pandas` for a DataFrame.

    Example:
        >>> table = ResultsTable.load("results")   # doctest: +SKIP
        >>> table.to_pandas().groupby("preset").energy_per_inference_j.min()   # doctest: +SKIP
    """

    def __init__(self, rows: list[dict[str, Any]], source: str = "") -> None:
        self.rows = list(rows)
        self.source = source

    @classmethod
    def load(cls, folder: str | Path) -> ResultsTable:
        """The rows of ``folder``/results.json, each checked (:func:`nonvon.cells.load_rows`)."""
        return cls(load_rows(folder), str(folder))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"ResultsTable({len(self.rows)} rows" + (f" from {self.source})" if self.source
                                                        else ")")

    def _repr_html_(self) -> str:
        from nonvon.report import results_html

        return results_html(self.rows)

    def to_pandas(self):
        """A pandas DataFrame, one line per row (see :func:`rows_frame`).

        Raises:
            ConfigError: pandas is not installed.
        """
        return rows_frame(self.rows)

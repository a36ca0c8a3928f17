"""nonvon's pytest fixtures (nonvon_cells, nonvon_registry) for the tests in this folder."""

from nonvon.testing import nonvon_cells, nonvon_registry  # noqa: F401

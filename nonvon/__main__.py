"""``python -m nonvon ...``: the same as the ``nonvon`` command."""

from nonvon.cli import main

main()

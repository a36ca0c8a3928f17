"""Conformance: every registered simulator meets the contract.

The checks ship with nonvon (:mod:`nonvon.conformance`), so a plugin's own repository runs
exactly these; here they are parametrized from the registry, so a new plugin is covered
without editing this file.
"""

from __future__ import annotations

from nonvon.conformance import install
from nonvon.registry import registry

install(globals())


def test_registry_has_the_builtin_simulators():
    # a subset: installed plugins add more, and must not break this
    assert {"gpu-mlp", "gpu-cnn", "onn-mzi", "vqc"} <= set(registry().simulators)

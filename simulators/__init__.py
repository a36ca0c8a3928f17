"""Simulators, one subpackage per hardware paradigm; registered via entry points."""

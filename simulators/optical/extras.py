"""Typed side results of the optical simulators, carried on ``Prediction.extras`` / ``Result.extras``.

- :class:`PhotonCurve`: accuracy against photon budget, re-measured on the first test samples
  (``onn-mzi``: per multiply-accumulate; ``onn-diffractive``: per inference).
- :class:`MziRunStats` and :class:`DiffractiveRunStats`: what one inference run detected.

Results written before these existed hold the curve as flat metric keys
``photon_curve.<i>.<field>``; :meth:`PhotonCurve.from_metrics` reads those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from nonvon.result import register_extra

__all__ = ["PhotonCurve", "MziRunStats", "DiffractiveRunStats", "PER_MAC", "PER_INFERENCE"]

PER_MAC, PER_INFERENCE = "per_mac", "per_inference"
_LEGACY_PREFIX = "photon_curve."


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@register_extra("photon_curve")
@dataclasses.dataclass(frozen=True)
class PhotonCurve:
    """Accuracy vs photon budget on the first ``n_samples`` evaluated samples (shot noise on).

    Args:
        unit: ``"per_mac"`` (budgets and detected photons per multiply-accumulate) or
            ``"per_inference"`` (per inference, all detectors together).
        n_samples: test samples behind each accuracy.
        budgets: laser photons sent (per MAC, signal only; or per inference into the input plane).
        accuracies: test accuracy at each budget, in [0, 1].
        optical_energies_j: laser light per inference at each budget (before wall-plug losses).
        detected_photons: photons reaching the photodiodes at each budget (per MAC: signal plus
            local oscillator; per inference: summed over the class detectors).
        detected_signal_photons: per MAC only, the signal alone (``()`` per inference).
    """

    unit: str
    n_samples: int
    budgets: tuple[float, ...]
    accuracies: tuple[float, ...]
    optical_energies_j: tuple[float, ...]
    detected_photons: tuple[float, ...]
    detected_signal_photons: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.unit not in (PER_MAC, PER_INFERENCE):
            raise ValueError(f"PhotonCurve.unit={self.unit!r}: use {PER_MAC!r} or {PER_INFERENCE!r}")
        for f in ("budgets", "accuracies", "optical_energies_j", "detected_photons",
                  "detected_signal_photons"):
            object.__setattr__(self, f, _floats(getattr(self, f)))
        n = len(self.budgets)
        lengths = {len(self.accuracies), len(self.optical_energies_j), len(self.detected_photons)}
        if lengths != {n} or (self.unit == PER_MAC and len(self.detected_signal_photons) != n):
            raise ValueError("PhotonCurve: every per-budget field needs one value per budget")
        object.__setattr__(self, "n_samples", int(self.n_samples))

    def points(self) -> list[dict[str, float]]:
        """One dict per budget with the field names of the figure and of the legacy metric keys."""
        out = []
        for i, b in enumerate(self.budgets):
            if self.unit == PER_MAC:
                p = {"photons_per_mac": b, "detected_photons_per_mac": self.detected_photons[i],
                     "detected_signal_photons_per_mac": self.detected_signal_photons[i]}
            else:
                p = {"photons_per_inference": b, "detected_photons": self.detected_photons[i]}
            out.append({**p, "optical_energy_j": self.optical_energies_j[i],
                        "accuracy": self.accuracies[i]})
        return out

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> PhotonCurve | None:
        """The curve held as flat ``photon_curve.<i>.<field>`` metrics (results written before
        typed extras), or ``None`` when there is none."""
        points: dict[int, dict[str, float]] = {}
        for key, value in metrics.items():
            if not key.startswith(_LEGACY_PREFIX):
                continue
            parts = key[len(_LEGACY_PREFIX):].split(".", 1)
            if len(parts) == 2 and parts[0].isdigit():
                points.setdefault(int(parts[0]), {})[parts[1]] = float(value)
        pts = [points[i] for i in sorted(points)]
        if not pts:
            return None
        n = int(metrics.get(_LEGACY_PREFIX + "n_samples", 0))
        common = {"n_samples": n, "accuracies": [p["accuracy"] for p in pts],
                  "optical_energies_j": [p["optical_energy_j"] for p in pts]}
        if "photons_per_mac" in pts[0]:
            return cls(PER_MAC, budgets=[p["photons_per_mac"] for p in pts],
                       detected_photons=[p["detected_photons_per_mac"] for p in pts],
                       detected_signal_photons=[p["detected_signal_photons_per_mac"] for p in pts],
                       **common)
        return cls(PER_INFERENCE, budgets=[p["photons_per_inference"] for p in pts],
                   detected_photons=[p["detected_photons"] for p in pts], **common)


@register_extra("mzi_run")
@dataclasses.dataclass(frozen=True)
class MziRunStats:
    """What one ``onn-mzi`` inference run detected, averaged over its samples."""

    detected_signal_photons_per_mac: float
    laser_photons_per_mac_incl_lo: float
    macs_per_inference: float


@register_extra("diffractive_run")
@dataclasses.dataclass(frozen=True)
class DiffractiveRunStats:
    """What one ``onn-diffractive`` inference run detected, averaged over its samples."""

    detected_photons_per_inference: float
    detected_fraction: float
    photon_energy_j: float

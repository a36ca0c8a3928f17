"""Multilayer perceptron classifier."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from nonvon.errors import ConfigError


def mlp(n_inputs: int, hidden: Sequence[int], n_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """``Flatten -> [Linear -> ReLU -> Dropout] * len(hidden) -> Linear``.

    Args:
        n_inputs: flattened input size (784 for MNIST).
        hidden: widths of the hidden layers, e.g. ``(512, 512)``.
        n_classes: output logits.
        dropout: dropout after each hidden ReLU during training (identity at inference).
    """
    if n_inputs < 1 or n_classes < 2 or any(h < 1 for h in hidden):
        raise ConfigError(f"mlp sizes must be positive: inputs={n_inputs}, hidden={tuple(hidden)}, "
                          f"classes={n_classes}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = n_inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)

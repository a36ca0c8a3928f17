"""Small convolutional classifier (LeNet-style: two conv blocks, one hidden dense layer)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from nonvon.errors import ConfigError


def cnn(image_side: int, channels: Sequence[int], dense: int, n_classes: int,
        dropout: float = 0.0, kernel: int = 5) -> nn.Sequential:
    """``[Conv(k, same) -> ReLU -> MaxPool2] * len(channels) -> Flatten -> Linear -> ReLU -> Linear``.

    Args:
        image_side: input height = width (single channel), e.g. 28.
        channels: output channels of each conv block, e.g. ``(32, 64)``.
        dense: width of the hidden dense layer.
        n_classes: output logits.
        dropout: dropout before each dense layer during training.
        kernel: odd conv kernel size ("same" padding).
    """
    if kernel % 2 == 0 or kernel < 1:
        raise ConfigError(f"cnn kernel={kernel} must be odd and positive")
    side = image_side
    layers: list[nn.Module] = [nn.Unflatten(1, (1, image_side))]
    c_in = 1
    for c in channels:
        if side < 2:
            raise ConfigError(f"{len(channels)} pooling stages are too many for a "
                              f"{image_side}x{image_side} input", "use fewer conv blocks")
        layers += [nn.Conv2d(c_in, c, kernel, padding=kernel // 2), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, side = c, side // 2
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * side * side, dense), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(dense, n_classes)]
    return nn.Sequential(*layers)

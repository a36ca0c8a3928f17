"""Trainable networks, hardware-agnostic: they say what is computed, not on what."""

from nonvon.models.cnn import cnn
from nonvon.models.mlp import mlp
from nonvon.models.training import train_classifier

__all__ = ["mlp", "cnn", "train_classifier"]

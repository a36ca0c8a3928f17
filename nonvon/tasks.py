"""The task: a named classification problem with train and test splits.

A :class:`Task` holds NumPy arrays and is immutable; every transform returns a
new task whose ``name`` records what was done, so results always say which data
they came from. Loaders for the built-in tasks live in :mod:`nonvon.datasets`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cached_property

import numpy as np

from nonvon.errors import ConfigError, DataError, invalid

__all__ = ["Task"]


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A classification problem.

    Args:
        name: registered name plus the transforms applied, e.g. ``"mnist|ds16"``.
        x_train, x_test: float32 arrays, images ``(N, H, W)`` in [0, 1] or
            feature vectors ``(N, k)`` (after :meth:`pca`).
        y_train, y_test: int64 labels in ``[0, n_classes)``.
        n_classes: number of classes.
        source: where the data actually came from (file paths or package), for results.
        class_names: optional human-readable label names.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str = ""
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, (int, np.integer)) \
                or self.n_classes < 2:
            raise invalid(f"task {self.name!r}, n_classes", f"n_classes={self.n_classes!r}",
                          "an integer >= 2 (a classification problem has two classes or more)",
                          "give the number of distinct labels, e.g. n_classes=10", DataError)
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.float32:
                raise DataError(
                    f"task {self.name!r}: x_{split} must be a float32 NumPy array, got "
                    f"{type(x).__name__} {getattr(x, 'dtype', '')}",
                    "convert with np.asarray(x, dtype=np.float32)",
                )
            if x.ndim not in (2, 3):
                raise DataError(
                    f"task {self.name!r}: x_{split} has shape {x.shape}",
                    "use (N, H, W) images or (N, features) vectors",
                )
            if not isinstance(y, np.ndarray) or y.dtype == np.bool_ \
                    or not np.issubdtype(y.dtype, np.integer):
                raise invalid(f"task {self.name!r}, y_{split}",
                              f"labels of type {type(y).__name__} {getattr(y, 'dtype', '')}",
                              "a NumPy array of integer labels (float labels would be truncated)",
                              "check the labels are whole numbers, then convert with "
                              "np.asarray(y).astype(np.int64)", DataError)
            if y.ndim != 1 or len(y) != len(x):
                raise DataError(
                    f"task {self.name!r}: y_{split} has shape {y.shape} for {len(x)} samples",
                    "give one integer label per sample",
                )
            if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
                raise DataError(
                    f"task {self.name!r}: y_{split} has labels outside [0, {self.n_classes})",
                    "remap labels to 0..n_classes-1 (select_classes does this)",
                )
            if not np.isfinite(x).all():
                raise DataError(f"task {self.name!r}: x_{split} contains NaN or inf",
                                "clean or impute the data before building the task")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"task {self.name!r}: train inputs {self.x_train.shape[1:]} and test inputs "
                f"{self.x_test.shape[1:]} differ in shape",
                "transform both splits the same way",
            )
        object.__setattr__(self, "y_train", self.y_train.astype(np.int64, copy=False))
        object.__setattr__(self, "y_test", self.y_test.astype(np.int64, copy=False))

    # -- description ----------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 3

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in ("train", "test"):
            raise ConfigError(f"unknown split {split!r}", "use 'train' or 'test'")
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    @cached_property
    def x_range(self) -> tuple[float, float]:
        """The smallest and largest input value over both splits."""
        xs = [x for x in (self.x_train, self.x_test) if x.size]
        if not xs:
            return 0.0, 0.0
        return min(float(x.min()) for x in xs), max(float(x.max()) for x in xs)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over name and the array bytes: the cache key of the data."""
        h = hashlib.sha256(self.name.encode())
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).data)
        return h.hexdigest()

    def __repr__(self) -> str:
        return (f"Task({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"input={self.input_shape}, classes={self.n_classes})")

    # -- transforms (each returns a new task) -----------------------------------
    def _derive(self, suffix: str, **changes) -> Task:
        return dataclasses.replace(self, name=f"{self.name}|{suffix}", **changes)

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Task:
        """A random subset of each split (without replacement, reproducible by ``seed``)."""
        rng = np.random.default_rng(seed)
        changes = {}
        for split, n in (("train", n_train), ("test", n_test)):
            x, y = self.split(split)
            if n is None:
                continue
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ConfigError(f"subset size n_{split}={n!r} must be a positive integer")
            if n > len(y):
                raise ConfigError(
                    f"subset n_{split}={n} exceeds the {len(y)} samples of {self.name!r}",
                    f"ask for at most {len(y)}",
                )
            idx = np.sort(rng.permutation(len(y))[:n])
            changes[f"x_{split}"], changes[f"y_{split}"] = x[idx], y[idx]
        return self._derive(f"subset{n_train},{n_test},s{seed}", **changes)

    def downsample(self, side: int) -> Task:
        """Resize images to ``side x side`` by area averaging (pixel values stay in [0, 1])."""
        if not self.is_image:
            raise ConfigError(f"downsample needs images; {self.name!r} has feature vectors",
                              "downsample before pca")
        h, w = self.input_shape
        if not isinstance(side, (int, np.integer)) or not 1 <= side <= min(h, w):
            raise ConfigError(f"downsample side {side!r} must be an integer in [1, {min(h, w)}]")
        import torch
        import torch.nn.functional as F

        def resize(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(x).unsqueeze(1)
            return F.adaptive_avg_pool2d(t, side).squeeze(1).numpy().astype(np.float32)

        return self._derive(f"ds{side}", x_train=resize(self.x_train), x_test=resize(self.x_test))

    def select_classes(self, *classes: int) -> Task:
        """Keep only ``classes``; labels are renumbered 0..k-1 in the order given."""
        if len(classes) == 1 and isinstance(classes[0], (list, tuple)):
            classes = tuple(classes[0])
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ConfigError(f"select_classes needs at least two distinct classes, got {classes}")
        bad = [c for c in classes if not 0 <= c < self.n_classes]
        if bad:
            raise ConfigError(f"classes {bad} are not in [0, {self.n_classes}) for {self.name!r}")
        lut = np.full(self.n_classes, -1, dtype=np.int64)
        lut[list(classes)] = np.arange(len(classes))
        changes = {}
        for split in ("train", "test"):
            x, y = self.split(split)
            keep = lut[y] >= 0
            changes[f"x_{split}"], changes[f"y_{split}"] = x[keep], lut[y[keep]]
        names = tuple(self.class_names[c] for c in classes) if self.class_names else None
        return self._derive(f"classes{','.join(map(str, classes))}", n_classes=len(classes),
                            class_names=names, **changes)

    def pca(self, k: int) -> Task:
        """Project flattened inputs on the first ``k`` principal components of the train split."""
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= min(self.n_features, len(self.y_train)):
            raise ConfigError(
                f"pca k={k!r} must be an integer in [1, {min(self.n_features, len(self.y_train))}]")
        from sklearn.decomposition import PCA

        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        p = PCA(n_components=int(k), random_state=0).fit(flat(self.x_train))
        tr = lambda x: p.transform(flat(x)).astype(np.float32)  # noqa: E731
        return self._derive(f"pca{k}", x_train=tr(self.x_train), x_test=tr(self.x_test))

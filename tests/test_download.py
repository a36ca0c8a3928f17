"""Downloads against a local HTTP server on 127.0.0.1: never the network."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
import time

import numpy as np
import pytest

from nonvon import datasets
from nonvon.download import NetworkUnavailable, download, sha256_of
from nonvon.errors import ConfigError, DataError
from nonvon.idx import write_idx


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep request lines out of the test output
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/"srv"`` over HTTP; yields ``(folder, base_url)``."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval keeps shutdown() from idling half a second per test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def closed_port_url():
    """A URL on a port nothing listens on: the connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch, closed_port_url):
    """No real cache, data folder or mirror is ever touched."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NONVON_DATA", raising=False)
    monkeypatch.setenv("NONVON_MNIST_URL", closed_port_url)
    monkeypatch.setenv("NONVON_FASHION_MNIST_URL", closed_port_url)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_and_writes(server, tmp_path):
    root, url = server
    payload = np.random.default_rng(0).bytes(300_000)
    (root / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    got = download(f"{url}/blob.bin", dest, hashlib.sha256(payload).hexdigest(), progress=False)
    assert got == dest and dest.read_bytes() == payload
    assert _files(dest.parent) == ["blob.bin"]


def test_download_with_progress_bar(server, tmp_path, capsys):
    root, url = server
    (root / "b").write_bytes(b"x" * 200_000)
    download(f"{url}/b", tmp_path / "b", hashlib.sha256(b"x" * 200_000).hexdigest())
    out, err = capsys.readouterr()
    assert out == ""  # the bar goes to stderr, never into results on stdout
    assert "downloading b" in err


def test_decompressed_checksum_accepts_any_compression(server, tmp_path):
    root, url = server
    content = bytes(range(256)) * 1000
    digest = hashlib.sha256(content).hexdigest()
    # The same content compressed two ways: different bytes on the wire.
    (root / "fast.gz").write_bytes(gzip.compress(content, compresslevel=1))
    (root / "best.gz").write_bytes(gzip.compress(content, compresslevel=9, mtime=1))
    (root / "plain.gz").write_bytes(content)  # a mirror that served it decompressed
    for name in ("fast.gz", "best.gz", "plain.gz"):
        dest = download(f"{url}/{name}", tmp_path / "d" / name, digest, decompressed=True,
                        progress=False)
        assert sha256_of(dest, decompressed=True) == digest
    assert _files(tmp_path / "d") == ["best.gz", "fast.gz", "plain.gz"]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    root, url = server
    (root / "f").write_bytes(b"the real content")
    wrong = "0" * 64
    dest = tmp_path / "out" / "f"
    with pytest.raises(DataError, match="checksum mismatch") as e:
        download(f"{url}/f", dest, wrong, progress=False)
    assert not isinstance(e.value, NetworkUnavailable)
    assert wrong in str(e.value) and hashlib.sha256(b"the real content").hexdigest() in str(e.value)
    assert _files(dest.parent) == []


def test_checksum_mismatch_keeps_an_existing_file(server, tmp_path):
    root, url = server
    (root / "f").write_bytes(b"new")
    dest = tmp_path / "f"
    dest.write_bytes(b"old")
    with pytest.raises(DataError, match="checksum mismatch"):
        download(f"{url}/f", dest, "1" * 64, progress=False)
    assert dest.read_bytes() == b"old" and _files(tmp_path) == ["f", "srv"]


def test_corrupt_gzip_with_decompressed_checksum(server, tmp_path):
    root, url = server
    (root / "bad.gz").write_bytes(gzip.compress(b"a" * 10_000)[:30])
    with pytest.raises(DataError, match="not a valid gzip stream"):
        download(f"{url}/bad.gz", tmp_path / "o" / "bad.gz", "2" * 64, decompressed=True,
                 progress=False)
    assert _files(tmp_path / "o") == []


def test_http_404_is_network_unavailable(server, tmp_path):
    _, url = server
    with pytest.raises(NetworkUnavailable, match="HTTP 404"):
        download(f"{url}/missing", tmp_path / "o" / "m", "3" * 64, progress=False)
    assert _files(tmp_path / "o") == []


def test_closed_port_fails_fast(closed_port_url, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(NetworkUnavailable, match="cannot download") as e:
        download(f"{closed_port_url}/x", tmp_path / "o" / "x", "4" * 64, progress=False)
    assert time.monotonic() - t0 < 5
    assert isinstance(e.value, DataError)  # callers catching DataError see it too
    assert _files(tmp_path / "o") == []


def test_silent_server_times_out(tmp_path):
    # A socket that accepts connections (into its backlog) but never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/x"
        t0 = time.monotonic()
        with pytest.raises(NetworkUnavailable):
            download(url, tmp_path / "o" / "x", "5" * 64, progress=False, timeout=0.3)
        assert time.monotonic() - t0 < 5
    assert _files(tmp_path / "o") == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "http://127.0.0.1/x", "sha256": "abc"}, "not a SHA-256 digest"),
        ({"url": "ftp://127.0.0.1/x", "sha256": "6" * 64}, "not an http, https or file URL"),
        ({"url": "127.0.0.1/x", "sha256": "6" * 64}, "not an http, https or file URL"),
        ({"url": "http://127.0.0.1/x", "sha256": "6" * 64, "timeout": 0}, "must be positive"),
    ],
    ids=["sha", "scheme", "no-scheme", "timeout"],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        download(dest=tmp_path / "x", progress=False, **kwargs)
    assert _files(tmp_path) == []


def test_uppercase_digest_is_accepted(server, tmp_path):
    root, url = server
    (root / "f").write_bytes(b"abc")
    download(f"{url}/f", tmp_path / "f", hashlib.sha256(b"abc").hexdigest().upper(),
             progress=False)


# -- the loaders' download path --------------------------------------------------

def _fake_mnist(folder, n_train=30, n_test=20):
    """Write four small MNIST-shaped IDX files; return {file: sha256 of uncompressed bytes}."""
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    digests = {}
    for name, a in arrays.items():
        path = write_idx(folder / f"{name}.gz", a)
        digests[name] = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    return digests


@pytest.mark.parametrize(("loader", "key", "env"),
                         [(datasets.mnist, "mnist", "NONVON_MNIST_URL"),
                          (datasets.fashion_mnist, "fashion-mnist", "NONVON_FASHION_MNIST_URL")],
                         ids=["mnist", "fashion-mnist"])
def test_loader_downloads_into_cache(server, tmp_path, monkeypatch, closed_port_url,
                                     loader, key, env):
    root, url = server
    for name, digest in _fake_mnist(root).items():
        monkeypatch.setitem(datasets.SHA256[key], name, digest)
    monkeypatch.setenv(env, url + "/")
    task = loader(progress=False)
    assert task.name == key
    assert task.x_train.shape == (30, 28, 28) and task.x_test.shape == (20, 28, 28)
    cached = tmp_path / "cache" / "nonvon" / key
    assert _files(cached) == sorted(f"{n}.gz" for n in datasets.IDX_FILES)
    assert str(cached) in task.source
    # Once cached, no server is needed.
    monkeypatch.setenv(env, closed_port_url)
    again = loader(progress=False)
    np.testing.assert_array_equal(again.x_train, task.x_train)


def test_loader_refuses_a_mirror_with_wrong_content(server, tmp_path, monkeypatch):
    root, url = server
    _fake_mnist(root)  # the real checksums stay in the table, so these files fail them
    monkeypatch.setenv("NONVON_MNIST_URL", url)
    with pytest.raises(DataError, match="checksum mismatch"):
        datasets.mnist(progress=False)
    assert _files(tmp_path / "cache" / "nonvon" / "mnist") == []


def test_mnist_falls_back_when_the_mirror_lacks_files(server, monkeypatch, capsys):
    _, url = server  # serves an empty folder: every file is a 404
    monkeypatch.setenv("NONVON_MNIST_URL", url)
    task = datasets.mnist(progress=False)
    assert task.name == "mnist-5k"
    err = capsys.readouterr().err
    assert "full MNIST not found" in err and "HTTP 404" in err


def test_mnist_falls_back_when_offline(capsys):
    task = datasets.mnist(progress=False)  # the mirror URL is a closed port
    assert task.name == "mnist-5k"
    assert "download failed" in capsys.readouterr().err


def test_fashion_mnist_offline_says_how_to_get_it():
    with pytest.raises(DataError, match="Fashion-MNIST not found") as e:
        datasets.fashion_mnist(progress=False)
    assert "dataset-fashion-mnist" in str(e.value) and "NONVON_DATA" in str(e.value)
    assert "download failed" in str(e.value)

import gzip

import numpy as np
import pytest

from fedfleet.data.datasets import FASHION_MNIST_FILES, load_fashion_mnist
from fedfleet.data.idx import read_idx, write_idx
from fedfleet.errors import DataError


def write_fake_fashion_mnist(folder, n_train=20, n_test=10, corrupt=None):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array)
    if corrupt:
        path = folder / corrupt
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw[: len(raw) - 100]))
    return arrays


def test_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_loader_reads_generated_files(tmp_path):
    arrays = write_fake_fashion_mnist(tmp_path)
    split = load_fashion_mnist(root=tmp_path, download=False)
    assert split.train.x.shape == (20, 1, 28, 28) and split.test.x.shape == (10, 1, 28, 28)
    assert float(split.train.x.max()) <= 1.0
    np.testing.assert_array_equal(split.train.y.numpy(), arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_allclose(split.test.x[:, 0].numpy() * 255, arrays["t10k-images-idx3-ubyte.gz"], atol=1e-3)


def test_truncated_payload_names_the_file(tmp_path):
    write_fake_fashion_mnist(tmp_path, corrupt="train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz is truncated"):
        load_fashion_mnist(root=tmp_path, download=False)


def test_truncated_gzip_names_the_file(tmp_path):
    write_fake_fashion_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        load_fashion_mnist(root=tmp_path, download=False)


def test_bad_header_is_rejected(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x02\x03\x04\x00\x00\x00\x01\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr("fedfleet.data.datasets.SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setattr("fedfleet.data.datasets.CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("FEDFLEET_DATA", raising=False)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(root=None, download=False)


def test_download_failure_is_one_clear_line(tmp_path, monkeypatch):
    from fedfleet.data import datasets

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="download failed") as info:
        datasets.download_fashion_mnist(tmp_path)
    assert "\n" not in str(info.value)


def test_download_verifies_checksums(tmp_path, monkeypatch):
    from fedfleet.data import datasets

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"not the real file"

    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda *a, **k: Response())
    with pytest.raises(DataError, match="checksum"):
        datasets.download_fashion_mnist(tmp_path)
    assert not any((tmp_path / name).exists() for name in FASHION_MNIST_FILES)

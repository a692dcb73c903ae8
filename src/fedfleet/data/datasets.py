"""Data sets as in-memory tensors: Fashion-MNIST (IDX files) and scikit-learn's digits."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedfleet.data.idx import read_idx
from fedfleet.errors import DataError
from fedfleet.registry import Registry

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_FILES = {  # file name -> MD5 of the official download
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path.home() / ".cache" / "fedfleet" / "fashion-mnist"


@dataclass(frozen=True)
class ArrayDataset:
    """Features and labels held as tensors.

    Attributes
    ----------
    x : torch.Tensor
        float32, shape (N, C, H, W) for images with pixels in [0, 1], or (N, D).
    y : torch.Tensor
        int64 class labels, shape (N,).
    classes : tuple of str
        Class names, index = label.
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(f"features ({len(self.x)}) and labels ({len(self.y)}) differ in length")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, indices: np.ndarray | torch.Tensor) -> ArrayDataset:
        """The samples at ``indices``, as a new data set."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ArrayDataset(self.x[index], self.y[index], self.classes)


@dataclass(frozen=True)
class DataSplit:
    """A data set's train and test parts."""

    train: ArrayDataset
    test: ArrayDataset


DATASETS: Registry[DataSplit] = Registry("dataset")


def _candidate_dirs() -> list[Path]:
    dirs = []
    if env := os.environ.get("FEDFLEET_DATA"):
        dirs += [Path(env), Path(env) / "fashion-mnist"]
    return [*dirs, SYSTEM_DIR, CACHE_DIR]


def _missing_files(folder: Path) -> list[str]:
    return [name for name in FASHION_MNIST_FILES if not (folder / name).is_file()]


def find_fashion_mnist(root: str | Path | None = None) -> Path | None:
    """The folder holding all four Fashion-MNIST files, or None when none of the usual places does.

    A given ``root`` is the only place looked at: a folder that is missing or incomplete is a
    DataError, never a silent fall back to another copy.
    """
    if root:
        folder = Path(root)
        if not folder.is_dir():
            raise DataError(f"data.root {folder}: no such folder; give the folder holding the Fashion-MNIST "
                            "files, or leave data.root unset to search the usual places")
        if missing := _missing_files(folder):
            raise DataError(f"data.root {folder} lacks {missing[0]} ({len(missing)} of {len(FASHION_MNIST_FILES)} "
                            "Fashion-MNIST files missing); copy them there or leave data.root unset")
        return folder
    return next((folder for folder in _candidate_dirs() if not _missing_files(folder)), None)


def download_fashion_mnist(target: Path = CACHE_DIR, base_url: str = FASHION_MNIST_URL) -> Path:
    """Download the four official files into ``target`` and verify their MD5 checksums.

    Raises
    ------
    DataError
        If the network is unreachable or a checksum does not match.
    """
    target.mkdir(parents=True, exist_ok=True)
    for name, md5 in FASHION_MNIST_FILES.items():
        destination = target / name
        if destination.exists() and hashlib.md5(destination.read_bytes()).hexdigest() == md5:
            continue
        try:
            with urllib.request.urlopen(base_url + name, timeout=30) as response:
                blob = response.read()
        except OSError as exc:
            raise DataError(
                f"Fashion-MNIST not found locally and the download failed ({exc}); install it with "
                "`apt-get install dataset-fashion-mnist` or pass --set data.root=DIR"
            ) from None
        if hashlib.md5(blob).hexdigest() != md5:
            raise DataError(f"downloaded {name} fails its checksum; try again later")
        destination.write_bytes(blob)
    return target


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(root: str | Path | None = None, download: bool = True) -> DataSplit:
    """Fashion-MNIST: 60,000 train and 10,000 test 28x28 grey images in 10 classes.

    Searches ``root``, ``$FEDFLEET_DATA``, /usr/share/datasets/fashion-mnist and
    ~/.cache/fedfleet/fashion-mnist, then downloads into the cache when ``download``.
    """
    folder = find_fashion_mnist(root)
    if folder is None:
        if not download:
            raise DataError(
                "Fashion-MNIST not found; install it with `apt-get install dataset-fashion-mnist` "
                "or pass --set data.root=DIR"
            )
        folder = download_fashion_mnist()

    def part(prefix: str) -> ArrayDataset:
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"Fashion-MNIST files in {folder} disagree in shape; fetch them again")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        return ArrayDataset(x, torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES)

    return DataSplit(train=part("train"), test=part("t10k"))


@DATASETS.register("digits")
def load_digits(root: str | Path | None = None, test_fraction: float = 0.25, seed: int = 0) -> DataSplit:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), split train/test by seed."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = round(len(y) * test_fraction)
    classes = tuple(str(c) for c in range(10))
    full = ArrayDataset(x, y, classes)
    return DataSplit(train=full.subset(order[n_test:]), test=full.subset(order[:n_test]))


def load_dataset(name: str, root: str | Path | None = None) -> DataSplit:
    """Load a registered data set by name ("fashion_mnist", "digits")."""
    return DATASETS.build(name, root=root)

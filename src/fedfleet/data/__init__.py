"""Data sets and partitioners."""

from fedfleet.data.datasets import ArrayDataset, DataSplit, load_dataset

__all__ = ["ArrayDataset", "DataSplit", "load_dataset"]

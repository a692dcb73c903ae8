"""Partitioners that split a labelled data set over clients, and partition statistics."""

from fedfleet.data.partition.partitioners import (
    PARTITIONERS,
    DirichletPartitioner,
    IidPartitioner,
    Partitioner,
    QuantityPartitioner,
    ShardPartitioner,
    build_partitioner,
)
from fedfleet.data.partition.stats import label_histograms, noniid_degree, partition_table

__all__ = [
    "PARTITIONERS",
    "DirichletPartitioner",
    "IidPartitioner",
    "Partitioner",
    "QuantityPartitioner",
    "ShardPartitioner",
    "build_partitioner",
    "label_histograms",
    "noniid_degree",
    "partition_table",
]

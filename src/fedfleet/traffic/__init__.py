"""Traffic classification: flows from captures or tables, the defined preprocessing, classifiers.

``extract_flows`` turns pcap/pcapng captures into flows (nfstream, the ``traffic`` extra);
``TrafficPreprocessor`` nulls invalid values, encodes nominal ones and normalises all but
ports; ``fit_model`` adds a classifier (trees or an MLP) and ``TrafficModel`` saves and
loads the lot as one folder.
"""

from fedfleet.traffic.classifiers import MLPTrafficClassifier, build_classifier, build_mlp
from fedfleet.traffic.evaluate import capture_split, classification_metrics, random_split
from fedfleet.traffic.extract import CaptureError, Extraction, extract_flows
from fedfleet.traffic.model import TrafficModel, fit_model
from fedfleet.traffic.preprocess import TrafficPreprocessor
from fedfleet.traffic.readers import filter_labels, read_flows, read_table
from fedfleet.traffic.schema import CIC_SPEC, NFSTREAM_SPEC, ColumnSpec, read_spec

__all__ = [
    "CIC_SPEC",
    "NFSTREAM_SPEC",
    "CaptureError",
    "ColumnSpec",
    "Extraction",
    "MLPTrafficClassifier",
    "TrafficModel",
    "TrafficPreprocessor",
    "build_classifier",
    "build_mlp",
    "capture_split",
    "classification_metrics",
    "extract_flows",
    "filter_labels",
    "fit_model",
    "random_split",
    "read_flows",
    "read_spec",
    "read_table",
]

"""Reading flow tables: Zeek TSV logs, text encodings, damaged files, and public samples."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedfleet.errors import DataError
from fedfleet.traffic.model import fit_model
from fedfleet.traffic.readers import read_flows, read_table
from fedfleet.traffic.schema import CIC_SPEC
from tests.traffic.conftest import SAMPLES_DIR

DATA = Path(__file__).parent / "data"  # a few real rows, sources in data/README.md
ZEEK_HEADER = ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
               "#open\t2019-01-01-00-00-00\n")
FIELDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
          "orig_bytes", "conn_state", "local_orig", "tunnel_parents"]
TYPES = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "string",
         "bool", "set[string]"]
ROWS = [
    ["1545403816.962094", "CrDn63WjJEmrWGjqf", "192.168.1.195", "41040", "185.244.25.235", "80", "tcp", "-",
     "3.139211", "0", "S0", "-", "(empty)"],
    ["1545403824.181240", "CY9lJW3gh1Eje4usP6", "192.168.1.195", "53", "8.8.8.8", "53", "udp", "dns",
     "-", "-", "SF", "-", "(empty)"],
]


def write_log(path: Path, fields=FIELDS, types=TYPES, rows=ROWS, separator="\t", close=True) -> Path:
    lines = [ZEEK_HEADER + "#fields\t" + separator.join(fields), "#types\t" + separator.join(types)]
    lines += [separator.join(row) for row in rows]
    path.write_text("\n".join(lines) + ("\n#close\t2019-01-01-00-00-01\n" if close else "\n"))
    return path


def test_a_zeek_log_is_read_with_unset_and_empty_fields_null(tmp_path):
    table = read_table(write_log(tmp_path / "conn.log"))
    assert list(table.columns) == FIELDS and len(table) == 2  # #close is not a row
    assert table["id.orig_p"].tolist() == [41040, 53] and table["duration"].dtype.kind == "f"
    assert table["local_orig"].isna().all() and table["tunnel_parents"].isna().all()
    assert pd.isna(table.loc[0, "service"]) and table.loc[1, "service"] == "dns"
    assert table.loc[0, "uid"] == "CrDn63WjJEmrWGjqf"


def test_a_log_is_recognised_by_its_header_whatever_its_name(tmp_path):
    assert len(read_table(write_log(tmp_path / "flows.txt", close=False))) == 2


def test_iot23_labelled_logs_with_space_separated_last_columns_are_split(tmp_path):
    fields = [*FIELDS[:-1], "tunnel_parents   label   detailed-label"]
    rows = [[*row[:-1], "(empty)   Malicious   PartOfAHorizontalPortScan"] for row in ROWS]
    table = read_table(write_log(tmp_path / "conn.log.labeled", fields, [*TYPES, "string", "string"], rows))
    assert list(table.columns)[-3:] == ["tunnel_parents", "label", "detailed-label"]
    assert table["detailed-label"].tolist() == ["PartOfAHorizontalPortScan"] * 2


def test_zeek_roles_and_training_on_a_log_with_empty_columns(tmp_path):
    rows = [[str(1.5e9 + i), f"C{i}", "10.0.0.1", str(40000 + i), "10.0.0.2", "53" if i % 2 else "80",
             "udp" if i % 2 else "tcp", "-", str(0.1 * (i % 7)), str(100 + 900 * (i % 2)), "SF", "-", "(empty)"]
            for i in range(120)]
    flows, spec, _ = read_flows([write_log(tmp_path / "conn.log", rows=rows)])
    assert spec.ports == ["id.orig_p", "id.resp_p"]
    assert {"ts", "uid", "id.orig_h", "id.resp_h"} <= set(spec.exclude)
    model = fit_model(flows, spec.with_label("proto"), "tree")
    assert "id.orig_h" not in model.features and model.preprocessor.kinds_["id.resp_p"] == "port"
    assert {"local_orig", "tunnel_parents"} <= set(model.preprocessor.dropped_)


def test_gzipped_logs_and_csvs_are_read_and_a_truncated_one_is_one_line(tmp_path):
    plain = write_log(tmp_path / "conn.log")
    packed = tmp_path / "conn.00:00:00-01:00:00.log.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    pd.testing.assert_frame_equal(read_table(packed), read_table(plain))
    table = tmp_path / "flows.csv.gz"
    table.write_bytes(gzip.compress(b"bytes,label\n1,a\n2,b\n"))
    assert read_table(table)["label"].tolist() == ["a", "b"]
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(packed.read_bytes()[:-20])
    with pytest.raises(DataError) as caught:
        read_table(cut)
    assert "cut.log.gz" in str(caught.value) and "\n" not in str(caught.value)


def test_a_log_without_fields_header_or_with_a_long_row_is_one_line(tmp_path):
    bare = tmp_path / "bare.log"
    bare.write_text("#separator \\x09\n1\t2\n")
    with pytest.raises(DataError, match="#fields"):
        read_table(bare)
    long_row = [ROWS[0] + ["extra"]]
    with pytest.raises(DataError, match="row 1 has 14 fields, the #fields header 13"):
        read_table(write_log(tmp_path / "long.log", rows=long_row))


def test_a_cp1252_csv_needs_and_accepts_an_encoding(tmp_path):
    path = tmp_path / "cic.csv"
    path.write_bytes(" Flow Duration, Label\n3,BENIGN\n5,Web Attack \x96 Brute Force\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"--encoding.*cp1252"):
        read_table(path)
    table = read_table(path, encoding="cp1252")
    assert table["Label"].tolist() == ["BENIGN", "Web Attack \u2013 Brute Force"]
    with pytest.raises(DataError, match="unknown text encoding"):
        read_table(path, encoding="klingon")


@pytest.mark.parametrize(("name", "content"), [
    ("garbage.csv", bytes(range(256)) * 4),
    ("garbage.parquet", b"PAR1 not really"),
    ("garbage.log", b"\xff\xfe\x00binary"),
])
def test_binary_garbage_is_one_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert "\n" not in str(caught.value) and name in str(caught.value)


def test_duplicate_names_after_stripping_spaces_are_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("Label ,Label,x\na,b,1\n")
    with pytest.raises(DataError, match="'Label' appear more than once"):
        read_table(path)
    table = tmp_path / "dup.parquet"
    pd.DataFrame({"x": [1], " x": [2]}).to_parquet(table)
    with pytest.raises(DataError, match="'x' appear more than once"):
        read_table(table)


def test_a_repeated_csv_column_keeps_the_role_of_the_name_it_repeats(tmp_path):
    # pandas renames repeats (CIC-IDS2017 has " Fwd Header Length" twice): a repeated label
    # or address must not become a feature under its new name
    path = tmp_path / "repeats.csv"
    path.write_text("Label,bytes, Label, Src IP,Src IP,Fwd Header Length, Fwd Header Length\nA,1,A,h,h,2,2\n")
    flows, spec, _ = read_flows([path])
    assert list(flows.columns) == ["Label", "bytes", "Label.1", "Src IP", "Src IP.1", "Fwd Header Length",
                                   "Fwd Header Length.1"]
    assert spec.with_label("Label").feature_columns(list(flows.columns)) == [
        "bytes", "Fwd Header Length", "Fwd Header Length.1"]


def test_a_missing_log_is_file_not_found(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "conn.log")


def sample(*parts: str) -> Path:
    path = SAMPLES_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public sample {path} absent (see docs/traffic.md for its source)")
    return path


def test_real_zeek_conn_log_reads_with_ports_and_no_nulls_in_keys():
    flows, spec, _ = read_flows([sample("zeek", "trickbot-conn.log")])
    assert len(flows) > 10_000 and spec.ports == ["id.orig_p", "id.resp_p"]
    assert flows["id.orig_p"].notna().all() and flows["ts"].dtype.kind == "f"
    assert flows["tunnel_parents"].isna().all()


def test_real_iot23_and_unsw_tables_get_their_roles():
    iot, iot_spec, _ = read_flows([sample("iot23", "CTU-Malware-Capture-44-1-labeled.csv")])
    assert iot_spec.labels == ["label", "detailed-label"]
    assert iot_spec.with_label("label").feature_columns(list(iot.columns))[:2] == ["id.orig_p", "id.resp_p"]
    unsw, unsw_spec, _ = read_flows([sample("unsw-nb15", "unsw-nb15_1_sampled.csv")])
    assert {"Stime", "Ltime"} <= set(unsw_spec.exclude) and unsw_spec.labels == ["label"]
    assert np.isfinite(unsw["sbytes"]).all()


def test_real_nfstream_flows_of_cic_ids2017_get_the_nfstream_roles():
    flows, spec, _ = read_flows([sample("nfstream-cic2017", "monday-workinghours_raw_flows.parquet")])
    assert spec.ports == ["src_port", "dst_port"] and spec.labels == ["application_name"]
    assert spec.key_columns(list(flows.columns)) == ["id", "src_ip", "src_port", "dst_ip", "dst_port"]
    assert spec.feature_columns(list(flows.columns)) == ["src_port", "dst_port", "protocol",
                                                         "bidirectional_packets", "bidirectional_bytes"]


def test_real_cicflowmeter_rows_read_with_cic_roles_and_invalid_cells_null():
    flows, spec, _ = read_flows([DATA / "cic_ids2017_rows.csv"])
    assert spec == CIC_SPEC and len(flows) == 25 and len(flows.columns) == 79
    assert flows.columns[0] == "Destination Port" and "Fwd Header Length.1" in flows.columns
    assert flows["Label"].value_counts()["Web Attack \ufffd XSS"] == 3
    model = fit_model(flows, spec, "tree")
    assert model.preprocessor.kinds_["Destination Port"] == "port"
    assert model.preprocessor.kinds_["Flow Bytes/s"] == "numeric"
    inputs = model.transform(flows)
    bytes_per_s = inputs[:, list(model.preprocessor.get_feature_names_out()).index("Flow Bytes/s")]
    raw = pd.to_numeric(flows["Flow Bytes/s"]).to_numpy()  # the CSV's "Infinity" and "NaN" cells
    assert (~np.isfinite(raw)).sum() == 8
    np.testing.assert_array_equal(np.isnan(bytes_per_s), ~np.isfinite(raw))
    assert "Label" not in model.features


def test_public_cic_ids2017_slices_read_whole():
    paths = sorted(sample("cic-ids2017").glob("*.csv"))
    flows, spec, _ = read_flows(paths)
    assert spec == CIC_SPEC and len(flows) == sum(len(pd.read_csv(path, usecols=[0])) for path in paths)

import pytest

from fedfleet.traffic.schema import CIC_SPEC, NFSTREAM_SPEC, describe_guess, guess_spec, infer_spec


def test_guess_spec_recognises_ports_addresses_and_timestamps_by_name():
    columns = ["Src IP", "Src Port", "Dst Port", "sport", "dport", "L4_DST_PORT", "src_mac", "IPV4_DST_ADDR",
               "dst_ip", "Timestamp", "ts", "first_seen", "flow_id", "Protocol", "ip_version",
               "duration", "bytes", "time_delta", "fwd_pkts", "label"]
    spec = guess_spec(columns)
    assert spec.ports == ["Src Port", "Dst Port", "sport", "dport", "L4_DST_PORT"]
    assert spec.exclude == ["Src IP", "src_mac", "IPV4_DST_ADDR", "dst_ip", "Timestamp", "ts", "first_seen",
                            "flow_id"]
    assert spec.categorical == ["Protocol", "ip_version"]
    features = spec.with_label("label").feature_columns(columns)
    assert features == ["Src Port", "Dst Port", "sport", "dport", "L4_DST_PORT", "Protocol", "ip_version",
                        "duration", "bytes", "time_delta", "fwd_pkts"]


@pytest.mark.parametrize(("columns", "expected"), [
    (["a", "b"], "no port, address or timestamp column recognised"),
    (["src_port", "src_ip"], "ports (kept as integers): src_port; left out (addresses, times, ids): src_ip"),
])
def test_the_guess_is_described_in_one_line(columns, expected):
    line = describe_guess(guess_spec(columns))
    assert expected in line and "--spec" in line and "\n" not in line


def test_built_in_specs_win_over_guessing():
    import pandas as pd

    assert infer_spec(pd.DataFrame(columns=["bidirectional_packets", "src2dst_bytes", "src_ip"])) == NFSTREAM_SPEC
    assert infer_spec(pd.DataFrame(columns=["Flow Duration", "Total Fwd Packets", "Flow IAT Mean"])) == CIC_SPEC

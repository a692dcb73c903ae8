"""Column roles from the spellings of CICFlowMeter, UNSW-NB15, Zeek, nfdump/NetFlow and nfstream."""

import pytest

from fedfleet.traffic.schema import CIC_SPEC, ColumnSpec, column_role, guess_spec

SPELLINGS = {  # tool -> {role: column names as that tool writes them}
    "CICFlowMeter 2017": {"id": ["Flow ID"], "address": ["Source IP", "Destination IP"],
                          "port": ["Source Port", "Destination Port"], "time": ["Timestamp"],
                          "nominal": ["Protocol"], "label": ["Label", "Attempted Category"],
                          None: ["Flow Duration", "Fwd Packets/s", "Total Fwd Packets"]},
    "CICFlowMeter 2018": {"id": ["Flow ID"], "address": ["Src IP", "Dst IP"], "port": ["Src Port", "Dst Port"],
                          "time": ["Timestamp"], "nominal": ["Protocol"], "label": ["Label"],
                          None: ["Tot Fwd Pkts", "Flow Byts/s", "Fwd Seg Size Min"]},
    "UNSW-NB15": {"address": ["srcip", "dstip"], "port": ["sport", "dsport"], "time": ["Stime", "Ltime"],
                  "nominal": ["proto"], "label": ["attack_cat", "Label", "label"], "id": ["id"],
                  None: ["dur", "sbytes", "service", "state", "ct_src_ ltm", "smeansz"]},
    "Zeek conn.log": {"time": ["ts"], "id": ["uid"], "address": ["id.orig_h", "id.resp_h"],
                      "port": ["id.orig_p", "id.resp_p"], "nominal": ["proto"], "label": ["label", "detailed-label"],
                      None: ["service", "duration", "orig_bytes", "conn_state", "local_orig", "history",
                             "tunnel_parents"]},
    "nfdump": {"time": ["ts", "te"], "address": ["sa", "da"], "port": ["sp", "dp"], "nominal": ["pr"],
               None: ["td", "ipkt", "ibyt", "flg"]},
    "NetFlow NF-*": {"time": ["FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS"],
                     "address": ["IPV4_SRC_ADDR", "IPV4_DST_ADDR"], "port": ["L4_SRC_PORT", "L4_DST_PORT"],
                     "nominal": ["PROTOCOL", "L7_PROTO"], "label": ["Label", "Attack"],
                     None: ["IN_BYTES", "FLOW_DURATION_MILLISECONDS", "TCP_FLAGS", "DURATION_IN"]},
    "BoT-IoT / Argus": {"id": ["pkSeqID", "seq"], "address": ["saddr", "daddr", "smac", "dmac"],
                        "port": ["sport", "dport"], "time": ["stime", "ltime"],
                        "label": ["attack", "category", "subcategory"], None: ["dur", "bytes", "rate"]},
    "nfstream": {"id": ["id", "expiration_id"], "address": ["src_ip", "dst_mac", "src_oui"],
                 "port": ["src_port", "dst_port"], "time": ["bidirectional_first_seen_ms", "dst2src_last_seen_ms"],
                 "nominal": ["protocol", "ip_version"], "label": ["application_name", "application_category_name"],
                 None: ["bidirectional_packets", "src2dst_bytes", "bidirectional_duration_ms"]},
}
CASES = [(tool, role, name) for tool, roles in SPELLINGS.items() for role, names in roles.items() for name in names]


@pytest.mark.parametrize(("tool", "role", "name"), CASES, ids=[f"{t}:{n}" for t, _, n in CASES])
def test_each_tool_spelling_has_its_role(tool, role, name):
    assert column_role(name) == role


@pytest.mark.parametrize("tool", list(SPELLINGS))
def test_guessed_features_are_the_characteristics_and_ports_never_addresses_or_labels(tool):
    roles = SPELLINGS[tool]
    columns = [name for names in roles.values() for name in names]
    label = (roles.get("label") or [None])[0]
    spec = guess_spec(columns).with_label(label)
    features = spec.feature_columns(columns)
    assert set(features) == {*roles.get(None, []), *roles.get("port", []), *roles.get("nominal", [])}
    assert spec.ports == roles.get("port", [])
    assert set(spec.key_columns(columns)) == {*roles.get("id", []), *roles.get("address", []),
                                              *roles.get("port", []), *roles.get("time", [])}


def test_a_second_label_column_is_never_a_feature_whichever_is_the_label():
    columns = ["dur", "attack_cat", "label"]
    spec = guess_spec(columns)
    assert spec.with_label("label").feature_columns(columns) == ["dur"]
    assert spec.with_label("attack_cat").feature_columns(columns) == ["dur"]


def test_the_cic_spec_keeps_attempted_category_out_of_the_features():
    columns = ["Flow ID", "Source Port", "Flow Duration", "Attempted Category", "Label"]
    assert CIC_SPEC.feature_columns(columns) == ["Source Port", "Flow Duration"]


def test_an_explicit_feature_list_wins_and_key_columns_include_the_capture():
    spec = ColumnSpec(label="label", labels=["label", "attack_cat"], features=["attack_cat", "dur"])
    assert spec.feature_columns(["dur", "attack_cat", "label"]) == ["attack_cat", "dur"]
    assert spec.key_columns(["capture", "dur", "src_ip", "Unnamed: 0"]) == ["capture", "src_ip", "Unnamed: 0"]


def test_a_cicflowmeter_table_with_extra_roles_keeps_them_out_of_the_features():
    import pandas as pd

    from fedfleet.traffic.schema import infer_spec

    columns = ["Unnamed: 0", "Flow ID", "Src IP", "Source Port", "Flow Duration", "Total Fwd Packets",
               "Flow IAT Mean", "Label"]
    spec = infer_spec(pd.DataFrame(columns=columns))
    assert spec.label == "Label" and spec.ports == ["Source Port", "Destination Port"]
    assert spec.feature_columns(columns) == ["Source Port", "Flow Duration", "Total Fwd Packets", "Flow IAT Mean"]

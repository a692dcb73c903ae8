import shutil
import struct

import pytest

from fedfleet.errors import DataError
from fedfleet.traffic.capture import inspect_capture
from fedfleet.traffic.extract import extract_flows


def pcap_bytes(packet_lengths, order="<"):
    header = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records = b"".join(struct.pack(order + "IIII", 0, 0, n, n) + bytes(n) for n in packet_lengths)
    return header + records


def pcapng_bytes(packet_count):
    def block(kind, body):
        length = 12 + len(body)
        return struct.pack("<II", kind, length) + body + struct.pack("<I", length)

    section = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    interface = block(1, struct.pack("<HHI", 1, 0, 65535))
    packet = block(6, struct.pack("<IIIII", 0, 0, 0, 4, 4) + bytes(4))
    return section + interface + packet * packet_count


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcap_packets_are_counted(tmp_path, order):
    path = tmp_path / "a.pcap"
    path.write_bytes(pcap_bytes([60, 1500, 42], order))
    info = inspect_capture(path)
    assert info.packets == 3 and info.link_types == (1,)


def test_pcapng_packets_are_counted(tmp_path):
    path = tmp_path / "a.pcapng"
    path.write_bytes(pcapng_bytes(5))
    info = inspect_capture(path)
    assert info.packets == 5 and info.link_types == (1,)


@pytest.mark.parametrize("maker", [lambda: pcap_bytes([60, 1500]), lambda: pcapng_bytes(3)])
def test_truncated_captures_are_named(tmp_path, maker):
    path = tmp_path / "cut.pcap"
    path.write_bytes(maker()[:-5])
    with pytest.raises(DataError, match=r"cut\.pcap: truncated"):
        inspect_capture(path)


def test_unknown_and_missing_files(tmp_path):
    path = tmp_path / "notes.pcap"
    path.write_text("hello")
    with pytest.raises(DataError, match="not a pcap or pcapng"):
        inspect_capture(path)
    with pytest.raises(DataError, match="cannot read"):
        inspect_capture(tmp_path / "absent.pcap")


def test_failing_captures_give_one_line_each_and_the_rest_are_read(tmp_path, pcap_dir):
    good = [pcap_dir / "443-chrome.pcap", pcap_dir / "ssdp-m-search.pcap"]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((pcap_dir / "quic.pcap").read_bytes()[:-7])
    garbage = tmp_path / "garbage.pcap"
    garbage.write_text("not a capture")
    extraction = extract_flows([good[0], cut, pcap_dir / "someip_sd_sample.pcap", garbage, good[1]])
    assert sorted(extraction.flows["capture"].unique()) == sorted(p.name for p in good)
    failed = {error.path.name: error.reason for error in extraction.errors}
    assert set(failed) == {"cut.pcap", "someip_sd_sample.pcap", "garbage.pcap"}
    assert all("\n" not in str(error) for error in extraction.errors)
    assert "truncated" in failed["cut.pcap"] and "no IP flows" in failed["someip_sd_sample.pcap"]
    assert extraction.packets == sum(inspect_capture(p).packets for p in good)


def test_flows_exclude_nothing_at_extraction_and_cache_gives_the_same_table(tmp_path, pcap_dir):
    source = tmp_path / "quic.pcap"
    shutil.copy(pcap_dir / "quic.pcap", source)
    first = extract_flows([source], cache_dir=tmp_path / "cache")
    again = extract_flows([source], cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert first.flows.equals(again.flows) and first.packets == again.packets > 0
    assert {"src_ip", "application_category_name", "bidirectional_bytes"} <= set(first.flows.columns)

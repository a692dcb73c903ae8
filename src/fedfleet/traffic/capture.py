"""Packet-capture files: check a pcap/pcapng is whole and count its packets.

nfstream reads a truncated capture silently up to the cut, so every capture is walked
record by record first: a file whose last record runs past its end is reported as
truncated, and the packet count gives the extraction speed in packets per second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from fedfleet.errors import DataError

PCAP_MAGICS = {  # first four bytes -> struct byte order
    b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",  # microsecond timestamps
    b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">",  # nanosecond timestamps
}  # fmt: skip
PCAP_HEADER = 24
PCAP_RECORD = 16
PCAPNG_SECTION = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
PCAPNG_INTERFACE = 1
PCAPNG_PACKET_BLOCKS = frozenset({2, 3, 6})  # obsolete, simple and enhanced packet blocks


@dataclass(frozen=True)
class CaptureInfo:
    """What walking a capture found.

    Attributes
    ----------
    packets : int
        Number of packet records.
    link_types : tuple of int
        Link-layer header types (LINKTYPE_*) of the capture's interfaces.
    """

    packets: int
    link_types: tuple[int, ...]


def inspect_capture(path: str | Path) -> CaptureInfo:
    """Walk a pcap or pcapng file and count its packets.

    Parameters
    ----------
    path : path
        The capture file.

    Returns
    -------
    CaptureInfo
        Packet count and link types.

    Raises
    ------
    DataError
        When the file is missing, is neither pcap nor pcapng, or is truncated.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read capture ({exc.strerror or exc})") from None
    magic = data[:4]
    if magic in PCAP_MAGICS:
        return _walk_pcap(path, data, PCAP_MAGICS[magic])
    if len(data) >= 4 and struct.unpack("<I", magic)[0] == PCAPNG_SECTION:
        return _walk_pcapng(path, data)
    raise DataError(f"{path}: not a pcap or pcapng capture (unknown header)")


def _walk_pcap(path: Path, data: bytes, order: str) -> CaptureInfo:
    if len(data) < PCAP_HEADER:
        raise DataError(f"{path}: truncated capture (incomplete file header)")
    (link_type,) = struct.unpack_from(order + "I", data, 20)
    record = struct.Struct(order + "8xI4x")  # skip timestamps, read captured length
    position, packets = PCAP_HEADER, 0
    while position < len(data):
        if position + PCAP_RECORD > len(data):
            raise DataError(f"{path}: truncated capture (record {packets + 1} header cut off)")
        (captured,) = record.unpack_from(data, position)
        position += PCAP_RECORD + captured
        if position > len(data):
            raise DataError(f"{path}: truncated capture (packet {packets + 1} cut off)")
        packets += 1
    return CaptureInfo(packets, (link_type & 0xFFFF,))


def _walk_pcapng(path: Path, data: bytes) -> CaptureInfo:
    position, packets, order = 0, 0, "<"
    link_types: list[int] = []
    while position < len(data):
        if position + 12 > len(data):
            raise DataError(f"{path}: truncated capture (block header cut off at byte {position})")
        if struct.unpack_from("<I", data, position)[0] == PCAPNG_SECTION:
            magic = struct.unpack_from("<I", data, position + 8)[0]
            order = "<" if magic == PCAPNG_BYTE_ORDER else ">"
        block_type, length = struct.unpack_from(order + "II", data, position)
        if length < 12 or length % 4:
            raise DataError(f"{path}: corrupt capture (bad block length at byte {position})")
        if position + length > len(data):
            raise DataError(f"{path}: truncated capture (block cut off at byte {position})")
        if block_type in PCAPNG_PACKET_BLOCKS:
            packets += 1
        elif block_type == PCAPNG_INTERFACE:
            link_types.append(struct.unpack_from(order + "H", data, position + 8)[0])
        position += length
    return CaptureInfo(packets, tuple(link_types))

"""Alignment between party processes: what the passive process receives (and sends) holds no
raw ID and no ID digest, the size-only mode, and refused alignment messages."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import private_set_intersection.python as psi
import pytest
import torch

from fedfleet.errors import ConfigError, UpdateRejected
from fedfleet.vertical.alignment import InsecureAlignmentWarning, encode_id, salted_hashes
from fedfleet.vertical.channel import SerializingChannel
from fedfleet.vertical.config import load_vertical_config
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.federation import run_active, start_passive, stop_all, write_parties
from fedfleet.vertical.party_alignment import AlignmentService, align_with_peers
from fedfleet.vertical.party_data import ACTIVE_DIR, DATA_FILE, passive_dir, read_party_data, write_party_data
from fedfleet.vertical.protocol import ALIGN_KINDS, Message, PassiveLink, PassiveService, unpack
from fedfleet.vertical.psi import PsiActive

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "vertical" / "digits.yaml"
TINY = ["data.max_train=200", "data.max_test=60", "train.epochs=1"]


class Recorder:
    """An HTTP proxy in front of a party: keeps every request body (what the party received) and reply."""

    def __init__(self, target: str) -> None:
        self.received: list[bytes] = []
        self.sent: list[bytes] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.received.append(body)
                with urllib.request.urlopen(urllib.request.Request(target, data=body, method="POST"),
                                            timeout=60) as response:
                    reply = response.read()
                recorder.sent.append(reply)
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _forms(ids: list[str], salt: str) -> set[bytes]:
    """Every way an ID could be read off the wire: its text, its encoding, plain and salted SHA-256."""
    forms = set()
    for entity, digest in zip(ids, salted_hashes(ids, salt), strict=True):
        forms |= {entity.encode(), encode_id(entity), bytes.fromhex(digest), digest.encode(),
                  hashlib.sha256(encode_id(entity)).digest(), hashlib.sha256(entity.encode()).digest()}
    return forms


@pytest.fixture(scope="module", params=["psi", "hash"])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[str, Path, Recorder]]:
    method = request.param
    out = tmp_path_factory.mktemp(method)
    config = load_vertical_config(CONFIG, [*TINY, f"alignment.method={method}"])
    d = config.data
    write_parties(out, load_vertical(d.dataset, d.num_parties, d.columns_per_party, d.overlap, d.max_train,
                                     d.max_test, config.seed, d.root))
    _add_passive_only_rows(out / passive_dir(1) / DATA_FILE)
    process, url = start_passive(out / passive_dir(1) / DATA_FILE, out / passive_dir(1), idle_timeout=60)
    recorder = Recorder(url)
    try:
        with pytest.warns(InsecureAlignmentWarning) if method == "hash" else contextlib.nullcontext():
            run_active(config, out / ACTIVE_DIR / DATA_FILE, out / ACTIVE_DIR, [recorder.url])
        assert process.wait(timeout=20) == 0  # the run ended it
        yield method, out, recorder
    finally:
        recorder.close()
        stop_all([process])


def _add_passive_only_rows(path: Path, extra: int = 7) -> None:
    """Give the passive party IDs the active party does not hold."""
    tensors, ids, _ = read_party_data(path)
    x = {split: torch.cat([tensors[f"x/{split}"], torch.ones(extra, tensors[f"x/{split}"].shape[1])]) for split in ids}
    write_party_data(path, 1, x, {split: [*rows, *(f"only-passive-{split}-{k}" for k in range(extra))]
                                  for split, rows in ids.items()})


def _ids(out: Path, folder: str) -> dict[str, list[str]]:
    return {split: [str(i) for i in ids] for split, ids in read_party_data(out / folder / DATA_FILE)[1].items()}


def test_what_crosses_during_psi_holds_no_id(recorded: tuple[str, Path, Recorder]) -> None:
    method, out, recorder = recorded
    active, passive = _ids(out, ACTIVE_DIR), _ids(out, passive_dir(1))
    salt = load_vertical_config(CONFIG).alignment.salt
    outside = [i for split in active for i in set(active[split]) - set(passive[split])]
    passive_outside = [i for split in passive for i in set(passive[split]) - set(active[split])]
    assert outside and passive_outside  # both parties hold IDs the other lacks
    to_passive, to_active = b"".join(recorder.received), b"".join(recorder.sent)
    # the active party's IDs, those outside the intersection included, never reach the passive party
    assert not [f for f in _forms([i for ids in active.values() for i in ids], salt) if f in to_passive]
    leaked = [f for f in _forms(passive_outside, salt) if f in to_active]
    if method == "psi":
        assert not leaked and not [f for f in _forms([i for ids in passive.values() for i in ids], salt)
                                   if f in to_active]
    else:
        assert leaked  # the insecure mode shows its digests, so this check can fail
    messages = [unpack(body) for body in recorder.received]
    kinds = [m.kind for m in messages]
    assert kinds[: kinds.index("hello")] == ["align", "positions", "align", "positions"]
    assert not set(kinds[kinds.index("hello"):]) & set(ALIGN_KINDS)
    for message in messages[:4:2]:  # one blinded point per distinct active ID, nothing more
        split = message.header["split"]
        assert set(message.header) == ({"split", "method", "reveal"} if method == "psi" else
                                       {"split", "method", "salt"})
        if method == "psi":
            parsed = psi.Request()
            parsed.ParseFromString(message.payload)
            assert len(parsed.encrypted_elements) == len(set(active[split]))
    for message in messages[1:4:2]:  # the passive party learns only its common rows
        split = message.header["split"]
        common = set(active[split]) & set(passive[split])
        assert len(message.payload) == 8 * len(common)


def _service(ids: list[str]) -> PassiveService:
    tables = {"train": torch.arange(len(ids), dtype=torch.float32)[:, None]}
    return PassiveService(1, {}, SerializingChannel(), aligner=AlignmentService(1, {"train": ids}, tables))


def test_in_memory_alignment_with_a_service_keeps_the_common_rows() -> None:
    service = _service(["c", "a", "x", "b"])
    link = PassiveLink(1, service.handle, SerializingChannel(), SerializingChannel(), 1)
    config = load_vertical_config(CONFIG)
    channel = SerializingChannel()
    rows = align_with_peers([link], "train", ["a", "b", "c", "d"], config.alignment, channel)
    passive = service.tables["train"][:, 0].long().tolist()
    assert [["a", "b", "c", "d"][r] for r in rows] == [["c", "a", "x", "b"][r] for r in passive]
    assert sorted(passive) == [0, 1, 3] and channel.bytes_up > 0 and channel.bytes_down > 0
    assert service.handle(Message("hello")).header["rows"] == {"train": 3}


def test_size_only_alignment_tells_the_count_and_keeps_no_rows() -> None:
    service = _service(["c", "a", "x", "b"])
    link = PassiveLink(1, service.handle, SerializingChannel(), SerializingChannel(), 1)
    settings = load_vertical_config(CONFIG, ["alignment.reveal=size"]).alignment
    with pytest.raises(ConfigError, match=r"share \[3\] train samples .* only the counts were revealed"):
        align_with_peers([link], "train", ["a", "b", "c", "d"], settings, SerializingChannel())
    assert service.tables == {}
    with pytest.raises(UpdateRejected, match="no aligned rows yet"):
        service.handle(Message("hello"))


def test_alignment_messages_out_of_order_or_malformed_are_refused() -> None:
    service = _service(["a", "b"])
    request = PsiActive([encode_id("a")]).request()
    with pytest.raises(UpdateRejected, match="'positions' for 'train' before 'align'"):
        service.handle(Message("positions", {"split": "train"}, np.zeros(1, "<i8").tobytes()))
    with pytest.raises(UpdateRejected, match="holds no 'test' rows"):
        service.handle(Message("align", {"split": "test", "method": "psi", "reveal": True}, request))
    with pytest.raises(UpdateRejected, match="method 'md5'"):
        service.handle(Message("align", {"split": "train", "method": "md5"}, request))
    with pytest.raises(UpdateRejected, match="not a valid PSI message"):
        service.handle(Message("align", {"split": "train", "method": "psi", "reveal": True}, b"junk"))
    with pytest.raises(UpdateRejected, match="refused by the PSI library"):  # the request's mode decides
        service.handle(Message("align", {"split": "train", "method": "psi", "reveal": False}, request))
    size_only = PsiActive([encode_id("a")], False).request()
    service.handle(Message("align", {"split": "train", "method": "psi", "reveal": False}, size_only))
    with pytest.raises(UpdateRejected, match="size-only PSI; the intersection was not to be revealed"):
        service.handle(Message("positions", {"split": "train"}, np.zeros(1, "<i8").tobytes()))
    service.handle(Message("align", {"split": "train", "method": "psi", "reveal": True}, request))
    with pytest.raises(UpdateRejected, match="names rows outside"):
        service.handle(Message("positions", {"split": "train"}, np.array([5], "<i8").tobytes()))
    aligned = PassiveService(1, {"train": torch.zeros(2, 1)}, SerializingChannel())
    with pytest.raises(UpdateRejected, match="holds aligned rows already"):
        aligned.handle(Message("align", {"split": "train", "method": "psi", "reveal": True}, request))

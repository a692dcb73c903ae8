"""One process per party over HTTP: alignment and training equal to the in-process path, resume,
split inference, malformed messages, and no party process left behind."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from fedfleet.cli.main import main
from fedfleet.errors import CheckpointError, UpdateRejected
from fedfleet.vertical.channel import SerializingChannel
from fedfleet.vertical.config import VerticalConfig, load_vertical_config
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.federation import launch, predict_active, start_passive, stop_all
from fedfleet.vertical.http import HttpTransport
from fedfleet.vertical.party_alignment import ALIGNMENT_FILE
from fedfleet.vertical.party_data import ACTIVE_DIR, DATA_FILE, passive_dir
from fedfleet.vertical.protocol import Message, PassiveService
from fedfleet.vertical.study import align_splits, make_estimator
from fedfleet.vertical.trainer import VerticalClassifier

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "vertical" / "digits.yaml"
TINY = ["data.max_train=400", "data.max_test=120", "train.epochs=3", "train.batch_size=16"]


def _party_processes(folder: Path) -> list[str]:
    """Command lines of running processes that name ``folder``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(folder).encode() in arg for arg in args) and b"vertical-party" in args:
            found.append(" ".join(a.decode(errors="replace") for a in args))
    return found


def _aligned_in_process(config: VerticalConfig) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor],
                                                         torch.Tensor, dict[str, Any]]:
    d = config.data
    data = load_vertical(d.dataset, d.num_parties, d.columns_per_party, d.overlap, d.max_train, d.max_test,
                         config.seed, d.root)
    return align_splits(config, data)


def _in_process(config: VerticalConfig) -> VerticalClassifier:
    """The in-process estimator, aligned and trained in one process on the same data set."""
    xs, y, xt, yt, _ = _aligned_in_process(config)
    return make_estimator(config, config.model.lipschitz).fit(xs, y, 10, (xt, yt))


def _max_difference(estimator: VerticalClassifier, out: Path) -> float:
    reference = estimator.model_.state_dict()
    active = load_file(str(out / ACTIVE_DIR / "model.safetensors"))
    passive = {f"bottoms.1.{k}": v for k, v in load_file(str(out / passive_dir(1) / "model.safetensors")).items()}
    assert not any(key.startswith("bottoms.1.") for key in active)  # each file holds one party's part
    assert set(active) | set(passive) == set(reference)
    return max(float((reference[k] - v).abs().max()) for k, v in (active | passive).items())


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[VerticalConfig, Path, dict[str, Any], VerticalClassifier]]:
    out = tmp_path_factory.mktemp("http")
    config = load_vertical_config(CONFIG, TINY)
    (out / "config.yaml").write_text(json.dumps(config.model_dump()))
    summary = launch(config, out / "config.yaml", out)
    yield config, out, summary, _in_process(config)


def test_two_party_processes_align_the_in_process_rows(trained) -> None:  # type: ignore[no-untyped-def]
    config, out, summary, _ = trained
    _, _, _, _, alignments = _aligned_in_process(config)
    for party, folder in enumerate((ACTIVE_DIR, passive_dir(1))):
        rows = load_file(str(out / folder / ALIGNMENT_FILE))  # each party's own rows, in the common order
        for split, (alignment, _) in alignments.items():
            assert rows[split].tolist() == alignment.rows[party].tolist()
    assert alignments["train"][0].overlap < alignments["train"][0].party_sizes[0]  # alignment dropped rows
    in_process = [sum(getattr(channel, f"bytes_{way}") for _, channel in alignments.values()) for way in ("up", "down")]
    assert [summary["alignment_bytes_up"], summary["alignment_bytes_down"]] == in_process
    assert summary["bytes_up_total"] == summary["bytes_up"] + summary["alignment_bytes_up"]
    assert summary["alignment_wall_time_s"] > 0 and summary["alignment_method"] == "psi"


def test_two_party_processes_train_the_in_process_model(trained) -> None:  # type: ignore[no-untyped-def]
    _, out, summary, estimator = trained
    assert _max_difference(estimator, out) <= 1e-6
    history = [json.loads(line) for line in (out / ACTIVE_DIR / "metrics.jsonl").read_text().splitlines()]
    untimed = [{k: v for k, v in entry.items() if k != "wall_time_s"} for entry in history]
    assert untimed == [{k: v for k, v in entry.items() if k != "wall_time_s"} for entry in estimator.history_]
    assert (summary["bytes_up"], summary["bytes_down"]) == (estimator.channel_.bytes_up, estimator.channel_.bytes_down)
    assert summary["wire_bytes_sent"] > summary["bytes_down"] + summary["bytes_eval_down"]  # framing on top
    assert summary["final_accuracy"] == estimator.history_[-1]["test_accuracy"] > 0.5
    assert _party_processes(out) == []


def _copy(source: Path, target: Path) -> Path:
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return target


def test_resume_from_every_party_checkpoint_equals_an_uninterrupted_run(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    _, out, _, _ = trained  # 3 epochs, every party checkpointed after each
    run = _copy(out, tmp_path / "run")
    longer = load_vertical_config(CONFIG, [*TINY, "train.epochs=4"])
    (run / "config.yaml").write_text(json.dumps(longer.model_dump()))
    uninterrupted = _in_process(longer)
    assert _max_difference(uninterrupted, run) > 1e-4  # the copy is one epoch short
    resumed = launch(longer, run / "config.yaml", run, resume=True)
    assert _max_difference(uninterrupted, run) <= 1e-6
    history = [json.loads(line) for line in (run / ACTIVE_DIR / "metrics.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4] and history[:3] == [
        json.loads(line) for line in (out / ACTIVE_DIR / "metrics.jsonl").read_text().splitlines()]
    assert resumed["final_accuracy"] == uninterrupted.history_[-1]["test_accuracy"]
    assert (resumed["bytes_up"], resumed["bytes_eval_up"]) == (
        uninterrupted.channel_.bytes_up, uninterrupted.channel_eval_.bytes_up)
    assert _party_processes(run) == []


def test_resume_refuses_a_passive_checkpoint_from_another_epoch(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    config, out, _, _ = trained
    run = _copy(out, tmp_path / "run")
    xs, _, xt, _, _ = _aligned_in_process(config)
    service = PassiveService(1, {"train": xs[1], "test": xt[1]}, SerializingChannel(), run / passive_dir(1))
    settings = json.loads((run / ACTIVE_DIR / "checkpoint" / "state.json").read_text())
    setup = {"feature_dims": [32, 32], "num_classes": 10, "seed": 0, "lr": 0.05, "momentum": 0.9,
             "sizes": {"embedding_dim": 8, "bottom_hidden": 32, "interaction_dim": 16, "top_hidden": 16}}
    assert settings["epoch"] == 3
    with pytest.raises(UpdateRejected, match="checkpoint is at epoch 3, the active party's at 2"):
        service.handle(Message("setup", {**setup, "mode": "resume", "epoch": 2}))
    (run / passive_dir(1) / "checkpoint" / "state.safetensors").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"state\.safetensors is damaged"):
        service.handle(Message("setup", {**setup, "mode": "resume", "epoch": 3}))


def test_split_inference_from_the_party_model_files(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    config, out, _, estimator = trained
    _, _, xt, _, _ = _aligned_in_process(config)
    expected = estimator.predict_logits(xt)
    process, url = start_passive(out / passive_dir(1) / DATA_FILE, out / passive_dir(1), idle_timeout=60)
    try:
        logits = predict_active(config, out / ACTIVE_DIR / DATA_FILE, out / ACTIVE_DIR, [url])
        assert torch.allclose(logits, expected, atol=1e-5) and torch.equal(logits.argmax(1), expected.argmax(1))
        process.wait(timeout=10)  # predict_active said stop
    finally:
        stop_all([process])
    process, url = start_passive(out / passive_dir(1) / DATA_FILE, out / passive_dir(1), idle_timeout=60)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["vertical-predict", "--config", str(out / "config.yaml"), "--data", str(out / ACTIVE_DIR / DATA_FILE),
                  "--dir", str(out / ACTIVE_DIR), "--peer", url, "--out", str(tmp_path / "p.csv")])
        assert exit_info.value.code in (0, None)
    finally:
        stop_all([process])
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "row,prediction" and [int(line.split(",")[1]) for line in lines[1:]] == \
        expected.argmax(1).tolist()
    assert _party_processes(out) == []


def test_a_malformed_message_is_refused_with_one_line(trained) -> None:  # type: ignore[no-untyped-def]
    _, out, _, _ = trained
    process, url = start_passive(out / passive_dir(1) / DATA_FILE, out / passive_dir(1), idle_timeout=60)
    try:
        request = urllib.request.Request(url, data=b"\x00\x00\x00\x05junk!", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 400 and info.value.read().decode() == \
            "message header is not UTF-8 JSON; not a fedfleet vertical message"
        address = urllib.parse.urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as raw:
            raw.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
            assert raw.recv(64).startswith(b"HTTP/1.0 413")
        with pytest.raises(UpdateRejected, match=r"refused the embed message: .* before 'setup'"):
            HttpTransport(url)(Message("embed", {"split": "train", "train": True}, b""))
        HttpTransport(url)(Message("stop"))
        assert process.wait(timeout=10) == 0
    finally:
        stop_all([process])


def test_an_unreachable_party_is_a_clear_error() -> None:
    with pytest.raises(UpdateRejected, match=r"cannot reach the party at http://127\.0\.0\.1:9/"):
        HttpTransport("http://127.0.0.1:9/", timeout=5)(Message("hello"))


def test_an_idle_passive_party_stops_by_itself(trained) -> None:  # type: ignore[no-untyped-def]
    _, out, _, _ = trained
    process, _ = start_passive(out / passive_dir(1) / DATA_FILE, out / passive_dir(1), idle_timeout=0.5)
    try:
        assert process.wait(timeout=20) == 2
        assert "got no message for 0.5 s" in process.communicate()[1]
    finally:
        stop_all([process])

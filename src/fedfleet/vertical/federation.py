"""One process per party: each holds only its own IDs, columns, model part, files and checkpoint.

Folder layout of a run (``--out DIR``)::

    config.yaml  summary.json
    party-active/     data.safetensors  alignment.safetensors  model.safetensors  checkpoint/
                      summary.json  metrics.jsonl
    party-passive-0/  data.safetensors  alignment.safetensors  model.safetensors  checkpoint/   (party 1)

A party's ``data.safetensors`` is its own unaligned table (:mod:`~fedfleet.vertical.party_data`:
sample IDs and columns per split; labels for the active party). :func:`run_passive` serves
:class:`~fedfleet.vertical.protocol.PassiveService` over HTTP, first aligning with the active
party (:mod:`~fedfleet.vertical.party_alignment`); :func:`run_active` aligns, then drives the
same training loop as the in-process path (:func:`~fedfleet.vertical.trainer.train_parties`)
through :class:`~fedfleet.vertical.http.HttpTransport` links; :func:`predict_active` is split
inference from the party model files; :func:`launch` writes the party folders and runs every
party as its own OS process on localhost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fedfleet.errors import DataError, UpdateRejected
from fedfleet.threads import torch_threads
from fedfleet.vertical.channel import Channel, SerializingChannel
from fedfleet.vertical.checkpoint import load_part, save_part
from fedfleet.vertical.config import VerticalConfig
from fedfleet.vertical.data import VerticalData, load_vertical
from fedfleet.vertical.http import HttpTransport, serve
from fedfleet.vertical.model import SplitModel, build_split_model
from fedfleet.vertical.parties import ActiveParty, sgd
from fedfleet.vertical.party_alignment import AlignmentService, align_with_peers, save_rows
from fedfleet.vertical.party_data import ACTIVE_DIR, DATA_FILE, passive_dir, read_party_data, write_party_data
from fedfleet.vertical.protection import GradientNoise
from fedfleet.vertical.protocol import PassiveLink, PassiveService
from fedfleet.vertical.trainer import scores, split_logits, train_parties

Progress = Callable[[str], None]


def write_parties(out: Path, data: VerticalData) -> list[Path]:
    """Write each party's own unaligned table (IDs, columns; labels for the active party) to its folder.

    Returns the data files, active party first.
    """
    paths = []
    for index, (train, test) in enumerate(zip(data.train.tables, data.test.tables, strict=True)):
        folder = out / (ACTIVE_DIR if index == 0 else passive_dir(index))
        labels = {"train": data.train.labels, "test": data.test.labels} if index == 0 else None
        paths.append(write_party_data(folder / DATA_FILE, index, {"train": train.x, "test": test.x},
                                      {"train": train.ids, "test": test.ids}, labels, len(data.classes)))
    return paths


def run_passive(data: Path, directory: Path, host: str, port: int, announce: Progress,
                idle_timeout: float = 600.0) -> None:
    """Serve one passive party from its own data file until the active party says stop.

    The party first aligns its rows with the active party (its IDs never leave it), then trains.
    """
    tensors, ids, metadata = read_party_data(data)
    tables = {key[2:]: value.float() for key, value in tensors.items() if key.startswith("x/")}
    directory.mkdir(parents=True, exist_ok=True)
    index = int(metadata["party"])
    service = PassiveService(index, {}, SerializingChannel(), directory,
                             aligner=AlignmentService(index, ids, tables, directory))
    with torch_threads(1):
        serve(service, host, port, announce, idle_timeout)


def _active_model(config: VerticalConfig, links: Sequence[PassiveLink], x: torch.Tensor,
                  rows: dict[str, int], num_classes: int) -> tuple[SplitModel, dict[str, Any]]:
    """The split model with only the active party's parts, and the setup the passive parties get."""
    dims = [int(x.shape[1])]
    for link in links:
        hello = link.hello()
        if hello.get("index") != link.index:
            raise UpdateRejected(f"the party at peer {link.index} is passive party {hello.get('index')}; "
                                 "list --peer URLs in party order")
        for split, count in rows.items():
            if hello.get("rows", {}).get(split) != count:
                raise UpdateRejected(f"passive party {link.index} holds {hello.get('rows', {}).get(split)} {split} "
                                     f"rows, the active party {count}; align the parties' data first")
        dims.append(int(hello["features"]))
    sizes = {**config.model.model_dump(), "embedding_clip": config.protection.embedding_clip}
    model = build_split_model(dims, num_classes, config.seed, **sizes)
    for index in range(1, len(dims)):
        model.bottoms[index] = nn.Identity()  # the passive parties' bottoms live with them
    settings = {"feature_dims": dims, "num_classes": num_classes, "seed": config.seed, "sizes": sizes,
                "lr": config.train.lr, "momentum": config.train.momentum}
    return model, settings


def _links(config: VerticalConfig, peers: Sequence[str]) -> list[PassiveLink]:
    channel, eval_channel = SerializingChannel(), SerializingChannel()
    return [PassiveLink(index, HttpTransport(url), channel, eval_channel, config.model.embedding_dim)
            for index, url in enumerate(peers, start=1)]


def _aligned(config: VerticalConfig, data: Path, directory: Path, links: Sequence[PassiveLink],
             splits: Sequence[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], Channel, int]:
    """Align ``splits`` with every passive party: (features, labels, alignment channel, classes) per split."""
    tensors, ids, metadata = read_party_data(data)
    missing = [split for split in splits if f"x/{split}" not in tensors or f"y/{split}" not in tensors]
    if missing or "num_classes" not in metadata:
        raise DataError(f"{data} is not the active party's data file (no labels or columns for {missing}, "
                        f"or no num_classes); choose from {sorted(ids)}")
    channel = SerializingChannel()
    rows = {split: align_with_peers(links, split, ids[split], config.alignment, channel) for split in splits}
    save_rows(directory, rows)
    xs = {split: tensors[f"x/{split}"].float()[torch.from_numpy(r)] for split, r in rows.items()}
    ys = {split: tensors[f"y/{split}"][torch.from_numpy(r)] for split, r in rows.items()}
    return xs, ys, channel, int(metadata["num_classes"])


def run_active(config: VerticalConfig, data: Path, directory: Path, peers: Sequence[str], resume: bool = False,
               progress: Progress = lambda message: None) -> dict[str, Any]:
    """Align with, then train with, the passive parties at ``peers`` (URLs, party order).

    Each split is aligned as ``config.alignment`` says (each passive party holds only its
    own IDs; see :mod:`~fedfleet.vertical.party_alignment`), also on resume. Writes
    ``alignment.safetensors``, ``model.safetensors``, ``checkpoint/`` (after every epoch;
    every passive party checkpoints at the same time), ``metrics.jsonl`` and
    ``summary.json`` to ``directory``; with ``resume`` it continues from the checkpoints
    there and at every passive party. Returns the summary.
    """
    if config.train.channel != "serializing":
        raise UpdateRejected("train.channel=identity cannot cross a network; use train.channel=serializing")
    directory.mkdir(parents=True, exist_ok=True)
    links = _links(config, peers)
    start = time.perf_counter()
    with torch_threads(config.train.threads):
        xs, ys, alignment, num_classes = _aligned(config, data, directory, links, ("train", "test"))
        aligned_at = time.perf_counter()
        x, y, xt, yt = xs["train"], ys["train"], xs["test"], ys["test"]
        progress(f"aligned {len(y)} training and {len(yt)} test samples with {len(links)} passive parties "
                 f"by {config.alignment.method}")
        model, settings = _active_model(config, links, x, {"train": len(y), "test": len(yt)}, num_classes)
        optimizer = sgd([model.bottoms[0], model.interaction, model.top], config.train.lr, config.train.momentum)
        state: dict[str, Any] = {"epoch": 0, "history": []}
        if resume:
            state = load_part(directory, model, optimizer)
            channel, eval_channel = links[0].channel, links[0].eval_channel
            channel.bytes_up, channel.bytes_down, eval_channel.bytes_up, eval_channel.bytes_down = state["bytes"]
        for link in links:
            link.setup({**settings, "mode": "resume" if resume else "train", "epoch": state["epoch"]})
        noise = config.protection.gradient_noise
        active = ActiveParty(model, x, y, optimizer, protection=GradientNoise(noise) if noise > 0 else None)
        history: list[dict[str, Any]] = list(state["history"])

        def checkpoint(entry: dict[str, Any]) -> None:
            history.append(entry)
            for link in links:
                link.checkpoint(entry["epoch"])
            counts = [entry["bytes_up"], entry["bytes_down"], entry["bytes_eval_up"], entry["bytes_eval_down"]]
            save_part(directory, model, optimizer, {"epoch": entry["epoch"], "history": history, "bytes": counts})
            progress(f"epoch {entry['epoch']}: loss {entry['train_loss']:.3f}, "
                     f"test accuracy {entry['test_accuracy']:.4f}")

        def evaluation() -> tuple[float, float]:
            return scores(split_logits(model, xt, links, "test"), yt)

        train_parties(active, links, config.train.batch_size, config.train.epochs, config.seed,
                      start_epoch=state["epoch"], evaluation=evaluation, after_epoch=checkpoint)
        for link in links:
            link.stop()
    transports = [link.transport for link in links]
    summary = {
        "final_accuracy": history[-1]["test_accuracy"] if history else None,
        "epochs": len(history),
        "wall_time_s": time.perf_counter() - aligned_at,
        "alignment_wall_time_s": aligned_at - start,
        "certified_bound": model.passive_lipschitz_bound(),
        **{key: history[-1][key] for key in ("bytes_up", "bytes_down", "bytes_eval_up", "bytes_eval_down")},
        "wire_bytes_sent": sum(t.wire_bytes_sent for t in transports if isinstance(t, HttpTransport)),
        "wire_bytes_received": sum(t.wire_bytes_received for t in transports if isinstance(t, HttpTransport)),
        "alignment_method": config.alignment.method,
        "alignment_bytes_up": alignment.bytes_up,
        "alignment_bytes_down": alignment.bytes_down,
        "bytes_up_total": history[-1]["bytes_up"] + alignment.bytes_up if history else None,
        "bytes_down_total": history[-1]["bytes_down"] + alignment.bytes_down if history else None,
    }
    (directory / "metrics.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in history))
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def predict_active(config: VerticalConfig, data: Path, directory: Path, peers: Sequence[str],
                   split: str = "test") -> torch.Tensor:
    """Split inference from the party model files: logits (rows, classes) for ``split``'s common rows.

    The parties first align ``split`` (as in training); the active party loads
    ``directory/model.safetensors``; each passive party at ``peers`` loads its own and sends
    its embeddings of the rows; the predictions stay here, in the order of the active
    party's ``alignment.safetensors``.
    """
    links = _links(config, peers)
    with torch_threads(config.train.threads):
        xs, _, _, num_classes = _aligned(config, data, directory, links, (split,))
        x = xs[split]
        model, settings = _active_model(config, links, x, {split: len(x)}, num_classes)
        load_part(directory, model, None, checkpoint=False)
        for link in links:
            link.setup({**settings, "mode": "predict"})
        model.eval()
        logits = split_logits(model, x, links, split)
        for link in links:
            link.stop()
    return logits


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "fedfleet.cli.main", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_passive(data: Path, directory: Path, idle_timeout: float = 600.0) -> tuple[subprocess.Popen[str], str]:
    """Start a passive party process on localhost; returns it and its URL once it listens."""
    process = _spawn(["vertical-party", "--role", "passive", "--data", str(data), "--dir", str(directory),
                      "--listen", "127.0.0.1:0", "--idle-timeout", str(idle_timeout)])
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        _, err = process.communicate()
        raise UpdateRejected(f"passive party process for {data} did not start: {err.strip().splitlines()[-1:]}")
    return process, line.removeprefix("listening on ")


def stop_all(processes: Sequence[subprocess.Popen[str]]) -> None:
    """End every process still running (terminate, then kill) and reap it."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def run_processes(config_file: Path, out: Path, num_passive: int, resume: bool = False) -> dict[str, Any]:
    """Run every party as its own process on localhost from the party folders in ``out``."""
    processes: list[subprocess.Popen[str]] = []
    try:
        urls = []
        for index in range(1, num_passive + 1):
            process, url = start_passive(out / passive_dir(index) / DATA_FILE, out / passive_dir(index))
            processes.append(process)
            urls.append(url)
        args = ["vertical-party", "--role", "active", "--config", str(config_file), "--data",
                str(out / ACTIVE_DIR / DATA_FILE), "--dir", str(out / ACTIVE_DIR),
                *[arg for url in urls for arg in ("--peer", url)]]
        active = _spawn([*args, "--resume"] if resume else args)
        processes.append(active)
        _, err = active.communicate()
        if active.returncode != 0:
            raise UpdateRejected(f"the active party failed: {(err.strip().splitlines() or ['no message'])[-1]}")
        summary: dict[str, Any] = json.loads((out / ACTIVE_DIR / "summary.json").read_text())
        return summary
    finally:
        stop_all(processes)


def launch(config: VerticalConfig, config_file: Path, out: Path, resume: bool = False,
           progress: Progress = lambda message: None) -> dict[str, Any]:
    """Write each party's own data file in ``out`` and run every party as its own process.

    The data set is split into the parties' unaligned tables (a simulation of parties that
    each bring their own file); this process then only starts the parties and reads the
    active party's summary: alignment and training run between the party processes.
    ``config_file`` is the resolved config the active party reads. With ``resume`` the
    party folders already exist and every party continues from its own checkpoint.
    """
    start = time.perf_counter()
    if not resume:
        d = config.data
        data = load_vertical(d.dataset, d.num_parties, d.columns_per_party, d.overlap, d.max_train, d.max_test,
                             config.seed, d.root)
        write_parties(out, data)
        progress(f"each party's own data file written to its folder in {out}")
    elif not (out / ACTIVE_DIR / DATA_FILE).exists():
        raise DataError(f"{out} holds no party folders to resume; run without --resume first")
    progress(f"aligning and training with one process per party ({config.data.num_parties} processes, "
             "HTTP on localhost)")
    summary = run_processes(config_file, out, config.data.num_parties - 1, resume)
    summary |= {"transport": "http", "launch_wall_time_s": time.perf_counter() - start}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

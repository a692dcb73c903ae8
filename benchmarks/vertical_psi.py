"""Vertical FL alignment: ECDH private set intersection against salted hashing, time and bytes.

Two parties (active and one passive) each hold N string IDs in their own random order, half
of them common. Both methods run their whole protocol over a channel that counts every
message (PSI: request, setup, response, row positions; hashing: the passive party's digests
and its row positions) and give the same alignment, which is checked. Times are wall-clock
on one process (both parties' work added up), median of the repeats.

Run:  .venv/bin/python benchmarks/vertical_psi.py [--sizes 10000 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from fedfleet.vertical.alignment import Alignment, InsecureAlignmentWarning, hash_align
from fedfleet.vertical.channel import SerializingChannel
from fedfleet.vertical.psi import psi_align

Aligner = Callable[[list[list[str]], str, SerializingChannel], Alignment]


def _parties(size: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    shared = size // 2
    active = [f"customer-{i:08d}" for i in range(size)]
    passive = active[:shared] + [f"customer-{i:08d}" for i in range(size, 2 * size - shared)]
    return [[active[i] for i in rng.permutation(size)], [passive[i] for i in rng.permutation(size)]]


def _measure(align: Aligner, parties: list[list[str]], repeats: int) -> tuple[float, int, int, Alignment]:
    times, channel, result = [], SerializingChannel(), None
    for _ in range(repeats):
        channel = SerializingChannel()
        start = time.perf_counter()
        result = align(parties, "benchmark-salt", channel)
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), channel.bytes_up, channel.bytes_down, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", InsecureAlignmentWarning)
    print("| IDs per party | common | method | time (s) | bytes up | bytes down | bytes per ID |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        parties = _parties(size, seed=size)
        results = {}
        for method, align in (("hash (insecure)", hash_align), ("psi", psi_align)):
            seconds, up, down, results[method] = _measure(align, parties, args.repeats)
            overlap = results[method].overlap
            print(f"| {size:,} | {overlap:,} | {method} | {seconds:.3f} | {up:,} | {down:,} | "
                  f"{(up + down) / (2 * size):.1f} |", flush=True)
        hashed, private = results.values()
        assert all(np.array_equal(a, b) for a, b in zip(hashed.rows, private.rows, strict=True))


if __name__ == "__main__":
    main()

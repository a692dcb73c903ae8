"""Checkpoints: a lossless JSON + safetensors codec, atomic saves, and files that never run code on load."""

import json
import pickle
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedfleet.errors import CheckpointError
from fedfleet.fl import checkpoint
from fedfleet.fl.checkpoint import RunState, check_fingerprint, load_checkpoint, save_checkpoint
from fedfleet.fl.state_codec import StateDecodeError, decode, encode


def assert_identical(ours, theirs, path="/"):
    """Same types, same structure, same bits (NaN payloads, -0.0 and dtypes included)."""
    assert type(ours) is type(theirs), path
    if isinstance(theirs, float):
        assert struct.pack(">d", ours) == struct.pack(">d", theirs), path
    elif isinstance(theirs, torch.Tensor):
        assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), path
        assert raw_bytes(ours) == raw_bytes(theirs), path
    elif isinstance(theirs, (np.ndarray, np.generic)):
        assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape) and ours.tobytes() == theirs.tobytes(), path
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_identical(a, b, f"{path}{i}/")
    elif isinstance(theirs, dict):
        assert len(ours) == len(theirs), path
        for (ka, va), (kb, vb) in zip(ours.items(), theirs.items(), strict=True):
            assert_identical(ka, kb, f"{path}<key>/")
            assert_identical(va, vb, f"{path}{kb}/")
    else:
        assert ours == theirs, path


def raw_bytes(tensor):
    flat = tensor.contiguous().reshape(-1)
    return bytes(flat.view(torch.uint8).numpy()) if flat.numel() else b""


def round_trip(value):
    structure, tensors = encode(value)
    text = json.dumps(structure, allow_nan=False)  # what the manifest stores: strict JSON
    from safetensors.torch import load, save
    return decode(json.loads(text), load(save(tensors)))


ARRAY_DTYPES = ["<f8", "<f4", "<f2", ">f8", "<i8", "<u8", "<u2", "|i1", "|b1", "<c16", "<M8[s]", "<U3"]
arrays = st.sampled_from(ARRAY_DTYPES).flatmap(
    lambda dtype: hnp.arrays(np.dtype(dtype), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)))
tensors = arrays.filter(lambda a: a.dtype.str in ("<f8", "<f4", "<i8", "|b1", "|i1")).map(
    lambda a: torch.from_numpy(a.copy()))
bfloat16 = st.lists(st.floats(width=32, allow_nan=True), max_size=4).map(
    lambda xs: torch.tensor(xs, dtype=torch.float32).to(torch.bfloat16))
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**130), max_value=2**130)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
numpy_scalars = arrays.filter(lambda a: a.size > 0).map(lambda a: a.reshape(-1)[0])
keys = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                    | st.floats(allow_nan=False) | st.text(max_size=6) | st.just("$type") | st.just("a/b~"),
                    lambda inner: st.tuples(inner, inner), max_leaves=4)
values = st.recursive(
    scalars | arrays | tensors | bfloat16 | numpy_scalars,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(keys, inner, max_size=4)
                   | st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(values)
def test_any_nested_state_round_trips_bit_exactly(value):
    assert_identical(round_trip(value), value)


def test_pcg64_state_with_128_bit_ints_resumes_the_same_stream():
    rng = np.random.default_rng(12345)
    rng.random(7)
    state = rng.bit_generator.state
    assert state["state"]["state"] >= 2**64  # the 128-bit ints the codec must keep exactly
    again = np.random.default_rng()
    again.bit_generator.state = round_trip(state)
    assert (again.random(5) == rng.random(5)).all()


def test_int_keys_and_tuple_keys_come_back_as_such():
    value = {1: "one", "1": "text one", (2, "b"): [1.5], None: -0.0, "$type": "not a tag"}
    back = round_trip(value)
    assert_identical(back, value)
    _, stored = encode({1: torch.ones(1), "1": torch.zeros(1)})
    assert len(stored) == 2  # an int key and a str key with the same text keep separate tensors


def test_tensors_are_keyed_by_their_path():
    structure, stored = encode({"params": torch.ones(3), "strategy_state": {"momentum": [torch.zeros(2)]}})
    assert set(stored) == {"params", "strategy_state/momentum/0"}
    assert structure["params"] == {"$type": "tensor", "key": "params"}


def test_values_the_codec_does_not_store_are_refused_with_their_path():
    with pytest.raises(TypeError, match="/extra/queue/0"):
        encode({"extra": {"queue": [object()]}})
    with pytest.raises(TypeError, match="dtype object"):
        encode({"a": np.array([None, 1], dtype=object)})
    loop: list = []
    loop.append(loop)
    with pytest.raises(TypeError, match="contains itself"):
        encode(loop)


@pytest.mark.parametrize("structure", [
    {"$type": "spaceship"},
    {"$type": "tensor", "key": "missing"},
    {"$type": "ndarray", "key": "raw", "dtype": "<f8", "shape": [5]},  # 8 bytes cannot hold 5 doubles
    {"$type": "ndarray", "key": "raw", "dtype": "|O", "shape": [1]},  # object pointers from a file: never
    {"$type": "npscalar", "dtype": "<f8", "hex": "00"},
    {"$type": "dict", "items": [[1]]},
    {"$type": "dict", "items": [[[1, 2], "a list is no key"]]},
    {"$type": "float", "bits": "zz"},
    {"$type": "tuple", "items": 3},
])
def test_malformed_structures_are_decode_errors(structure):
    with pytest.raises(StateDecodeError):
        decode(structure, {"raw": torch.zeros(8, dtype=torch.uint8)})


def make_state(step=3):
    rng = np.random.default_rng(7)
    return RunState(step=step, params=torch.randn(10, generator=torch.Generator().manual_seed(step)),
                    strategy_state={"velocity": torch.ones(10) * step, "rounds": {1: 0.5}},
                    rng_state=dict(rng.bit_generator.state), clock=12.5, wall_time_s=1.0,
                    records=[{"round": 1, "test_loss": float("nan")}], totals={"bytes_up": 10},
                    extra={"queue": [(3.5, 2, np.arange(3))]}, fingerprint={"num_params": 10})


def test_run_state_round_trips(tmp_path):
    state = make_state()
    save_checkpoint(tmp_path, state)
    assert_identical(load_checkpoint(tmp_path).__dict__, state.__dict__)
    save_checkpoint(tmp_path, make_state(4))
    assert load_checkpoint(tmp_path).step == 4
    names = sorted(p.name for p in tmp_path.iterdir())  # the old tensor file is gone, no partial file is left
    assert len(names) == 2 and names[0] == "state.json" and names[1].startswith("tensors-")


def test_a_crash_between_the_two_writes_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, make_state(3))
    real_write = checkpoint._write_atomic

    def crash_on_manifest(path, data):
        if path.name == checkpoint.MANIFEST_FILE:
            path.with_name(path.name + ".partial").write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt  # killed after the new tensors, before the new manifest
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "_write_atomic", crash_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, make_state(4))
    assert_identical(load_checkpoint(tmp_path).__dict__, make_state(3).__dict__)


class CreatesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_an_old_pickle_checkpoint_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "state.pt").write_bytes(pickle.dumps({"step": CreatesAFile(marker)}))
    with pytest.raises(CheckpointError, match="unsupported pickle format"):
        load_checkpoint(folder)
    (folder / "state.json").write_bytes(pickle.dumps(CreatesAFile(marker)))  # a pickle in the new name
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(folder)
    assert not marker.exists()


def manifest_with(tmp_path, **changes):
    save_checkpoint(tmp_path, make_state())
    manifest = json.loads((tmp_path / "state.json").read_text())
    for key, value in changes.items():
        if key.startswith("state."):
            manifest["state"][key.removeprefix("state.")] = value
        else:
            manifest[key] = value
    (tmp_path / "state.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "other"}, "not a fedfleet checkpoint"),
    ({"version": 99}, "version 99"),
    ({"tensors": "../../etc/passwd"}, "wrong structure"),
    ({"tensors_sha256": "0" * 64}, "digest"),
    ({"state": [1, 2]}, "wrong structure"),
    ({"state.step": "three"}, "step of the wrong type"),
    ({"state.step": True}, "step of the wrong type"),
    ({"state.step": -5}, "a negative step -5"),
    ({"state.params": [1.0]}, "params of the wrong type"),
    ({"state.records": [1]}, "records that are not objects"),
    ({"state.rng_state": {"bit_generator": "os.system"}}, "unknown bit generator"),
    ({"state.rng_state": {"bit_generator": "PCG64", "state": {}}}, "does not load"),
    ({"state.extra": {"$type": "tensor", "key": "nope"}}, "missing from the tensor file"),
    ({"state.surprise": 1}, "fields"),
])
def test_a_damaged_or_edited_checkpoint_is_one_clear_error(tmp_path, changes, message):
    manifest_with(tmp_path, **changes)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_checkpoint_past_the_runs_last_round_is_refused(tmp_path):
    state = make_state(step=7)
    expected = {"config": {"train": {"rounds": 5}}, "num_params": 10}
    state.fingerprint = expected
    with pytest.raises(CheckpointError, match=r"at step 7, past the run's train.rounds \(5\)"):
        check_fingerprint(state, expected, tmp_path)
    state.step = 5
    check_fingerprint(state, expected, tmp_path)  # the last round itself is a finished run


@pytest.mark.parametrize("content", [b"", b"\xff\xfe garbage \x00", b"NaN", b'{"format": "fedfleet-checkpoint"',
                                     b"[" * 100_000])
def test_garbage_manifests_are_one_clear_error(tmp_path, content):
    (tmp_path / "state.json").write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_missing_tensor_file_is_one_clear_error(tmp_path):
    save_checkpoint(tmp_path, make_state())
    (tensors,) = tmp_path.glob("tensors-*.safetensors")
    tensors.unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(tmp_path)

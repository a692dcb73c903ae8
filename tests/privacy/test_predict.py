import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fedfleet.cli.main import main
from fedfleet.data.idx import write_idx
from fedfleet.privacy.config import MaskJobConfig, load_job_config
from fedfleet.privacy.jobs import load_job_data

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "privacy"
MASK, OCCLUDE = str(CONFIGS / "mask_digits.yaml"), str(CONFIGS / "occlude_digits.yaml")
TINY = ["--set", "data.train_size=300", "--set", "model.epochs=3", "--set", "data.test_size=100",
        "--set", "data.holdout_size=150"]


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _float_idx(path: Path, images: np.ndarray) -> Path:
    """Images (N, C, H, W) float32 as an IDX file of big-endian floats: exact pixels."""
    header = struct.pack(">HBB", 0, 0x0D, images.ndim) + struct.pack(f">{images.ndim}I", *images.shape)
    path.write_bytes(header + images.astype(">f4").tobytes())
    return path


def _holdout(tmp_path: Path, overrides: list[str]) -> tuple[Path, Path]:
    config = load_job_config(MaskJobConfig, MASK, [o for o in overrides if o != "--set"])
    data = load_job_data(config.data, config.seed)
    images = _float_idx(tmp_path / "images.idx", data.holdout.x.numpy())
    labels = tmp_path / "labels.idx"
    write_idx(labels, data.holdout.y.numpy())
    return images, labels


@pytest.mark.parametrize(("command", "config", "extra"), [
    ("mask", MASK, ["--set", "data.public_size=200", "--set", "encrypted_training=shared"]),
    ("mask", MASK, ["--set", "data.public_size=200", "--set", "keys=per_image", "--set", "attacks.keys=2"]),
    ("occlude", OCCLUDE, ["--set", "eval_size=60"]),
])
def test_predict_reproduces_the_jobs_held_out_accuracy(command, config, extra, tmp_path, capsys):
    out = tmp_path / "job"
    code, _, _ = _run(["privacy", command, config, *TINY, *extra, "--out", str(out)], capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["images"] == "150 held-out images"
    assert (out / "model.safetensors").is_file() and (out / "model.json").is_file()
    images, labels = _holdout(tmp_path, TINY)
    code, stdout, _ = _run(["privacy", "predict", str(out), str(images), "--labels", str(labels),
                            "--out", str(tmp_path / "p.csv"), "--format", "json"], capsys)
    assert code == 0
    result = json.loads(stdout)
    assert result["images"] == 150
    assert result["accuracy"] == pytest.approx(summary["model"]["accuracy"], abs=1e-9)
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 151


@pytest.fixture(scope="module")
def mask_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("job")
    with pytest.raises(SystemExit) as exit_info:
        main(["privacy", "mask", MASK, *TINY, "--set", "data.public_size=200", "--set", "attacks.kinds=[average]",
              "--out", str(out)])
    assert exit_info.value.code == 0
    return out


def test_predict_reads_a_folder_of_pngs(mask_job, tmp_path, capsys):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    code, stdout, _ = _run(["privacy", "predict", str(mask_job), str(folder)], capsys)
    assert code == 0 and stdout.startswith("predicted 3 images")


def _bad(argv, capsys):
    code, _, err = _run(["privacy", "predict", *argv], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    return err


def test_bad_inputs_are_one_line_errors(mask_job, tmp_path, capsys):
    images = _float_idx(tmp_path / "ok.idx", np.zeros((2, 1, 8, 8), dtype=np.float32))
    wrong = _float_idx(tmp_path / "wrong.idx", np.zeros((2, 1, 9, 9), dtype=np.float32))
    assert "the model takes (1, 8, 8)" in _bad([str(mask_job), str(wrong)], capsys)
    corrupt = tmp_path / "corrupt.idx"
    corrupt.write_bytes(wrong.read_bytes()[:40])
    assert "truncated" in _bad([str(mask_job), str(corrupt)], capsys)
    folder = tmp_path / "pngs"
    folder.mkdir()
    (folder / "0.png").write_bytes(b"not a png")
    assert "not a readable PNG" in _bad([str(mask_job), str(folder)], capsys)
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8)).save(folder / "0.png")
    assert "resize it first" in _bad([str(mask_job), str(folder)], capsys)
    no_key = tmp_path / "copy"
    no_key.mkdir()
    for name in ("model.json", "model.safetensors", "config.yaml"):
        (no_key / name).write_bytes((mask_job / name).read_bytes())
    assert "no key.json" in _bad([str(no_key), str(images)], capsys)
    (no_key / "key.json").write_text("{")
    assert "cannot read the key" in _bad([str(no_key), str(images)], capsys)
    (no_key / "model.safetensors").write_bytes(b"garbage")
    assert "cannot read the weights" in _bad([str(no_key), str(images)], capsys)
    assert "not a privacy model folder" in _bad([str(tmp_path), str(images)], capsys)
    labels = tmp_path / "labels.idx"
    write_idx(labels, np.zeros(5, dtype=np.uint8))
    assert "one label per image" in _bad([str(mask_job), str(images), "--labels", str(labels)], capsys)

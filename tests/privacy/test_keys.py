import json
from pathlib import Path

import pytest
import torch

from fedfleet.cli.main import main
from fedfleet.privacy.keys import PerImageMask, key_file_content
from fedfleet.privacy.masks import Mask, secret_keys
from fedfleet.privacy.suite import AttackSuite

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "privacy"
MASK = str(CONFIGS / "mask_digits.yaml")


@pytest.mark.parametrize(("family", "mode"), [("sign", "sign_flip"), ("sign", "multiply"), ("noise", "blend")])
def test_per_image_keys_defeat_the_averaging_attack_that_breaks_a_shared_key(family, mode, digits):
    public, victims = digits.train.x[:600], digits.test
    (key,) = secret_keys(family, mode, 1)
    suite = AttackSuite(["average"]).fit(public, digits.train.y[:600], [key])
    shared = suite.evaluate(Mask.from_key(key, (1, 8, 8)), victims.x, victims.y).ssim["average"]
    per_image = suite.evaluate(PerImageMask.fresh(key, (1, 8, 8)), victims.x, victims.y).ssim["average"]
    assert shared > 0.8 and per_image < 0.35


def test_every_image_gets_its_own_mask_and_the_owner_can_rederive_it(digits):
    (key,) = secret_keys("sign", "sign_flip", 1)
    mask = PerImageMask.fresh(key, (1, 8, 8))
    images = digits.test.x[:50]
    seeds = {mask.key_for(x).seed for x in images}
    assert len(seeds) == len({x.numpy().tobytes() for x in images})  # distinct images, distinct keys
    encrypted = mask.apply(images)
    again = torch.cat([Mask.from_key(mask.key_for(x), (1, 8, 8)).apply(x[None]) for x in images])
    assert torch.equal(encrypted, again)
    assert torch.equal(mask.apply(images[:5]), encrypted[:5])  # deterministic per image, whatever the batch
    assert PerImageMask.fresh(key, (1, 8, 8)).master != mask.master


def _job(out, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["privacy", "mask", MASK, "--set", "keys=per_image", "--set", "data.train_size=300",
              "--set", "model.epochs=2", "--set", "data.test_size=100", "--set", "data.public_size=200",
              "--set", "attacks.keys=2", "--out", str(out)])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0
    return json.loads((out / "key.json").read_text()), captured.out + captured.err


def test_per_image_job_keeps_its_master_secret_in_key_json(tmp_path, capsys):
    first, printed = _job(tmp_path / "a", capsys)
    second, _ = _job(tmp_path / "b", capsys)
    assert first["keys"] == "per_image" and len(first["master"]) == 64  # 256 bits
    assert first["master"] != second["master"]  # one seed, fresh secrets
    assert "seed" not in first
    assert (tmp_path / "a" / "key.json").stat().st_mode & 0o777 == 0o600
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["keys"] == "per_image"
    assert first["master"] not in printed
    for path in (p for p in (tmp_path / "a").rglob("*") if p.is_file() and p.name != "key.json"):
        blob = path.read_bytes()
        assert first["master"].encode() not in blob and first["master"][:16].encode() not in blob, path.name


def test_key_file_content_holds_the_secret_only_there():
    (key,) = secret_keys("noise", "add_clip", 1)
    mask = PerImageMask.fresh(key, (1, 8, 8))
    content = key_file_content(mask)
    assert bytes.fromhex(content["master"]) == mask.master and "seed" not in content
    assert key_file_content(Mask.from_key(key, (1, 8, 8)))["seed"] == key.seed

"""The attack suite: attackers fitted once per family, every attack reported, no dependence on selection."""

import ast
from pathlib import Path

import pytest

from fedfleet.errors import ConfigError
from fedfleet.privacy.attacks import InverseAttack
from fedfleet.privacy.decoders import DecoderAttack
from fedfleet.privacy.masks import Mask, MaskKey
from fedfleet.privacy.suite import AttackSuite

PRIVACY = Path(__file__).resolve().parents[2] / "src" / "fedfleet" / "privacy"
SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def public(digits):
    return digits.train.x[:300], digits.train.y[:300]


@pytest.fixture(scope="module")
def victims(digits):
    return digits.test.x[:150], digits.test.y[:150]


def test_one_inverse_attacker_serves_a_family_and_never_draws_its_seeds(public):
    first_two = [key.seed for key in InverseAttack(MaskKey("sign", 0, "sign_flip"), n_keys=4).draw_keys()[:2]]
    flips = [MaskKey("sign", seed, "sign_flip", index=i) for i, seed in enumerate(first_two)]
    targets = [*flips, MaskKey("noise", 3, "add_clip", index=2)]
    suite = AttackSuite(("linear",), n_keys=4).fit(*public, targets)
    assert sorted(kind_and_family[1] for kind_and_family in suite.inverses_) == ["noise", "sign"]
    drawn = {key.seed for key in suite.inverses_[("linear", "sign", "sign_flip", 0.5, 0.5, 2)].keys_}
    assert len(drawn) == 4 and not drawn & set(first_two)  # neither victim of the family, though drawn first


def test_the_suite_breaks_a_sign_flip_mask_by_pair_and_by_invariant(public, victims):
    key = MaskKey("sign", 21, "sign_flip")
    figures = AttackSuite(n_keys=4, hidden=32, epochs=1, decoder_epochs=1).fit(*public, [key]).evaluate(
        Mask.from_key(key, SHAPE), *victims)
    assert set(figures.ssim) == {"average", "distribution", "linear", "network", "decoder", "known_plaintext"}
    assert figures.ssim["known_plaintext"] > 0.85  # one known pair solves the signs
    assert figures.ssim["distribution"] > 0.85  # and so do the ciphertexts alone
    assert figures.accuracy["abs_centred"] > 0.8 > 0.3 > figures.accuracy["ciphertext"]
    assert figures.accuracy["known_plaintext"] > 0.8  # the attacker's classifier reads the reconstruction
    assert figures.reconstructions["known_plaintext"].shape == victims[0].shape


def test_known_pairs_come_from_the_public_images_by_seed(public):
    first = AttackSuite(("known_plaintext",), known_pairs=3, random_state=4).fit(*public, [])
    again = AttackSuite(("known_plaintext",), known_pairs=3, random_state=4).fit(*public, [])
    assert first.pairs_.shape == (3, *SHAPE) and (first.pairs_ == again.pairs_).all()


@pytest.mark.parametrize(("suite", "message"), [(AttackSuite(("oracle",)), "unknown attack"),
                                                (AttackSuite(known_pairs=301), "attacks.known_pairs")])
def test_bad_suite_settings_are_config_errors(public, suite, message):
    with pytest.raises(ConfigError, match=message):
        suite.fit(*public, [])


def test_a_mask_of_a_family_not_fitted_is_refused(public, victims):
    suite = AttackSuite(("linear",), n_keys=2).fit(*public, [MaskKey("sign", 1, "sign_flip")])
    with pytest.raises(ValueError, match="no linear attacker was fitted for noise/add_clip#0"):
        suite.evaluate(Mask.from_key(MaskKey("noise", 2, "add_clip"), SHAPE), *victims)


@pytest.mark.parametrize("module", ["attacks", "decoders", "distribution", "known_plaintext", "invariants", "linkage",
                                    "suite"])
def test_attack_code_does_not_import_selection_code(module):
    tree = ast.parse((PRIVACY / f"{module}.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    selection = {f"fedfleet.privacy.{name}" for name in ("selection", "mask_selection", "mask_rule", "jobs")}
    assert not imported & selection


def test_the_decoder_is_fitted_once_per_family(public, monkeypatch):
    fits: list[str] = []
    real_fit = DecoderAttack.fit

    def counting_fit(self, images):
        fits.append(self.template.family)
        return real_fit(self, images)

    monkeypatch.setattr(DecoderAttack, "fit", counting_fit)
    targets = [MaskKey("sign", i, "sign_flip", index=i) for i in range(3)] + [MaskKey("noise", 9, "add_clip", index=3)]
    suite = AttackSuite(("decoder",), n_keys=2, decoder_epochs=1).fit(*public, targets)
    assert sorted(fits) == ["noise", "sign"]
    assert isinstance(suite.inverses_[("decoder", "sign", "sign_flip", 0.5, 0.5, 2)], DecoderAttack)

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.errors import ConfigError, DataError
from fedfleet.privacy.config import MaskJobConfig, load_job_config
from fedfleet.privacy.masks import FAMILIES, Mask, MaskKey, encrypt_with_any, expand_keys, make_pattern
from fedfleet.privacy.superimpose import MODES, invert, superimpose

SHAPE = (1, 8, 8)
seeds = st.integers(min_value=0, max_value=2**31 - 2)


def _public(make_images):
    return make_images(5, SHAPE, seed=9)


@pytest.mark.parametrize(("family", "mode"), [(f, m) for f in FAMILIES for m in MODES
                                              if (f, m) != ("mix", "sign_flip")])  # refused, tested below
def test_superimposing_is_deterministic_by_seed(family, mode, make_images):
    images = make_images(4, SHAPE)
    key = MaskKey(family, 1234, mode)
    first = Mask.from_key(key, SHAPE, _public(make_images)).apply(images)
    again = Mask.from_key(MaskKey.from_dict(key.to_dict()), SHAPE, _public(make_images)).apply(images)
    assert torch.equal(first, again)


@pytest.mark.parametrize("family", ["sign", "noise", "block"])
def test_different_seeds_give_different_patterns(family):
    assert not torch.equal(make_pattern(MaskKey(family, 1, "add_clip"), SHAPE),
                           make_pattern(MaskKey(family, 2, "add_clip"), SHAPE))


@settings(max_examples=30, deadline=None)
@given(seed=seeds, family=st.sampled_from(["sign", "noise", "block", "checkerboard"]),
       pixels=st.integers(min_value=0, max_value=10_000))
def test_sign_flip_masks_are_their_own_inverse(seed, family, pixels):
    images = torch.from_numpy(np.random.default_rng(pixels).random((3, *SHAPE)).astype(np.float32))
    mask = Mask.from_key(MaskKey(family, seed, "sign_flip"), SHAPE)
    twice = mask.apply(mask.apply(images))
    assert torch.allclose(twice, images, atol=1e-6)
    assert not torch.allclose(mask.apply(images), images)  # it did change the image in between
    assert mask.apply(images).min() >= 0 and mask.apply(images).max() <= 1


@settings(max_examples=30, deadline=None)
@given(seed=seeds, weight=st.floats(min_value=0.01, max_value=0.9))
def test_blend_and_multiply_round_trip_with_the_key(seed, weight):
    images = torch.from_numpy(np.random.default_rng(seed).random((3, *SHAPE)).astype(np.float32))
    blend = Mask.from_key(MaskKey("noise", seed, "blend", weight=weight), SHAPE)
    assert torch.allclose(blend.invert(blend.apply(images)), images, atol=1e-4)
    multiply = Mask.from_key(MaskKey("sign", seed, "multiply"), SHAPE)
    assert torch.allclose(multiply.apply(multiply.apply(images)), images)  # ±1 multiply is an involution
    assert torch.allclose(multiply.invert(multiply.apply(images)), images)


def test_add_clip_inverts_exactly_where_nothing_was_clipped():
    images = torch.full((2, *SHAPE), 0.5)
    mask = Mask.from_key(MaskKey("sign", 3, "add_clip", strength=0.25), SHAPE)
    assert torch.allclose(mask.invert(mask.apply(images)), images)


def test_superimpose_modes_match_their_formulas():
    x = torch.tensor([0.2, 0.9]).reshape(1, 1, 1, 2)
    m = torch.tensor([-1.0, 1.0]).reshape(1, 1, 2)
    assert torch.allclose(superimpose(x, m, "add_clip", strength=0.5), torch.tensor([0.0, 1.0]).reshape(x.shape))
    assert torch.allclose(superimpose(x, m, "multiply"), torch.tensor([-0.2, 0.9]).reshape(x.shape))
    assert torch.allclose(superimpose(x, m, "sign_flip"), torch.tensor([0.8, 0.9]).reshape(x.shape))
    assert torch.allclose(superimpose(x, m, "blend", weight=0.25), torch.tensor([-0.1, 0.925]).reshape(x.shape))
    assert torch.allclose(invert(superimpose(x, m, "blend", weight=0.25), m, "blend", weight=0.25), x)


def test_block_and_checkerboard_patterns_are_constant_on_tiles():
    block = make_pattern(MaskKey("block", 5, "sign_flip", block=4), SHAPE)[0]
    board = make_pattern(MaskKey("checkerboard", 5, "sign_flip", block=2), SHAPE)[0]
    assert set(block.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(block[:4, :4], block[0, 0].expand(4, 4))
    # neighbouring tiles of a checkerboard differ in sign, a tile away they agree
    assert torch.equal(board, board.roll(4, dims=0)) and torch.equal(board, -board.roll(2, dims=1))


def test_mix_family_picks_a_public_image(make_images):
    public = _public(make_images)
    pattern = make_pattern(MaskKey("mix", 7, "blend"), SHAPE, public)
    assert any(torch.equal(pattern, image) for image in public)


def test_mix_pattern_depends_on_the_public_pool(make_images):
    key = MaskKey("mix", 7, "blend")
    pool = _public(make_images)
    assert torch.equal(make_pattern(key, SHAPE, pool), make_pattern(key, SHAPE, pool.clone()))
    assert not torch.equal(make_pattern(key, SHAPE, pool), make_pattern(key, SHAPE, pool.flip(0)))


def test_mix_with_sign_flip_is_refused():
    # sign_flip uses sgn(pattern) and a public image has no negative pixel: nothing would be flipped
    with pytest.raises(ConfigError, match="'mix' cannot use mode 'sign_flip'"):
        MaskKey("mix", 7, "sign_flip")
    with pytest.raises(ConfigError, match="'mix' cannot use mode 'sign_flip'"):
        load_job_config(MaskJobConfig, {"candidates": [{"family": "mix", "mode": "sign_flip"}]})


def test_expand_keys_never_returns_an_excluded_seed():
    drawn = [k.seed for k in expand_keys("sign", "sign_flip", 5, np.random.default_rng(0))]
    kept = expand_keys("sign", "sign_flip", 5, np.random.default_rng(0), exclude=drawn[:2])
    assert len({k.seed for k in kept}) == 5 and not {k.seed for k in kept} & set(drawn[:2])


def test_mix_family_without_public_images_is_an_error():
    with pytest.raises(DataError, match="public images"):
        make_pattern(MaskKey("mix", 7, "blend"), SHAPE)


def test_images_of_another_shape_are_rejected(make_images):
    mask = Mask.from_key(MaskKey("sign", 1, "sign_flip"), SHAPE)
    with pytest.raises(DataError, match=r"do not match the mask"):
        mask.apply(make_images(2, (1, 28, 28)))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_pixels_are_rejected(bad, make_images):
    images = make_images(2, SHAPE)
    images[1, 0, 3, 3] = bad
    with pytest.raises(DataError, match="non-finite"):
        Mask.from_key(MaskKey("sign", 1, "sign_flip"), SHAPE).apply(images)


def test_bad_keys_are_config_errors():
    with pytest.raises(ConfigError, match="mask family"):
        MaskKey("stripes", 1, "sign_flip")
    with pytest.raises(ConfigError, match="superimposing mode"):
        MaskKey("sign", 1, "xor")
    with pytest.raises(ConfigError, match="weight"):
        MaskKey("sign", 1, "blend", weight=1.0)


def test_expand_keys_draws_distinct_seeds_reproducibly():
    first = expand_keys("sign", "sign_flip", 5, np.random.default_rng(0))
    assert first == expand_keys("sign", "sign_flip", 5, np.random.default_rng(0))
    assert len({k.seed for k in first}) == 5


def test_encrypt_with_any_uses_only_masks_of_the_set(make_images):
    images = make_images(50, SHAPE)
    masks = [Mask.from_key(MaskKey("sign", s, "sign_flip"), SHAPE) for s in (1, 2)]
    encrypted = encrypt_with_any(masks, torch.Generator().manual_seed(0))(images)
    by_first, by_second = masks[0].apply(images), masks[1].apply(images)
    matches = [torch.equal(e, a) or torch.equal(e, b) for e, a, b in zip(encrypted, by_first, by_second, strict=True)]
    assert all(matches)
    assert any(torch.equal(e, a) for e, a in zip(encrypted, by_first, strict=True))
    assert any(torch.equal(e, b) for e, b in zip(encrypted, by_second, strict=True))


@pytest.mark.parametrize("operation", [superimpose, invert])
def test_unknown_modes_are_config_errors(operation, make_images):
    with pytest.raises(ConfigError, match="superimposing mode"):
        operation(make_images(1), torch.ones(SHAPE), "rot13")


def test_patterns_need_a_channel_height_width_shape():
    with pytest.raises(DataError, match=r"\(C, H, W\)"):
        make_pattern(MaskKey("sign", 1, "sign_flip"), (8, 8))


def test_secret_keys_do_not_repeat_and_are_labelled_by_index():
    from fedfleet.privacy.masks import secret_keys

    keys = secret_keys("sign", "sign_flip", 3, first_index=2)
    again = secret_keys("sign", "sign_flip", 3, first_index=2)
    assert {k.seed for k in keys}.isdisjoint(k.seed for k in again)
    assert [k.name for k in keys] == ["sign/sign_flip#2", "sign/sign_flip#3", "sign/sign_flip#4"]
    assert "seed" not in keys[0].public_dict() and keys[0].to_dict()["seed"] == keys[0].seed


@pytest.mark.parametrize("fields", [{"mode": "add_clip", "strength": 0.0}, {"mode": "blend", "weight": 0.0}])
def test_identity_mask_keys_are_refused(fields):
    from fedfleet.errors import ConfigError
    from fedfleet.privacy.masks import MaskKey

    with pytest.raises(ConfigError, match="identity"):
        MaskKey("noise", 1, **fields)

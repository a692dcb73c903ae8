"""Elementary attacks on the shipped mask families, against a shared key and per-image keys, on the
digits test images (and Fashion-MNIST when installed).

    python benchmarks/known_plaintext.py [--dataset digits|fashion_mnist] [--seeds 3]

Prints (1) the known-plaintext attack: per family/mode and k known pairs, the mean SSIM to the
clear images of the ciphertexts, of the reconstruction under one shared key and under a fresh key
per image; (2) the key-free invariant attack: a logistic regression trained on transformed public
(training) images classifies ciphertexts, beside a clear-image logistic regression.
"""

from __future__ import annotations

import argparse

import torch
from sklearn.linear_model import LogisticRegression

from fedfleet.data.datasets import load_dataset
from fedfleet.privacy.invariants import INVARIANTS, InvariantClassifierAttack
from fedfleet.privacy.known_plaintext import KnownPlaintextAttack
from fedfleet.privacy.masks import Mask, secret_keys
from fedfleet.privacy.metrics import ssim

PAIRS = (1, 5, 50)
SETTINGS = [("sign", "sign_flip"), ("block", "sign_flip"), ("checkerboard", "sign_flip"), ("noise", "add_clip"),
            ("sign", "multiply"), ("noise", "multiply"), ("noise", "blend"), ("checkerboard", "blend")]
TARGETS = 500


def per_image(family: str, mode: str, batch: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    keys = secret_keys(family, mode, len(batch))
    return torch.cat([Mask.from_key(k, shape).apply(x[None]) for k, x in zip(keys, batch, strict=True)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    split = load_dataset(args.dataset)
    images = split.test.x.float()
    shape = tuple(images.shape[1:])
    print(f"{args.dataset}: {TARGETS} target images, {args.seeds} keys per row (mean SSIM to the clear images)")
    print(f"{'family/mode':<24}{'k':>4}{'ciphertext':>12}{'shared key':>12}{'per-image':>12}")
    for family, mode in SETTINGS:
        for pairs in PAIRS:
            rows = []
            for seed in range(args.seeds):
                order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
                known, targets = images[order[:pairs]], images[order[pairs:pairs + TARGETS]]
                [key] = secret_keys(family, mode, 1)
                mask = Mask.from_key(key, shape)
                attack = KnownPlaintextAttack(mode, weight=key.weight).fit(known, mask.apply(known))
                ciphertexts = mask.apply(targets)
                fresh = KnownPlaintextAttack(mode, weight=key.weight).fit(known, per_image(family, mode, known, shape))
                rows.append((ssim(ciphertexts, targets).mean().item(),
                             ssim(attack.reconstruct(ciphertexts), targets).mean().item(),
                             ssim(fresh.reconstruct(per_image(family, mode, targets, shape)), targets).mean().item()))
            means = torch.tensor(rows).mean(dim=0).tolist()
            print(f"{family + '/' + mode:<24}{pairs:>4}{means[0]:>12.3f}{means[1]:>12.3f}{means[2]:>12.3f}")

    invariant_table(split.train.x[:5000], split.train.y[:5000], images[:TARGETS], split.test.y[:TARGETS])


def invariant_table(public: torch.Tensor, public_labels: torch.Tensor, private: torch.Tensor,
                    labels: torch.Tensor) -> None:
    shape = tuple(private.shape[1:])
    clear_model = LogisticRegression(max_iter=2000).fit(public.flatten(1).numpy(), public_labels.numpy())
    attacks = {name: InvariantClassifierAttack(name).fit(public, public_labels) for name in INVARIANTS}
    print(f"\nkey-free invariant attack, {len(public)} labelled public images, {len(private)} targets "
          "(classification accuracy)")
    print(f"{'family/mode':<24}{'keys':>10}{'clear model':>13}" + "".join(f"{n:>13}" for n in attacks))
    clear_accuracy = float((clear_model.predict(private.flatten(1).numpy()) == labels.numpy()).mean())
    print(f"{'(clear images)':<24}{'-':>10}{clear_accuracy:>13.3f}"
          + "".join(f"{a.accuracy(private, labels):>13.3f}" for a in attacks.values()))
    for family, mode in SETTINGS:
        for keys in ("shared", "per-image"):
            if keys == "shared":
                ciphertexts = Mask.from_key(secret_keys(family, mode, 1)[0], shape).apply(private)
            else:
                ciphertexts = per_image(family, mode, private, shape)
            naive = float((clear_model.predict(ciphertexts.flatten(1).numpy()) == labels.numpy()).mean())
            print(f"{family + '/' + mode:<24}{keys:>10}{naive:>13.3f}"
                  + "".join(f"{a.accuracy(ciphertexts, labels):>13.3f}" for a in attacks.values()))


if __name__ == "__main__":
    main()

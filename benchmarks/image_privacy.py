"""Image privacy on Fashion-MNIST: the selected encryption mask and occlusion region against baselines.

Masks: accuracy of the encrypted-image and original-image models on encrypted test images,
the reconstruction SSIM of every attack of the suite (the job's own and the ciphertext-only
distribution matching and convolutional decoder, rerun here with the whole suite), the best
attacker accuracy and the worst linkage rate, for the chosen mask, a random choice from the
same set (mean over every candidate) and no mask; then the choice under the full rule
(linkage capped too). Occlusion: the security/availability
frontier, the chosen region, and random and centred regions of the same shape and area.

Run: .venv/bin/python benchmarks/image_privacy.py [--out runs/bench-image-privacy]
(defaults: 6,000 training, 1,000 test and 2,000 public images, CNN, 3 epochs, 1 thread;
``--part mask --encrypted-training shared`` for the masks alone).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedfleet.privacy.config import MaskJobConfig, OcclusionJobConfig, load_job_config
from fedfleet.privacy.jobs import MaskJobResult, load_job_data, run_mask_job, run_occlusion_job
from fedfleet.privacy.mask_rule import MaskRule, MaskScore, choose_mask, select_mask
from fedfleet.privacy.selection import SelectionError
from fedfleet.privacy.suite import SUITE, AttackSuite
from fedfleet.report.privacy import write_mask_report, write_occlusion_report


def markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table with floats to three decimals."""
    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both coordinates (higher is better)."""
    return [i for i, (a, b) in enumerate(points)
            if not any(c >= a and d >= b and (c, d) != (a, b) for c, d in points)]


def mask_benchmark(args: argparse.Namespace, encrypted_training: str) -> None:
    overrides = [f"data.dataset={args.dataset}", f"data.train_size={args.train_size}",
                 f"data.test_size={args.test_size}", f"data.public_size={args.public_size}",
                 f"model.epochs={args.epochs}", f"encrypted_training={encrypted_training}",
                 f"seed={args.seed}"]
    config = load_job_config(MaskJobConfig, None, overrides)
    start = time.perf_counter()
    result = run_mask_job(config, lambda message: print(f"  [mask] {message}", flush=True))
    elapsed = time.perf_counter() - start
    write_mask_report(result, Path(args.out) / f"mask-{encrypted_training}")
    start = time.perf_counter()
    scores = whole_suite(result, args.decoder_epochs)
    print(f"  [mask] whole attack suite on {len(scores)} candidates: {time.perf_counter() - start:.0f} s", flush=True)
    rows = [score.as_row() for score in scores]
    kinds = [kind for kind in SUITE if f"{kind}_ssim" in rows[0]]
    attack_columns = [f"{kind}_ssim" for kind in kinds]
    figures = [*attack_columns, "worst_attacker_accuracy", "worst_linkage"]
    columns = ["mask", "encrypted_accuracy", "original_accuracy", "ciphertext_ssim", *figures]
    numeric = ["encrypted_accuracy", "original_accuracy", "ciphertext_ssim", *figures]
    random_mean = {"mask": "random choice (mean of candidates)",
                   **{c: float(np.mean([row[c] for row in rows])) for c in numeric}}
    chosen = {**rows[result.selector.target_index_], "mask": f"chosen: {result.chosen.key.name}"}
    no_mask = {**result.baseline, "mask": "no mask (original model, clear images)",
               **{c: result.baseline["worst_ssim"] for c in attack_columns}, "worst_linkage": 1.0}
    print(f"\n### Encryption masks, {encrypted_training} encrypted model ({len(rows)} candidates, "
          f"rule {config.rule.name}, "
          f"original accuracy <= {config.rule.max_original_accuracy}; {elapsed:.0f} s)\n")
    print(markdown([chosen, random_mean, no_mask], columns))
    if result.holdout:
        print(f"\nHeld-out check on {result.holdout_images} test images not used for selection:\n")
        held_out = [{"mask": chosen["mask"], **result.holdout[result.selector.target_index_]},
                    {"mask": random_mean["mask"], **result.holdout_random_mean()},
                    {"mask": no_mask["mask"], "encrypted_accuracy": result.holdout_clear_accuracy,
                     "original_accuracy": result.holdout_clear_accuracy}]
        print(markdown(held_out, ["mask", "encrypted_accuracy", "original_accuracy"]))
    print("\nAll candidates:\n")
    print(markdown(rows, columns))
    for ceiling in (0.5, 0.9):
        try:
            index = choose_mask(scores, MaskRule(config.rule.name, config.rule.max_original_accuracy,
                                                 max_attack_ssim=ceiling, max_attacker_accuracy=None,
                                                 max_linkage=None))
            print(f"\nWith attack SSIM <= {ceiling} alone: chosen {scores[index].key.name}")
        except SelectionError as error:
            print(f"\nWith attack SSIM <= {ceiling} alone: {error}")
    r = config.rule
    full = select_mask(scores, MaskRule(r.name, r.max_original_accuracy, r.max_attack_ssim, r.max_attacker_accuracy))
    verdict = "qualified" if full.qualified else f"least bad: {full.message}"
    print(f"\nDefault rule over the whole suite (linkage <= {MaskRule().max_linkage}): "
          f"{scores[full.index].key.name}, {verdict}")


def whole_suite(result: MaskJobResult, decoder_epochs: int) -> list[MaskScore]:
    """The job's scores with every attack of the suite rerun on the job's validation images."""
    config = result.config
    data = load_job_data(config.data, config.seed, config.data.public_size)
    a = config.attacks
    masks = result.selector.masks_
    suite = AttackSuite(SUITE, n_keys=a.keys, hidden=a.hidden, epochs=a.epochs, decoder_epochs=decoder_epochs,
                        known_pairs=a.known_pairs, random_state=config.seed)
    suite.fit(data.public.x, data.public.y, [mask.key for mask in masks])
    scores = []
    for score, mask in zip(result.scores, masks, strict=True):
        figures = suite.evaluate(mask, data.validation.x, data.validation.y)
        scores.append(replace(score, attack_ssim=figures.ssim, attack_psnr=figures.psnr,
                              attacker_accuracy=figures.accuracy, linkage=figures.linkage))
    return scores


def occlusion_benchmark(args: argparse.Namespace) -> None:
    overrides = [f"data.dataset={args.dataset}", f"data.train_size={args.train_size}",
                 f"data.test_size={args.test_size}", f"model.epochs={args.epochs}",
                 f"eval_size={args.eval_size}", f"rule.min_availability={args.min_availability}",
                 f"seed={args.seed}"]
    config = load_job_config(OcclusionJobConfig, None, overrides)
    start = time.perf_counter()
    result = run_occlusion_job(config, lambda message: print(f"  [occlude] {message}", flush=True))
    elapsed = time.perf_counter() - start
    write_occlusion_report(result, Path(args.out) / "occlude")
    columns = ["case", "region", "area", "restoration_1-ssim", "saliency_covered", "security", "availability"]
    rows = [{"case": "chosen", **result.chosen.as_row()}]
    rows += [{"case": name, **score.as_row(result.baseline_label(name))} for name, score in result.baselines.items()]
    scores = result.scores
    front = pareto_front([(s.availability, s.security) for s in scores])
    print(f"\n### Occlusion ({len(scores)} candidates, rule {config.rule.name}, availability >= "
          f"{config.rule.min_availability}; {elapsed:.0f} s)\n")
    print(markdown(rows, columns))
    if result.holdout:
        print("\nHeld-out accuracy on occluded test images not used for selection: "
              + ", ".join(f"{name} {value:.3f}" for name, value in result.holdout.items()))
    accuracies = result.accuracies
    print(f"\nOn {result.accuracy_images}: target model {accuracies['clear']:.3f} clear, "
          f"{accuracies['occluded']:.3f} occluded with the chosen region; a model trained on occluded "
          f"images {accuracies['retrained_occluded']:.3f} on the same occluded images.")
    print(f"Frontier: {len(front)} of {len(scores)} candidates are Pareto-optimal; chosen is "
          f"{'on' if result.selector.target_index_ in front else 'off'} it.")
    frontier = sorted(({"region": scores[i].region.name, "availability": scores[i].availability,
                        "security": scores[i].security} for i in front), key=lambda row: row["availability"])
    print(markdown(frontier, ["region", "availability", "security"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--public-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--encrypted-training", default="both", choices=["shared", "per_mask", "both"])
    parser.add_argument("--decoder-epochs", type=int, default=10)
    parser.add_argument("--eval-size", type=int, default=300)
    parser.add_argument("--min-availability", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--part", choices=["mask", "occlude", "both"], default="both")
    parser.add_argument("--out", default="runs/bench-image-privacy")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part in ("mask", "both"):
        for mode in ("shared", "per_mask"):
            if args.encrypted_training in (mode, "both"):
                mask_benchmark(args, mode)
    if args.part in ("occlude", "both"):
        occlusion_benchmark(args)
    print(f"\nreports under {args.out}/")


if __name__ == "__main__":
    main()

"""The check of a TFLite model against the SavedModel it was converted from: bounds per
quantisation on the probabilities of the check images (`CHECK_BOUNDS`) and the comparison
(`compare_probabilities`). NumPy only: pure functions of the two arrays."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What the TFLite model must meet against the SavedModel on the check images, for one
    quantisation (probabilities, unitless in [0, 1]): `mean`, the largest mean over images of
    each image's max |dp| over classes; `max`, a guard on the largest |dp| of any image; and
    every image whose SavedModel top-two margin (p1 - p2) is at least `margin` keeps its top
    class. One image near a decision boundary may move far under rounding and flip (it set
    the old max-only check's figure); a model that moves the typical image, or flips an image
    it should be sure of, is refused."""

    mean: float
    max: float
    margin: float


#: The check's bounds per quantisation. Unquantised: float32 rounding only (1e-4 everywhere).
#: float16 weights are dequantised to float32 at load (weights rounded to 11 significant
#: bits); dynamic-range quantisation also rounds activations to int8 per tensor at run time.
#: A real MobileNet V1 (28 layers) moved them by max 0.0106 / 0.0151 (float16) and 0.113
#: (dynamic) with the same top class on every image (docs/cost.md): the mean bounds are
#: above those maxima; the margin is twice the mean bound (a flip moves two classes' p by
#: the margin together); the max guard, 0.5, refuses only an image moved by half its mass.
CHECK_BOUNDS = {"none": Bounds(mean=1e-4, max=1e-4, margin=2e-4),
                "float16": Bounds(mean=2.5e-2, max=0.5, margin=5e-2),
                "dynamic": Bounds(mean=1.5e-1, max=0.5, margin=3e-1)}
#: The max |dp| guard per quantisation (CHECK_BOUNDS' `max`), as recorded ("tolerance").
TOLERANCES = {q: b.max for q, b in CHECK_BOUNDS.items()}


def compare_probabilities(got, expected, quantize: str) -> tuple[dict, list[str]]:
    """(figures, problems): the TFLite model's probabilities `got` against the SavedModel's
    `expected` (both float [N, C], N >= 0) under CHECK_BOUNDS[quantize]. figures:
    {"max_abs_diff", "mean_abs_diff" (the mean over images of each image's max |dp|),
    "agreement" (the fraction of images with the same top class), "confident" (the images
    whose SavedModel top-two margin is >= the bound's margin), "confident_flipped"};
    problems: each bound broken, in words ([] when it passes). A shape mismatch or a
    non-finite value is one problem."""
    bounds = CHECK_BOUNDS[quantize]
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return ({"max_abs_diff": float("nan"), "mean_abs_diff": float("nan"), "agreement": 0.0,
                 "confident": 0, "confident_flipped": 0},
                [f"it returns {got.shape} (finite: {bool(np.all(np.isfinite(got)))}), the "
                 f"SavedModel {expected.shape}"])
    per_image = np.abs(got - expected).max(axis=1) if got.size else np.zeros(len(got))
    same = got.argmax(1) == expected.argmax(1) if got.size else np.ones(len(got), bool)
    top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[-1] >= 2 else None
    sure = (top2[:, 1] - top2[:, 0] >= bounds.margin) if top2 is not None else same
    figures = {"max_abs_diff": float(per_image.max()) if len(per_image) else 0.0,
               "mean_abs_diff": float(per_image.mean()) if len(per_image) else 0.0,
               "agreement": float(same.mean()) if len(same) else 1.0,
               "confident": int(sure.sum()), "confident_flipped": int((sure & ~same).sum())}
    problems = []
    if not figures["mean_abs_diff"] <= bounds.mean:
        problems.append(f"mean |dp| = {figures['mean_abs_diff']:.3g} > {bounds.mean:g}")
    if not figures["max_abs_diff"] <= bounds.max:
        problems.append(f"max |dp| = {figures['max_abs_diff']:.3g} > {bounds.max:g}")
    if figures["confident_flipped"]:
        problems.append(f"another top class on {figures['confident_flipped']} of the "
                        f"{figures['confident']} images whose SavedModel top-two margin is >= "
                        f"{bounds.margin:g}")
    return figures, problems

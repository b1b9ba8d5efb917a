"""The memory rules of hubensemble's stages, measured (docs/reliability.md, "Small machines"):
the bytes rank's embedding and tune's fine-tuning need, what export and evaluate add per
member, the batches that fit a limit, and whether an error says memory ran out. Pure
functions of their arguments, no TensorFlow; `memory` says them against what the process
has."""

from __future__ import annotations


#: What rank's embedding needs, measured (docs/reliability.md "Small machines"; TensorFlow
#: 2.21 on CPU, `hubensemble rank --no-cache`, the cgroup's peak resident memory): with
#: MobileNet V1 at 224x224 (a catalogue entry's input_size), 1.15 GB at --batch-size 16 and
#: 2.47 GB at 128, so 0.96 GB plus 235 bytes per pixel of each image of a batch (its
#: activations); the demo (16 small modules without an input size, 64 px) peaked at
#: 0.49 GB. Heavier modules need more: VGG16 (../shared/realmods, 224 px;
#: tools/benchmarks/bench_memory.py, VmHWM) peaked at 1.72 GiB at batch 32 and 2.68 at 64,
#: 1.38x and 1.68x the rule, 643 bytes per pixel of each image of a batch (its 64-channel maps
#: at full resolution, MobileNet's at half), so the rule is a lower bound (not refused on).
EMBED_BASE_FIXED, EMBED_BASE_SMALL, EMBED_PER_PIXEL = 0.96e9, 0.49e9, 235

#: The side rank resizes to for an entry without input_size, by --profile, before the data
#: is known (`hyperrule.eval_resolution`: the profile's cap; paper: 128 px for images under
#: 96 px, the least it may be).
_PROFILE_SIDE = {"quick": 32, "cpu": 64, "paper": 128}


def embedding_need(batch_size: int, input_sizes, profile: str = "cpu") -> tuple[float, int]:
    """(bytes rank's embedding needs, its largest image's pixels) for batches of
    `batch_size` images and modules of `input_sizes` (each (height, width) or None: resized
    to the profile's side, `_PROFILE_SIDE`): EMBED_BASE (FIXED when an entry has an input
    size, else SMALL) + EMBED_PER_PIXEL x batch_size x the largest entry's pixels. The rule
    is measured on MobileNet V1 (EMBED_PER_PIXEL's note): a lower bound for heavier
    modules."""
    sizes = list(input_sizes) or [None]
    side = _PROFILE_SIDE.get(profile, 64)
    pixels = max(int(s[0]) * int(s[1]) if s else side * side for s in sizes)
    base = EMBED_BASE_FIXED if any(sizes) else EMBED_BASE_SMALL
    return base + EMBED_PER_PIXEL * batch_size * pixels, pixels


#: What tune's fine-tuning needs, measured as EMBED_PER_PIXEL (`hubensemble fit --top-k 1`,
#: MobileNet V1 at 224x224, the profile's batch): 1.93 GB at batch 16 (--profile quick) and
#: 2.61 GB at 32 (--profile cpu), so 1.25 GB plus 847 bytes per pixel of each image of a
#: batch (the activations kept for the gradients).
TRAIN_BASE_FIXED, TRAIN_PER_PIXEL = 1.25e9, 847

#: What fit's export adds to the process's peak, measured (its reload check loads the written
#: SavedModel back beside the ensemble it compares it with, and traces both): 0.43 GB over
#: tune's peak in the demo (3 members), 0.44 GB with 2 MobileNet V1 members (`fit --profile
#: quick`: 2.37 GB; killed there under a 2 GiB cgroup after 19 minutes).
EXPORT_EXTRA = 0.45e9

#: What each member beyond the first adds to export's peak, measured (`hubensemble export`
#: alone, /usr/bin/time's peak resident memory, 224 px members of ../shared/realmods'
#: MobileNet V1 and EfficientNet-Lite0, 2 cores): 1.82 GB with 1 member, 2.58 with 2 and
#: 3.42 with 5, each peak at `export: timing serving_default at batch size(s) 1, 64`, the
#: whole ensemble on a batch of 64 (the members' activations); the rule without it said
#: 1.79 GB for all three, so a 3 GiB machine was not warned of the 5-member export that
#: outgrew it. The line through 1 and 5 members, 0.40 GB a member at 224x224 (7,970 bytes
#: per pixel of its input), is a lower bound of 2's.
EXPORT_PER_MEMBER_PIXEL = 7970

#: What each member beyond the first adds to evaluate's peak, measured as
#: EXPORT_PER_MEMBER_PIXEL (`hubensemble evaluate --model` of those exports, --batch-size 64,
#: serve_members runs every member on each batch): 1.55 GB with 1 member, 2.16 GB with 5,
#: where the rule said 1.71 GB for both; 0.15 GB a member, 47 bytes per pixel of each image
#: of a batch.
EVALUATE_PER_MEMBER_PIXEL = 47

#: The training batch (`hyperrule.PROFILES`' batch_size) and the crop of an entry without
#: input_size (its resolution_cap; paper: 128 px, its crop for images under 96 px) by
#: --profile.
_PROFILE_TRAINING = {"quick": (16, 32), "cpu": (32, 64), "paper": (512, 128)}


def training_need(input_sizes, profile: str = "cpu", *, batch: int | None = None,
                  side: int | None = None, factor: float = 1.0) -> tuple[float, int, int]:
    """(bytes tune's fine-tuning needs, the training batch, the largest image's pixels) for
    modules of `input_sizes` (each (height, width) or None) under --profile `profile`:
    TRAIN_BASE_FIXED (EMBED_BASE_SMALL when no entry has an input size) + TRAIN_PER_PIXEL x
    the profile's batch x the largest entry's pixels; `batch` and `side` (--train-batch-size,
    or a run's recorded profile: its batch_size and resolution_cap) replace the named
    profile's; `factor` (>= 1: `measured_factor`, what rank measured of a heavier module)
    multiplies the per-pixel term. Measured on MobileNet V1 (TRAIN_PER_PIXEL's note): a lower
    bound for heavier modules unmeasured."""
    sizes = list(input_sizes) or [None]
    named = _PROFILE_TRAINING.get(profile, _PROFILE_TRAINING["cpu"])
    batch, side = batch or named[0], side or named[1]
    pixels = max(int(s[0]) * int(s[1]) if s else side * side for s in sizes)
    base = TRAIN_BASE_FIXED if any(sizes) else EMBED_BASE_SMALL
    return base + TRAIN_PER_PIXEL * factor * batch * pixels, batch, pixels


def fitting_batch(limit: float, input_sizes, profile: str = "cpu", *,
                  per_pixel_extra: float = 0.0) -> int:
    """The largest --batch-size whose `embedding_need`, plus `per_pixel_extra` bytes per
    pixel of each image of a batch (evaluate's other members), stays within 90% of `limit`
    bytes (room for the rest of the process), 0 when not even 1 does."""
    need1, pixels = embedding_need(1, input_sizes, profile)
    base = need1 - EMBED_PER_PIXEL * pixels
    return max(0, int((0.9 * limit - base) // ((EMBED_PER_PIXEL + per_pixel_extra) * pixels)))


def fitting_train_batch(limit: float, input_sizes, profile: str = "cpu", *,
                        side: int | None = None, extra: float = 0.0,
                        factor: float = 1.0) -> int:
    """The largest --train-batch-size whose `training_need` (plus `extra` bytes: export's
    reload check after it; `factor`: training_need's) stays within 90% of `limit` bytes, 0
    when not even 1 does."""
    need1, _, pixels = training_need(input_sizes, profile, batch=1, side=side, factor=factor)
    base = need1 - TRAIN_PER_PIXEL * factor * pixels + extra
    return max(0, int((0.9 * limit - base) // (TRAIN_PER_PIXEL * factor * pixels)))


def ran_out(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from (its `__cause__` chain: a
    ModuleLoadError wrapping the load's), says memory ran out: Python's MemoryError,
    TensorFlow's ResourceExhaustedError (its "OOM when allocating tensor", as under `ulimit
    -v`), or its AbortedError of oneDNN's "could not create a primitive" (its primitive's
    memory could not be allocated, as a module loads on a full machine; not "… primitive
    descriptor", an unsupported shape), by its class's name (no TensorFlow import here)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        names = {k.__name__ for k in type(exc).__mro__}
        if isinstance(exc, MemoryError) or "ResourceExhaustedError" in names or (
                "AbortedError" in names and "could not create a primitive" in str(exc)
                and "could not create a primitive descriptor" not in str(exc)):
            return True
        exc = exc.__cause__
    return False

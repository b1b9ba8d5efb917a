"""Members that share one frozen backbone call: probes of one module run it once per request.

A probe candidate (`HParams.kind == "probe"`, hubensemble.tune.probe) is the frozen module
with a fitted head. Probes of one module at one evaluation size (a probe sweep fits several
L2 strengths per module, and greedy selection often keeps more than one) compute the same
embedding of an image: the export runs that module once and applies each probe's head to
the one embedding (`member_outputs`), where it ran the backbone once per member (an export
of two MobileNet probes and two other members measured the sum of their latencies).
Fine-tuned members never share: their backbones' weights are their own.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

# The key is the TensorFlow-free policy's (cost.sharing), which greedy selection's budget
# and the cost records group by too; re-exported here, where the export's callers import it.
from hubensemble.cost.sharing import (backbone_digest, backbone_key, key_groups,  # noqa: F401
                                      module_part, share_key)

log = logging.getLogger(__name__)


def _same_backbone_weights(a, b) -> bool:
    wa, wb = a.backbone.weights, b.backbone.weights
    return len(wa) == len(wb) and all(
        tuple(x.shape) == tuple(y.shape) and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(wa, wb))


def _can_share(member) -> bool:
    c = member.classifier
    return (member.share_key is not None and hasattr(c, "backbone")
            and hasattr(c, "head_probabilities"))


def backbone_groups(members: Sequence) -> list[tuple[int, ...]]:
    """The members (export.ExportMember) as groups of indices that run one backbone call,
    in order of their first member; a member that shares with none is a group of its own.
    The export computes them once and passes them to its cost record, the SavedModel and the
    TFLite model (`check_groups`).

    Members share when their `share_key`s are equal (not None; `cost.sharing.key_groups`,
    the grouping greedy selection's budget counts by: the key holds what the backbone's
    weights are, `cost.sharing.backbone_key`: the module's own, for a probe rebuilt from its
    module or loaded from a file whose backbone is the one tune wrote, else the file's
    digest), their sizes are equal, their classifiers are `tune.Classifier`s (a backbone and
    `head_probabilities`) and their backbones' weights are equal value for value (a member
    whose backbone differs runs its own, with a warning)."""
    keys = [(module_part(m.share_key), int(m.size)) if _can_share(m) else None
            for m in members]
    groups: list[list[int]] = []
    for group in key_groups(keys):
        parts: list[list[int]] = []
        for i in group:
            for part in parts:
                if members[part[0]].share_key == members[i].share_key and _same_backbone_weights(
                        members[part[0]].classifier, members[i].classifier):
                    part.append(i)
                    break
            else:
                if parts and not _same_backbone_weights(members[parts[0][0]].classifier,
                                                        members[i].classifier):
                    log.warning("member %s: its frozen module's weights differ from member "
                                "%s's (same module and size); it runs its own", i, parts[0][0])
                parts.append([i])
        groups.extend(parts)
    return [tuple(g) for g in sorted(groups, key=lambda g: g[0])]


def check_groups(groups, n: int) -> list[tuple[int, ...]]:
    """`groups` (of `backbone_groups`) as a list of tuples, checked to hold each of the n
    member indices exactly once, each group ascending; ValueError otherwise."""
    groups = [tuple(int(i) for i in g) for g in groups]
    flat = sorted(i for g in groups for i in g)
    if flat != list(range(n)) or any(list(g) != sorted(g) or not g for g in groups):
        raise ValueError(f"backbone groups {groups} must hold each of the {n} members once")
    return groups


def first_of(groups) -> dict[int, int]:
    """{member index: the first member of its group}, whose backbone it runs on."""
    return {i: g[0] for g in groups for i in g}


def member_outputs(members: Sequence, groups: Sequence[Sequence[int]],
                   images_of: Callable) -> list:
    """Each member's probabilities float32 [N, C] at inference, in member order, running
    each group's backbone once (`backbone_groups`).

    `images_of(size)` gives the float32 images [N, size, size, 3] in [0, 1] a member of that
    evaluation size takes (the export's resize). A group of one calls its classifier whole;
    a larger group calls its first member's backbone and every member's
    `head_probabilities` on that embedding (what each classifier computes on its own)."""
    outputs = [None] * len(members)
    for group in groups:
        first = members[group[0]]
        x = images_of(int(first.size))
        if len(group) == 1:
            outputs[group[0]] = first.classifier(x, training=False)
            continue
        embedding = first.classifier.backbone(x, training=False)
        for i in group:
            outputs[i] = members[i].classifier.head_probabilities(embedding, training=False)
    return outputs


def shared_record(members: Sequence, groups: Sequence[Sequence[int]]) -> list[dict]:
    """The metadata's "shared_backbones": per group of two or more members {"members": their
    trials, "module", "eval_size"} (empty when no member shares)."""
    return [{"members": [members[i].info.get("trial", i) for i in g],
             "module": members[g[0]].info.get("module"), "eval_size": int(members[g[0]].size)}
            for g in groups if len(g) > 1]

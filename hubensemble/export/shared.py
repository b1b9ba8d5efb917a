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

import json
import logging
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)


def share_key(spec_json: dict, fingerprint: str | None, size: int, kind: str) -> str | None:
    """The key under which a member may share its backbone call with others, or None.

    `spec_json`: its module's catalogue entry (`ModuleSpec.to_json`: handle, signature,
    output_key, layer, input_size, value_range, …: how the module is loaded and called);
    `fingerprint`: the module files' content key (None when unknown); `size`: its evaluation
    size in pixels; `kind`: `HParams.kind`. Only a probe ("probe": the module frozen, in
    inference mode) has a key; two members with equal keys call the same module the same way
    on the same pixels."""
    if kind != "probe":
        return None
    return json.dumps({"module": spec_json, "fingerprint": fingerprint, "size": int(size)},
                      sort_keys=True, default=str)


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

    Members share when their `share_key`s are equal (not None), their sizes are equal, their
    classifiers are `tune.Classifier`s (a backbone and `head_probabilities`) and their
    backbones' weights are equal value for value (a probe's weights file holds the module's
    own; a member whose backbone differs runs its own, with a warning)."""
    groups: list[list[int]] = []
    for i, m in enumerate(members):
        for group in groups:
            first = members[group[0]]
            if (_can_share(m) and _can_share(first) and m.share_key == first.share_key
                    and int(m.size) == int(first.size)):
                if _same_backbone_weights(first.classifier, m.classifier):
                    group.append(i)
                    break
                log.warning("member %s: its frozen module's weights differ from member %s's "
                            "(same module and size); it runs its own", i, group[0])
        else:
            groups.append([i])
    return [tuple(g) for g in groups]


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

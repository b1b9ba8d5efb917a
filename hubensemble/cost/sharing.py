"""Members that share one frozen backbone call, without TensorFlow: who shares, and what a
member costs when it does.

A probe (`HParams.kind == "probe"`) is its module frozen with a fitted head. Probes of one
module at one evaluation size compute the same embedding of an image, so the export runs that
module once for all of them (`hubensemble.export.shared`) and each adds only its head: a
Dense layer of D x C multiply-adds and D x C + C weights on the D-wide embedding. The one
policy of who may share (`share_key`), of the groups it makes (`key_groups`) and of what a
member then counts (`counted_costs`) lives here, for every reader: greedy selection's budget
(`cost.budget`), ensemble.json's cost record, and the export's cost record, which groups its
rebuilt members by the same key (`export.shared.backbone_groups`, which also compares their
backbones' weights in memory).

The key holds what the member's backbone weights are (`backbone_key`), read without
TensorFlow: its module's own (a probe rebuilt from its module, or loaded from a weights file
whose backbone is the one tune wrote, trial.json's `weightsfile.BACKBONE_DIGEST`), else the
digest of the backbone in its file. A probe whose frozen weights were changed in its file (by
hand, or by another tool) does not share, in the budget as in the export, so the budget never
admits as shared what the export then runs, and counts, whole; a probe loaded from its file
and one rebuilt from the module share, as their weights are equal.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Mapping, Sequence

from hubensemble.cost.records import Cost
from hubensemble import weightsfile


#: A share key's backbone when it holds its module's own weights: a probe rebuilt from its
#: module (no weights file: the export retrains its head), or loaded from a file whose
#: backbone is the one tune wrote (`weightsfile.BACKBONE_DIGEST`: its module's, frozen).
MODULE_WEIGHTS = "module"


def share_key(spec_json: dict, fingerprint: str | None, size: int, kind: str,
              backbone: str | None = MODULE_WEIGHTS) -> str | None:
    """The key under which a member may share its backbone call with others, or None.

    `spec_json`: its module's catalogue entry (`ModuleSpec.to_json`: handle, signature,
    output_key, layer, input_size, value_range, …: how the module is loaded and called);
    `fingerprint`: the module files' content key (None when unknown); `size`: its evaluation
    size in pixels; `kind`: `HParams.kind`; `backbone`: `backbone_key` of its weights (default
    MODULE_WEIGHTS: its module's own). Only a probe ("probe": the module frozen, in inference
    mode) has a key; two members with equal keys call the same module with the same weights
    the same way on the same pixels, however each was made (loaded or rebuilt)."""
    if kind != "probe":
        return None
    return json.dumps({"module": spec_json, "fingerprint": fingerprint, "size": int(size),
                       "backbone": backbone}, sort_keys=True, default=str)


def backbone_digest(weights_path) -> str | None:
    """The SHA-256 (hex) of the backbone's weights in a candidate's weights file, read with
    h5py (no TensorFlow): every dataset under its "backbone" group (`BACKBONE_GROUP`), by
    path, dtype, shape and bytes. None when `weights_path` is None, missing or unreadable, or
    holds no such group. Remembered per file (path, size, modification time), so a file read
    once in a process is not read again."""
    return weightsfile.backbone_digest(weights_path)


def backbone_key(weights_path, recorded: str | None) -> str | None:
    """What a probe's backbone holds, for `share_key`, by its weights alone: MODULE_WEIGHTS
    when it is rebuilt from its module (`weights_path` None) or its file's `backbone_digest`
    equals `recorded` (trial.json's `weightsfile.BACKBONE_DIGEST`: the module's own weights as
    tune wrote them); else that digest (changed in its file by hand or by another tool, or a
    trial of a hubensemble before the record: it shares with equal digests only); None when
    the file cannot be read (it shares with none; the export names it)."""
    if weights_path is None:
        return MODULE_WEIGHTS
    digest = backbone_digest(weights_path)
    if digest is not None and digest == recorded:
        return MODULE_WEIGHTS
    return digest


def candidate_key(cand, specs: Mapping, cost: Cost | None) -> str | None:
    """`share_key` of a candidate (`candidate.Candidate`) as greedy selection knows it,
    without loading it: its hparams' kind, its module's entry in run.json's "modules"
    (`specs`; no entry: None, it shares with no one), its trial.json's module fingerprint
    and evaluation size, else those its `cost` (RUN/cost.json's) was counted for, and the
    `backbone_key` of its weights file (the one the export loads; none kept: rebuilt from
    its module). None too when that file cannot be read."""
    spec = specs.get(cand.module) if isinstance(specs, Mapping) else None
    record = cand.record
    size = record.get("eval_size") or (cost.size if cost is not None else None)
    if not isinstance(spec, dict) or not size:
        return None
    fingerprint = record.get("module_fingerprint") or (cost.fingerprint if cost else None)
    kind = str(cand.hparams.get("kind", "finetune"))
    if kind != "probe":
        return None
    backbone = backbone_key(getattr(cand, "weights_path", None),
                            record.get(weightsfile.BACKBONE_DIGEST))
    if backbone is None:
        return None
    return share_key(spec, fingerprint, int(size), kind, backbone)


def module_part(key: str | None) -> str | None:
    """A `share_key` without its weights' digest (None stays None): equal for members of
    one module, call and size whose backbones' weights may differ."""
    if key is None:
        return None
    data = json.loads(key)
    data.pop("backbone", None)
    return json.dumps(data, sort_keys=True)


def key_groups(keys: Sequence[str | None]) -> list[tuple[int, ...]]:
    """The indices of `keys` grouped by equal keys (None shares with no one: a group of its
    own), groups in order of their first index, indices ascending."""
    groups: dict = {}
    for i, key in enumerate(keys):
        groups.setdefault(("key", key) if key is not None else ("alone", i), []).append(i)
    return [tuple(g) for g in groups.values()]


def head_cost(cost: Cost, head_macs: int | None = None) -> Cost | None:
    """What a member whose backbone is already run costs: its head on the shared embedding,
    `head_macs` (default `cost.head_macs`: D x C) multiply-adds, D x C + C weights, and no
    latency of its own (0 ms: its time is within the whole model's, which the export
    measures). None when the head's size is unknown (a cost.json of an older hubensemble)."""
    macs = cost.head_macs if head_macs is None else head_macs
    if macs is None:
        return None
    # The head's D x C is known from its shape even when the backbone's MACs were not counted.
    return dataclasses.replace(cost, macs=int(macs), params=int(macs) + int(cost.num_classes),
                               latency_ms={b: 0.0 for b in cost.latency_ms}, head_macs=int(macs),
                               macs_not_counted=None)


def counted_costs(costs: Sequence[Cost], groups: Sequence[Sequence[int]]) -> list[Cost]:
    """Each member's cost as the export runs it, in member order: the first of each group of
    `groups` (`key_groups`, `export.shared.backbone_groups`) its whole `Cost`, every other
    its `head_cost` (its whole cost when the head's size is unknown). `total_cost` of the
    result is the ensemble's cost with each shared backbone counted once."""
    out = list(costs)
    for group in groups:
        for i in list(group)[1:]:
            out[i] = head_cost(costs[i]) or costs[i]
    return out

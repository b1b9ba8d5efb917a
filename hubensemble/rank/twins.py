"""Modules whose embeddings of the rank data are the same: one module under two files.

The same weights saved as `m.keras` and as a SavedModel folder share no byte, so no file
fingerprint (`samemodule.same_files_as`) pairs them; their embeddings do. rank keeps, for every
module it ranked, a small projection of its embeddings (`signature`) and records a later
module whose embeddings match an earlier one's (`same_embeddings_as`) as its duplicate.
"""

from __future__ import annotations

import numpy as np

from hubensemble.text import counted

#: Columns of a signature: random directions of the embedding space (seeded by its width,
#: so two modules of one width share them). Equal embeddings give equal signatures; unequal
#: ones give unequal signatures with probability 1 (a difference in the null space of 8
#: random directions for every image is a set of measure zero).
SIGNATURE_WIDTH = 8
#: The float tolerance, relative to the larger signature's largest magnitude: a SavedModel
#: and a .keras file of one model compute in another order (differences near 1e-7 in
#: float32); two modules that differ at all differ by far more than 1e-4 of their scale.
TOLERANCE = 1e-4


def signature(embeddings) -> np.ndarray:
    """float64 [N, SIGNATURE_WIDTH]: the embeddings (float [N, d], N images of the rank data)
    projected on SIGNATURE_WIDTH fixed random directions of R^d (seed d). 64 bytes an image,
    whatever d, so a ranking of many modules keeps one per module."""
    emb = np.asarray(embeddings, np.float64)
    directions = np.random.default_rng(emb.shape[1]).standard_normal(
        (emb.shape[1], SIGNATURE_WIDTH))
    return emb @ directions


#: Images (the first of the rank data) whose signature a ranking.json row keeps
#: (`row_signature`): 16 x SIGNATURE_WIDTH numbers, so that `rank merge` compares modules
#: ranked in two shards; rounded to 7 significant digits, far inside TOLERANCE.
ROW_IMAGES = 16


def row_signature(sig) -> list:
    """The signature (`signature`, float [N, SIGNATURE_WIDTH]) of a ranked module as its
    ranking.json row keeps it: its first ROW_IMAGES rows, a list of lists of floats rounded
    to 7 significant digits (about 1.5 KB a row); `same_embeddings_as` compares it as it
    compares a whole signature."""
    return [[float(f"{v:.7g}") for v in line] for line in np.asarray(sig)[:ROW_IMAGES]]


def same_embeddings_as(spec, sig, dim, signed, trains=None, *, images=None) -> tuple | None:
    """(earlier, why) for the entry `spec` whose module's embeddings are `dim`-d with
    signature `sig` when an entry of `signed` ([(spec, dim, signature)], in catalogue order)
    has equal ones to `TOLERANCE` (the same width and number of images) and, with `trains`
    (entry -> bool: whether its module has variables to fine-tune), fine-tunes alike: a
    module and its frozen copy (no trainable variables) embed alike but are two candidates
    for tune. why is `compared_words` of the signatures' rows and `images` (the training
    images of the ranking, when the rows are fewer: `row_signature`'s, in `rank merge`).
    None when none has. `trains` is asked of a pair whose embeddings match only."""
    sig = np.asarray(sig, np.float64)
    for earlier, their_dim, theirs in signed:
        theirs = np.asarray(theirs, np.float64)
        if their_dim != dim or theirs.shape != sig.shape:
            continue
        scale = max(float(np.abs(sig).max(initial=0.0)), float(np.abs(theirs).max(initial=0.0)))
        if float(np.abs(sig - theirs).max(initial=0.0)) > TOLERANCE * scale:
            continue
        if trains is None or trains(spec) == trains(earlier):
            return earlier, compared_words(len(sig), images)
    return None


def compared_words(rows: int, images: int | None = None) -> str:
    """What a match of signatures of `rows` images compared: "the same embeddings of the 800
    training images, to float tolerance"; with `images` (the ranking's training images) more
    than `rows`, the part a ranking.json row keeps: "the same embeddings of the first 16 of
    the 800 training images (those a shard's ranking.json row keeps), to float tolerance".
    `rank merge` said the 800 where it compared the 16 (`row_signature`)."""
    if images and images > rows:
        return (f"the same embeddings of the first {rows} of the "
                f"{counted(images, 'training image')} (those a shard's ranking.json row "
                "keeps), to float tolerance")
    return f"the same embeddings of the {counted(rows, 'training image')}, to float tolerance"


def trains(spec) -> bool:
    """Whether the module of the catalogue entry `spec` has trainable variables, loaded as
    tune loads it (`hub.ModuleRuntime.from_spec`); False when it cannot be loaded again."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import ModuleRuntime

    try:
        return bool(ModuleRuntime.from_spec(spec).trainable_variables)
    except ModuleLoadError:
        return False

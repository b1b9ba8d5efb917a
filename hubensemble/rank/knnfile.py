"""RUN/knn.npz, the leave-one-out kNN predictions (and nearest neighbours) of a kNN ranking: the
one place that writes, reads and checks it (and reads the RUN/knn/NAME.npy files of rankings
written before it)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from hubensemble import proxies
from hubensemble.errors import RunError
from hubensemble.fileio import atomic_write_bytes, numpy_load_fault
from hubensemble.formats import KNN_FILE, LEGACY_KNN_DIR
from hubensemble.text import counted

#: How many leave-one-out nearest neighbours of each training image rank keeps per module
#: (knn.npz "neighbours"): `labelcheck` scores a label by the share of them that carry it.
#: 10: on the demo zoo the share over 10 neighbours ranked flipped labels first better than
#: the 1-NN votes (tools/benchmarks/bench_labelcheck.py); the array is int32 [M, N, 10],
#: 40 bytes per image and module.
NEIGHBOURS = 10


def knn_predictions_file(out_dir) -> Path:
    """RUN/knn.npz: the leave-one-out kNN predictions of every ok module of a kNN ranking,
    arrays "names" (str [M], best first) and "predictions" (int64 [M, N], row m the
    predictions of names[m] for the N training examples), and since 2026-12-06 "neighbours"
    (int32 [M, N, K], K = NEIGHBOURS or fewer: each example's K nearest other examples in
    names[m]'s embedding, nearest first, `proxies.loo_knn_neighbors`); a file written before
    has none, and `load_knn_neighbours` then returns {}. One file per run, written once when
    the ranking is: nothing is rewritten per module."""
    return Path(out_dir) / KNN_FILE


def write_knn_predictions(out_dir, predictions, neighbours=None) -> Path | None:
    """Writes {module name: int predictions [N]} as RUN/knn.npz (in the dict's order),
    atomically, and returns its path; with no predictions (other metrics) removes a file left
    by an earlier kNN ranking there and returns None. `neighbours` ({module name: int [N, K]},
    `loo_neighbours`) is written as "neighbours" when every module of `predictions` has them
    with one K; else none is (a merge of shards ranked before they were kept)."""
    path = knn_predictions_file(out_dir)
    if not predictions:
        path.unlink(missing_ok=True)
        return None
    names = list(predictions)
    arrays = dict(names=np.array(names, dtype=str),
                  predictions=np.stack([np.asarray(predictions[n], np.int64) for n in names]))
    near = [np.asarray(neighbours[n]) for n in names if n in (neighbours or {})]
    if len(near) == len(names) and len({a.shape for a in near}) == 1:
        arrays["neighbours"] = np.stack(near).astype(np.int32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_knn_predictions(out_dir, names=None) -> dict[str, np.ndarray]:
    """{module name: int64 predictions [N]} saved by a kNN ranking in `out_dir` (those of
    `names` that exist; all with None). Reads RUN/knn.npz, or the RUN/knn/NAME.npy files of
    rankings written before it existed. RunError when the file is unreadable."""
    path = knn_predictions_file(out_dir)
    wanted = None if names is None else set(names)
    out = {}
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                saved, preds = [str(n) for n in z["names"]], z["predictions"]
            if preds.ndim != 2 or preds.shape[0] != len(saved):
                raise ValueError(f"predictions of shape {preds.shape} for "
                                 f"{counted(len(saved), 'name')}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            # BadZipFile: a damaged file (a merge's traceback, before) is named, not raised.
            raise RunError(f"{_named(path)} is unreadable ({numpy_load_fault(e)}); rank again to "
                           "rewrite it") from None
        return {n: preds[m] for m, n in enumerate(saved) if wanted is None or n in wanted}
    legacy = Path(out_dir) / LEGACY_KNN_DIR
    for name in (names if names is not None else
                 sorted(p.stem for p in legacy.glob("*.npy")) if legacy.is_dir() else []):
        p = legacy / f"{name}.npy"
        if p.exists():
            out[name] = np.load(p, allow_pickle=False)
    return out


def load_knn_neighbours(out_dir, names=None) -> dict[str, np.ndarray]:
    """{module name: int32 [N, K] leave-one-out nearest neighbours, nearest first} saved in
    RUN/knn.npz (those of `names` that exist; all with None); {} when the file, or its
    "neighbours" (a ranking before 2026-12-06), is missing. RunError when it is unreadable
    or its neighbours' shape does not match its predictions'."""
    path = knn_predictions_file(out_dir)
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if "neighbours" not in z.files:
                return {}
            saved, near = [str(n) for n in z["names"]], z["neighbours"]
            shape = z["predictions"].shape
        if near.ndim != 3 or near.shape[:2] != tuple(shape) or shape[0] != len(saved):
            raise ValueError(f"neighbours of shape {near.shape} for predictions of shape "
                             f"{tuple(shape)} and {counted(len(saved), 'name')}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise RunError(f"{_named(path)} is unreadable ({numpy_load_fault(e)}); rank again to "
                       "rewrite it") from None
    wanted = None if names is None else set(names)
    return {n: near[m] for m, n in enumerate(saved) if wanted is None or n in wanted}


def loo_neighbours(emb, *, metric, groups=None) -> np.ndarray | None:
    """int32 [N, K]: each example's K = NEIGHBOURS nearest other examples of float [N, d]
    embeddings, nearest first (`proxies.loo_knn_neighbors`, its tie rule; with `groups` int
    [N] an example's own duplicate group is left out, as rank's predictions leave it out), or
    None when some example has fewer than K others to choose from (tiny data)."""
    n = len(emb)
    if groups is not None and len(groups):
        n -= int(np.unique(np.asarray(groups), return_counts=True)[1].max()) - 1
    if n - 1 < NEIGHBOURS:
        return None
    return proxies.loo_knn_neighbors(emb, NEIGHBOURS, metric=metric,
                                     groups=groups).astype(np.int32)


def neighbour_votes(near, labels, k, block_rows=4096) -> np.ndarray:
    """int64 [N]: the leave-one-out k-NN predictions from each example's first k of `near`
    (int [N, K >= k], nearest first, `loo_neighbours`) and the labels int [N]: the most
    frequent label among them, a tie to the smallest label. The rules of
    `proxies.loo_knn_predict`, whose k nearest are the first k of the K (both order by
    (distance, index) over the same float64 distances), so rank computes the neighbours once
    and its predictions from them (test_rank checks them against scikit-learn). The counts
    go by blocks of `block_rows` rows (an [N, classes] array at once is large)."""
    y = np.asarray(labels, np.int64)
    idx = np.asarray(near)[:, :int(k)]
    if idx.shape[1] == 1:
        return y[idx[:, 0]]
    classes, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1)
    c, out = len(classes), np.empty(len(y), np.int64)
    for start in range(0, len(y), block_rows):
        block = codes[idx[start:start + block_rows]]
        b = len(block)
        flat = np.repeat(np.arange(b), block.shape[1]) * c + block.ravel()
        counts = np.bincount(flat, minlength=b * c).reshape(b, c)
        out[start:start + b] = classes[counts.argmax(axis=1)]
    return out


def check_knn_predictions(run_dir, names, examples=None) -> None:
    """RunError naming RUN/knn.npz of the kNN ranking in `run_dir` when it lacks the
    predictions of some of `names` (str, its ok modules): the file missing (and no
    RUN/knn/NAME.npy of an older ranking for each), damaged, or without some names, or with
    predictions of another number of training examples than `examples` (int; None: any).
    Reads the names and the array's header, not the predictions: `rank merge` checks every
    shard with it before TensorFlow loads."""
    names = list(names)
    path = knn_predictions_file(run_dir)
    if not names:
        return
    again = "copy the whole folder that `rank --shard` wrote, or rank that shard again"
    if not path.exists():
        legacy = Path(run_dir) / LEGACY_KNN_DIR
        if all((legacy / f"{n}.npy").is_file() for n in names):
            return
        raise RunError(f"{_named(path)} is missing: it holds the kNN predictions of the "
                       f"{counted(len(names), 'module')} ranked there ({', '.join(names[:3])}"
                       f"{' …' if len(names) > 3 else ''}); {again}")
    try:
        with zipfile.ZipFile(path) as z:
            with z.open("names.npy") as f:
                saved = {str(n) for n in np.lib.format.read_array(f, allow_pickle=False)}
            with z.open("predictions.npy") as f:
                version = np.lib.format.read_magic(f)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape = header(f)[0]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise RunError(f"{_named(path)} is unreadable ({numpy_load_fault(e)}); {again}") from None
    lacking = [n for n in names if n not in saved]
    if lacking:
        raise RunError(f"{_named(path)} holds no predictions of {', '.join(lacking[:5])}"
                       f"{' …' if len(lacking) > 5 else ''} (ranked there); {again}")
    if len(shape) != 2 or shape[0] != len(saved) or (examples and shape[1] != examples):
        raise RunError(f"{_named(path)} is unreadable (predictions of shape {tuple(shape)} for "
                       f"{counted(len(saved), 'name')}"
                       + (f" and {counted(examples, 'training example')}" if examples else "")
                       + f"); {again}")


def _named(path) -> str:
    """RUN/knn.npz `path` as a message names it: absolute and on one line (`text.escaped`
    of `text.absolute`); a run given relative named it relative to the working folder."""
    from hubensemble.text import absolute, escaped

    return escaped(absolute(path))

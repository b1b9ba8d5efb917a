"""Upstream data of a zoo: images with a label hierarchy (sub-tree -> leaf classes)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hubensemble.errors import DataError
from hubensemble.fileio import numpy_load_fault
from hubensemble.text import counted


@dataclass
class UpstreamData:
    """Upstream images with a label hierarchy (sub-tree → leaf classes).

    Give either arrays (``images`` uint8 [N, H, W, 3] or float in [0, 1], ``labels`` int [N]
    indexing ``class_names``) or a ``sampler(n, seed, classes)`` that returns ``n`` fresh
    (images, labels) of the given class names (all classes when None) — as the procedural
    glyphs do. Every class must be in exactly one sub-tree.
    """

    name: str
    class_names: list[str]
    hierarchy: dict[str, list[str]]
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    sampler: Callable | None = field(default=None, repr=False)

    def __post_init__(self):
        self.class_names = [str(c) for c in self.class_names]
        self.hierarchy = {str(k): [str(c) for c in v] for k, v in self.hierarchy.items()}
        check_hierarchy(self.hierarchy, self.class_names)
        if (self.images is None) == (self.sampler is None):
            raise DataError("UpstreamData needs either images and labels or a sampler "
                            "(not both, not neither)")
        if self.images is not None:
            if self.labels is None or len(self.labels) != len(self.images):
                raise DataError(f"upstream {self.name}: {counted(len(self.images), 'image')} "
                                "but " + counted(0 if self.labels is None else
                                                 len(self.labels), "label")
                                + "; give one integer label per image")
            images = np.asarray(self.images)
            if images.ndim != 4 or images.shape[-1] != 3:
                raise DataError(f"upstream {self.name}: images must be [N, H, W, 3] RGB, got "
                                f"shape {images.shape}")
            if images.dtype != np.uint8:
                images = np.clip(np.asarray(images, np.float32) * 255.0 + 0.5, 0, 255)
                images = images.astype(np.uint8)
            labels = np.asarray(self.labels).astype(np.int64)
            if labels.min() < 0 or labels.max() >= len(self.class_names):
                raise DataError(f"upstream {self.name}: labels must be in [0, "
                                f"{len(self.class_names)}) (indices into class_names)")
            self.images, self.labels = images, labels

    def sample(self, n: int, seed: int, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """n training examples of ``classes`` (all when None): (uint8 images, labels)."""
        if self.sampler is not None:
            images, labels = self.sampler(n, seed, classes)
            return np.asarray(images), np.asarray(labels, np.int64)
        if classes is None:
            pool = np.arange(len(self.labels))
        else:
            wanted = np.array([self.class_names.index(c) for c in classes])
            pool = np.nonzero(np.isin(self.labels, wanted))[0]
        if len(pool) == 0:
            raise DataError(f"upstream {self.name}: no examples of {list(classes)[:5]}")
        # Whole passes over the subset in a seeded order: each example used as evenly as n allows.
        rng = np.random.default_rng(seed)
        reps = -(-n // len(pool))
        idx = np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]
        return self.images[idx], self.labels[idx]

    @classmethod
    def glyphs(cls) -> "UpstreamData":
        """The procedural glyphs / shapes / textures of hubensemble.zoo.glyphs (no download)."""
        from hubensemble.zoo import glyphs

        def sampler(n, seed, classes):
            return glyphs.generate(n, seed, classes=classes)

        return cls(name=glyphs.UPSTREAM_NAME, class_names=glyphs.class_names(),
                   hierarchy=glyphs.hierarchy(), sampler=sampler)

    @classmethod
    def from_npz(cls, path, hierarchy, *, name: str | None = None) -> "UpstreamData":
        """Arrays from an .npz (``images``, ``labels``, optional ``class_names``) and a
        hierarchy (a dict or the path of a YAML file: sub-tree → list of class names)."""
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                images, labels = z["images"], z["labels"]
                names = [str(c) for c in z["class_names"]] if "class_names" in z else None
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path}: cannot read upstream data ({numpy_load_fault(e)}); the "
                            ".npz needs arrays "
                            "'images' [N, H, W, 3], 'labels' [N] and optionally "
                            "'class_names'") from None
        tree = load_hierarchy(hierarchy) if not isinstance(hierarchy, dict) else hierarchy
        if names is None:
            names = [c for classes in tree.values() for c in classes]
        return cls(name=name or os.path.splitext(os.path.basename(path))[0], class_names=names,
                   hierarchy=tree, images=images, labels=labels)


def load_hierarchy(path) -> dict[str, list[str]]:
    """A hierarchy YAML file (sub-tree: [class, ...]) as a dict. Read as the catalogue is
    (`text.file_text`: a byte-order mark, CR LF, UTF-16 with its mark; a Latin-1 byte is
    refused at its line with the fix). Raises DataError naming `path`."""
    import yaml

    from hubensemble.text import file_text

    try:
        with open(path, "rb") as f:
            tree = yaml.safe_load(file_text(f.read(), os.fspath(path)))
    except ValueError as e:  # file_text's words name the file, its line and the fix
        raise DataError(str(e)) from None
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{path}: cannot read the hierarchy ({e})") from None
    if not isinstance(tree, dict) or not all(isinstance(v, list) for v in tree.values()):
        raise DataError(f"{path}: a hierarchy is a mapping sub-tree → list of class names, "
                        "e.g. `animals: [cat, dog]`")
    return {str(k): [str(c) for c in v] for k, v in tree.items()}


def check_hierarchy(tree: dict[str, list[str]], class_names) -> None:
    """Raises DataError unless every class is in exactly one sub-tree and nothing else is."""
    seen = {}
    for sub, classes in tree.items():
        if not classes:
            raise DataError(f"sub-tree {sub!r} has no classes; remove it or give it some")
        for c in classes:
            if c in seen:
                raise DataError(f"class {c!r} is in sub-trees {seen[c]!r} and {sub!r}; each "
                                "class belongs to exactly one sub-tree")
            seen[c] = sub
    names = set(class_names)
    missing = sorted(names - set(seen))
    extra = sorted(set(seen) - names)
    if missing or extra:
        raise DataError(f"the hierarchy does not match the classes: not in any sub-tree "
                        f"{missing[:5]}, unknown classes {extra[:5]}")

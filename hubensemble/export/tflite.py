"""The ensemble as one TFLite model: conversion, the check against the SavedModel, latency.

TFLite has no op for the antialiased resize every stage uses (`augment.resize`, TensorFlow's
ScaleAndTranslate), so the TFLite model takes images of one fixed size H x W and does each
member's resize to its serving size S as two constant matrices (`resize_matrix`): the
antialiased bilinear resize from a fixed size is a linear map, separable in rows and
columns, so out = clip(A_h · x · A_w^T, 0, 1) with A_h [S, H], A_w [S, W] equal to what
ScaleAndTranslate computes, up to float rounding. On images of that size the TFLite model
gives the SavedModel's probabilities (checked: `tflitecheck.compare_probabilities`). Images of
other sizes must be resized to H x W first; the result then differs from the SavedModel's
(which resizes once, straight to each member's size).

Only TFLite's built-in ops are used (no select TF ops): the interpreter is LiteRT's
(``ai-edge-litert``, the ``tflite`` extra) when installed, else tf.lite.Interpreter, which
TensorFlow 2.21 deprecates.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
import warnings
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from hubensemble import _tf, fileio, options
from hubensemble.cost.graph import time_batches
from hubensemble.cost.records import LATENCY_BATCHES  # as `hubensemble cost` times
from hubensemble.cost.records import figure
from hubensemble.errors import RunError, first_line
from hubensemble.export.layers import normalise_weights
from hubensemble.export.shared import (backbone_groups, check_groups, member_outputs,
                                       shared_record)
from hubensemble.export.tflitecheck import (CHECK_BOUNDS, TOLERANCES,  # noqa: F401
                                            compare_probabilities)
from hubensemble.formats import (EXPORT_FORMAT, TFLITE_METADATA, TFLITE_MODEL,
                                 is_tflite_export, replaceable_export, versions)
# The ensemble command with the run's own settings (its home: sweepwords), re-exported here.
from hubensemble.sweepwords import ensemble_options, ensemble_words  # noqa: F401
from hubensemble.text import absolute, counted
from hubensemble.threads import warnings_block

log = logging.getLogger(__name__)

QUANTIZE = options.get("quantize").choices

#: The metadata file beside the model.
METADATA_FILE = TFLITE_METADATA


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The 1-D resize of `augment.resize` from n_in to n_out samples as a matrix float32
    [n_out, n_in]: column j is the resize of the j-th unit vector (antialiased bilinear, as
    ScaleAndTranslate computes it), so resize(x) = M @ x for any x of length n_in."""
    n_in, n_out = int(n_in), int(n_out)
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be >= 1, got {n_in} -> {n_out}")
    # A batch of n_in one-column "images", the j-th holding the j-th unit vector.
    eye = tf.eye(n_in, dtype=tf.float32)[:, :, None, None]
    out = tf.image.resize(eye, [n_out, 1], method="bilinear", antialias=True)
    return tf.transpose(out[:, :, 0, 0]).numpy()


class TFLiteEnsemble(tf.Module):
    """The ensemble as a fixed-input-size function TFLite can convert.

    `members` are export.ExportMember (classifier, size, weight); `input_hw` (H, W) the input
    size. ``__call__(images)``: float32 [N, H, W, 3] in [0, 1] -> float32 [N, C]
    probabilities: each member gets clip(A_h · x · A_w^T, 0, 1) at its size (`resize_matrix`;
    no matrix when its size is H = W, where the resize is the identity) and the weighted
    average of their probabilities is returned (paper 2.3). Members that share a frozen
    backbone (`groups`: the export's `shared.backbone_groups`, computed when not given;
    probes of one module at one size) run it once.
    """

    def __init__(self, members: Sequence, input_hw: tuple[int, int], groups=None):
        super().__init__(name="tflite_ensemble")
        self.members = list(members)
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.weights = normalise_weights([m.weight for m in self.members], len(self.members))
        self.groups = check_groups(backbone_groups(self.members) if groups is None
                                   else groups, len(self.members))
        h, w = self.input_hw
        self.matrices = {}
        for m in self.members:
            s = int(m.size)
            if (s, s) != (h, w) and s not in self.matrices:
                self.matrices[s] = (tf.constant(resize_matrix(h, s)),
                                    tf.constant(resize_matrix(w, s)))
        # No autograph: _call branches on Python values only (saved.EnsembleModule's why).
        self.__call__ = tf.function(self._call, autograph=False, input_signature=[
            tf.TensorSpec([None, h, w, 3], tf.float32, name="images")])

    def resized(self, images, size: int):
        """float32 images [N, H, W, 3] -> [N, size, size, 3]: augment.resize as matrices."""
        if size not in self.matrices:
            return tf.clip_by_value(images, 0.0, 1.0)
        a_h, a_w = self.matrices[size]
        x = tf.transpose(images, [0, 3, 1, 2])                     # [N, 3, H, W]
        x = tf.matmul(tf.matmul(a_h, x), a_w, transpose_b=True)     # [N, 3, S, S]
        return tf.clip_by_value(tf.transpose(x, [0, 2, 3, 1]), 0.0, 1.0)

    def _call(self, images):
        total = None
        outputs = member_outputs(self.members, self.groups,
                                 lambda size: self.resized(images, size))
        for weight, out in zip(self.weights, outputs):
            p = tf.cast(out, tf.float32) * weight
            total = p if total is None else total + p
        return {"probabilities": total}


def convert(module: TFLiteEnsemble, quantize: str = "none") -> bytes:
    """The TFLite flatbuffer of `module` (TFLite built-in ops only), with weights float32
    ("none"), float16, or int8 with dynamic-range activations ("dynamic"). Raises RunError
    naming the ops TFLite lacks when the conversion fails."""
    if quantize not in QUANTIZE:
        raise RunError(f"unknown quantisation {quantize!r}; choose one of {', '.join(QUANTIZE)}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)
    if quantize in ("float16", "dynamic"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        # MLIR's diagnostics (a dozen "loc(fused[…]): error: …" lines per op) went straight
        # to the terminal, under -q too; RUN/log.txt keeps them, the error says what they mean.
        with _tf.native_notices("the TFLite converter"):
            return converter.convert()
    except Exception as e:  # noqa: BLE001 - the converter raises ConverterError and others
        raise RunError(f"the TFLite converter failed: {converter_reason(e)}. A module whose "
                       "graph uses ops without a TFLite built-in cannot be exported as "
                       "TFLite; serve the SavedModel") from e


def converter_reason(error: BaseException) -> str:
    """Why the TFLite converter refused a graph, in one line, from its ConverterError: the
    TensorFlow ops it found no TFLite built-in for, by their whole names (its "TF Select ops:
    …" and "Custom ops: …" lines, else each "'tf.NAME' op is neither a custom op nor a flex
    op"; TensorFlow 2.21 says Erfinv so, and the first line was a loc(fused[…]) of MLIR's),
    and when they run on float16 tensors (a module saved in float16 or mixed precision: the
    refused ops' own tensors, not the f16 weights of --quantize float16) that TFLite's
    built-in kernels take float32; else the error's first line
    (`errors.first_line`)."""
    import re

    text = str(error)
    listed = re.findall(r"^(?:TF Select ops|Custom ops): ([^\n]+)", text, re.M)
    names = [n.strip() for line in listed for n in line.split(",")] or re.findall(
        r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)
    if not names:
        return first_line(error)
    reason = f"ops without a TFLite built-in: {', '.join(dict.fromkeys(n for n in names if n))}"
    # The refused ops' own tensors (its "Details:" and "see current operation" lines), not
    # any f16 tensor: --quantize float16 stores every weight as f16 constants, and an
    # Erfinv on float32 was said to run "on float16 tensors (the module computes in float16)".
    if re.search(r"""^\s*"?tf\.\w+"?\([^\n]*tensor<[^>]*f16>""", text, re.M) or re.search(
            r"""= "tf\.\w+"\([^\n]*tensor<[^>]*f16>""", text):
        reason += (" on float16 tensors (the module computes in float16; TFLite's built-in "
                   "kernels take float32)")
    return reason


def refused_members(module: "TFLiteEnsemble", quantize: str, images,
                    error: RunError, out_dir=None) -> RunError:
    """The RunError to raise when the TFLite model of `module` could not be made or run
    (`error`, of `_converted`): naming the members (trial and module) TFLite cannot serve,
    each with why (the converter refuses its module: `converter_reason`; or the converted
    model does not run on the check `images`, float32 [N, H, W, 3], or returns no finite
    [N, C]), found by converting and running each group of members that runs one backbone
    (`TFLiteEnsemble.groups`) alone, once per module and size. The whole ensemble's first
    error line named an op of any member, often not the one refused (a float16 module beside
    one with a Lgamma op was said to fail at the Lgamma), and a model that converted but did
    not run ended the export in the interpreter's traceback. With one group, or when no
    group fails alone, `error`'s reason is the ensemble's. Members of one module refused
    for one reason are named together ("module lg (members t0, t1): …": each was said with
    the whole reason again). The way on (`tflite_way_on`, from the SavedModel beside
    `out_dir`, OUT-tflite) is said as commands."""
    groups = module.groups
    failing, verdicts = [], {}
    if len(groups) > 1:
        for group in groups:
            first = module.members[group[0]]
            # Members of one module at one size trace the same ops: converted once.
            key = ((first.info or {}).get("module"), int(first.size))
            if key[0] is None or key not in verdicts:
                alone = TFLiteEnsemble([module.members[i] for i in group], module.input_hw,
                                       [tuple(range(len(group)))])
                try:
                    _converted(alone, quantize, images)
                    verdicts[key] = None
                except RunError as e:
                    verdicts[key] = str(e)
            if verdicts[key] is not None:
                failing.append((group, verdicts[key]))
    elif groups:
        failing.append((groups[0], str(error)))

    def module_of(i):
        return str((module.members[i].info or {}).get("module", "?"))

    # Members of one module refused for one reason: one entry (twelve members of two modules
    # repeated the converter's whole reason twelve times).
    together = {}
    for group, reason in failing:
        key = (", ".join(dict.fromkeys(module_of(i) for i in group)), reason)
        together.setdefault(key, []).extend(group)

    def what(names, members):
        trials = [str((module.members[i].info or {}).get("trial", i)) for i in members]
        return f"module {names} (member{'s' * (len(trials) > 1)} {', '.join(trials)})"

    keep = ("No TFLite model was written; the SavedModel written before this step is kept: "
            "serve it")
    if not failing:
        return RunError(f"the ensemble's TFLite model cannot be made, though each of its "
                        f"members' can alone: {error}. {keep}")
    refused = "; ".join(f"{what(names, members)}: {reason.rstrip('.')}"
                        for (names, reason), members in together.items())
    modules = sorted({module_of(i) for group, _ in failing for i in group})
    return RunError(f"TFLite cannot serve {refused}. {keep}"
                    f"{tflite_way_on(modules, quantize, out_dir)}")


def tflite_way_on(modules: Sequence[str], quantize: str, out_dir=None) -> str:
    """The words after "the SavedModel … is kept: serve it" when TFLite cannot serve
    `modules` (names) of an export whose TFLite model was to go to `out_dir` (OUT-tflite;
    the SavedModel at OUT, its metadata naming the run and, for a student, its module), in
    the caller's words (`lockwords`), as commands. `ensemble` has no flag that leaves a
    module out (the refusal said "choose an ensemble without erfinv, lg", a new-user check):
    the way is to remove every candidate folder of those modules (`(cd RUN/candidates && rm
    -r …)`, not only the members': ensemble would pick their others), then `ensemble` with
    the settings of the run's ensemble (`ensemble_words`) and the same export with --format
    tflite; when every candidate is of those modules, no
    ensemble of the run has a TFLite model. A student export: distill a student of another
    module and export it. Without a readable metadata or run (a Python caller of
    write_tflite), the words name RUN. Reads files only."""
    from hubensemble import candidate
    from hubensemble.formats import export_command, exported_run, read_export_metadata
    from hubensemble.lockwords import command_words, on_command_line
    from hubensemble.rundir import Run
    from hubensemble.text import shell, shell_word

    saved = out_dir and absolute(os.fspath(out_dir)).removesuffix("-tflite")
    meta = read_export_metadata(saved, strict=False) if saved else {}
    run = exported_run(meta, saved) if saved else None  # RUN/export: that run's, if copied
    serve = (f" (`hubensemble predict --model {shell(saved)} IMAGE…`, or TF Serving)"
             if saved and on_command_line() else "")
    flags = "--format tflite" + (f" --quantize {quantize}" if quantize != "none" else "")
    keywords = "export_format='tflite'" + (f", quantize={quantize!r}"
                                           if quantize != "none" else "")
    if not run or not os.path.isdir(run):
        return (f"{serve}, or for a TFLite model leave {', '.join(modules)} out of the "
                "ensemble: remove their candidate folders in RUN/candidates, then "
                f"{command_words('ensemble', flags='--run RUN', keywords='run_dir=RUN')} and "
                f"{export_command({}, saved, flags=flags, keywords=keywords)}")
    student = meta.get("student") if isinstance(meta.get("student"), dict) else None
    if student:
        # (student=: --student by the one rule, whose own folder is RUN/export-student)
        again = Run(run).export_words(saved, student="MODULE", flags=flags, keywords=keywords)
        distill = command_words("distill", run, flags="--student MODULE",
                                keywords="student='MODULE'")
        return (f"{serve}, or for a TFLite model distill a student of another module than "
                f"{student.get('module')} ({distill}) and export it: {again}")
    root = Run(run).candidates
    found, _ = candidate.scan(root)
    refused = [c.trial for c in found if str(c.module) in set(modules)]
    if not [c for c in found if str(c.module) not in set(modules)]:
        return (f"{serve}. Every candidate of the run is of {', '.join(modules)}, so no "
                "ensemble of it has a TFLite model")
    remove = f"(cd {shell(root)} && rm -r {' '.join(shell_word(t) for t in refused)})"
    again = Run(run).export_words(saved, flags=flags, keywords=keywords)
    their = "its" if len(refused) == 1 else "their"
    return (f"{serve}, or for a TFLite model leave {', '.join(modules)} out of the "
            f"ensemble (ensemble has no flag for that): remove {their} "
            f"{counted(len(refused), 'candidate folder')} (`{remove}`), then "
            f"{ensemble_words(run)} and {again} "
            "(ensemble then calls the sweep unfinished: finishing it, by tune or fit, "
            "trains them again)")


def _converted(module: "TFLiteEnsemble", quantize: str, images) -> tuple[bytes, np.ndarray]:
    """(the TFLite flatbuffer of `module`, its probabilities float64 [N, C] on `images`,
    float32 [N, H, W, 3]). RunError whose message is why not, in words that follow a
    module's name: the converter refuses it (`converter_reason`), its model does not run on
    the images (the interpreter's error: a model the converter made of a Lgamma op ran at
    its stored batch of 1 only), or returns other than finite probabilities, one row per
    image (that model gave [0, C] at batch 1)."""
    try:
        content = convert(module, quantize)
    except RunError as e:
        raise RunError(f"the converter refuses it: {converter_reason(e.__cause__ or e)}") \
            from e.__cause__
    try:
        got = np.asarray(TFLiteRunner(content=content)(images), np.float64)
    except Exception as e:  # noqa: BLE001 - the interpreter raises RuntimeError, ValueError
        raise RunError(f"its TFLite model does not run on {len(images)} images: "
                       f"{failing_ops(module, content, e, len(images))}") from e
    if got.ndim != 2 or len(got) != len(images) or not np.all(np.isfinite(got)):
        raise RunError(f"its TFLite model returns probabilities of shape {got.shape} for "
                       f"{len(images)} images (finite: {bool(np.all(np.isfinite(got)))})")
    return content, got


def failing_ops(module: "TFLiteEnsemble", content: bytes, error: BaseException,
                batch: int) -> str:
    """Why the converted model `content` of `module` did not run on `batch` images, in words
    that follow "does not run on N images: ", ending with the interpreter's own first line
    (`error`). When that line names the failing node ("Node number 9 (SUB) failed to
    prepare"), the TensorFlow op(s) of the module's graph the converter made that node of
    are named, with their type: the node's tensors carry those ops' names (before each
    ";"), looked up in the traced graph and its functions. A module using tf.math.lgamma
    ended in "Given shapes, [32,32,32,6] and [0,32,32,6], are not broadcastable. Node number
    9 (SUB) failed to prepare", naming nothing of the module: TensorFlow 2.21's converter
    expands Lgamma into ops that run at the stored batch of 1 only. Without such a node
    (or a name found), plain words that the converted model fails at this batch."""
    import re

    raw = first_line(error)
    plain = (f"the converter made a model that fails at a batch of {batch} (the interpreter "
             f"said: {raw})")
    node = re.search(r"Node number (\d+) \((\w+)\) failed", str(error))
    if not node:
        return plain
    try:
        interpreter = interpreter_class()[0](model_content=content)
        details = {d["index"]: d for d in interpreter._get_ops_details()}
        if details[int(node.group(1))]["op_name"] != node.group(2):
            return plain  # another numbering than the error's: no guess
        tensors = details[int(node.group(1))]["outputs"]
        names = [interpreter._get_tensor_details(int(t), 0)["name"] for t in tensors]
        graph = module.__call__.get_concrete_function().graph.as_graph_def()
    except Exception:  # noqa: BLE001 - a private API of the interpreter: plain words then
        return plain
    kinds = {n.name: n.op for n in graph.node}
    for function in graph.library.function:
        kinds.update((n.name, n.op) for n in function.node_def)
    found = {}
    for name in names:
        for part in name.split(";"):
            # A TFLite op expanded from one TensorFlow op numbers its tensors: Lgamma40.
            for key in (part, re.sub(r"\d+$", "", part)):
                if key in kinds:
                    found.setdefault(key, kinds[key])
                    break
    if not found:
        return plain
    ops = ", ".join(f"{kind} ({name})" for name, kind in found.items())
    return (f"the converter turned the module's TensorFlow op{'s' * (len(found) > 1)} {ops} "
            f"into TFLite ops that fail at a batch of {batch} (node {node.group(1)}, "
            f"{node.group(2)}); the interpreter said: {raw}")


def interpreter_class() -> tuple[type, str]:
    """(the Interpreter class, a description): LiteRT's when ``ai-edge-litert`` is installed,
    else tf.lite.Interpreter (deprecated in TensorFlow 2.21, kept working here)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        import importlib.metadata

        version = importlib.metadata.version("ai-edge-litert")
        return Interpreter, f"LiteRT (ai-edge-litert {version})"
    except ImportError:
        return tf.lite.Interpreter, ("tf.lite.Interpreter (deprecated; pip install "
                                     "'hubensemble[tflite]' for LiteRT's)")


class TFLiteRunner:
    """A TFLite model ready to call: ``runner(images)`` with float32 [N, H, W, 3] -> float32
    [N, C] (the input is resized to N images when N changes). `path` or `content` gives the
    model (`path` is Python's name of the file: the interpreter is given it in TensorFlow's
    form, fileio.tf_path, or a non-ASCII folder's name under LC_ALL=C was refused with a
    TypeError); `num_threads` defaults to every core. `runtime` names the interpreter used.
    Raises HubensembleError when `path`'s name is not UTF-8."""

    def __init__(self, path: str | None = None, content: bytes | None = None,
                 num_threads: int | None = None):
        cls, self.runtime = interpreter_class()
        with warnings_block():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self.interpreter = cls(model_path=None if path is None else fileio.tf_path(path),
                                   model_content=content,
                                   num_threads=num_threads or os.cpu_count() or 1)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch = None

    @property
    def input_hw(self) -> tuple[int, int]:
        """The model's input (height, width)."""
        shape = self.input["shape"]
        return int(shape[1]), int(shape[2])

    def prepare(self, batch: int) -> None:
        """Sizes the input for `batch` images (nothing when it already is)."""
        if batch != self._batch:
            h, w = self.input_hw
            self.interpreter.resize_tensor_input(self.input["index"], [batch, h, w, 3])
            # The first allocation creates the XNNPACK delegate, whose C++ "INFO: Created
            # TensorFlow Lite XNNPACK delegate for CPU." was the one line `export -q` printed.
            with _tf.native_notices("TFLite"):
                self.interpreter.allocate_tensors()
            self._batch = batch

    def __call__(self, images) -> np.ndarray:
        """Probabilities float32 [N, C] of float32 images [N, H, W, 3] in [0, 1]."""
        x = np.ascontiguousarray(images, np.float32)
        self.prepare(int(x.shape[0]))
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output["index"]))

    def timed_call(self) -> Callable:
        """`call(x)` for `time_batches`: a batch is copied into the interpreter once, on its
        first call (an array other than the last's), then each call is the invoke and the
        output's read, as the SavedModel is timed on a tensor made once. The runner copied the
        batch on every call (64 check images at 224 px: 38.5 MB float32), counted in it."""
        import weakref

        last = [lambda: None]

        def call(x):
            if last[0]() is not x:
                self.prepare(int(x.shape[0]))
                self.interpreter.set_tensor(self.input["index"],
                                            np.ascontiguousarray(x, np.float32))
                last[0] = weakref.ref(x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output["index"])

        return call


@dataclasses.dataclass
class TFLiteResult:
    """What `write_tflite` wrote (also its metadata file and run.json's export record).

    `path`: the folder; `model`: the .tflite file; `size_bytes`: its size; `quantize`;
    `input_size`: [H, W] pixels; `max_abs_diff`: max |dp| against the SavedModel on `images`
    check images, <= `tolerance` (the guard); `mean_abs_diff`: the mean of each image's max
    |dp| (None in a record written before it was); `agreement`: the fraction of those images
    whose top class is the same (`tflitecheck.compare_probabilities` checks all three);
    `runtime`: the interpreter; `latency_ms`: {"tflite": {batch: ms}, "savedmodel": {batch:
    ms}}, medians measured one after the other in this process
    (machine-dependent); `seconds`: wall time.
    """

    path: str
    model: str
    size_bytes: int
    quantize: str
    input_size: list
    max_abs_diff: float
    tolerance: float
    agreement: float
    images: int
    runtime: str
    latency_ms: dict
    seconds: float
    mean_abs_diff: float | None = None

    def to_json(self) -> dict:
        """The record as a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_folder(cls, folder, created) -> "TFLiteResult | None":
        """The record of the TFLite model in `folder` (OUT-tflite) rebuilt from its
        hubensemble.json when the export whose metadata "created" is `created` wrote it (the
        TFLite metadata keeps its SavedModel's "created"), else None: no TFLite export there
        (`formats.is_tflite_export`), another export's, or a record it lacks. `seconds` is
        None (unknown). Reads files only."""
        folder = absolute(os.fspath(folder))
        if not created or not is_tflite_export(folder):
            return None
        try:
            meta = fileio.read_json(os.path.join(folder, METADATA_FILE))
            check = meta["check"]
            if meta.get("created") != created:
                return None
            return cls(path=folder, model=os.path.join(folder, TFLITE_MODEL),
                       size_bytes=int(meta["size_bytes"]), quantize=meta["quantize"],
                       input_size=list(meta["input_size"]),
                       max_abs_diff=check["max_abs_diff"], tolerance=check["tolerance"],
                       agreement=check["agreement"], images=check["images"],
                       runtime=check["runtime"], latency_ms=meta["latency_ms"], seconds=None,
                       mean_abs_diff=check.get("mean_abs_diff"))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def write_tflite(members: Sequence, class_names: Sequence[str], out_dir, *,
                 input_hw: tuple[int, int], check_images, reference: Callable,
                 quantize: str = "none", metadata: dict | None = None,
                 groups=None) -> TFLiteResult:
    """Converts the ensemble of `members` (export.ExportMember) to OUT_DIR/model.tflite with
    input float32 [N, H, W, 3] (`input_hw`), checks it and returns a TFLiteResult. `groups`:
    the members that run one frozen backbone (`TFLiteEnsemble`; the SavedModel's).

    The check: `reference` (the SavedModel's serving function: images -> probabilities) and
    the TFLite model on `check_images` (float32 [N, H, W, 3] in [0, 1]) must agree within
    CHECK_BOUNDS[quantize] (`tflitecheck.compare_probabilities`: mean and max |dp|, the top
    class of every image the SavedModel is sure of); the figures are recorded. Then both are
    timed at LATENCY_BATCHES. The model and OUT_DIR/hubensemble.json (class names, input,
    quantisation, check, size, latency, `metadata`) are written to a temp folder, the model
    file loaded back from there by a new interpreter and checked again (the same check, as
    the SavedModel's reload check), and swapped into place. An earlier TFLite
    model in OUT_DIR is removed first: it was checked against the SavedModel this export has
    just replaced (as a SavedModel-only export removes it). Raises RunError (nothing
    written) when the conversion, the check or the reload check fails, with a warning that
    the earlier model was removed when there was one.
    """
    out_dir = absolute(os.fspath(out_dir))
    # Before the conversion (seconds; minutes for a big ensemble), not only on its error: a
    # Ctrl-C, SIGTERM or kill during it left the earlier model beside the new SavedModel, its
    # hubensemble.json saying it was checked, as if it were this export's.
    removed = remove_tflite_export(out_dir)
    try:
        return _write_checked(members, class_names, out_dir, input_hw=input_hw,
                              check_images=check_images, reference=reference,
                              quantize=quantize, metadata=metadata, groups=groups)
    except Exception:
        if removed:
            log.warning("removed %s: its TFLite model was converted from the SavedModel this "
                        "export replaced, and no TFLite model of this one was written (the "
                        "error below)", out_dir)
        raise


def remove_tflite_export(out_dir) -> bool:
    """Removes the TFLite export in folder `out_dir` (nothing when it is none: a folder of
    the user's of that name is theirs); returns whether it did. One rename to a temp name
    first, then the deletion: a kill part-way leaves a dead writer's temp folder (the next
    write there removes it), not a half OUT-tflite/ that `formats.check_export_target`
    refuses as a folder of the user's. The TFLite step's and an export's removal of the
    model converted from the SavedModel it replaced (`export.stage`)."""
    if not is_tflite_export(out_dir):
        return False
    aside = fileio.temp_dir_for(out_dir)
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(out_dir, aside)
    shutil.rmtree(aside, ignore_errors=True)
    return True


def _write_checked(members, class_names, out_dir, *, input_hw, check_images, reference,
                   quantize, metadata, groups=None) -> TFLiteResult:
    """`write_tflite`'s work; on any error nothing of it is left."""
    start = time.time()
    out_dir = absolute(os.fspath(out_dir))
    images = np.asarray(check_images, np.float32)
    if images.ndim != 4 or tuple(images.shape[1:3]) != tuple(input_hw):
        raise RunError(f"check images must be [N, {input_hw[0]}, {input_hw[1]}, 3], got "
                       f"{images.shape}")
    module = TFLiteEnsemble(members, input_hw, groups)
    try:
        content, got = _converted(module, quantize, images)
    except RunError as e:
        raise refused_members(module, quantize, images, e, out_dir) from e.__cause__
    runner = TFLiteRunner(content=content)
    expected = np.asarray(reference(images), np.float64)
    figures, problems = compare_probabilities(got, expected, quantize)
    if problems:
        raise RunError(f"the TFLite model ({quantize}) differs from the SavedModel on "
                       f"{len(images)} validation images beyond its check "
                       f"({'; '.join(problems)}){_finer_way(quantize)}")
    diff, agreement = figures["max_abs_diff"], figures["agreement"]
    tolerance = TOLERANCES[quantize]
    # Each timed on its batch made once, not converted on every call.
    timing = {"tflite": time_batches(runner.timed_call(), images, LATENCY_BATCHES),
              "savedmodel": time_batches(lambda x: np.asarray(reference(x)),
                                         tf.constant(images), LATENCY_BATCHES)}
    result = TFLiteResult(
        path=out_dir, model=os.path.join(out_dir, TFLITE_MODEL), size_bytes=len(content),
        quantize=quantize, input_size=[int(input_hw[0]), int(input_hw[1])],
        max_abs_diff=diff, tolerance=tolerance, agreement=agreement, images=len(images),
        runtime=runner.runtime, latency_ms=timing, seconds=time.time() - start,
        mean_abs_diff=figures["mean_abs_diff"])
    meta = {**(metadata or {}), "format": EXPORT_FORMAT + "-tflite", "format_version": 1,
            "class_names": [str(c) for c in class_names], "num_classes": len(class_names),
            "input": f"images: float32 [N, {input_hw[0]}, {input_hw[1]}, 3] in [0, 1] (resize "
                     "other sizes to this one first: see docs/export.md); the model is stored "
                     "for N = 1: for N images call resize_tensor_input(index, "
                     f"[N, {input_hw[0]}, {input_hw[1]}, 3]) then allocate_tensors()",
            "input_size": [int(input_hw[0]), int(input_hw[1])],
            "output": "probabilities: float32 [N, C]",
            "quantize": quantize, "size_bytes": len(content),
            "check": {"max_abs_diff": diff, "tolerance": tolerance, "agreement": agreement,
                      "mean_abs_diff": figures["mean_abs_diff"],
                      "bounds": dataclasses.asdict(CHECK_BOUNDS[quantize]),
                      "confident": figures["confident"],
                      "images": len(images), "against": "the SavedModel's serving_default",
                      "runtime": runner.runtime},
            "shared_backbones": shared_record(module.members, module.groups),
            "latency_ms": timing, "versions": versions()}
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    fileio.remove_stale_temp_dirs(out_dir)
    tmp = fileio.temp_dir_for(out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.makedirs(tmp)
        fileio.atomic_write_bytes(os.path.join(tmp, TFLITE_MODEL), content)
        _check_written(os.path.join(tmp, TFLITE_MODEL), out_dir, images, expected, quantize)
        fileio.atomic_write_json(os.path.join(tmp, METADATA_FILE), meta)
        fileio.replace_dir(tmp, out_dir, what="the TFLite export",
                           replaceable=lambda old: replaceable_export(old, tflite=True))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _finer_way(quantize: str) -> str:
    """The words after a model refused for differing beyond CHECK_BOUNDS[quantize]: the
    SavedModel is kept, and the quantisations that round less (QUANTIZE's order), in the
    caller's words. It said "nothing was written" beside the SavedModel written, and "Try
    --quantize none or float16" to a float16 export (a MobileNet V1 student: |dp| 0.0151)."""
    from hubensemble.lockwords import option_word

    finer = QUANTIZE[:QUANTIZE.index(quantize)]
    kept = "; no TFLite model was written; the SavedModel written before this step is kept"
    if not finer:  # float32 weights: no rounding to take back
        return f"{kept}. Unquantised, it is the converter's fault: report it with RUN/log.txt"
    words = " or ".join(option_word(f"--quantize {q}", f"quantize={q!r}") for q in finer)
    return f"{kept}: serve it, or export again with {words} (less rounding than {quantize})"


def _check_written(path, out_dir, images, expected, quantize) -> None:
    """The reload check, as the SavedModel's: the model file as written, loaded by a new
    interpreter, must pass the same check against the SavedModel's probabilities `expected`
    on the check images (`compare_probabilities`); else RunError (the caller deletes the
    temp folder, so nothing is written)."""
    try:
        got = np.asarray(TFLiteRunner(path=path)(images), np.float64)
    except Exception as e:  # a file that does not load is the failure reported
        raise RunError(f"the TFLite model written for {out_dir} does not load back "
                       f"({type(e).__name__}: {e}); nothing was written. Check the disk "
                       "and export again") from e
    _, problems = compare_probabilities(got, expected, quantize)
    if problems:
        raise RunError(f"the TFLite model written for {out_dir}, loaded back, differs from "
                       f"the SavedModel beyond its check ({'; '.join(problems)}); nothing was "
                       "written. Check the disk and export again")


def format_tflite(result: TFLiteResult | dict) -> str:
    """Two lines for the terminal: where the TFLite model went (size, quantisation, input)
    and its check and latency against the SavedModel."""
    r = result.to_json() if isinstance(result, TFLiteResult) else dict(result)
    lat = r["latency_ms"]
    return (f"TFLite ({r['quantize']}): {r['model']} ({figure(r['size_bytes'] / 1e6)} MB, input "
            f"{r['input_size'][0]}x{r['input_size'][1]}); |dp| vs the SavedModel "
            + (f"mean {r['mean_abs_diff']:.2e} (<= {CHECK_BOUNDS[r['quantize']].mean:g}), "
               if r.get("mean_abs_diff") is not None and r.get("quantize") in CHECK_BOUNDS
               else "")
            + f"max {r['max_abs_diff']:.2e} (<= {r['tolerance']:g}), same top class on "
            f"{r['agreement']:.1%} of {r['images']} validation images\n"
            f"latency at batch 1: TFLite {figure(lat['tflite']['1'])} ms, SavedModel "
            f"{figure(lat['savedmodel']['1'])} ms; at batch 64: {figure(lat['tflite']['64'], 1)} "
            f"ms vs {figure(lat['savedmodel']['64'], 1)} ms ({r['runtime']}; this machine)")

"""Every option of the stages, declared once: type, default, choices, range, help, CLI flags and
the stages whose results depend on it (TensorFlow-free).

One table (`OPTIONS`) of typed `Option` records (`optionrecord`), as scikit-learn declares a
parameter's constraints once (`_parameter_constraints`). Everything else is derived from it:

* the command line: `arguments.add_arguments(parser, command, groups)` adds an argparse argument per
  option, with its flag, metavar, choices, help and "(default: …)" from the table, in argument
  groups titled per stage (`GROUPS`, with the paper sections);
* `pipeline.FitOptions` (its fields, defaults and `STAGE_FIELDS` invalidation map) from the
  options whose `record` is "fit"; `rundir.DataArgs` defaults from those whose record is
  "data";
* the keyword defaults of the stage functions: `defaults_for("rank")` is what
  `run_rank(...)` takes when a keyword is omitted, `kwargs_for("rank", source)` picks the
  values of those keywords from an argparse namespace or a FitOptions;
* validation: `check(name, value)` (and argparse, through the same rules) refuses a value
  outside the option's type, choices or range with an error naming the option, its flag and
  the allowed values.

Changing an option's default here changes it for the command line, `fit()` and every stage
function at once.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable, Mapping, Sized

from hubensemble.lockwords import option_word
from hubensemble.optionerror import ChoiceError, OptionError  # noqa: F401 - re-exported
from hubensemble.optionrecord import Option
from hubensemble.text import shell_word, value_shown
from hubensemble.choicemeant import MEANT, meant  # noqa: F401 - re-exported
from hubensemble.winpaths import refusal_advice
from hubensemble.hyperrule import PROFILES  # noqa: F401 - re-exported
from hubensemble.sweeps import SWEEPS, sweep_parts  # noqa: F401 - re-exported
# The option types of command-line text: options.parse_shard etc. stay importable from here.
from hubensemble.optiontext import (parse_int_list, parse_shard,  # noqa: F401
                                    parse_split_override)

#: The stages of a fit, in order; an option in `Option.invalidates` of one of them makes a
#: changed value redo that stage and every later one (pipeline's stage keys).
STAGES = ("rank", "tune", "ensemble", "export", "evaluate", "report")

#: Functions that take options as keyword arguments (the names `used_by` may hold):
#: data = data.load_task and rundir.DataArgs; rank = rank.run_rank; merge =
#: rank.merge_rankings; tune = tune.run_tune; ensemble = ensemble.run_ensemble; export =
#: export.export_ensemble; evaluate = evaluate.evaluate_model; predict = export.predict;
#: distill = distill.run_distill.
FUNCTIONS = ("data", "rank", "merge", "tune", "ensemble", "export", "evaluate", "predict",
             "distill")

#: Sub-commands whose parsers take options ("fit" also stands for `demo` and tools/vtab.py).
COMMANDS = ("rank", "merge", "tune", "ensemble", "export", "evaluate", "predict", "fit",
            "distill")

#: Argument-group titles in `--help`, per stage, with the paper sections behind its options.
GROUPS = {
    "data": "data",
    "rank": "rank (paper 2.3, C.4-C.8)",
    "selection": "selection (paper 2.3, 2.3.1, C.6)",
    "tune": "tune (paper 2.2, 2.3, 2.3.1, A.1-A.3)",
    "distributed": "distributed sweeps (Keras Tuner chief/worker)",
    "ensemble": "ensemble (paper 2.3, C.9)",
    "budget": "inference budget (paper Figure 2: accuracy vs inference GFLOPs; "
              "costs from `hubensemble cost`)",
    "export": "export",
    "distill": "distill (Hinton et al., 2015)",
    "evaluate": "evaluate (robustness, ImageNet-C style corruptions)",
    "predict": "predict",
}


# --------------------------------------------------------------------------- text values

#: The metavars of the arguments that name files or folders: the table's DIR options and
#: cli.py's own (--out RUN, --run RUN, --catalogue FILE, --model DIR, IMAGE, ...). Their
#: values are `~`-expanded (`arguments.Parser`); an empty one is refused (`EMPTY_PATH`), and
#: on Linux and macOS one written as Windows writes paths (`winpaths.windows_refusal`: C:\…,
#: \\server\share, a backslash that names nothing here), with what to write instead.
PATH_METAVARS = frozenset({"RUN", "RUN_SHARD", "DIR", "FILE", "IMAGE"})
#: Why "" is no path: it names no file or folder, and was taken without a word as another
#: (Path("") is the working folder; tfds, the caches read it as their default folder).
EMPTY_PATH = "must be a path, not empty"
#: A data spec's metavar (--data SPEC; no path): "" is refused (`EMPTY_SPEC`), where `rank
#: --data ""` said --data was "required" and `evaluate --data ""` scored the run's data.
SPEC_METAVAR = "SPEC"
EMPTY_SPEC = "must not be empty: a data spec such as folder:DIR, npz:FILE or tfds:NAME"
EMPTY_VALUE = "must not be empty"  # other text: `tune --tuner-id ""` ran a sweep of its own


def _opt(name, type, default, help, group, commands, **kwargs) -> Option:
    return Option(name=name, type=type, default=default, help=help, group=group,
                  commands=tuple(commands), **kwargs)


_FIT = ("fit",)
SEED_MAX = 2**32 - 1  # numpy's (sklearn's splits, keras.utils.set_random_seed)
DEMO_TOP_K = 4  # modules the demo fine-tunes (x 4 trials each): minutes on a laptop CPU
_NONE_PER_DATA = "per data set"

# The table. The order is the order of `--help` within each group and of FitOptions' fields.
OPTIONS: tuple[Option, ...] = (
    # --- data (DataArgs / data.load_task; changed data is caught by the task fingerprint,
    # which every stage key starts from, so these invalidate everything from rank on)
    _opt("data_dir", str, None, "tensorflow_datasets data folder (tfds: specs)", "data",
         ("rank", "fit", "evaluate"), used_by=("data",), invalidates=("rank",), record="data",
         metavar="DIR", default_text="~/tensorflow_datasets or $TFDS_DATA_DIR"),
    _opt("data_seed", int, 0, "seed of the stratified train/val/test split", "data",
         ("rank", "fit"), used_by=("data",), invalidates=("rank",), record="data",
         keyword="seed", minimum=0, maximum=SEED_MAX, metavar="S"),
    _opt("splits", parse_split_override, None,
         "tfds split override, e.g. --split test=test[:2000] or --split val=none "
         "(repeatable)", "data", ("rank", "fit"), used_by=("data",), invalidates=("rank",),
         record="data", flags=("--split",), action="append", metavar="NAME=SPEC",
         default_text="VTAB-1k: train[:800], train[800:1000], test"),
    _opt("val_fraction", float, 0.2,
         "fraction of each class split off as validation when the data has no val split",
         "data", ("rank", "fit"), used_by=("data",), invalidates=("rank",), record="data",
         minimum=0.0, maximum=1.0, exclusive_maximum=True, metavar="F"),
    _opt("test_fraction", float, 0.2,
         "fraction of each class split off as test when a folder: data set has no test/ "
         "folder (an npz's test split is its x_test; tfds and sklearn splits are fixed)",
         "data", ("rank", "fit"), used_by=("data",), invalidates=("rank",), record="data",
         minimum=0.0, maximum=1.0, exclusive_maximum=True, metavar="F"),
    _opt("label_key", str, "label", "the label feature (tfds: specs)", "data",
         ("rank", "fit", "evaluate"), used_by=("data",), invalidates=("rank",), record="data",
         metavar="KEY"),
    _opt("image_key", str, "image", "the image feature (tfds: specs)", "data",
         ("rank", "fit", "evaluate"), used_by=("data",), invalidates=("rank",), record="data",
         metavar="KEY"),
    _opt("synthetic", bool, None, "artificial images: no colour augmentation (paper A.3)",
         "data", ("rank", "fit"), used_by=("data",), invalidates=("rank",), record="data",
         action="boolean", default_text=_NONE_PER_DATA),
    _opt("flip", bool, None, "left/right flips keep the label", "data", ("rank", "fit"),
         used_by=("data",), invalidates=("rank",), record="data", action="boolean",
         default_text=_NONE_PER_DATA),
    _opt("min_per_class", int, 2, "fewest training examples a class may have (leave-one-out "
         "kNN needs 2)", "data", ("rank", "fit"), used_by=("data",), invalidates=("rank",),
         record="data", minimum=0, metavar="N"),
    _opt("dedupe", bool, False,
         "keep one copy of exactly duplicated images (equal decoded pixels; the first in "
         "train, val, test and file order); without it copies stay, never in two carved "
         "splits, and are reported", "data", ("rank", "fit"), used_by=("data",),
         invalidates=("rank",), record="data", action="store_true"),
    # --- rank
    _opt("metric", str, "knn",
         "proxy of fine-tuned accuracy: leave-one-out kNN accuracy (Euclidean or cosine "
         "distance), LogME or H-score", "rank", ("rank", "fit"), used_by=("rank",),
         invalidates=("rank",), record="fit", choices=("knn", "knn-cosine", "logme", "hscore")),
    _opt("k", int, 1, "neighbours of the kNN proxy", "rank", ("rank", "fit"),
         used_by=("rank",), invalidates=("rank",), record="fit", minimum=1, metavar="K"),
    _opt("batch_size", int, 64, "embedding batch size (images per forward pass)", "rank",
         ("rank", "fit"), used_by=("rank",), record="fit", minimum=1, metavar="N"),
    _opt("cache_dir", str, None, "embedding cache folder (tune reads it for probes and LP-FT "
         "heads, export for retrained probes)", "rank", ("rank", "tune", "export", "fit"),
         used_by=("rank", "tune", "export"), metavar="DIR",
         default_text="$HUBENSEMBLE_CACHE_DIR or ~/.cache/hubensemble/embeddings"),
    _opt("use_cache", bool, True, "neither read nor write the embedding cache", "rank",
         ("rank", "fit"), used_by=("rank",), flags=("--no-cache",), action="store_false"),
    _opt("shard", parse_shard, None,
         "rank only modules whose catalogue index % N == I; auto: I and N from the cluster "
         "job ($JOB_COMPLETION_INDEX with --shards N, or $SLURM_ARRAY_TASK_ID and "
         "$SLURM_ARRAY_TASK_COUNT)", "rank", ("rank",), used_by=("rank",), metavar="I/N|auto",
         default_text="none: every module of the catalogue"),
    _opt("shards", int, None,
         "with --shard auto: the number of shards (a Kubernetes Indexed Job's completions; "
         "for Slurm, checked against $SLURM_ARRAY_TASK_COUNT)", "rank", ("rank",), minimum=1,
         metavar="N", default_text="none (Slurm: $SLURM_ARRAY_TASK_COUNT)"),
    _opt("top_k", int, 15, "keep the K best modules (unless --threshold or --greedy)",
         "selection", ("rank", "merge", "fit"), used_by=("rank", "merge"),
         invalidates=("rank",), record="fit", minimum=1, metavar="K", exclusive="selection",
         # merge_rankings / `rank merge` without a rule keep the shards' own (top_k None).
         variants={"merge": {"default": None,
                             "default_text": "the rule the shards were ranked with"}}),
    _opt("threshold", float, None,
         "keep modules within TAU (relative) of the best score, e.g. 0.02 (paper 2.3.1); the "
         "combined sweep then keeps the same",
         "selection", ("rank", "merge", "fit"), used_by=("rank", "merge"),
         invalidates=("rank",), record="fit", minimum=0.0, metavar="TAU",
         exclusive="selection", default_text="none: --top-k decides"),
    _opt("max_k", int, 15, "most modules kept by --threshold or --greedy", "selection",
         ("rank", "merge", "fit"), used_by=("rank", "merge"), invalidates=("rank",),
         record="fit", minimum=1, metavar="K", needs=("threshold", "greedy")),
    _opt("greedy", bool, False, "greedy kNN-ensemble selection (paper C.6) up to --max-k",
         "selection", ("rank", "merge", "fit"), used_by=("rank", "merge"),
         invalidates=("rank",), record="fit", action="store_true", exclusive="selection"),
    # --- tune
    _opt("sweep", str, "default",
         "default: lr x steps grid per selected module; seeds/hyper/aug: the "
         "downstream-diversity baselines on the best generalist; combined: modules within "
         "rank's --threshold (else 0.02) x random configurations (2.3.1); probe: head-only "
         "candidates on the frozen embeddings of each selected module at its own resolution, "
         "4 L2 strengths; A+B runs two sweeps into one candidate pool (e.g. default+probe)",
         "tune", ("tune", "fit"), used_by=("tune",), invalidates=("tune",), record="fit",
         metavar="SWEEP", validator=sweep_parts,
         # A plain `tune --run RUN` resumes the run's own sweep (sweepwords.resumed_call), as
         # run_tune(sweep=None) does: "default" ran 8 other trials on a probe run.
         variants={"tune": {"default": None, "default_text": "the run's: that of its last "
                                                             "tune (run.json), else default"}}),
    _opt("batchnorm", str, "auto",
         "how a module runs while it fine-tunes: train (batch statistics, moving averages "
         "updated), inference (BatchNorm frozen in inference mode while the weights train, as "
         "Keras' transfer-learning guide does; under --profile cpu such trials also get an "
         "LP-FT head, lr x0.001, whole images and gradients clipped to global norm 1), auto "
         "(inference for modules with BatchNorm moving statistics, else train)", "tune",
         ("tune", "fit"), used_by=("tune",), invalidates=("tune",), record="fit",
         choices=("auto", "train", "inference")),
    _opt("head_init", str, None,
         "how the new head starts: zero (paper A.1) or probe (LP-FT: a logistic-regression "
         "probe on the training embeddings, its L2 strength picked on validation, then "
         "everything fine-tunes)", "tune",
         ("tune", "fit"), used_by=("tune",), invalidates=("tune",), record="fit",
         choices=("zero", "probe"),
         default_text="the profile's: zero; cpu: probe for BatchNorm in inference mode"),
    _opt("budget", int, None, "number of trials (candidates), never exceeded; the default "
         "and probe sweeps run 4 trials per module and aug 4 per augmentation family, so "
         "they need 4 or more (4×K for K modules)", "tune",
         ("tune", "fit"), used_by=("tune",), invalidates=("tune",), record="fit", minimum=1,
         metavar="L",
         default_text="4 per module for default and probe; 60/12/4 for paper/cpu/quick "
                      "otherwise"),
    _opt("modules", str, None, "fine-tune these ranked modules instead of the selected ones",
         "tune", ("tune", "fit"), used_by=("tune",), invalidates=("tune",), record="fit",
         nargs="+", metavar="NAME", default_text="the modules the ranking selected"),
    _opt("strategy", str, "auto", "tf.distribute strategy (auto: TPU > GPUs > CPU)", "tune",
         ("tune", "export", "fit"), used_by=("tune",), record="fit",
         choices=("auto", "cpu", "mirrored", "multiworker", "tpu"),
         variants={"export": {"default": "cpu",
                              "help": "tf.distribute strategy for retraining members"}}),
    _opt("tpu", str, None, "TPU name or grpc:// address", "tune", ("tune", "export", "fit"),
         used_by=("tune",), record="fit", metavar="ADDRESS", default_text="$TPU_NAME"),
    _opt("profile", str, "cpu",
         "paper: the paper's steps, batch 512 and BiT-HyperRule resolution; cpu: steps, "
         "batch and resolution scaled to finish on a CPU; quick: for tests. rank embeds at "
         "the profile's resolution: rank with the profile you will tune with", "tune",
         ("rank", "tune", "fit"), used_by=("rank", "tune"), invalidates=("rank", "tune"),
         record="fit", choices=tuple(PROFILES),
         # A sweep added to a run continues it: tune's default is the run's profile, not
         # cpu (a run fitted with paper was tuned with cpu without a word); so is rank's.
         variants={c: {"default": d, "default_text": "the run's: that of its last tune, else "
                                                     "of its rank, else cpu"}
                   for c, d in (("tune", None), ("rank", "cpu"))}),
    # The training batch changes results (unlike rank's --batch-size, an inference batch),
    # so it keys tune and after; it derives the profile: `hyperrule.Profile.with_train_batch`.
    _opt("train_batch_size", int, None,
         "images per training step of tune's fine-tuning (distill: of the student): lower it "
         "when memory runs short; the learning rate scales with it (the profile's lr_scale x "
         "N / its batch: the linear rule the profiles scale the paper's 512 by)", "tune",
         ("tune", "fit", "distill", "export"), used_by=("tune", "distill", "export"),
         invalidates=("tune",),
         record="fit", minimum=1, metavar="N", keyed_at_default=False,
         default_text="the profile's: cpu 32, quick 16, paper 512",
         variants={"tune": {"default_text": "the run's recorded batch, else the profile's"},
                   "distill": {"help": "images per training step of the student; the "
                                       "learning rate scales with it (x N / its candidate's "
                                       "batch)",
                               "default_text": "its hyperparameters' candidate's"},
                   "export": {"help": "with --retrain-full: images per training step of each "
                                      "member's retraining, for a machine with less memory "
                                      "than the tune's; the learning rate scales with it (x "
                                      "N / the member's recorded batch)",
                              "default_text": "each member's recorded batch"}}),
    _opt("seed", int, 0, "seed of the sweep, the ensemble's bootstrap and the corruptions",
         "tune", ("tune", "ensemble", "evaluate", "fit"), record="fit", metavar="S", minimum=0,
         used_by=("tune", "ensemble", "evaluate"), invalidates=("tune", "ensemble", "evaluate"),
         maximum=SEED_MAX,
         variants={"tune": {"help": "seed of the sweep (each trial's seed derives from it)"},
                   "ensemble": {"help": "seed of the ensemble's bootstrap resampling"},
                   "evaluate": {"help": "seed of the corruptions' noise"}}),
    _opt("keep_weights", str, "all",
         "none: keep only predictions; export retrains the chosen members", "tune",
         ("tune", "fit"), used_by=("tune",), invalidates=("tune",), record="fit",
         choices=("all", "none")),
    _opt("max_failures", int, 1000, "stop the sweep after this many failed trials", "tune",
         ("tune", "fit"), used_by=("tune",), record="fit", minimum=0, metavar="N"),
    _opt("tuner_id", str, None, "chief, or tuner0, tuner1, ... for workers", "distributed",
         ("tune",), used_by=("tune",), metavar="ID", default_text="$KERASTUNER_TUNER_ID"),
    _opt("oracle", str, None, "the chief's address", "distributed", ("tune",),
         used_by=("tune",), keyword="oracle_address", metavar="HOST:PORT",
         default_text="$KERASTUNER_ORACLE_IP/PORT"),
    # --- ensemble
    _opt("objective", str, "ce", "what greedy selection minimises on validation: "
         "cross-entropy, or the error rate", "ensemble", ("ensemble", "fit"),
         used_by=("ensemble",), invalidates=("ensemble",), record="fit",
         choices=("ce", "accuracy")),
    _opt("ensemble_budget", int, 15, "largest ensemble (greedy picks; paper: 15)", "ensemble",
         ("ensemble", "fit"), used_by=("ensemble",), invalidates=("ensemble",), record="fit",
         keyword="budget", minimum=1, metavar="N",
         variants={"ensemble": {"flags": ("--budget",)}}),
    _opt("size_rule", str, "one-se",
         "how the ensemble size is chosen on the greedy path: one-se = the largest size "
         "within one standard error of the best validation loss, paper = the best "
         "validation loss (the paper's argmin), budget = every pick", "ensemble",
         ("ensemble", "fit"), used_by=("ensemble",), invalidates=("ensemble",), record="fit",
         choices=("one-se", "paper", "budget")),
    _opt("with_replacement", bool, False,
         "allow re-picking a member; weights become pick counts", "ensemble",
         ("ensemble", "fit"), used_by=("ensemble",), invalidates=("ensemble",), record="fit",
         action="store_true"),
    _opt("bootstrap", float, None,
         "decide each step on a bootstrap resample of M x the validation set", "ensemble",
         ("ensemble", "fit"), used_by=("ensemble",), invalidates=("ensemble",), record="fit",
         minimum=0.0, exclusive_minimum=True, metavar="M",
         default_text="none: the validation set itself"),
    # --- the inference budget of greedy selection (hubensemble.cost.Limits). A candidate that
    # would take the ensemble over a limit is not eligible; the size rule then picks a prefix
    # of the (shorter) path, so the ensemble stays within the budget.
    _opt("max_gflops", float, None,
         "largest ensemble cost in GFLOPs per image (the members' sum, at their serving "
         "resolution)", "budget",
         ("ensemble", "fit", "distill"), used_by=("ensemble", "distill"),
         invalidates=("ensemble",), record="fit", minimum=0.0, exclusive_minimum=True,
         metavar="G", default_text="no limit",
         variants={"distill": {"help": "largest student cost in GFLOPs per image, at its "
                                       "serving resolution",
                               "default_text": "no limit: the cheapest member's module"}}),
    _opt("max_latency_ms", float, None,
         "largest ensemble latency in ms at batch 1 (the sum of the members' medians "
         "measured by `hubensemble cost` on this machine)", "budget", ("ensemble", "fit"),
         used_by=("ensemble",), invalidates=("ensemble",), record="fit", minimum=0.0,
         exclusive_minimum=True, metavar="T", default_text="no limit"),
    _opt("max_members", int, None, "most distinct members", "budget", ("ensemble", "fit"),
         used_by=("ensemble",), invalidates=("ensemble",), record="fit", minimum=1, metavar="K",
         default_text="no limit"),
    # --- export
    _opt("retrain_full", bool, False, "retrain each member on train + validation before "
         "exporting", "export", ("export", "fit"), used_by=("export",), invalidates=("export",),
         record="fit", action="store_true"),
    _opt("skip_missing", bool, False, "leave out members whose weights file is missing",
         "export", ("export", "fit"), used_by=("export",), invalidates=("export",),
         record="fit", action="store_true"),
    _opt("export_format", str, "savedmodel",
         "savedmodel: one SavedModel; tflite: also the ensemble as one TFLite model "
         "(OUT-tflite/, RUN/export-tflite/ by default), checked against the SavedModel on "
         "validation images", "export", ("export",), used_by=("export",), flags=("--format",),
         choices=("savedmodel", "tflite")),
    _opt("quantize", str, "none",
         "TFLite weights: none (float32), float16, or dynamic (int8 weights, dynamic-range "
         "activations)", "export", ("export",), used_by=("export",),
         choices=("none", "float16", "dynamic")),
    _opt("tflite_size", int, None,
         "the TFLite model's input size in pixels (square, at most 1024); its resize to each "
         "member's size is built in (for images of other sizes, the largest member's size "
         "keeps their detail)", "export", ("export",), used_by=("export",), minimum=1,
         maximum=1024, metavar="S", default_text="the task's image size"),
    _opt("export_student", object, None,
         "export the distilled student of RUN/distill/ (of MODULE; alone: the one distill "
         "last wrote) instead of the ensemble: one member, the same signatures and checks, to "
         "RUN/export-student/ unless --out", "export", ("export",), used_by=("export",),
         keyword="student", flags=("--student",), nargs="?", const=True, metavar="MODULE"),
    _opt("add_warmup", str, None, "add TF Serving's warmup file to the export in folder MODEL "
         "that lacks it (written before it was), without exporting again; no --run", "export",
         ("export",), metavar="MODEL", default_text="none: export --run"),  # add_warmup
    # --- distill
    _opt("student", str, None,
         "the student's module (a module of the run's catalogue)", "distill", ("distill",),
         used_by=("distill",), metavar="MODULE",
         default_text="the cheapest member's module, or with --max-gflops the best module "
                      "within it"),
    _opt("distill_steps", float, 2.0,
         "the student's training steps as a multiple of its module's best candidate's",
         "distill", ("distill",), used_by=("distill",), keyword="steps_scale",
         minimum=0.0, exclusive_minimum=True, metavar="X"),
    _opt("distill_mixup", float, 0.2,
         "MixUp alpha of the student's training images (teacher and student see the same "
         "mixed images: function matching, Beyer et al. 2022); 0 = none", "distill",
         ("distill",), used_by=("distill",), keyword="mixup", minimum=0.0, metavar="A"),
    _opt("distill_init", str, "best",
         "where the student starts: member (the fine-tuned weights of its module's member, "
         "so it starts at that member's accuracy), module (the pre-trained module, zero "
         "head), or best (both; keeps the lower validation cross-entropy)", "distill",
         ("distill",), used_by=("distill",), keyword="init",
         choices=("best", "member", "module")),
    _opt("distill_lr", float, 1.0,
         "the student's learning rate as a multiple of its module's best candidate's",
         "distill", ("distill",), used_by=("distill",), keyword="lr_scale",
         minimum=0.0, exclusive_minimum=True, metavar="X"),
    # --- evaluate. fit evaluates the default corruptions unless --no-corruptions; the
    # `evaluate` command only with --corruptions (it multiplies the work).
    _opt("corruptions", object, True,
         "skip the evaluate stage: the export scored on the clean and corrupted test images "
         "(robustness.json; the summary's test figures come from the candidates and stay)",
         "evaluate",
         ("evaluate", "fit"), used_by=("evaluate",), invalidates=("evaluate",), record="fit",
         flags=("--no-corruptions",), action="store_false",
         variants={"evaluate": {
             "flags": ("--corruptions",), "action": None, "nargs": "?", "const": True,
             "default": False, "metavar": "NAMES",
             "help": "also evaluate on corrupted copies: the five default kinds, 'all', or "
                     "a,b,c"}}),
    _opt("eval_split", str, "test", "the split to evaluate: train, val or test; for tfds: "
         "data NAME=TFDS_SPLIT reads it from that tfds split, e.g. --split test=test[:50%]",
         "evaluate", ("evaluate",), used_by=("evaluate",), keyword="split", flags=("--split",),
         metavar="SPLIT"),
    _opt("severities", parse_int_list, (1, 2, 3),
         "corruption severities, comma-separated (1, 2, 3 = ImageNet-C's 1, 3, 5)",
         "evaluate", ("evaluate",), used_by=("evaluate",), metavar="S,S,...",
         needs=("corruptions",)),
    _opt("eval_batch_size", int, 64, "images per prediction batch", "evaluate",
         ("evaluate",), used_by=("evaluate",), keyword="batch_size", flags=("--batch-size",),
         minimum=1, metavar="N"),
    # --- predict
    _opt("top", int, 5, "most probable classes shown per image", "predict", ("predict",),
         used_by=("predict",), minimum=1, metavar="N"),
    _opt("json", bool, False, "one JSON document on stdout", "predict", ("predict",),
         action="store_true"),
    _opt("skip_unreadable", bool, False,
         "report unreadable files and go on (exit 1) instead of failing", "predict",
         ("predict",), used_by=("predict",), action="store_true"),
    # --- the run folder
    _opt("restart", bool, False, "discard the results in the run folder (what the stages "
         "wrote; other files stay) and start again",
         None, ("fit", "tune"), used_by=("tune",), action="store_true", variants={"tune": {
             "help": "start the sweep over: discard what it wrote (its candidates, Keras "
                     "Tuner's state, its record; other sweeps' stay)"}}),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}

#: Options that apply only at some values of another: {option: (other option, its values)}.
#: A command line that gives the option with the other at another value (given or its
#: default) is refused (`arguments.Parser`), as an option given without what it `needs`:
#: --k is the kNN proxy's neighbours, which LogME and H-score do not have (`rank --metric
#: logme --k 3` ignored it, while --k still changed rank's key).
NEEDS_VALUE: dict[str, tuple[str, tuple[str, ...]]] = {"k": ("metric", ("knn", "knn-cosine"))}


def misapplied(values: Mapping[str, Any], given: Iterable[str]) -> list[tuple[str, str]]:
    """[(option, other)] of NEEDS_VALUE: each option named in `given` whose other option's
    value in `values` ({option name: value}; absent: its default) is not one it applies
    with. The command line gives the options typed (`arguments.Parser`); Python the options
    at other than their default (`check_keywords`, `check_record`: a keyword's default is
    what leaving it out gives, and FitOptions holds every field)."""
    return [(n, NEEDS_VALUE[n][0]) for n in sorted(set(given) & set(NEEDS_VALUE)) if values.get(
        NEEDS_VALUE[n][0], default(NEEDS_VALUE[n][0])) not in NEEDS_VALUE[n][1]]


def _check_table():
    # The table is code: a typo in it must fail at import, not in a user's run.
    if len(BY_NAME) != len(OPTIONS):
        raise AssertionError("options: duplicate option names")
    for o in OPTIONS:
        bad = ([c for c in o.commands if c not in COMMANDS]
               + [f for f in o.used_by if f not in FUNCTIONS]
               + [s for s in o.invalidates if s not in STAGES]
               + [c for c in o.variants if c not in o.commands])
        if bad or (o.group is not None and o.group not in GROUPS):
            raise AssertionError(f"options: {o.name}: unknown {bad or o.group}")
        for n in o.needs:  # each command that takes the option takes what it needs
            if n not in BY_NAME or set(o.commands) - set(BY_NAME[n].commands):
                raise AssertionError(f"options: {o.name}: needs {n}, which is not an option "
                                     "of all its commands")
        if o.name in NEEDS_VALUE:
            other, values = NEEDS_VALUE[o.name]
            if (other not in BY_NAME or set(o.commands) - set(BY_NAME[other].commands)
                    or set(values) - set(BY_NAME[other].choices or values)):
                raise AssertionError(f"options: {o.name}: applies with {other} {values}, "
                                     "not an option of all its commands with those choices")
        if o.record == "fit" and "fit" not in o.commands:
            raise AssertionError(f"options: {o.name}: a FitOptions field must be a fit option")
        if o.default is not None and o.type is not object and o.action != "append":
            check(o.name, o.default)
        for c in o.commands:  # --help says what leaving a value out gives (a None: nothing)
            s = o.settings(c)
            if (s["default"] is None and s["default_text"] is None and s["nargs"] != "?"
                    and s["action"] not in ("store_true", "store_false", "boolean")):
                raise AssertionError(f"options: {o.name}: a None default needs default_text "
                                     f"for {c}'s --help")


# --------------------------------------------------------------------------- look-ups


def get(name: str) -> Option:
    """The option called `name`; OptionError listing the options when there is none."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise OptionError(f"unknown option {name!r}; options are: "
                          f"{', '.join(BY_NAME)}") from None


def default(name: str) -> Any:
    """The default of option `name` (the one value the CLI, fit() and the stages share)."""
    return get(name).default


def options_for(*, command: str | None = None, record: str | None = None,
                used_by: str | None = None) -> list[Option]:
    """Table rows (in table order) of a sub-command, a record ("fit" / "data") or a stage
    function (FUNCTIONS)."""
    return [o for o in OPTIONS
            if (command is None or command in o.commands)
            and (record is None or o.record == record)
            and (used_by is None or used_by in o.used_by)]


def defaults_for(function: str) -> dict[str, Any]:
    """{keyword: default} of a stage function (FUNCTIONS): what it takes when the keyword is
    omitted, the same as its command's (the command of the same name: its `variants`), so a
    call from Python does what the command line does, e.g. defaults_for("tune")["profile"] is
    None, the run's profile, as `tune --run RUN`, and defaults_for("evaluate")["corruptions"]
    is False, as `evaluate` without --corruptions."""
    if function not in FUNCTIONS:
        raise OptionError(f"unknown stage function {function!r}; one of {', '.join(FUNCTIONS)}")
    return {o.kw: o.settings(function)["default"] if function in o.commands else o.default
            for o in options_for(used_by=function)}


#: {(stage function, keyword): the option it applies with}: export's train_batch_size sets
#: the batch of --retrain-full's retraining only, and `export_ensemble` refuses it without.
#: A fit's options (FitOptions) hold tune's --train-batch-size for every fit, and its export
#: needs it not (its members were tuned at that batch): `kwargs_for` hands such a keyword on
#: only with the other set, or from that function's own command line, which is refused.
ONLY_WITH = {("export", "train_batch_size"): "retrain_full"}


def kwargs_for(function: str, source) -> dict[str, Any]:
    """{keyword: value} for a stage function, read from `source` (an argparse namespace, a
    FitOptions, any object with the options as attributes); options it lacks are left out, so
    the function's own defaults apply, and so is a keyword of `ONLY_WITH` whose other option
    is unset, unless `source` is the function's own command line (``source.command``)."""
    if function not in FUNCTIONS:
        raise OptionError(f"unknown stage function {function!r}; one of {', '.join(FUNCTIONS)}")
    own = getattr(source, "command", None) == function

    def applies(o):
        other = ONLY_WITH.get((function, o.kw))
        return other is None or own or bool(getattr(source, other, False))

    return {o.kw: getattr(source, o.name) for o in options_for(used_by=function)
            if hasattr(source, o.name) and applies(o)}


def stage_fields(record: str = "fit") -> dict[str, tuple[str, ...]]:
    """{stage: names of the `record` options whose change invalidates that stage} for every
    stage in STAGES (pipeline.FitOptions.STAGE_FIELDS)."""
    return {stage: tuple(o.name for o in options_for(record=record) if stage in o.invalidates)
            for stage in STAGES}


# --------------------------------------------------------------------------- validation


def _flag(o: Option, command: str | None = None) -> str:
    """`o`'s flags on `command`'s command line (its variant: the `ensemble` command's
    --budget is fit's --ensemble-budget); all of them joined by "/"."""
    return "/".join(o.settings(command)["flags"])


#: Options whose validator takes names joined by a separator: (names, separator), for
#: `meant` (--sweep default+probe: `sweeps.sweep_parts`).
_JOINED_NAMES = {"sweep": (SWEEPS, "+")}


def _check_one(o: Option, value, *, cli: bool = False, command: str | None = None) -> None:
    """Raises ValueError with the allowed values when `value` does not fit option `o` (a
    `ChoiceError` whose `hint` names the choice it most likely mistypes, `meant`); for ""
    naming what leaving it out gives for `command` (`show_default`: every text option has one)."""
    if o.type in (bool, int, float):
        ok = o.fits(value)  # type and range, finite for a float (`Option.fits`)
    elif o.type is str:
        ok = isinstance(value, str)
        if ok and value == "":  # never "": a path names no file, a name nothing (EMPTY_VALUE)
            raise ValueError(f"{EMPTY_PATH if o.metavar in PATH_METAVARS else EMPTY_VALUE} "
                             f"(without it: {o.show_default(command)})")
        advice = ok and not cli and o.metavar in PATH_METAVARS and refusal_advice(value)
        if advice:
            raise ValueError(advice)  # the command line's: arguments.Parser
    else:
        return  # parsed or free-form values (shard, severities, corruptions): checked by use
    if ok and o.choices is not None:
        ok = value in o.choices
    if ok and o.validator is not None:
        try:
            o.validator(value)
        except ValueError:
            ok = False
    if not ok:
        names, sep = (o.choices, None) if o.choices is not None else _JOINED_NAMES.get(
            o.name, ((), None))
        raise ChoiceError(f"must be {o.allowed(none=not cli)}",
                          meant(value, tuple(map(str, names)), sep=sep))


def _as_list_hint(o: Option, value, command: str | None, word: str) -> ValueError:
    """The ValueError of a list option given `value` that is no list; a str of names it
    accepts ("m1", "m1,m2": a name meant as a list of one, or names joined by commas) carries
    the list meant as its `hint` ("; pass modules=['m1', 'm2'] instead"): fit(modules="m1")
    was told the rule alone (a new user, stop 68)."""
    refused = ValueError(f"must be {o.allowed()}")
    parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else []
    try:
        for part in parts:
            _check_one(o, part)
    except ValueError:
        parts = []
    if parts:
        refused.hint = "; pass " + option_word(
            f"{_flag(o, command)} {' '.join(map(shell_word, parts))}", f"{word}={parts!r}"
        ) + " instead"
    return refused


def check(name: str, value, *, label: str | None = None, command: str | None = None) -> Any:
    """`value` unchanged when it fits option `name`, else OptionError naming the option in
    the caller's word (`lockwords.option_word`: its flag on the command line, "--budget must
    be an integer >= 1, got 0"; from Python its keyword, "budget must be …": each was told
    both, "budget (--budget)") and the allowed values.
    `label`: the word the caller used for it, when not `name` (a stage function's keyword,
    `Option.kw`: evaluate_model(batch_size=0) is told "batch_size", not the table's
    "eval_batch_size", which no Python caller ever typed). `command`: the command whose flag
    to name (its variant's; default the option's own): run_ensemble(budget=0) is the
    `ensemble` command's --budget, not fit's --ensemble-budget."""
    o = get(name)
    if value is None and o.nullable:
        return value
    try:
        if o.nargs in ("+", "*"):
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or (
                    o.nargs == "+" and isinstance(value, Sized) and not len(value)):
                raise _as_list_hint(o, value, command, label or name)
            for item in value:
                _check_one(o, item)
        else:
            _check_one(o, value)
    except ValueError as e:
        raise OptionError(f"{option_word(_flag(o, command), label or name)} {e}, got "
                          f"{value_shown(value)}{getattr(e, 'hint', '')}") from None
    return value


def check_keywords(function: str, values: Mapping[str, Any], *, own: Iterable[str] = ()) -> None:
    """`check` on the table options among the keyword arguments `values` ({keyword: value};
    other keys are skipped) of the stage function `function` (FUNCTIONS): Python is refused
    what the command line refuses, by one rule (run_rank(cache_dir="") read the default
    cache). A path's os.PathLike is checked as its text. `own`: keywords the function checks
    itself, as Python may pass more (a hyperrule.Profile; None for "the run's"). Raises
    OptionError naming the keyword (as the caller typed it); on the command line its flag on
    the command of the same name (run_ensemble's budget: the `ensemble` command's --budget)."""
    for o in options_for(used_by=function):
        if o.kw in values and o.kw not in own:
            value = values[o.kw]
            check(o.name, os.fspath(value) if isinstance(value, os.PathLike) else value,
                  label=o.kw, command=function if function in o.commands else None)
    _check_applies({o.name: values[o.kw] for o in options_for(used_by=function)
                    if o.kw in values})


def _check_applies(values: Mapping[str, Any]) -> None:
    """OptionError for an option at other than its default beside another at a value it does
    not apply with (`misapplied`; run_rank(metric="logme", k=3) ranked by LogME while k
    changed rank's key), naming both by their keywords (the command line's Parser refused)."""
    for name, other in misapplied(values, [n for n in values if values[n] != default(n)]):
        raise OptionError(f"{name}={values[name]!r} only applies with {other}=" + " or ".join(
            map(repr, NEEDS_VALUE[name][1])) + f", not {other}={values[other]!r}; leave "
            f"{name} out (its default, {default(name)!r})")


def check_record(record: str, obj) -> None:
    """check() on every `record` option of `obj` (a FitOptions, a DataArgs), naming its
    field (a DataArgs' `seed`, not the table's `data_seed`)."""
    for o in options_for(record=record):
        field = o.kw if record == "data" else o.name
        if hasattr(obj, field):
            check(o.name, getattr(obj, field), label=field)
    _check_applies({o.name: getattr(obj, o.name) for o in options_for(record=record)
                    if record != "data" and hasattr(obj, o.name)})


def dataclass_fields(record: str) -> list[tuple[str, Any, Any]]:
    """(name, annotation, dataclasses.field) per `record` option, for make_dataclass."""
    out = []
    for o in options_for(record=record):
        annotation = o.type if o.type in (int, float, str, bool) else Any
        if o.nargs in ("+", "*"):
            annotation = list
        if o.nullable:
            annotation = annotation | None if annotation is not Any else Any
        out.append((o.kw if record == "data" else o.name, annotation,
                    dataclasses.field(default=o.default)))
    return out


_check_table()

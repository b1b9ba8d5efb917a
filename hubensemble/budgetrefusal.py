"""Which of run.json's records of the ensemble's options is the newer (`newer_first`)."""

from __future__ import annotations


def newer_first(meta: dict) -> tuple[str, str]:
    """run.json's (`meta`) records of the ensemble's options, the newer first: ("fit",
    "ensemble") when the last fit's options never ran its ensemble stage, else ("ensemble",
    "fit"). Neither record holds a time; the stage record says it: fit writes "fit" ->
    "keys" (a key per stage of its options) before its stages, and "ensemble" -> "options"
    is written by an ensemble that selected (fit's, which records its key in "stages" ->
    "ensemble", or one on its own, which keeps that key and adds its "command"). A stage key
    other than the last fit's is an ensemble of an earlier fit's options: the last fit
    stopped before its ensemble selected (a --max-gflops no candidate meets), and its options
    are the newer. (An `ensemble` on its own after such a fit keeps the earlier key too, and
    reads as older: its limits were met, as it selected.) Before, "ensemble" came first, so
    the report gave the plain ensemble advice for a new --max-gflops no candidate met
    (`report.runfiles`' budget words)."""
    from hubensemble.fileio import json_object

    fit = json_object(json_object(meta.get("fit")).get("keys")).get("ensemble")
    stages = meta.get("stages")
    stage = json_object(json_object(stages).get("ensemble"))
    if fit is not None and stage.get("key") is not None and stage.get("key") != fit:
        return ("fit", "ensemble")
    return ("ensemble", "fit")

"""The ensemble's own text: `format_ensemble`, what `hubensemble ensemble` prints for an
ensemble record (an `ensemble.EnsembleResult` or RUN/ensemble.json's dict), and
`size_rule_text`, why the ensemble has its size, and `at_chance_text`, the sentence on an
ensemble at chance, which the report's section and closing table take from here. Apart from
`hubensemble.ensemble` (the selection), which re-exports `format_ensemble` and
`at_chance_text`, so the text can grow without crowding the selection's module; no import of
hubensemble.report (the report reads the ensemble, not the other way round).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hubensemble.cost.records import figure
from hubensemble.data.coverage import coverage_note
from hubensemble.heldoutwords import test_copies_note
from hubensemble.lockwords import option_word
from hubensemble.text import counted

#: ensemble.json's "test_missing" when the run's data has no test split: neutral, as stored
#: words are (`ensemble._no_test_labels`), worded with the way on when shown
#: (`test_missing_text`). It stored the command line's flags, shown to a Python caller too.
NO_TEST_SPLIT = "the run's data has no test split"


def format_ensemble(result: Mapping) -> str:
    """A short text summary of an ensemble record (EnsembleResult or ensemble.json's dict):
    members and weights, validation and test figures, costs and notes; when the one-se size
    rule kept another size than the best validation objective's, a `size:` line says why
    (`size_rule_text`, the report's words)."""
    # `size` counts greedy picks: with replacement "ensemble of 6" stood above 2 members.
    n, picks = len(result["members"]), result["size"]
    size = counted(n, "member") + (f" ({counted(picks, 'greedy pick')})" if picks != n else "")
    lines = [f"ensemble of {size} (objective {result['objective']}, "
             f"{counted(result['n_candidates'], 'candidate')}):"]
    for m in result["members"]:
        lines.append(f"  {m['weight']:.3f}  {m['trial']}")
    rule = result.get("size_rule") or {}
    # Why not the best validation size: the one-se rule kept another (the closing table's rule).
    if rule.get("rule") == "one-se" and rule.get("size") != rule.get("best_size"):
        lines.append(f"size:       {counted(picks, 'greedy pick')}: {size_rule_text(result)}")
    v = result["val"]
    lines.append(f"validation: ensemble ce {v['ensemble']['nll']:.4f} acc "
                 f"{v['ensemble']['accuracy']:.4f} | best single ({v['best_single']['trial']}) "
                 f"ce {v['best_single']['nll']:.4f} acc {v['best_single']['accuracy']:.4f}")
    test = result.get("test")
    if test and test.get("best_single"):
        e, b = test["ensemble"], test["best_single"]
        lines.append(f"test:       ensemble acc {e['accuracy']:.4f} nll {e['nll']:.4f} ece "
                     f"{e['ece']:.4f} | best single acc {b['accuracy']:.4f} nll "
                     f"{b['nll']:.4f} ece {b['ece']:.4f}")
        inb = test.get("best_single_in_budget")
        if inb:
            lines.append(f"            best single within the budget ({inb['trial']}) acc "
                         f"{inb['accuracy']:.4f} nll {inb['nll']:.4f}")
    copies = test_copies_text(result.get("test_copies")) if test else None
    if copies:  # beside the test figures: copies of training images lift them
        lines.append(f"note: test figures are {copies}")
    lines.extend(_cost_lines(result))
    if result.get("unfinished"):
        lines.append(f"note: chosen from an unfinished sweep ({result['unfinished']})")
    for split in ("val", "test"):
        note = coverage_note(result.get("coverage"), split)
        if note:
            lines.append(f"note: {note}")
    for s in result.get("skipped", []):
        lines.append(f"  skipped {s['trial']}: {s['reason']}")
    return "\n".join(lines)


def at_chance_text(why: str) -> str:
    """The one sentence for an ensemble at chance (ensemble.json's "at_chance" = `why`): the
    ensemble stage's warning, the closing table's and the report's, in the caller's words
    (`lockwords.option_word`: fit(profile='quick') from Python was told "--profile cpu")."""
    return (f"the ensemble is at chance on validation: {why}; its members learned next to "
            f"nothing (more steps, e.g. {option_word('--profile cpu', 'profile=' + repr('cpu'))}"
            ", or other modules?)")


def chance_sentences(why: str | None, weak: Mapping[str, str], records: Mapping[str, dict],
                     members) -> tuple[str | None, str | None]:
    """(the sentence on the ensemble at chance, the sentence on its members at chance), each
    None when there is nothing to say: `why` is ensemble.json's "at_chance" (or None), `weak`
    {trial: why} of its members at chance (`chance.at_chance_candidates`), `records` {trial:
    trial.json record}, `members` the members' trials. An ensemble of one member (one trial,
    however many picks) has that member's probabilities: when both are at chance, one
    sentence says it, the ensemble's figures and the member's advice
    (`chance.chance_advice`); a warning on each gave the same figures twice. Otherwise
    `at_chance_text` and `chance.members_chance_text`. The ensemble stage, fit's closing
    table and the report say these."""
    from hubensemble.chance import chance_advice, members_chance_text

    one = list(dict.fromkeys(members))
    if why and len(one) == 1 and one[0] in weak:
        trial = one[0]
        record = records.get(trial) or {}
        return (f"the ensemble is at chance on validation: {why}; its one member, {trial} "
                f"({record.get('module') or '?'}), learned next to nothing: "
                f"{chance_advice([record])}", None)
    return (at_chance_text(why) if why else None,
            members_chance_text(dict(weak), dict(records)) if weak else None)


def test_missing_text(why: str | None) -> str | None:
    """ensemble.json's "test_missing" (why the ensemble has no test metrics) for its reader:
    NO_TEST_SPLIT with how to give the data one in the caller's words (`lockwords.option_word`:
    "--test-fraction for folder: data, --split test=… for tfds: data" on the command line and
    in the report; "load_task(…, test_fraction=F) …, splits={'test': …} …" from Python),
    also for an ensemble.json that stored the command line's advice after it; any other
    reason as stored; None stays None."""
    if not why or not str(why).startswith(NO_TEST_SPLIT):
        return why
    fraction = option_word("--test-fraction", "load_task(…, test_fraction=F)")
    split = option_word("--split test=…", "splits={'test': …}")
    return (f"{NO_TEST_SPLIT} (give it one: x_test and y_test in an npz, a test/ folder or "
            f"{fraction} for folder: data, {split} for tfds: data)")


def _cost_lines(result: Mapping) -> list[str]:
    """format_ensemble's lines on the inference budget and the costs (none without them)."""
    lines = []
    limits = result.get("limits")
    if limits:
        shown = {k: v for k, v in limits.items() if k.startswith("max_") and v is not None}
        text = ", ".join(f"{k.removeprefix('max_').replace('_', ' ')} <= "
                         f"{v if k == 'max_members' else format(v, 'g')}"
                         for k, v in shown.items())
        lines.append(f"inference budget: {text}"
                     + (f" ({limits['stopped']})" if limits.get("stopped") else ""))
        lines += left_out_lines(limits.get("not_costed") or [], result.get("cost") or {})
    cost = result.get("cost") or {}

    def describe(c):
        ms = (c.get("latency_ms") or {}).get("1")
        gflops = ("GFLOPs not counted" if c.get("gflops") is None  # records.total_cost's
                  else f"{c['gflops']:.4g} GFLOPs")
        return (f"{gflops}, {c['params']:,} params"
                + (f", {figure(ms)} ms at batch 1" if ms is not None else ""))

    if cost.get("ensemble"):
        single = cost.get("best_single")
        lines.append(f"cost:       ensemble {describe(cost['ensemble'])}"
                     + (f" | best single {describe(single)}" if single else ""))
        if cost["ensemble"].get("gflops_not_counted"):
            lines.append(f"            {cost['ensemble']['gflops_not_counted']}")
    return lines


def left_out_lines(trials, cost: Mapping) -> list[str]:
    """The budget's lines on the candidates it left out (ensemble.json's limits
    "not_costed", `cost.budget.cost_table`): those whose module could not be costed, and
    those costed whose GFLOPs were not counted (their "gflops_not_counted" in the cost
    record's "candidates": `Cost.summary`), each reason once with the way on it names (the
    reasons of `cost.graph`: a TensorFlow without its freezing says what to install).
    Both were "left out (no cost)", though the second have their params and latency."""
    known = cost.get("candidates") or {}
    reasons: dict = {}
    for trial in trials:
        why = (known.get(trial) or {}).get("gflops_not_counted")
        reasons.setdefault(why, []).append(str(trial))
    lines = []
    if None in reasons:
        lines.append(f"  left out (their module could not be costed): {', '.join(reasons[None])}")
    gflops = option_word("--max-gflops", "max_gflops")
    latency = option_word("--max-latency-ms", "max_latency_ms")
    for why, named in reasons.items():
        if why is not None:
            lines.append(f"  left out (GFLOPs not counted, so {gflops} cannot take them; their "
                         f"params and latency are measured: {latency} alone can): "
                         f"{', '.join(named)}: {why}")
    return lines


def _finite(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def size_rule_text(ensemble) -> str:
    """How ensemble.json's size was chosen, in words (`ensemble`: its dict): its "size_rule"
    record (`ensemble.choose_size`: rule, best_size, se) with the best size's validation
    objective from "val_curve". One wording for `format_ensemble` (what `hubensemble
    ensemble` prints), the report's "Ensemble size" section and the closing table, which
    said only the size, not why the one-se rule kept more picks than the best validation
    objective's. For one-se, the rule's reason (`greedy.choose_size`: validation cannot tell
    the sizes within one standard error apart, and under cross-entropy selection test
    performance rose with ensemble size, paper C.9) and that it reads validation only: when
    the ensemble's test NLL is above its best single's (ensemble.json "test"), which read
    as contradicting "best validation CE … (at size 1)" beside it, the line says the rule
    does not see it."""
    record = ensemble.get("size_rule")
    if not record:
        return "the size with the best objective was kept"
    rule, best = record.get("rule"), record.get("best_size")
    if rule == "paper":
        return "the size with the best validation objective was kept (size rule paper)"
    if rule == "budget":
        return "every pick was kept (size rule budget)"
    objective = ensemble.get("objective") or "ce"
    key, name = ("ce", "CE") if objective == "ce" else (objective, objective)
    point = next((p for p in ensemble.get("val_curve") or []
                  if isinstance(p, dict) and p.get("size") == best), {})
    value = point.get(key)
    se = record.get("se")
    # A NaN read from a hand-edited file (the report names it) is no figure: "CE nan" was.
    words = ("the largest size within one standard error"
             + (f" ({se:.4f})" if _finite(se) and se else "")
             + f" of the best validation {name}"
             + (f" {value:.4f}" if _finite(value) else "")
             + f" (at size {best}) was kept (size rule one-se: validation cannot tell those "
             "sizes apart, and under cross-entropy selection test performance rose with "
             "ensemble size, paper C.9; the rule reads validation only, not test figures)")
    test = ensemble.get("test") or {}
    mine, single = ((test.get(k) or {}).get("nll") for k in ("ensemble", "best_single"))
    if (record.get("size") != best and _finite(mine) and _finite(single) and mine > single):
        words += (f"; here the ensemble's test NLL {mine:.4f} came out above its best "
                  f"single's {single:.4f}, which the rule does not see")
    return words


def members_change(done, now, *, listed: int = 4) -> str:
    """What differs between an export's members `done` and the ensemble's chosen now `now`
    (lists of trial names, `formats.export_members_differ`'s pair), for `ensemble`'s warning
    that the export holds an earlier ensemble: "members t0-a, t1-b; the ensemble chosen now
    has t2-c" (at most `listed` names each, then "… (N in all)"), or "the same members, other
    weights". It said "1 member(s), not the 1 chosen now" when only which member differed."""
    if set(done) == set(now):
        return "the same members, other weights"

    def names(trials):
        unique = list(dict.fromkeys(trials))
        more = f", … ({len(unique)} in all)" if len(unique) > listed else ""
        return ", ".join(map(str, unique[:listed])) + more

    return f"members {names(done)}; the ensemble chosen now has {names(now)}"


def result_line(result: Mapping) -> str:
    """An EnsembleResult's repr, in one line: objective, size, the members' trials, the
    candidates, validation and test accuracy (`format_ensemble` has the table, the fields
    the records). The dataclass repr printed every member's hparams, curve point and pick
    (about 9,800 characters for a quick run): a notebook cell echoing run_ensemble's result
    showed a screen of it."""
    parts = [f"objective={result['objective']!r}", f"size={result['size']}",
             f"members={[m.get('trial') for m in result['members']]!r}",
             f"n_candidates={result['n_candidates']}"]
    for split in ("val", "test"):
        value = (result.get(split) or {}).get("ensemble", {}).get("accuracy")
        if value is not None:
            parts.append(f"{split}_accuracy={value:.4f}")
    return f"EnsembleResult({', '.join(parts)})"


def test_copies_record(duplicates, n_test) -> dict | None:
    """ensemble.json's "test_copies" of a run whose data's duplicates record `duplicates`
    (run.json data.task.duplicates, `Task.duplicates`) counts test images with a byte copy in
    train or val, for a test split of `n_test` (int) examples: {"n": n_test, "test_in_train",
    "test_in_val", "val_in_train": counts (int >= 0)}, and "test_in_either" (test images
    with a copy in either, each once) where the record holds it; None without such copies
    or record (an ensemble.json then holds none, as before)."""
    across = (duplicates or {}).get("across") if isinstance(duplicates, Mapping) else None
    if not isinstance(across, Mapping) or not n_test:
        return None
    record = {"n": int(n_test), **{k: int(across.get(k) or 0) for k in (
        "test_in_train", "test_in_val", "val_in_train")}}
    either = duplicates.get("test_in_either")  # the exact count, where the record has it
    if isinstance(either, int) and not isinstance(either, bool):
        record["test_in_either"] = either
    return record if record["test_in_train"] or record["test_in_val"] else None


def test_copies_text(record) -> str | None:
    """"not a held-out measure: 2 of the 11 test images are copies of training (1) or
    validation (1) images (the same pixels; a fit with --dedupe drops them, …)" of
    ensemble.json's "test_copies" (`test_copies_record`), in `heldoutwords.test_copies_note`'s
    words; None without it."""
    if not isinstance(record, Mapping):
        return None
    return test_copies_note({"across": dict(record), "test_in_either":
                             record.get("test_in_either")}, record.get("n"))


def run_test_copies(meta) -> str | None:
    """`heldoutwords.test_copies_note` of the run whose run.json object is `meta`: its data's
    duplicates record and test size (data.task.duplicates, data.task.sizes.test), or None
    (no copies, no record, or a record edited into another kind). Fit's closing table and
    the report's test section say it beside their test figures, for an ensemble.json of
    any version (`test_copies_record` is the ensemble's own)."""
    from hubensemble.rerun import data_part

    task = data_part(meta, "task")
    duplicates, sizes = task.get("duplicates"), task.get("sizes")
    record = test_copies_record(duplicates, (sizes or {}).get("test")
                                if isinstance(sizes, Mapping) else None)
    return test_copies_text(record)

"""The run report: RUN/report.md and a self-contained RUN/report.html with embedded plots."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np

from hubensemble import ensemble as ens
from hubensemble.errors import RunError
from hubensemble.evaluate import ROBUSTNESS_FILE
from hubensemble.fileio import atomic_write_bytes, atomic_write_text, is_temp, read_json

#: Folder (inside the run) holding the PNGs that report.md links to.
FIGURES_DIR = "report_files"
FIGURE_NAMES = ("knn_vs_finetuned", "ensemble_curve", "reliability", "robustness")
RELIABILITY_BINS = 15
#: Longest failure reason shown in a table cell (the full text is in the failures section).
SHORT_REASON = 90


# ---------------------------------------------------------------------------------------------
# Document model: sections of paragraphs, bullet lists, tables and figures; two renderers
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Table:
    headers: list
    rows: list


@dataclasses.dataclass
class Figure:
    name: str
    png: bytes
    caption: str


@dataclasses.dataclass
class Bullets:
    items: list


@dataclasses.dataclass
class Section:
    title: str
    blocks: list = dataclasses.field(default_factory=list)

    def add(self, *blocks):
        self.blocks.extend(b for b in blocks if b is not None)
        return self


def _md_cell(value) -> str:
    return str(value).replace("\n", " ").replace("|", "\\|")


def render_markdown(title, sections, figures_dir=FIGURES_DIR) -> str:
    out = [f"# {title}", ""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        for block in sec.blocks:
            if isinstance(block, str):
                out += [block, ""]
            elif isinstance(block, Bullets):
                out += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                out.append("|" + "---|" * len(block.headers))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                out.append("")
            elif isinstance(block, Figure):
                out += [f"![{block.caption}]({figures_dir}/{block.name}.png)", "",
                        f"*{block.caption}*", ""]
    return "\n".join(out).rstrip() + "\n"


_CODE = re.compile(r"`([^`]+)`")
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
figure{margin:1em 0}figure img{max-width:100%}figcaption{color:#555;font-size:.9em}
"""


def _inline_html(text) -> str:
    return _CODE.sub(r"<code>\1</code>", html.escape(str(text), quote=False))


def render_html(title, sections) -> str:
    """One HTML file: inline CSS, figures as data: URIs, no scripts or external files."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>",
           "<body>", f"<h1>{html.escape(title)}</h1>"]
    for sec in sections:
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        for block in sec.blocks:
            if isinstance(block, str):
                out.append(f"<p>{_inline_html(block)}</p>")
            elif isinstance(block, Bullets):
                out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items)
                           + "</ul>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
                body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row)
                               + "</tr>" for row in block.rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif isinstance(block, Figure):
                data = base64.b64encode(block.png).decode("ascii")
                out.append(f'<figure><img alt="{html.escape(block.caption)}" '
                           f'src="data:image/png;base64,{data}">'
                           f"<figcaption>{_inline_html(block.caption)}</figcaption></figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------

def _ranks(values) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    v = np.asarray(values, np.float64)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x, y) -> float | None:
    """Spearman's rank correlation (ties averaged); None below 3 pairs or when one side is
    constant (the correlation is then undefined)."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} and {len(y)})")
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx ** 2).sum() * (ry ** 2).sum()))
    if denom == 0:
        return None
    return float((rx * ry).sum() / denom)


def reliability(probs, y, bins=RELIABILITY_BINS) -> dict:
    """Per confidence bin (equal width, (lo, hi], a confidence of 0 in the first, as
    ensemble.ece): "count", "accuracy", "confidence" (NaN for empty bins), and "edges"."""
    probs = np.asarray(probs, np.float64)
    y = np.asarray(y)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, int(bins) - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(which, weights=correct, minlength=bins) / count
        mean_conf = np.bincount(which, weights=conf, minlength=bins) / count
    return {"count": count, "accuracy": acc, "confidence": mean_conf, "edges": edges}


def _f(value, digits=4) -> str:
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    return f"{v:.{digits}f}"


def _seconds(value) -> str:
    if value is None:
        return "–"
    s = float(value)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {s % 60:04.1f} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _n(count, word) -> str:
    """'1 member', '3 members'."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def _short(text, limit=SHORT_REASON) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _compact(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "none"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


# ---------------------------------------------------------------------------------------------
# What a run directory holds (every part optional)
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _RunFiles:
    path: Path
    meta: dict
    ranking: object = None          # rank.Ranking
    ranking_note: str | None = None
    y_val: np.ndarray | None = None
    y_test: np.ndarray | None = None
    candidates: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)   # (trial, reason), not failures
    failed: list = dataclasses.field(default_factory=list)    # trial.json records, not ok
    candidates_note: str | None = None
    ensemble: dict | None = None
    ensemble_note: str | None = None
    robustness: dict | None = None
    robustness_note: str | None = None

    def cmd(self, what) -> str:
        p = str(self.path)
        return {
            "rank": f"hubensemble rank --catalogue FILE --data SPEC --out {p}",
            "tune": f"hubensemble tune --run {p}",
            "ensemble": f"hubensemble ensemble --run {p}",
            "export": f"hubensemble export --run {p}",
            "evaluate": (f"hubensemble evaluate --model {p}/export --data SPEC --corruptions "
                         f"--out {p}/{ROBUSTNESS_FILE}"),
            "fit": f"hubensemble fit --catalogue FILE --data SPEC --out {p}",
        }[what]


def _load_run(run_dir) -> _RunFiles:
    from hubensemble.rank import load_ranking
    from hubensemble.rundir import Run

    path = Path(run_dir)
    run = Run(path)
    if not path.is_dir():
        raise RunError(f"{path} is not a folder; pass a run directory made by `hubensemble "
                       "fit` or `hubensemble rank`")
    if not run.meta_path.exists() and not run.ranking_json.exists():
        raise RunError(f"{path} is not a hubensemble run (no run.json, no ranking.json); run "
                       f"`hubensemble fit --catalogue FILE --data SPEC --out {path}` first")
    try:
        meta = run.meta()
    except (OSError, ValueError) as e:
        meta = {"_error": f"run.json is unreadable ({e})"}
    files = _RunFiles(path=path, meta=meta if isinstance(meta, dict) else {})

    if run.ranking_json.exists():
        try:
            files.ranking = load_ranking(path)
        except RunError as e:
            files.ranking_note = str(e)
    else:
        files.ranking_note = (f"There is no ranking yet (ranking.json is missing): run "
                              f"`{files.cmd('rank')}`.")
    try:
        files.y_val = ens.load_labels(path, "val")
        files.y_test = ens.load_labels(path, "test")
        files.candidates, skipped = ens.load_candidates(path)
    except RunError as e:
        files.candidates_note = str(e)
        skipped = []
    files.failed = _failed_trials(path / ens.CANDIDATES_DIR)
    failed_ids = {str(r.get("trial")) for r in files.failed}
    files.skipped = [(t, r) for t, r in skipped if t not in failed_ids]
    if not files.candidates and files.candidates_note is None:
        files.candidates_note = (f"There are no fine-tuned candidates yet (candidates/ is "
                                 f"empty or missing): run `{files.cmd('tune')}`.")

    if (path / ens.ENSEMBLE_FILE).exists():
        try:
            files.ensemble = ens.read_ensemble(path)
        except RunError as e:
            files.ensemble_note = str(e)
    else:
        files.ensemble_note = (f"There is no ensemble yet (ensemble.json is missing): run "
                               f"`{files.cmd('ensemble')}`.")

    rob = path / ROBUSTNESS_FILE
    if rob.exists():
        try:
            files.robustness = read_json(rob)
            if not isinstance(files.robustness, dict) or "clean" not in files.robustness:
                raise ValueError("not an evaluation written by hubensemble")
        except (OSError, ValueError) as e:
            files.robustness = None
            files.robustness_note = f"{ROBUSTNESS_FILE} is unreadable ({e}); run " \
                                    f"`{files.cmd('evaluate')}` again."
    else:
        why = ("the run has no test split, so there is nothing to corrupt"
               if files.y_test is None and (_task(files).get("sizes") or {}).get("test") is None
               else f"run `{files.cmd('evaluate')}`")
        files.robustness_note = f"No robustness evaluation ({ROBUSTNESS_FILE} is missing): {why}."
    return files


def _failed_trials(root: Path) -> list:
    out = []
    if not root.is_dir():
        return out
    for name in sorted(os.listdir(root), key=ens._natural_key):
        path = root / name / ens.TRIAL_FILE
        if is_temp(name) or not path.exists():
            continue
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("status") != "ok":
            record.setdefault("trial", name)
            out.append(record)
    return out


def _task(files) -> dict:
    return ((files.meta.get("data") or {}).get("task")) or {}


def _candidate_accuracy(files, cand) -> float | None:
    if files.y_val is not None:
        return ens.accuracy(cand.val_probs, files.y_val)
    return (cand.record.get("val") or {}).get("accuracy")


def _candidate_ce(files, cand) -> float | None:
    if files.y_val is not None:
        return ens.nll(cand.val_probs, files.y_val)
    return (cand.record.get("val") or {}).get("ce")


def knn_vs_finetuned(files) -> list[tuple[str, float, float]]:
    """(module, kNN score, best validation accuracy of its candidates) for every module that
    was ranked ok and has at least one usable candidate, in ranking order."""
    if files.ranking is None:
        return []
    best = {}
    for c in files.candidates:
        acc = _candidate_accuracy(files, c)
        if acc is not None and (c.module not in best or acc > best[c.module]):
            best[c.module] = float(acc)
    return [(r["name"], float(r["score"]), best[r["name"]])
            for r in files.ranking.ok_rows if r["name"] in best]


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib's Agg canvas directly: no pyplot, no global backend switch)
# ---------------------------------------------------------------------------------------------

def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # No "Software" / date metadata: the same run gives byte-identical figures.
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _plot_knn(points, rho, metric, members):
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    for name, x, y in points:
        chosen = name in members
        ax.scatter([x], [y], s=46 if chosen else 30, marker="o",
                   color="tab:orange" if chosen else "tab:blue", edgecolors="black",
                   linewidths=0.5, zorder=3)
        ax.annotate(name if len(name) <= 24 else name[:23] + "…", (x, y), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    ax.margins(x=0.15, y=0.1)  # room for the names
    ax.set_xlabel(f"{metric} proxy score on train (ranking.json)")
    ax.set_ylabel("best fine-tuned validation accuracy")
    text = "undefined" if rho is None else f"{rho:.3f}"
    ax.set_title(f"kNN proxy vs fine-tuned accuracy: Spearman ρ = {text} "
                 f"({len(points)} modules)", fontsize=10)
    ax.grid(alpha=0.3)
    if members:
        from matplotlib.lines import Line2D

        ax.legend(handles=[Line2D([], [], marker="o", ls="", color="tab:orange",
                                  markeredgecolor="black", label="in the ensemble"),
                           Line2D([], [], marker="o", ls="", color="tab:blue",
                                  markeredgecolor="black", label="not in the ensemble")],
                  fontsize=8, loc="best")
    return _png(fig)


def _plot_curve(curve, size, single):
    sizes = [int(c["size"]) for c in curve]
    fig = _figure(9.0, 3.6)
    for i, (key, label) in enumerate((("ce", "validation cross-entropy"),
                                      ("accuracy", "validation accuracy"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(sizes, [c[key] for c in curve], marker="o", color="tab:blue",
                label="greedy ensemble")
        ax.axvline(size, color="tab:red", ls="--", lw=1, label=f"chosen size {size}")
        if single is not None and single.get("nll" if key == "ce" else "accuracy") is not None:
            ax.axhline(single["nll" if key == "ce" else "accuracy"], color="gray", ls=":",
                       label="best single member")
        ax.set_xlabel("ensemble size (greedy picks)")
        ax.set_ylabel(label)
        ax.set_xticks(sizes if len(sizes) <= 20 else sizes[::max(1, len(sizes) // 10)])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _plot_reliability(panels):
    fig = _figure(4.2 * len(panels), 4.2)
    for i, (title, probs, y) in enumerate(panels):
        rel = reliability(probs, y)
        edges = rel["edges"]
        centres = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        ax = fig.add_subplot(1, len(panels), i + 1)
        filled = rel["count"] > 0
        ax.bar(centres[filled], rel["accuracy"][filled], width=width * 0.95,
               color="tab:blue", alpha=0.8, edgecolor="black", linewidth=0.4,
               label="accuracy")
        acc, conf = rel["accuracy"][filled], rel["confidence"][filled]
        ax.hlines(conf, centres[filled] - width * 0.47, centres[filled] + width * 0.47,
                  colors="tab:red", linewidth=2.2, label="mean confidence", zorder=3)
        for cx, top, n in zip(centres[filled], np.maximum(acc, conf), rel["count"][filled]):
            ax.text(cx, min(top + 0.01, 0.97), f"{int(n)}", ha="center", va="bottom",
                    fontsize=6, color="#444")
        ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title}\nECE {ens.ece(probs, y, RELIABILITY_BINS):.4f}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def _plot_robustness(rob):
    groups = ["clean"] + list(rob.get("corruptions") or {})
    has_single = rob["clean"].get("best_single") is not None

    def acc(name, model):
        if name == "clean":
            e = rob["clean"][model]
            return e["accuracy"] if e else np.nan
        vals = [s[model]["accuracy"] for s in rob["corruptions"][name].values() if s[model]]
        return float(np.mean(vals)) if vals else np.nan

    x = np.arange(len(groups))
    width = 0.38 if has_single else 0.6
    fig = _figure(max(5.5, 1.1 * len(groups) + 2), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(x - (width / 2 if has_single else 0), [acc(g, "ensemble") for g in groups], width,
           label="ensemble", color="tab:blue")
    if has_single:
        ax.bar(x + width / 2, [acc(g, "best_single") for g in groups], width,
               label="best single member", color="tab:gray")
    ax.set_xticks(x)
    ax.set_xticklabels([g.replace("_", " ") for g in groups], rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{rob.get('split', 'test')} accuracy (mean over severities)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------

def _members(files):
    return list((files.ensemble or {}).get("members") or [])


def _overview(files) -> Section:
    task = _task(files)
    sec = Section("Overview")
    items = [f"Run directory: `{files.path}`"]
    if files.meta.get("created"):
        items.append(f"Started: {files.meta['created']}; report written "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
    if task:
        items.append(f"Task: {task.get('name')} ({task.get('num_classes')} classes)")
    if files.ranking is not None:
        items.append(f"Ranked {len(files.ranking.rows)} modules "
                     f"({len(files.ranking.failed_rows)} failed), selected "
                     f"{len(files.ranking.selected)}")
    if files.candidates or files.failed:
        items.append(f"Fine-tuned candidates: {len(files.candidates)} usable, "
                     f"{len(files.failed)} failed, {len(files.skipped)} skipped")
    if files.ensemble:
        members = _members(files)
        items.append(f"Ensemble: {_n(len(members), 'member')} chosen by greedy selection on "
                     f"validation {files.ensemble.get('objective', 'ce')}")
        test = files.ensemble.get("test")
        if test and test.get("best_single"):
            e, b = test["ensemble"], test["best_single"]
            items.append(f"Test accuracy {_f(e['accuracy'])} (ensemble) vs "
                         f"{_f(b['accuracy'])} (best single); NLL {_f(e['nll'])} vs "
                         f"{_f(b['nll'])}")
    export = _export_path(files)
    if export:
        items.append(f"Export (SavedModel): `{export}`")
    sec.add(Bullets(items))
    if files.meta.get("_error"):
        sec.add(files.meta["_error"])
    return sec


def _export_path(files):
    recorded = (files.meta.get("export") or {}).get("path")
    if recorded and os.path.exists(recorded):
        return recorded
    default = files.path / "export"
    return str(default) if (default / "saved_model.pb").exists() else recorded


def _data_section(files) -> Section:
    sec = Section("Data")
    data = files.meta.get("data") or {}
    task = data.get("task") or {}
    if not task:
        return sec.add(f"run.json records no data: run `{files.cmd('rank')}` (or "
                       f"`{files.cmd('fit')}`).")
    args = data.get("args") or {}
    sizes = task.get("sizes") or {}
    names = list(task.get("class_names") or [])
    shown = ", ".join(map(str, names[:20])) + (f", … ({len(names)} in all)"
                                               if len(names) > 20 else "")
    size = task.get("image_size")
    rows = [["name", task.get("name")], ["source", task.get("source")],
            ["data spec", f"`{args.get('spec')}`" if args.get("spec") else "–"],
            ["examples", ", ".join(f"{s} {sizes.get(s) if sizes.get(s) is not None else '–'}"
                                   for s in ("train", "val", "test"))],
            ["classes", f"{task.get('num_classes')}: {shown}"],
            ["image size", (f"{size[0]}x{size[1]}" if size else "–")
             + ("" if task.get("same_size", True) else " (median; sizes vary)")],
            ["synthetic / flips", f"{task.get('synthetic')} / {task.get('flip')}"],
            ["fingerprint", f"`{str(task.get('fingerprint', ''))[:16]}…`"]]
    if task.get("skipped"):
        rows.append(["skipped files", f"{len(task['skipped'])} (e.g. "
                     f"{_short(': '.join(map(str, task['skipped'][0])))})"])
    return sec.add(Table(["", "value"], rows))


def _ranking_section(files) -> Section:
    sec = Section("Ranking")
    r = files.ranking
    if r is None:
        return sec.add(files.ranking_note)
    rule = ", ".join(f"{k}={v}" for k, v in r.selection.items() if k != "rule")
    sec.add(f"{len(r.rows)} modules scored by `{r.metric}` (k = {r.k}) on {r.examples} "
            f"training examples, best first; selection rule {r.selection.get('rule', '?')}"
            f"{' (' + rule + ')' if rule else ''}: {len(r.selected)} selected (✓).")
    chosen = set(r.selected)
    rows = []
    rank = 0
    for row in r.rows:
        ok = row.get("status") == "ok"
        rank += ok
        status = "ok" if ok else f"failed ({row.get('stage') or 'error'}): " \
                                 f"{_short(row.get('reason'))}"
        rows.append([rank if ok else "–", row["name"], row.get("family") or "–",
                     _f(row.get("score")), row.get("dim") or "–", status,
                     "✓" if row["name"] in chosen else ""])
    return sec.add(Table(["rank", "module", "family", r.metric, "dim", "status", "selected"],
                         rows))


def _knn_section(files, figures) -> Section:
    sec = Section("kNN proxy vs fine-tuned accuracy")
    if files.ranking is None:
        return sec.add(files.ranking_note)
    if not files.candidates:
        return sec.add(files.candidates_note)
    points = knn_vs_finetuned(files)
    if not points:
        return sec.add("No ranked module has a usable fine-tuned candidate, so there is "
                       "nothing to compare.")
    rho = spearman([p[1] for p in points], [p[2] for p in points])
    if rho is None:
        why = (f"only {len(points)} module(s) were fine-tuned; a rank correlation needs at "
               "least 3" if len(points) < 3 else "one of the two scores is the same for "
               "every module")
        corr = f"Spearman ρ is undefined: {why}."
    else:
        corr = (f"Spearman ρ = {rho:.3f} over {len(points)} modules (1: the proxy orders the "
                "modules exactly as fine-tuning does; 0: no relation).")
    sec.add(f"Each point is a module: x = its {files.ranking.metric} score from the ranking, "
            f"y = the best validation accuracy among its fine-tuned candidates. {corr}")
    members = {m.get("module") for m in _members(files)}
    png = _plot_knn(points, rho, files.ranking.metric, members)
    figures.append(Figure("knn_vs_finetuned", png,
                          f"kNN proxy vs fine-tuned validation accuracy (Spearman ρ = "
                          f"{'undefined' if rho is None else f'{rho:.3f}'})"))
    sec.add(figures[-1])
    sec.add(Table(["module", f"{files.ranking.metric} score", "best val accuracy"],
                  [[n, _f(x), _f(y)] for n, x, y in points]))
    return sec


def _curve_section(files, figures) -> Section:
    sec = Section("Ensemble size")
    e = files.ensemble
    if e is None:
        return sec.add(files.ensemble_note)
    curve = list(e.get("val_curve") or [])
    size = int(e.get("size") or len(_members(files)) or 0)
    if not curve:
        return sec.add("ensemble.json has no validation curve.")
    best = (e.get("val") or {}).get("best_single")
    sec.add(f"Greedy forward selection (Caruana et al., 2004) over {e.get('n_candidates', '?')} "
            f"candidates, objective validation {e.get('objective', 'ce')}, budget "
            f"{e.get('budget', '?')} picks ({'with' if e.get('with_replacement') else 'without'}"
            f" replacement). Each step adds the candidate that most improves the averaged "
            f"probabilities; the size with the best objective was kept: {_n(size, 'pick')}, "
            f"{_n(len(_members(files)), 'distinct member')}.")
    figures.append(Figure("ensemble_curve", _plot_curve(curve, size, best),
                          f"Validation cross-entropy and accuracy vs ensemble size (chosen: "
                          f"{size})"))
    sec.add(figures[-1])
    return sec


def _test_panels(files):
    """[(title, test probabilities, labels)] of the ensemble and the best single member, and
    the reason when one cannot be drawn."""
    e = files.ensemble
    if files.y_test is None:
        return [], "the run has no test labels (labels/test.npy)"
    by_trial = {c.trial: c for c in files.candidates}
    members = _members(files)
    panels, notes = [], []
    missing = [m["trial"] for m in members
               if m["trial"] not in by_trial or by_trial[m["trial"]].test_probs is None]
    if missing:
        notes.append(f"the test probabilities of {', '.join(missing)} are not in candidates/")
    else:
        probs = np.stack([by_trial[m["trial"]].test_probs for m in members])
        weights = {i: float(m.get("weight", 1.0)) for i, m in enumerate(members)}
        panels.append(("ensemble", ens.ensemble_probs(probs, weights), files.y_test))
    best = ((e.get("test") or {}).get("best_single") or {}).get("trial")
    if best in by_trial and by_trial[best].test_probs is not None:
        panels.append((f"best single ({best})", by_trial[best].test_probs, files.y_test))
    elif best:
        notes.append(f"the test probabilities of {best} are not in candidates/")
    return panels, "; ".join(notes)


def _test_section(files, figures) -> Section:
    sec = Section("Best single member vs ensemble on test")
    e = files.ensemble
    if e is None:
        return sec.add(files.ensemble_note)
    test = e.get("test")
    if not test:
        why = e.get("test_missing") or "no test metrics were recorded"
        return sec.add(f"No test metrics: {why}. The numbers below the ensemble curve are on "
                       "validation only.")
    rows = [[f"ensemble ({_n(len(_members(files)), 'member')})", _f(test["ensemble"]["accuracy"]),
             _f(test["ensemble"]["nll"]), _f(test["ensemble"]["ece"])]]
    b = test.get("best_single")
    if b:
        module = next((c.module for c in files.candidates if c.trial == b.get("trial")), "")
        rows.append([f"best single: {b.get('trial')}" + (f" ({module})" if module else ""),
                     _f(b["accuracy"]), _f(b["nll"]), _f(b["ece"])])
    n = len(files.y_test) if files.y_test is not None else "?"
    sec.add(f"On the {n} test examples (never used for any choice). The best single member "
            "is the candidate with the best validation objective. NLL = mean cross-entropy "
            f"(lower is better); ECE = expected calibration error over {RELIABILITY_BINS} "
            "equal-width confidence bins (lower is better).")
    sec.add(Table(["model", "accuracy", "NLL", "ECE"], rows))
    panels, why = _test_panels(files)
    if why:
        sec.add(f"{'No' if not panels else 'Incomplete'} reliability diagram: {why}.")
    if not panels:
        return sec
    figures.append(Figure("reliability", _plot_reliability(panels),
                          f"Reliability diagrams on test ({RELIABILITY_BINS} bins): bars = "
                          "accuracy per confidence bin, red lines = the bin's mean "
                          "confidence, numbers = examples in the bin, dashed = perfect "
                          "calibration (bars reaching the red lines)"))
    return sec.add(figures[-1])


def _members_section(files) -> Section:
    sec = Section("Ensemble members")
    members = _members(files)
    if not members:
        return sec.add(files.ensemble_note or "The ensemble has no members.")
    by_trial = {c.trial: c for c in files.candidates}
    hparams = [dict(m.get("hparams") or {}) for m in members]
    keys = list(dict.fromkeys(k for h in hparams for k in h))
    varying = [k for k in keys if len({_compact(h.get(k)) for h in hparams}) > 1]
    shared = [k for k in keys if k not in varying]
    rows = []
    for m, h in zip(members, hparams):
        c = by_trial.get(m.get("trial"))
        rows.append([m.get("trial"), m.get("module"), _f(m.get("weight"), 3),
                     m.get("picks", "–"),
                     _f(_candidate_accuracy(files, c)) if c else "–",
                     _f(_candidate_ce(files, c)) if c else "–"]
                    + [_compact(h.get(k)) for k in varying])
    sec.add("Weight = the member's share of the greedy picks (the export averages the "
            "members' probabilities with these weights).")
    sec.add(Table(["trial", "module", "weight", "picks", "val accuracy", "val CE"] + varying,
                  rows))
    if shared:
        same = ", ".join(f"{k} = {_compact(hparams[0].get(k))}" for k in shared)
        sec.add(f"Shared by every member: {same}.")
    return sec


def _robustness_section(files, figures) -> Section:
    sec = Section("Robustness to corruptions")
    rob = files.robustness
    if rob is None:
        return sec.add(files.robustness_note)
    single = rob.get("best_single")
    sec.add(f"The export evaluated on the {rob.get('split', 'test')} split ({rob.get('n')} "
            f"examples) and on corrupted copies of it (seed {rob.get('seed')}; severities 1-3 "
            "follow ImageNet-C's severities 1, 3 and 5; see docs/report.md).")
    if rob.get("best_single_missing"):
        sec.add(f"Ensemble only: {rob['best_single_missing']}")
    elif single:
        sec.add(f"Best single member: {single.get('trial')} ({single.get('module')}).")
    headers = ["condition", "severity", "ensemble acc", "single acc", "ensemble NLL",
               "single NLL", "ensemble ECE", "single ECE"]

    def row(label, sev, entry):
        e, s = entry["ensemble"], entry.get("best_single")
        return [label, sev, _f(e["accuracy"]), _f(s and s["accuracy"]), _f(e["nll"]),
                _f(s and s["nll"]), _f(e["ece"]), _f(s and s["ece"])]

    rows = [row("clean", "–", rob["clean"])]
    for name, by_sev in (rob.get("corruptions") or {}).items():
        rows += [row(name, sev, entry) for sev, entry in by_sev.items()]
    if rob.get("mean_corrupted"):
        rows.append(row("mean over corruptions", "", rob["mean_corrupted"]))
    sec.add(Table(headers, rows))
    if rob.get("corruptions"):
        figures.append(Figure("robustness", _plot_robustness(rob),
                              "Accuracy under each corruption (mean over severities): "
                              "ensemble vs best single member"))
        sec.add(figures[-1])
    return sec


def _failures_section(files) -> Section:
    sec = Section("What failed and why")
    blocks = []
    if files.ranking is not None and files.ranking.failed_rows:
        blocks.append(f"Modules that could not be ranked ({len(files.ranking.failed_rows)}):")
        blocks.append(Table(["module", "stage", "reason"],
                            [[r["name"], r.get("stage") or "–", r.get("reason") or "–"]
                             for r in files.ranking.failed_rows]))
    if files.failed:
        blocks.append(f"Fine-tuning trials that failed ({len(files.failed)}):")
        blocks.append(Table(["trial", "module", "reason"],
                            [[r.get("trial"), r.get("module") or "–",
                              r.get("reason") or "no reason recorded"] for r in files.failed]))
    if files.skipped:
        blocks.append(f"Candidates left out of the ensemble ({len(files.skipped)}):")
        blocks.append(Table(["trial", "reason"], [[t, r] for t, r in files.skipped]))
    export_skipped = (files.meta.get("export") or {}).get("skipped") or []
    if export_skipped:
        blocks.append(f"Members left out of the export ({len(export_skipped)}):")
        blocks.append(Bullets([_compact(s) for s in export_skipped]))
    if not blocks:
        blocks.append("Nothing failed.")
    return sec.add(*blocks)


def _stages_section(files) -> Section:
    sec = Section("Time per stage")
    stages = files.meta.get("stages") or {}
    if not stages:
        return sec.add("run.json records no stage timings (`hubensemble fit` records them).")
    rows, total = [], 0.0
    for name, info in stages.items():
        info = info if isinstance(info, dict) else {"seconds": info}
        s = info.get("seconds")
        total += float(s or 0)
        extra = ", ".join(f"{k} = {_compact(v)}" for k, v in info.items() if k != "seconds")
        rows.append([name, _seconds(s), extra])
    rows.append(["total", _seconds(total), ""])
    return sec.add(Table(["stage", "time", "details"], rows))


def _versions_section(files) -> Section:
    sec = Section("Versions")
    versions = files.meta.get("versions") or {}
    if not versions:
        return sec.add("run.json records no versions.")
    return sec.add(Table(["package", "version"], [[k, v] for k, v in versions.items()]))


def build_sections(run_dir) -> tuple[str, list, list]:
    """(title, sections, figures) of a run's report; every part degrades to a note saying
    what is missing and which command makes it."""
    files = _load_run(run_dir)
    figures = []
    name = _task(files).get("name")
    title = f"hubensemble report: {name}" if name else "hubensemble report"
    sections = [_overview(files), _data_section(files), _ranking_section(files),
                _knn_section(files, figures), _curve_section(files, figures),
                _test_section(files, figures), _members_section(files),
                _robustness_section(files, figures), _failures_section(files),
                _stages_section(files), _versions_section(files)]
    return title, sections, figures


def write_report(run_dir) -> tuple[Path, Path]:
    """Writes RUN/report.md (figures in RUN/report_files/) and the self-contained
    RUN/report.html; returns their paths. Every file is written atomically.

    Example::

        from hubensemble.report import write_report

        md, html = write_report("runs/digits")
    """
    from hubensemble.rundir import Run

    run = Run(run_dir)
    title, sections, figures = build_sections(run_dir)
    folder = run.path / FIGURES_DIR
    for fig in figures:
        atomic_write_bytes(folder / f"{fig.name}.png", fig.png)
    made = {f.name for f in figures}
    for name in FIGURE_NAMES:  # a figure of an earlier report that no longer applies
        stale = folder / f"{name}.png"
        if name not in made and stale.exists():
            stale.unlink()
    atomic_write_text(run.report_md, render_markdown(title, sections))
    atomic_write_text(run.report_html, render_html(title, sections))
    return run.report_md, run.report_html


# ---------------------------------------------------------------------------------------------
# The demo's closing table
# ---------------------------------------------------------------------------------------------

def summary_table(run_dir) -> str:
    """Best single member vs ensemble on test (accuracy, NLL, ECE), ensemble size, time per
    stage, and where the export and the report are: a few lines for the terminal."""
    from hubensemble.rundir import Run

    run = Run(run_dir)
    path = Path(run_dir)
    meta = run.meta() if run.exists() else {}
    lines = []
    ensemble = None
    if (path / ens.ENSEMBLE_FILE).exists():
        ensemble = ens.read_ensemble(path)
    test = (ensemble or {}).get("test")
    if test:
        b = test.get("best_single")
        label = f"best single ({b['trial']})" if b else "best single"
        width = max(len(label), len("ensemble")) + 2
        lines.append(f"{'test set':<{width}}{'accuracy':>10}{'NLL':>10}{'ECE':>10}")
        if b:
            lines.append(f"{label:<{width}}{b['accuracy']:>10.4f}{b['nll']:>10.4f}"
                         f"{b['ece']:>10.4f}")
        e = test["ensemble"]
        lines.append(f"{'ensemble':<{width}}{e['accuracy']:>10.4f}{e['nll']:>10.4f}"
                     f"{e['ece']:>10.4f}")
    elif ensemble is not None:
        lines.append(f"no test metrics: {ensemble.get('test_missing') or 'no test split'}")
    else:
        lines.append(f"no ensemble yet: run `hubensemble ensemble --run {path}`")
    if ensemble is not None:
        members = ensemble.get("members") or []
        lines.append(f"ensemble size: {_n(len(members), 'member')} ({ensemble.get('size', '?')}"
                     f" greedy picks) of {ensemble.get('n_candidates', '?')} candidates")
    stages = meta.get("stages") or {}
    if stages:
        parts, total = [], 0.0
        for name, info in stages.items():
            s = info.get("seconds") if isinstance(info, dict) else info
            total += float(s or 0)
            parts.append(f"{name} {_seconds(s)}")
        lines.append("time per stage: " + ", ".join(parts) + f"; total {_seconds(total)}")
    recorded = (meta.get("export") or {}).get("path")
    export = recorded or (str(run.export) if run.export.exists() else None)
    lines.append(f"export: {export}" if export else
                 f"export: not written yet (`hubensemble export --run {path}`)")
    if run.report_html.exists():
        lines.append(f"report: {run.report_html} (and {run.report_md.name})")
    else:
        lines.append(f"report: not written yet (`hubensemble report --run {path}`)")
    return "\n".join(lines)

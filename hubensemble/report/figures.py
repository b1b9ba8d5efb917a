"""The report's figures: matplotlib plots as PNG bytes, and the reliability diagram's bins."""

from __future__ import annotations

import io

import numpy as np

from hubensemble import metrics
from hubensemble._tf import first_import
from hubensemble.environment import import_matplotlib
from hubensemble.fileio import json_object

#: Equal-width confidence bins of the reliability diagrams (metrics.ECE_BINS, Guo et al. 2017).
RELIABILITY_BINS = metrics.ECE_BINS


def reliability(probs, y, bins=RELIABILITY_BINS) -> dict:
    """The reliability diagram's numbers of probabilities [N, C] against labels [N].

    Per equal-width confidence bin ((lo, hi], a confidence of 0 in the first: the bins of
    metrics.ece, Guo et al. 2017): "count" (float64 [bins]), "accuracy" and "confidence"
    (float64 [bins] in [0, 1], NaN for empty bins), and "edges" (float64 [bins + 1], 0 to 1).
    Raises ValueError when the shapes do not fit, a label is outside [0, C) or `bins` is
    not an integer >= 1 (`metrics.confidence_bins`).
    """
    count, correct, conf = metrics.confidence_bins(probs, y, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = correct / count
        mean_conf = conf / count
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    return {"count": count, "accuracy": acc, "confidence": mean_conf, "edges": edges}


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib's Agg canvas directly: no pyplot, no global backend switch)
# ---------------------------------------------------------------------------------------------

def _figure(width, height):
    with first_import("matplotlib"):
        # Its folder checked and a MPLBACKEND it does not know left out before its first
        # import (environment.import_matplotlib).
        import_matplotlib()
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


def plot_knn(points, rho, metric, members, what="fine-tuned", without=None) -> bytes:
    """PNG of `knn_figure` (the same arguments)."""
    return _png(knn_figure(points, rho, metric, members, what, without))


def _short_name(name: str, limit: int = 24) -> str:
    """`name` as a figure's point label: whole up to `limit` characters, else its start and
    end around "…" ("imagenet21k…_vector_s_20"), `limit` in all. Cut at its end, modules of
    one family ("imagenet21k_bit_m_r50x1_feature_vector_s_20", "…_m_20") all read
    "imagenet21k_bit_m_r50x1…": their sizes and versions are at the end."""
    if len(name) <= limit:
        return name
    head = (limit - 1) // 2
    return name[:head] + "…" + name[len(name) - (limit - 1 - head):]


#: Where `knn_figure` tries a point's name, in order (offset in points from the point).
_NAME_PLACES = ((4, 3), (4, -10), (-4, 3), (-4, -10))


def knn_figure(points, rho, metric, members, what="fine-tuned", without=None):
    """The matplotlib Figure (Agg canvas) of `plot_knn`: a scatter of `points` [(module,
    proxy score, best val accuracy of its `what` candidates: "fine-tuned", "probe", ...)],
    the modules in `members` (the ensemble's) in orange, Spearman `rho` (None: undefined) in
    the title; `metric` names the proxy. `without` ({module: its score without near-copy
    neighbours}, `rank.nearcopies`; None: none) adds a hollow point there, joined to the
    module's by a grey line, so the gap to the accuracy shows where near copies close it.

    Each point is named (`_short_name`: 24 characters at most) to its upper right, else its
    lower right, upper left or lower left, where the name overlaps no name shown before it:
    the members' first, then the others from the highest accuracy down. With 40 modules
    every name was drawn and most were unreadable, one over another; those left out are
    counted under the axes (the Ranking table lists every module). The legend is to the
    right of the axes (LEGEND_OUTSIDE), over no point or name."""
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    for name, x, y in points:
        chosen = name in members
        ax.scatter([x], [y], s=46 if chosen else 30, marker="o",
                   color="tab:orange" if chosen else "tab:blue", edgecolors="black",
                   linewidths=0.5, zorder=3)
    for name, x, y in points:
        if (without or {}).get(name) is not None:
            ax.plot([without[name], x], [y, y], color="#888", lw=0.8, zorder=2)
            ax.scatter([without[name]], [y], s=30, marker="o", facecolors="none",
                       edgecolors="#555", linewidths=0.8, zorder=3)
    ax.margins(x=0.15, y=0.1)  # room for the names
    ax.get_xlim(), ax.get_ylim()  # the limits settled, so the names' places are final
    renderer = fig.canvas.get_renderer()
    shown, hidden = [], 0
    for name, x, y in sorted(points, key=lambda p: (p[0] not in members, -p[2])):
        # parse_math=False here and below: a name is text, not TeX ("$x$" is shown as
        # typed; an unknown "\cmd" between dollars made savefig raise).
        for dx, dy in _NAME_PLACES:
            label = ax.annotate(_short_name(name), (x, y),
                                fontsize=7, xytext=(dx, dy), textcoords="offset points",
                                ha="left" if dx > 0 else "right", parse_math=False)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in shown):
                shown.append(box)
                break
            label.remove()
        else:
            hidden += 1
    if hidden:
        ax.annotate(f"{hidden} of the {len(points)} names left out where they would overlap "
                    "others (the Ranking table lists every module)", (0, -0.16),
                    xycoords="axes fraction", va="top", fontsize=7, color="#555")
    ax.set_xlabel(f"{metric} proxy score on train (ranking.json)", parse_math=False)
    ax.set_ylabel(f"best {what} validation accuracy")
    text = "undefined" if rho is None else f"{rho:.3f}"
    ax.set_title(f"kNN proxy vs {what} accuracy: Spearman ρ = {text} "
                 f"({len(points)} module{'' if len(points) == 1 else 's'})", fontsize=10)
    ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color="tab:orange", markeredgecolor="black",
                      label="in the ensemble"),
               Line2D([], [], marker="o", ls="", color="tab:blue", markeredgecolor="black",
                      label="not in the ensemble")] if members else []
    if any((without or {}).get(name) is not None for name, _, _ in points):
        handles.append(Line2D([], [], marker="o", ls="", markerfacecolor="none",
                              markeredgecolor="#555", label="without near copies"))
    if handles:
        ax.legend(handles=handles, fontsize=8, **LEGEND_OUTSIDE)
    return fig


#: Where the figures' legends go when they would otherwise sit over the data: to the right of
#: the axes, outside them, so they cover no point or bar whatever the data. An explicit place:
#: matplotlib's loc="best" searched the data for a place and, when that took over a second,
#: warned 'Creating legend with loc="best" can be slow', by timing alone.
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}


def plot_curve(curve, size, single, test_curve=None) -> bytes:
    """PNG of `curve_figure` (the same arguments)."""
    return _png(curve_figure(curve, size, single, test_curve))


def curve_figure(curve, size, single, test_curve=None):
    """The matplotlib Figure (Agg canvas) of `plot_curve`: validation cross-entropy and
    accuracy vs greedy ensemble size (ensemble.json's `curve` [{"size", "ce", "accuracy"}]),
    the chosen `size` dashed, the best single candidate's val metrics (`single` {"nll",
    "accuracy"} or None) dotted, and, when given, the same path on the test split
    (`test_curve`, same records) in orange, labelled as used for no choice (test never
    decides anything; it shows whether validation chose well).
    Each panel's legend below its axes (the curves and lines may run anywhere in them)."""
    sizes = [int(c["size"]) for c in curve]
    fig = _figure(9.0, 3.6)
    for i, (key, label) in enumerate((("ce", "cross-entropy"), ("accuracy", "accuracy"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(sizes, [c[key] for c in curve], marker="o", color="tab:blue",
                label="validation (greedy path)")
        if test_curve:
            ax.plot([int(c["size"]) for c in test_curve], [c[key] for c in test_curve],
                    marker=".", color="tab:orange",
                    label="test: not used for any choice")
        ax.axvline(size, color="tab:red", ls="--", lw=1, label=f"chosen size {size}")
        if single is not None and single.get("nll" if key == "ce" else "accuracy") is not None:
            ax.axhline(single["nll" if key == "ce" else "accuracy"], color="gray", ls=":",
                       label="best single member (validation)")
        ax.set_xlabel("ensemble size (greedy picks)")
        ax.set_ylabel(label)
        ax.set_xticks(sizes if len(sizes) <= 20 else sizes[::max(1, len(sizes) // 10)])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2,
                  frameon=False)
    fig.tight_layout()
    return fig


def plot_reliability(panels) -> bytes:
    """PNG: one reliability diagram (RELIABILITY_BINS bins, ECE in the title) per panel
    (title, probabilities [N, C], labels [N]): `reliability_figure`'s."""
    return _png(reliability_figure(panels))


#: Characters of a reliability panel's title per line (10 pt text over its 4.2-inch panel),
#: and the lines at most, the last cut with "…".
TITLE_WIDTH, TITLE_LINES = 40, 3


def _wrapped(text: str) -> str:
    """`text` on lines of at most TITLE_WIDTH characters, broken at spaces and, in a longer
    word (a trial's name: "default-0041-imagenet21k_bit_m_r50x1_…"), anywhere; at most
    TITLE_LINES lines, the last ending in "…" when text was left out."""
    import textwrap

    lines = textwrap.wrap(text, TITLE_WIDTH, break_long_words=True,
                          break_on_hyphens=False) or [""]
    if len(lines) > TITLE_LINES:
        lines = lines[:TITLE_LINES]
        lines[-1] = lines[-1][:TITLE_WIDTH - 1] + "…"
    return "\n".join(lines)


def reliability_figure(panels):
    """The matplotlib Figure (Agg canvas) of `plot_reliability`: per panel an axes with a bar
    per non-empty bin (accuracy), a red line on it (mean confidence), its count above it, and
    the legend below the axes, outside the data, where it covers no bar: in the upper left it
    hid the low-confidence bars of a model at chance (or of many classes), where the
    confidence is low. Titles are wrapped to their panel (`_wrapped`): a best single member
    of a long module name ran over the panels beside it. ValueError as `reliability`."""
    fig = _figure(4.2 * len(panels), 4.6)
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
        ax.set_title(f"{_wrapped(title)}\nECE {metrics.ece(probs, y, RELIABILITY_BINS):.4f}",
                     fontsize=10, parse_math=False)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
                  frameon=False)
    fig.tight_layout()
    return fig


def plot_robustness(rob) -> bytes:
    """PNG of `robustness_figure` (the same argument)."""
    return _png(robustness_figure(rob))


def robustness_figure(rob):
    """The matplotlib Figure (Agg canvas) of `plot_robustness`: accuracy per condition
    (clean, then each corruption averaged over severities) of the ensemble and, when
    evaluated, the best single member (`rob`: robustness.json); the legend to the right of
    the axes, over no bar."""
    groups = ["clean"] + list(rob.get("corruptions") or {})
    has_single = json_object(rob.get("clean")).get("best_single") is not None

    def acc(name, model):
        # An entry or its model gone (edited by hand) is left out, as a value not recorded.
        if name == "clean":
            return json_object(json_object(rob.get("clean")).get(model)).get("accuracy", np.nan)
        vals = [json_object(json_object(s).get(model)).get("accuracy", np.nan)
                for s in json_object(rob["corruptions"][name]).values()]
        vals = [v for v in vals if isinstance(v, (int, float)) and not np.isnan(v)]
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
    ax.set_xticklabels([g.replace("_", " ") for g in groups], rotation=20, ha="right",
                       parse_math=False)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"{rob.get('split', 'test')} accuracy (mean over severities)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, **LEGEND_OUTSIDE)
    fig.tight_layout()
    return fig


#: How far past the largest cost plotted a --max-gflops budget is still drawn (a factor):
#: further out the log axis would squeeze every point into its left end, and at a finite but
#: huge budget (1e308) matplotlib's log scale overflowed ("overflow encountered in exp").
BUDGET_SPAN = 100.0


def budget_drawn(panels, limit) -> bool:
    """Whether `plot_cost` draws the budget `limit` (GFLOPs per image, float or None) over
    `panels` (its argument): a positive finite limit at most BUDGET_SPAN times the largest
    GFLOPs plotted (candidates, path, extras; with none plotted, never). The caption says
    when a budget is left out."""
    if limit is None or not np.isfinite(limit) or limit <= 0:
        return False
    xs = [float(g) for p in panels for g in
          [c[0] for c in p.get("candidates") or []] + [q[0] for q in p.get("path") or []]
          + [e[1] for e in p.get("extras") or []] if g is not None and np.isfinite(g) and g > 0]
    return bool(xs) and limit <= BUDGET_SPAN * max(xs)


def plot_cost(panels, limit=None) -> bytes:
    """PNG: accuracy vs inference GFLOPs per image (log x), the paper's Figure 2 for one run;
    one panel per dict in `panels`: "title", "candidates" [(gflops, accuracy, in the
    ensemble)] (every candidate, grey or orange), "path" [(gflops, accuracy)] of each prefix
    of the greedy path (a line), "chosen" (the index of the chosen prefix in "path", a star)
    and "extras" [(label, gflops, accuracy)] (e.g. the distilled student, a diamond).
    `limit`: the --max-gflops budget, a dashed vertical line when `budget_drawn`."""
    drawn = budget_drawn(panels, limit)
    fig = _figure(5.2 * len(panels), 4.2)
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        cands = panel.get("candidates") or []
        for chosen in (False, True):
            pts = [(g, a) for g, a, member in cands if bool(member) == chosen]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=28 if chosen else 18,
                           color="tab:orange" if chosen else "tab:gray",
                           alpha=0.9 if chosen else 0.6, edgecolors="black", linewidths=0.4,
                           zorder=3, label="ensemble member" if chosen else "candidate")
        path = panel.get("path") or []
        if path:
            ax.plot([p[0] for p in path], [p[1] for p in path], marker=".", color="tab:blue",
                    lw=1.2, zorder=2, label="greedy path (prefixes)")
            j = panel.get("chosen")
            if j is not None and 0 <= j < len(path):
                ax.scatter([path[j][0]], [path[j][1]], marker="*", s=180, color="tab:red",
                           edgecolors="black", linewidths=0.5, zorder=4,
                           label="chosen ensemble")
        for label, g, a in panel.get("extras") or []:
            ax.scatter([g], [a], marker="D", s=60, color="tab:green", edgecolors="black",
                       linewidths=0.5, zorder=4, label=label)
        if drawn:
            ax.axvline(limit, color="tab:red", ls="--", lw=1, label=f"budget {limit:g} GFLOPs")
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("inference GFLOPs per image")
        ax.set_ylabel("accuracy")
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)

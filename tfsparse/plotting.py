"""Figures made from results files only (never from live models)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tfsparse.reporting import aggregate  # noqa: E402

# Guo Fig. 1-2 panels: (title, [(record key, legend label)]).
_PANELS = (
    ("clean accuracy", [("clean_accuracy", "clean")]),
    ("r∞ (accuracy at ε)", [("r_inf", "FGS"), ("r_inf_rfgs", "rFGS")]),
    ("r2 (mean l2 distance)", [("r2", "DeepFool"), ("r2_cw", "C&W")]),
)
_SPARSITY_TICKS = ((1.0, "0"), (0.5, "50"), (0.1, "90"), (0.01, "99"), (0.001, "99.9"), (1e-4, "99.99"))


def _save(fig, path):
    """Lays out, writes (PNG, 120 dpi) and closes ``fig``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

def plot_robustness_vs_sparsity(records, path, title="", over_pruning=None):
    """Guo Fig. 1–2 style: clean accuracy, r∞ (FGS, rFGS) and r2 (DeepFool, C&W) per pruning round.

    The x axis is the fraction of weights remaining (mean over seeds), on a log scale running
    from dense (left) to sparse (right), with weight sparsity (%) on the top axis: past 90 %
    sparsity, where the rounds crowd together on a linear sparsity axis, each round keeps its
    own width. Points are means over seeds and error bars 95 % CI half-widths (Student t, none
    for one seed). Measures missing from the records are left out of their panel.

    Args:
      records: per-(seed, round) dicts with ``round``, ``sparsity`` and the measures.
      path: output image (PNG by extension).
      title: figure title.
      over_pruning: :func:`tfsparse.reporting.over_pruning` findings: each measure's peak is
        ringed and the round where an r2 falls while accuracy holds gets a dashed line.

    Returns:
      ``path``.
    """
    keys = [key for _, lines in _PANELS for key, _ in lines if any(r.get(key) is not None for r in records)]
    rows = aggregate(records, "round", ["sparsity"] + keys)
    remaining = [max(1.0 - row["sparsity"], 1e-6) for row in rows]
    panels = [(name, [(k, label) for k, label in lines if k in keys]) for name, lines in _PANELS]
    panels = [panel for panel in panels if panel[1]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
    for axis, (name, lines) in zip(axes[0], panels):
        for key, label in lines:
            values = [row[key] for row in rows]
            errors = [row[key + "_ci95"] or 0.0 for row in rows]
            drawn = axis.errorbar(remaining, values, yerr=errors, marker="o", markersize=3, capsize=3, label=label)
            peak = (over_pruning or {}).get("peaks", {}).get(key)
            if peak is not None:
                axis.plot([max(1.0 - peak["sparsity"], 1e-6)], [peak["value"]], marker="o", markersize=11,
                          markerfacecolor="none", color=drawn[0].get_color())
            fall = (over_pruning or {}).get("r2_falls", {}).get(key)
            if fall is not None:
                axis.axvline(max(1.0 - fall["sparsity"], 1e-6), color=drawn[0].get_color(), linestyle="--",
                             linewidth=1, label=f"{label} falls, accuracy holds")
        axis.set_xscale("log")
        axis.set_xlim(max(remaining) * 1.3, min(remaining) / 1.3)  # dense on the left
        axis.set_xlabel("fraction of weights remaining")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3, which="both")
        top = axis.secondary_xaxis("top")
        ticks = [(v, text) for v, text in _SPARSITY_TICKS if min(remaining) / 1.3 <= v <= max(remaining) * 1.3]
        top.set_xticks([v for v, _ in ticks], [text for _, text in ticks])
        top.set_xticks([], minor=True)
        top.set_xlabel("weight sparsity (%)")
        if len(axis.get_legend_handles_labels()[0]) > 1:
            axis.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_weight_histograms(model_or_dict, path, log_y=True, bins=50, per_layer=True):
    """Histograms of the non-zero kernel weights (Wang Fig. 2–4, RSR Fig. 1).

    Args:
      model_or_dict: a model, or ``{layer_name: ndarray}`` kernels read from results.
      path: output image path (PNG by extension).
      log_y: logarithmic count axis (the papers' choice for the heavy centre).
      bins: bins per histogram.
      per_layer: one panel per layer plus "all"; False draws only the pooled panel.

    Returns:
      ``path``.
    """
    from tfsparse.sparsity import weight_histogram_data

    if isinstance(model_or_dict, dict):
        weights = model_or_dict
    else:
        from tfsparse.sparsity import kernels

        weights = kernels(model_or_dict)
    panels = ([(name, name) for name in weights] if per_layer else []) + [(None, "all layers")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    for axis, (layer, title) in zip(axes[0], panels):
        data = weight_histogram_data(weights, layer=layer, bins=bins)
        axis.stairs(data["counts"], data["edges"], fill=True)
        if log_y:
            axis.set_yscale("log")
        nonzero = data["size"] - data["zeros"]
        axis.set_title(f"{title}\n{nonzero}/{data['size']} non-zero", fontsize=9)
        axis.set_xlabel("weight value")
        axis.set_ylabel("count")
    return _save(fig, path)


def plot_accuracy_by_row(summary, path, measures, title=""):
    """Wang Tables 3–4 as a figure: grouped bars of accuracies per table row, 95 % CI error bars.

    Args:
      summary: rows as from :func:`tfsparse.reporting.aggregate` (read from results.json),
        each with ``row``, ``n`` and per measure ``key`` and ``key_ci95`` (None with one seed:
        no error bar is drawn).
      path: output image path (PNG by extension).
      measures: ``[(key, label)]``, e.g. ``[("clean_accuracy", "clean"), ("pgd_accuracy", "PGD-100")]``;
        a row without a measure gets no bar.
      title: figure title.

    Returns:
      ``path``.
    """
    width = 0.8 / max(1, len(measures))
    fig, axis = plt.subplots(figsize=(1.2 + 1.3 * len(summary) * max(1, len(measures)) / 2, 3.6))
    for index, (key, label) in enumerate(measures):
        positions = [i + (index - (len(measures) - 1) / 2) * width for i in range(len(summary))]
        values = [row.get(key) if row.get(key) is not None else float("nan") for row in summary]
        errors = [row.get(key + "_ci95") or 0.0 for row in summary]
        axis.bar(positions, values, width, yerr=errors if any(errors) else None, capsize=3, label=label)
    axis.set_xticks(range(len(summary)))
    axis.set_xticklabels([f"{row['row']}\n(n={row['n']})" for row in summary])
    axis.set_ylabel("accuracy")
    axis.set_ylim(0.0, 1.0)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_certified_radius_curves(curves, path, title=""):
    """Certified accuracy against the l2 radius (Cohen et al. 2019, Figure 6), one line per setting.

    Args:
      curves: ``[(label, radii, accuracies, ci95s)]``: a smoothed model's certified accuracy at
        each radius (mean over seeds) and its 95 % CI half-widths (None: no band).
      path: output image path (PNG by extension).
      title: figure title.

    Returns:
      ``path``.
    """
    fig, axis = plt.subplots(figsize=(5.0, 3.6))
    for label, radii, accuracies, ci95s in curves:
        line, = axis.plot(radii, accuracies, marker="o", label=label)
        if ci95s and any(c is not None for c in ci95s):
            half = [c or 0.0 for c in ci95s]
            axis.fill_between(radii, [a - h for a, h in zip(accuracies, half)],
                              [a + h for a, h in zip(accuracies, half)], color=line.get_color(), alpha=0.15)
    axis.set_xlabel("l2 radius (pixel units)")
    axis.set_ylabel("certified accuracy")
    axis.set_ylim(0.0, 1.0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title, fontsize=9)
    return _save(fig, path)


_METHOD_COLOURS = {"DENSE": "black", "LUP": "tab:blue", "GUP": "tab:orange", "FP": "tab:green", "NS": "tab:red"}


def plot_robustness_vs_norm_products(rows, path, accuracy_key="pgd_accuracy"):
    """Wang Fig. 1 / Thm 2 view: adversarial accuracy against the L0, L1 and L2 norm products.

    One point per result row (each seed), coloured by method, filled for inherited and hollow
    for re-initialised weights; x is the natural log of the product over layers of the
    kernels' norms (``log_l0``, ``log_l1``, ``log_l2`` of the rows).

    Args:
      rows: result rows with ``method``, ``init``, ``log_l0/l1/l2`` and ``accuracy_key``.
      path: output image path.
      accuracy_key: the robustness measure on the y axis.

    Returns:
      ``path``.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12.6, 3.6))
    for axis, key, label in zip(axes, ("log_l0", "log_l1", "log_l2"), ("L0", "L1", "L2")):
        for row in rows:
            colour = _METHOD_COLOURS.get(row["method"].upper(), "grey")
            hollow = row.get("init") == "reinit"
            axis.scatter(row[key], row[accuracy_key], s=28, edgecolors=colour,
                         facecolors="none" if hollow else colour, marker="o" if not hollow else "s")
        axis.set_xlabel(f"log ∏ ‖W_j‖_{label[1]}  ({label} norm product)")
        axis.set_ylabel(accuracy_key.replace("_", " "))
        axis.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=m) for m, c in _METHOD_COLOURS.items()]
    handles.append(plt.Line2D([], [], marker="s", linestyle="", markerfacecolor="none", color="grey",
                              label="re-initialised"))
    axes[-1].legend(handles=handles, fontsize=7, loc="best")
    return _save(fig, path)


def plot_histogram_overlay(panels, path, title=""):
    """Overlaid weight histograms, log y (Wang Figs. 2–4), from stored histogram data.

    Args:
      panels: ``{panel title: {curve label: {"counts": [...], "edges": [...]}}}``, e.g. one
        panel per pruning method with curves "inherited" / "reinit". Counts are divided by
        the bin width (density without normalisation), so curves with different bins
        compare; exact zeros are not part of the counts.
      path: output image path.
      title: figure title.

    Returns:
      ``path``.
    """
    import numpy as np

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    for axis, (name, curves) in zip(axes[0], panels.items()):
        for label, data in curves.items():
            counts, edges = np.asarray(data["counts"], float), np.asarray(data["edges"], float)
            axis.stairs(counts / np.diff(edges), edges, label=str(label), linewidth=1.2)
        axis.set_yscale("log")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("weight value")
        axis.set_ylabel("count per unit")
        axis.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_pareto_front(trials, path, *, over_pruning=None, title=""):
    """The λ/γ search's trade-off: every trial, its Pareto front over (sparsity, clean, PGD).

    Two panels share the sparsity axis: PGD accuracy and clean accuracy. Each trial is a dot
    coloured by the other accuracy; the Pareto-front trials (rows with ``pareto`` True, from
    :func:`tfsparse.pipelines.tune.pareto_front`) are ringed (a front in three dimensions, so
    its projection is not a curve and is not joined). The
    over-pruning point (RSR Fig. 2a; :func:`tfsparse.pipelines.tune.over_pruning_point`) gets a
    dashed vertical line at its sparsity.

    Args:
      trials: tuner rows with ``sparsity``, ``clean_accuracy``, ``pgd_accuracy``, ``pareto``.
      path: output image path.
      over_pruning: the over-pruning point dict, or None.
      title: figure title.

    Returns:
      ``path``.
    """
    panels = (("pgd_accuracy", "PGD accuracy", "clean_accuracy"), ("clean_accuracy", "clean accuracy", "pgd_accuracy"))
    front = sorted((t for t in trials if t.get("pareto")), key=lambda t: t["sparsity"])
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8))
    for axis, (key, label, colour_key) in zip(axes, panels):
        dots = axis.scatter([t["sparsity"] for t in trials], [t[key] for t in trials],
                            c=[t[colour_key] for t in trials], cmap="viridis", s=22, zorder=2)
        fig.colorbar(dots, ax=axis, label=colour_key.replace("_", " "))
        if front:
            axis.plot([t["sparsity"] for t in front], [t[key] for t in front], linestyle="none", color="black",
                      marker="o", markersize=9, markerfacecolor="none", label="Pareto front", zorder=3)
        if over_pruning is not None:
            axis.axvline(over_pruning["sparsity"], color="tab:red", linestyle="--", linewidth=1,
                         label="over-pruning (PGD accuracy falls)")
        axis.set_xlabel("weight sparsity")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_tuning_curves(trials, path, *, over_pruning=None, title=""):
    """RSR Fig. 2a–c from the λ/γ search's trials.

    (a) PGD accuracy vs weight sparsity, every trial a dot and the best per searched sparsity
    joined (the envelope the over-pruning point is read from), the point marked; (b) clean and
    PGD accuracy vs the lasso λ (log axis; RSR Fig. 2b); (c) clean and PGD accuracy vs the
    pruning threshold γ, with the fraction of weights below γ (the sparsity it gives) on a
    second axis (RSR Fig. 2c). The trials of a random search vary the other hyperparameters
    too, so (b) and (c) show dots, not curves.

    Args:
      trials: tuner rows with ``lasso``, ``gamma``, ``sparsity``, ``clean_accuracy``,
        ``pgd_accuracy``.
      path: output image path.
      over_pruning: :func:`tfsparse.pipelines.tune.over_pruning_point`'s dict, or None.
      title: figure title.

    Returns:
      ``path``.
    """
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8))

    def curve(axis, x_key, y_key, label, **style):
        points = sorted((t[x_key], t[y_key]) for t in trials)
        axis.plot([p[0] for p in points], [p[1] for p in points], label=label,
                  **{"linestyle": "none", "marker": "o", "markersize": 4, **style})

    curve(axes[0], "sparsity", "pgd_accuracy", "PGD (each trial)")
    best = {}
    for t in trials:
        level = t.get("target_sparsity", t["sparsity"])
        if level not in best or t["pgd_accuracy"] > best[level]["pgd_accuracy"]:
            best[level] = t
    envelope = [best[level] for level in sorted(best)]
    axes[0].plot([t["sparsity"] for t in envelope], [t["pgd_accuracy"] for t in envelope], color="black",
                 linewidth=1, label="best per sparsity")
    if over_pruning is not None:
        axes[0].axvline(over_pruning["sparsity"], color="tab:red", linestyle="--", linewidth=1, label="over-pruning")
    axes[0].set_xlabel("weight sparsity")
    axes[0].set_title("(a) PGD accuracy vs sparsity", fontsize=9)
    for axis, key, name in ((axes[1], "lasso", "λ (lasso)"), (axes[2], "gamma", "γ (threshold)")):
        curve(axis, key, "clean_accuracy", "clean")
        curve(axis, key, "pgd_accuracy", "PGD")
        axis.set_xlabel(name)
    axes[1].set_xscale("log")
    axes[1].set_title("(b) accuracy vs λ", fontsize=9)
    axes[2].set_title("(c) accuracy and weights below γ vs γ", fontsize=9)
    below = axes[2].twinx()
    curve(below, "gamma", "sparsity", "weights below γ", color="gray", marker="x")
    below.set_ylabel("fraction of weights below γ")
    for axis in axes:
        axis.set_ylabel("accuracy")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower left")
    below.legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_oneshot_figures(rows, folder, methods=("lup", "gup", "fp", "ns")):
    """Wang Fig. 1 (robustness vs norm products) and Fig. 2-style histograms (per method, inherited vs
    re-initialised, and all methods at each p) from Wang Tables 1–2 result rows into ``folder``.

    Args:
      rows: rows with ``seed``, ``method`` (``dense`` or one of ``methods``), ``p``, ``init``,
        ``histogram`` and the fields of :func:`plot_robustness_vs_norm_products`; the histograms
        are those of the lowest seed.
      folder: where the PNGs go.
      methods: the pruning methods, in panel order.

    Returns:
      The file names written (``fig1_robustness_vs_norm_products.png``, ``fig2_weight_histograms_p<%>.png``).
    """
    import os

    names = []
    pruned = [r for r in rows if r["method"] != "dense"]
    if pruned:
        names.append(plot_robustness_vs_norm_products(rows, os.path.join(folder, "fig1_robustness_vs_norm_products.png")))
    seed = min(r["seed"] for r in rows)
    by = {(r["method"], r["p"], r["init"]): r["histogram"] for r in rows if r["seed"] == seed}
    for p in sorted({r["p"] for r in pruned}):
        panels = {}
        for method in methods:
            curves = {init: by[(method, p, init)] for init in ("inherited", "reinit") if (method, p, init) in by}
            if curves:
                panels[method.upper()] = curves
        panels["all (inherited)"] = {m.upper(): by[(m, p, "inherited")] for m in methods if (m, p, "inherited") in by}
        if ("dense", 0.0, "inherited") in by:
            panels["all (inherited)"]["dense"] = by[("dense", 0.0, "inherited")]
        name = f"fig2_weight_histograms_p{int(round(100 * p))}.png"
        plot_histogram_overlay(panels, os.path.join(folder, name), title=f"non-zero kernel weights, p = {p:.0%} (seed {seed})")
        names.append(name)
    return [os.path.basename(n) for n in names]

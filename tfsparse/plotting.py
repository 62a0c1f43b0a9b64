"""Figures made from results files only (never from live models)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tfsparse.reporting import aggregate  # noqa: E402

_PANELS = (("clean_accuracy", "clean accuracy"), ("r_inf", "r∞ (FGS accuracy)"), ("r2", "r2 (DeepFool)"))


def plot_robustness_vs_sparsity(records, path, title=""):
    """Guo Fig. 1–2 style: clean accuracy, r∞ and r2 against weight sparsity (%).

    With several seeds per round, points are means and error bars one standard deviation.
    """
    rows = aggregate(records, "round", ["sparsity"] + [key for key, _ in _PANELS])
    sparsity = [100.0 * row["sparsity"] for row in rows]
    fig, axes = plt.subplots(1, len(_PANELS), figsize=(4.2 * len(_PANELS), 3.4))
    for axis, (key, label) in zip(axes, _PANELS):
        values = [row[key] for row in rows]
        errors = [row[key + "_std"] if row["n"] > 1 else 0.0 for row in rows]
        axis.errorbar(sparsity, values, yerr=errors, marker="o", markersize=3, capsize=3)
        axis.set_xlabel("weight sparsity (%)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    from tfsparse.sparsity.stats import weight_histogram_data

    if isinstance(model_or_dict, dict):
        weights = model_or_dict
    else:
        from tfsparse.sparsity.oneshot import kernels

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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

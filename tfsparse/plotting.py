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

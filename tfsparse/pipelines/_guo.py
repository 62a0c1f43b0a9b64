"""What Guo et al. 2018's experiments share: the sweep's files, its records' columns and its report.

The progressive-pruning sweep (:mod:`~tfsparse.pipelines.guo`) keeps one weights file per
(seed, round), ``checkpoints/seed<S>/round<R>.weights.h5``, and one record per (seed, round)
in ``results.json``; the tables beside it (:mod:`~tfsparse.pipelines.guo_tables`: Table 2
analogue, CLEVER) read those files (:func:`read_sweep`, :func:`round_model`). Here too: the
per-round columns of Guo §4's measures (r∞ by FGS / rFGS, eq. 5; r2 by DeepFool / C&W, eq. 1
/ 5, with failure counts), the linear-model theory beside them (Theorems 3.1 and 3.2), and the
sweep's markdown section and output files.
"""

import json
import os

import ml_collections

from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse.errors import ConfigError
from tfsparse.pipelines._build import MEASURE_LABELS
from tfsparse.pipelines._build import MEASURES
from tfsparse.pipelines._build import MINIMAL_MEASURES
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import robustness_columns

SWEEP_KIND = "guo_progressive_pruning"
FIGURE = "robustness_vs_sparsity.png"
SUMMARY_CSV = "results_summary.csv"


def require(condition, message):
    """ConfigError(message) unless ``condition``."""
    if not condition:
        raise ConfigError(message)


def measures_in(record):
    """The Guo measures a record carries, in the order ``eval.measures`` named them."""
    return [key for key in record if key in MEASURES]


def measure_line(record, measures):
    """``clean_accuracy 0.9812 r_inf 0.4100 ...``: a progress line's measures."""
    return " ".join(f"{key} {record[key]:.4f}" for key in ("clean_accuracy", *measures))


# --- the sweep's files --------------------------------------------------------------------------


def _read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def round_weights_path(run_dir, seed, round_index):
    """Where the stripped weights of (seed, round) are kept in the run directory ``run_dir``."""
    return os.path.join(run_dir, "checkpoints", f"seed{seed}", f"round{round_index}.weights.h5")


def read_sweep(sweep_dir, section):
    """``(sweep config, results.json)`` of the complete sweep a table's ``<section>.sweep_dir`` names.

    Raises:
      ConfigError: no run directory, not a sweep, or not complete.
    """
    sweep_dir = os.path.abspath(sweep_dir)
    paths = [os.path.join(sweep_dir, name) for name in ("config.json", "results.json")]
    require(all(os.path.isfile(p) for p in paths),
            f"{section}.sweep_dir {sweep_dir} holds no config.json / results.json; name the run directory "
            "of a scripts/sweep.py (guo_progressive_pruning) run")
    stored, state = (_read_json(p) for p in paths)
    require(state.get("pipeline") == SWEEP_KIND,
            f"{section}.sweep_dir {sweep_dir} holds a {state.get('pipeline')!r} run, not a {SWEEP_KIND} sweep")
    require(state.get("status") == "complete",
            f"{section}.sweep_dir {sweep_dir} is not complete ({state.get('status')}); finish it with --resume")
    return ml_collections.ConfigDict(stored["config"]), state


def round_model(sweep_dir, sweep_cfg, dataset, seed, round_index):
    """The stripped model of (seed, round) of a sweep, rebuilt and loaded from its checkpoint."""
    path = round_weights_path(sweep_dir, seed, round_index)
    require(os.path.isfile(path), f"{path} is missing; the sweep keeps one weights file per (seed, round)")
    model = build_model(sweep_cfg.model, dataset, seed)
    model.load_weights(path)
    return model


def records_by_round(state):
    return {(r["seed"], r["round"]): r for r in state.get("records", [])}


# --- the sweep's columns ------------------------------------------------------------------------


def summary_keys(measures):
    """Keys averaged over seeds per round: sparsities, clean accuracy, measures and r2 failures."""
    keys = ["target_sparsity", "sparsity", "clean_accuracy"]
    for measure in measures:
        keys += [measure] + ([f"{measure}_failures"] if measure in MINIMAL_MEASURES else [])
    return keys


# The linear-model theory of a record (``record["theory"]``, Guo et al. 2018 Theorems 3.1 and
# 3.2 from tfsparse.metrics.theory.linear_model_bounds), as table headers.
THEORY_LABELS = {"thm31_r2": "r2 (Thm 3.1)", "thm31_r_inf_bound": "r∞ bound (Thm 3.1)",
                 "thm32_r2_bound": "r2 bound (Thm 3.2)", "thm32_r_inf_bound": "r∞ bound (Thm 3.2)"}


def theory_keys(records):
    """The flat keys (``theory_<name>``) of the theory values the records carry, in label order."""
    found = {name for r in records for name in (r.get("theory") or {})}
    return [f"theory_{name}" for name in THEORY_LABELS if name in found]


def table_columns(measures, theory=()):
    """Columns of the per-round table: round, seeds, target sparsity, the robustness columns,
    then the theory values beside them (linear models)."""
    return [("round", "round", "{:d}"), ("n", "seeds", "{:d}"), ("target_sparsity", "target sparsity", "{:.4f}"),
            *robustness_columns(measures),
            *[(key, THEORY_LABELS[key[len("theory_"):]], "{:.4f}") for key in theory]]


def flat(record):
    """A sweep record as one CSV row: no per-layer sparsities, the theory as ``theory_<name>``."""
    row = {k: v for k, v in record.items() if k not in ("layer_sparsity", "theory")}
    row.update({f"theory_{k}": v for k, v in (record.get("theory") or {}).items() if not isinstance(v, (dict, list))})
    return row


def sweep_measures(state):
    return state.get("measures") or [m for m in MEASURES if any(m in r for r in state["records"])]


# --- the sweep's outputs and report ---------------------------------------------------------------


def write_sweep_outputs(run_dir, state, config_dict):
    """Writes results.csv, results_summary.csv and results.md (the figure: :func:`draw_sweep_figure`);
    returns the fields ``summary`` and ``over_pruning`` for results.json."""
    records, measures = state["records"], sweep_measures(state)
    summary = reporting.aggregate([flat(r) for r in records], "round", summary_keys(measures) + theory_keys(records))
    found = reporting.over_pruning(records, measures)
    results.write_csv(os.path.join(run_dir, "results.csv"), [flat(r) for r in records])
    results.write_csv(os.path.join(run_dir, SUMMARY_CSV), summary)
    results.atomic_write_text(os.path.join(run_dir, "results.md"),
                              sweep_section(dict(state, over_pruning=found), config_dict, FIGURE, "#"))
    return {"summary": summary, "over_pruning": found}


def draw_sweep_figure(run_dir, state, config_dict):
    """Guo Figs. 1–2 style: every measure against weight sparsity (mean ± 95 % CI over seeds), with the
    over-pruning finding marked; from the run's records. Returns ``[path]``."""
    records = state["records"]
    found = state.get("over_pruning") or reporting.over_pruning(records, sweep_measures(state))
    seeds = len({r["seed"] for r in records})
    spread = f"{seeds} seeds, mean ± 95 % CI" if seeds > 1 else "1 seed"
    path = os.path.join(run_dir, FIGURE)
    plotting.plot_robustness_vs_sparsity(records, path, over_pruning=found,
                                         title=f"{config_dict['model']['name']} on {config_dict['data']['name']}: "
                                               f"{spread}")
    return [path]


def _settings(eval_cfg, measures):
    parts = []
    if "r_inf" in measures or "r_inf_rfgs" in measures:
        parts.append(f"r∞ at ε = {eval_cfg['fgs_eps']:g}" + (
            f" (rFGS random step {eval_cfg['rfgs_alpha']:g}·ε)" if "r_inf_rfgs" in measures else ""))
    if "r2" in measures:
        parts.append(f"DeepFool overshoot {eval_cfg['deepfool_overshoot']:g}, {eval_cfg['deepfool_max_iter']} "
                     f"iterations, box rule {eval_cfg['deepfool_box_rule']}")
    if "r2_cw" in measures:
        parts.append(f"C&W {eval_cfg['cw_binary_search_steps']} × {eval_cfg['cw_steps']} Adam steps, rate "
                     f"{eval_cfg['cw_learning_rate']:g}, c₀ {eval_cfg['cw_initial_const']:g}, "
                     f"κ {eval_cfg['cw_confidence']:g}")
    return "; ".join(parts)


def sweep_section(state, config_dict, figure, level):
    """The markdown of one sweep from its results.json ``state`` and config."""
    records, measures = state["records"], sweep_measures(state)
    seeds = sorted({r["seed"] for r in records})
    theory = theory_keys(records)
    summary = reporting.aggregate([flat(r) for r in records], "round", summary_keys(measures) + theory)
    found = state.get("over_pruning") or reporting.over_pruning(records, measures)
    prune, num_eval = config_dict["prune"], records[0]["num_eval"]
    data = reporting.data_label(state.get("data_source", config_dict["data"].get("data_dir") or "embedded sample"))
    sizes = f", {state['num_train']:,} train / {state['num_test']:,} test" if "num_train" in state else ""
    lines = [
        f"{level} {config_dict['model']['name']} on {config_dict['data']['name']} ({data}{sizes}): progressive "
        f"pruning, ρ = {prune['rate']:.3g}, {prune['rounds']} rounds; {len(seeds)} seed(s); measures on the first "
        f"{num_eval:,} test images",
        "",
        f"Mean over seeds ± 95 % CI half-width (Student t; none for one seed). "
        f"{_settings(config_dict['eval'], measures)}. "
        f"*failures*: correctly classified images the r2 attack to their left did not flip (mean per seed, out of "
        f"{num_eval:,}); they are left out of that r2's mean.",
        "",
        reporting.markdown_table(summary, table_columns(measures, theory)),
        reporting.over_pruning_text(found, MEASURE_LABELS),
        f"![robustness vs sparsity]({figure})",
        "",
    ]
    if state.get("reevaluated"):
        last = state["reevaluated"][-1]
        lines.insert(-2, f"Re-evaluated from the kept weights on {last['at']} "
                         f"(measures {', '.join(last['measures'])}).\n")
    return "\n".join(lines)

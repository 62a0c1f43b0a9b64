"""Wang et al. 2020 Tables 3–4 from their records: seed summaries, paired differences, results.md, figure, report.

The rendering half of the declarations in :mod:`~tfsparse.pipelines.wang_lottery` (Table 3)
and :mod:`~tfsparse.pipelines.wang_iwi` (Table 4): everything here reads a run's files only,
so ``scripts/report.py`` (pooled seed directories) and ``scripts/plot.py`` (the figure) work
on any run directory, finished or not.
"""

import os

from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse.pipelines import engine

# What each row starts from, for tables and figures.
STARTS = {
    "dense": "θ0 (dense)",
    "ticket": "θ0 ⊙ M_K (Alg. 1)",
    "reinit": "fresh ⊙ M_K",
    "random": "θ0 ⊙ random mask",
    "iwi": "θ′ ⊙ M_K + θ0 ⊙ (M0 − M_K) (Alg. 2)",
}
MEASURES = ["sparsity", "clean_accuracy", "pgd_accuracy", "autoattack_accuracy"]
PAIRED = ("clean_accuracy", "pgd_accuracy")  # also reported as per-seed differences to BASELINES' rows
BASELINES = ("dense", "ticket")  # Table 3: does a row beat dense training; do the controls match the ticket
FIGURE = "accuracy_by_row.png"
POOLED_FIGURE = "accuracy_by_row_pooled.png"  # report.py's figure of seeds run in several directories


def summarise(records, rows):
    """Per row (in ``rows`` order): mean, std and 95 % CI over seeds of :data:`MEASURES`, and of
    the paired per-seed differences (row − baseline) to the same seed's ``dense`` and ``ticket``
    rows (``<measure>_vs_dense``, ``<measure>_vs_ticket`` for :data:`PAIRED`). Every row of a
    seed starts from the same θ0, so the paired interval is the one that says whether a row
    beats dense training, or whether a control (reinit, random mask) or IWI differs from the
    ticket; a seed without the baseline row is left out of that difference."""
    by_row = {r["row"]: r for r in reporting.aggregate(records, "row", MEASURES)}
    paired = {}
    for baseline in BASELINES:
        base = {r["seed"]: r for r in records if r["row"] == baseline}
        keys = [f"{key}_vs_{baseline}" for key in PAIRED]
        differences = [{"row": r["row"], **{f"{key}_vs_{baseline}": r[key] - base[r["seed"]][key] for key in PAIRED}}
                       for r in records if r["row"] not in BASELINES[:BASELINES.index(baseline) + 1]
                       and r["seed"] in base]
        for entry in reporting.aggregate(differences, "row", keys):
            paired.setdefault(entry["row"], {}).update({k: v for k, v in entry.items() if k not in ("row", "n")})
    summary = []
    for row in rows:
        if row not in by_row:
            continue
        entry = dict(by_row[row])
        entry.update(paired.get(row, {}))
        first = next(r for r in records if r["row"] == row)
        entry.update({k: first[k] for k in ("start", "epochs", "search_epochs", "total_epochs") if k in first})
        summary.append(entry)
    return summary


def _columns(summary):
    columns = [("row", "row", "{}"), ("start", "start", "{}"), ("search_epochs", "search epochs", "{:g}"),
               ("epochs", "epochs", "{:g}"), ("total_epochs", "epochs from θ0", "{:g}"), ("n", "seeds", "{:d}"), ("sparsity", "weight sparsity", "{:.4f}"),
               ("clean_accuracy", "clean accuracy", "{:.4f}"), ("pgd_accuracy", "PGD accuracy", "{:.4f}")]
    if any(row.get("autoattack_accuracy") is not None for row in summary):
        columns.append(("autoattack_accuracy", "AutoAttack accuracy", "{:.4f}"))
    for baseline in BASELINES:
        if any(row.get(f"pgd_accuracy_vs_{baseline}") is not None for row in summary):
            columns += [(f"clean_accuracy_vs_{baseline}", f"Δ clean vs {baseline} (paired)", "{:.4f}"),
                        (f"pgd_accuracy_vs_{baseline}", f"Δ PGD vs {baseline} (paired)", "{:.4f}")]
    return columns


def _describe(state, config):
    """One paragraph on what a run measured, from its results.json and config.json."""
    lot, pgd, e = config["lottery"], config["pgd"], config["robust_eval"]
    records = state.get("records", [])
    n_eval = records[0]["num_eval"] if records else pgd["eval_examples"]
    pgd_eval = records[0]["pgd"] if records else f"PGD-{pgd['eval_steps']}"
    text = (f"{config['model']['name']} on {config['data']['name']} ({reporting.data_label(state.get('data_source'))}: "
            f"{state.get('num_train')} training / {state.get('num_test')} test images; {len(config['seeds'])} seed(s), "
            f"mean ± 95 % Student-t interval over seeds). Ticket: K = {lot['iterations']} iterations of p = "
            f"{lot['prune_fraction']:g} of the original weights ({lot['search_epochs']:g} epoch(s) of PGD training "
            f"each, rewound to θ0), target sparsity {lot['iterations'] * lot['prune_fraction']:.4g} of the "
            f"{'/'.join(lot['layer_types'])} kernels. Training: PGD-{pgd['steps']} at ε = {pgd['eps']:.4g}, step "
            f"{pgd['step_size']:.4g}. Clean accuracy on the whole test split; robust accuracy by {pgd_eval}")
    if e.get("autoattack"):
        text += f" and AutoAttack ({e['autoattack_version']})"
    text += f" at the training ε on the first {n_eval} test images."
    return text + engine.status_note(state)


def _figure(path, state, config, summary):
    title = TITLES[state["pipeline"]]
    return plotting.plot_accuracy_by_row(
        summary, path,
        [(key, header) for key, header, _ in _columns(summary) if key.endswith("accuracy")],
        title=f"{title}: {config['model']['name']} on {config['data']['name']}")


def write_reports(run_dir):
    """Writes ``results.csv``, ``results.md`` and the figure (:func:`draw_figures`) of a run directory, from its files."""
    _, state, config = engine.read_run(run_dir)
    records = state.get("records", [])
    summary = summarise(records, list(STARTS))
    results.write_csv(os.path.join(run_dir, "results.csv"),
                      [{k: v for k, v in r.items() if k not in ("layer_sparsity", "eval_warnings")} for r in records])
    results.atomic_write_text(os.path.join(run_dir, "results.md"),
                              f"# {TITLES[state['pipeline']]}\n\n{_describe(state, config)}\n\n"
                              + reporting.markdown_table(summary, _columns(summary)))
    draw_figures(run_dir)


def draw_figures(run_dir):
    """The per-row accuracy figure (clean, PGD, AutoAttack by row, 95 % CI bars) from the run's files."""
    _, state, config = engine.read_run(run_dir)
    path = os.path.join(run_dir, FIGURE)
    _figure(path, state, config, summarise(state.get("records", []), list(STARTS)))
    return [path]


def report_section(run_dirs):
    """Markdown of Table 3 / Table 4 runs (scripts/report.py): one block per table.

    Runs of one kind, model, dataset and variant are one table (:func:`engine.group_runs`):
    their records are pooled, so seeds run in separate directories (``--config.seeds='(1,)'``)
    aggregate to mean ± 95 % CI like the seeds of one run (a seed found in two of them is an
    error: it would count twice). Each block is the seed summary as a table and its per-row
    accuracy figure: a single run's own (written at the end of the run; drawn from its files
    here when it did not complete), a pooled table's drawn into the first directory as
    :data:`POOLED_FIGURE`.

    Raises:
      ConfigError: when two pooled run directories hold the same seed
        (:func:`tfsparse.reporting.pooled_records`).
    """
    groups = engine.group_runs(run_dirs)
    kind = groups[0][0][1]["pipeline"]  # report.py groups run directories by kind
    return f"## {SECTIONS[kind]}\n\n" + "\n".join(_block(runs) for runs in groups)


def _block(runs):
    """One table of :func:`report_section` over the runs ``[(run_dir, state, config), ...]``."""
    first_dir, state, config = engine.pool(runs)
    summary = summarise(state.get("records", []), list(STARTS))
    figure = os.path.join(first_dir, FIGURE if len(runs) == 1 else POOLED_FIGURE)
    if summary and (len(runs) > 1 or not os.path.exists(figure)):
        _figure(figure, state, config, summary)
    dirs = ", ".join(f"`{d}`" for d, _, _ in runs)
    return (f"### {TITLES[state['pipeline']]}: {config['model']['name']} on {config['data']['name']} "
            f"({config.get('variant', '')})\n\n{_describe(state, config)} Run directories: {dirs}.\n\n"
            + reporting.markdown_table(summary, _columns(summary))
            + (f"\n![{state['pipeline']}]({figure})\n" if os.path.exists(figure) else ""))


TITLES = {"wang_lottery": "Wang et al. Table 3: adversarial lottery tickets",
          "wang_iwi": "Wang et al. Table 4: Inverse Weights Inheritance"}
SECTIONS = {"wang_lottery": "Adversarial lottery tickets (Wang et al. Table 3)",
            "wang_iwi": "Inverse Weights Inheritance (Wang et al. Table 4)"}



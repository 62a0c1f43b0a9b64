"""Wang et al. 2020 Table 3: adversarial lottery tickets against their controls.

Per seed, from one set of initial weights θ0 (``build_model`` with that seed):

1. **ticket search** — Alg. 1 as reconstructed in SPEC §4
   (:func:`tfsparse.sparsity.lottery.lottery_ticket`): K = ``lottery.iterations`` times,
   adversarially train θ0 ⊙ M(k−1) for ``lottery.search_epochs`` epochs (N; paper 1),
   remove ``lottery.prune_fraction`` (p) of the *original* weight count globally by
   magnitude → M_k, rewind to θ0. The masks M_K are kept in
   ``checkpoints/seed<S>/masks.npz``.
2. four rows, each adversarially trained for ``adversarial_train.epochs`` epochs from its
   own start, masks held by tfmot wrappers (:func:`tfsparse.sparsity.wrap_with_masks`):

   ============  ===================================  =====================================
   row           start                                question it answers
   ============  ===================================  =====================================
   ``dense``     θ0, no mask                          the base network (Table 3 "0 (baseline)")
   ``ticket``    θ0 ⊙ M_K                             the winning ticket (Table 3 rows)
   ``reinit``    fresh weights ⊙ M_K                  does the ticket's *initialisation* matter?
   ``random``    θ0 ⊙ random mask, equal sparsity     does the ticket's *mask* matter?
   ============  ===================================  =====================================

   (:func:`tfsparse.sparsity.lottery.start_model`): ``reinit`` draws every weight again from
   its layer's initializer (:func:`tfsparse.sparsity.reinit.reinitialize`, seed ``1000 +
   seed``); ``random`` keeps
   in every layer as many weights as the ticket, at uniformly random positions
   (:func:`tfsparse.sparsity.lottery.random_masks`, seed ``(seed, 2)``), so its layer-wise
   sparsity equals the ticket's exactly. All four rows get the same training budget;
   the ticket's search (K·N epochs, which only chooses the mask: its weights are rewound)
   is recorded beside it as ``search_epochs`` (``total_epochs`` counts both).

Adversarial training is the PGD recipe of the ``pgd`` and ``adversarial_train`` sections
(:func:`tfsparse.pipelines.rsr.adversarial_model`: Madry et al. 2018; Wang et al. use
PGD-10, ε 8/255, step 2/255 on CIFAR). Each row is measured by the one evaluator
(:func:`tfsparse.evaluation.evaluate`): clean accuracy on the whole test split, PGD-k
accuracy (``pgd.eval_steps``, Wang: 100) at the training ε and step on the first
``pgd.eval_examples`` test images, AutoAttack accuracy on the same images when
``robust_eval.autoattack`` is set, weight sparsity counted in the stripped kernels, and for
Wang Fig. 1 the non-zero kernel weights and the logs of the products of the kernels' L1 and
L2 norms (:func:`tfsparse.sparsity.norm_products`, Wang Thm 2).

The unit of work is one (seed, row): its stripped weights go to
``checkpoints/seed<S>/<row>.weights.h5`` (Wang Figs. 3–4 draw their histograms from
them) and its record to ``results.json`` before the next row starts, so ``--resume``
continues with the first missing row, reusing the seed's masks. Within a row, and within
each round of the ticket search, every epoch is checkpointed (:meth:`SeedWork.fit`), so a
run killed mid-training loses at most one epoch and ends as an uninterrupted one. Seeds are summarised by
mean ± 95 % Student-t interval (:func:`tfsparse.reporting.aggregate`). The Table 4
pipeline (:mod:`tfsparse.pipelines.wang_iwi`) runs on the same machinery.

Runs on one device (PGD training of tfmot-wrapped models cannot run under a
``tf.distribute`` strategy, see :class:`tfsparse.training.AdversarialModel`).
"""

import math
import os
import shutil
import time

import numpy as np

from tfsparse import attacks
from tfsparse import evaluation
from tfsparse import metrics
from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse.attacks.autoattack import VERSIONS as AUTOATTACK_VERSIONS
from tfsparse.compat import xla_setting
from tfsparse.errors import ConfigError
from tfsparse.pipelines import engine
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines.rsr import adversarial_model
from tfsparse.sparsity import plain
from tfsparse.sparsity.lottery import lottery_ticket
from tfsparse.sparsity.lottery import start_model
from tfsparse.sparsity.oneshot import LAYER_TYPES
from tfsparse.training import TrainingClock
from tfsparse.training import checkpointed_epochs
from tfsparse.training import train_adversarial

KIND = "wang_lottery"
ROWS = ("dense", "ticket", "reinit", "random")
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


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def check_config(config):
    """Checks what only these pipelines read (``lottery``, ``robust_eval``, epoch budgets, ``pgd.eval_steps``).

    The common sections (data, model, training, pgd, adversarial_train, seeds, xla) are
    checked by :func:`tfsparse.pipelines.validate.validate` (scripts/experiment.py calls it).

    Raises:
      ConfigError: one line naming the key and what to change.
    """
    _require(config.get("training") == "pgd",
             f"training must be 'pgd' (Wang et al. train tickets with PGD), got {config.get('training')!r}")
    t = config.adversarial_train
    _require(t.steps == 0 and t.epochs > 0,
             f"adversarial_train: budgets of the lottery tables are epochs; set adversarial_train.epochs > 0 "
             f"and adversarial_train.steps=0 (got steps {t.steps}, epochs {t.epochs})")
    lot = config.lottery
    _require(int(lot.iterations) == lot.iterations and lot.iterations >= 1,
             f"lottery.iterations (K) must be an integer >= 1, got {lot.iterations}")
    _require(0 < lot.prune_fraction < 1, f"lottery.prune_fraction (p) must be in (0, 1), got {lot.prune_fraction}")
    _require(lot.iterations * lot.prune_fraction < 1,
             f"lottery.iterations * lottery.prune_fraction is the final sparsity and must be < 1, got "
             f"{lot.iterations} * {lot.prune_fraction}")
    _require(lot.search_epochs > 0, f"lottery.search_epochs (N) must be > 0, got {lot.search_epochs}")
    _require(len(lot.layer_types) > 0 and set(lot.layer_types) <= set(LAYER_TYPES),
             f"lottery.layer_types must be a non-empty subset of {LAYER_TYPES}, got {tuple(lot.layer_types)}")
    _require(config.pgd.eval_steps >= 1, f"pgd.eval_steps (PGD steps of the evaluation; Wang: 100) must be >= 1, "
             f"got {config.pgd.eval_steps}")
    e = config.robust_eval
    _require(e.batch_size >= 1, f"robust_eval.batch_size must be >= 1, got {e.batch_size}")
    _require(isinstance(e.autoattack, bool), f"robust_eval.autoattack must be True or False, got {e.autoattack!r}")
    _require(e.autoattack_version in AUTOATTACK_VERSIONS,
             f"robust_eval.autoattack_version must be one of {AUTOATTACK_VERSIONS}, got {e.autoattack_version!r}")
    _require(len(config.seeds) >= 1, "seeds must list at least one seed, e.g. (0, 1, 2)")


def epoch_steps(epochs, num_train, batch_size):
    """Optimizer steps of ``epochs`` epochs (fractions allowed, at least one step)."""
    return max(1, int(round(float(epochs) * math.ceil(num_train / batch_size))))


def measure(model, dataset, config):
    """Clean, PGD-k and (optionally) AutoAttack accuracy and weight sparsity of a plain model.

    Clean accuracy uses the whole test split; the attacks run through
    :func:`tfsparse.evaluation.evaluate` on the first ``pgd.eval_examples`` test images at the
    training ε and step (``pgd.eps``, ``pgd.step_size``; Wang: PGD-100, ε 8/255, step 2/255,
    random start), ``pgd.eval_steps`` steps, seeded with ``pgd.seed``.
    """
    e, pgd = config.robust_eval, config.pgd
    jit = xla_setting(config.xla)
    x, y = eval_subset(dataset, pgd.eval_examples)
    started = time.perf_counter()
    suite = [attacks.PGD(eps=pgd.eps, step_size=pgd.step_size, steps=int(pgd.eval_steps), jit_compile=jit)]
    if e.autoattack:
        suite.append(attacks.AutoAttack(eps=pgd.eps, version=e.autoattack_version, jit_compile=jit))
    report = evaluation.evaluate(model, x, y, suite, batch_size=e.batch_size, seed=pgd.seed)
    stats = sparsity.weight_sparsity(model)
    entry = {
        "sparsity": stats["overall"],
        "clean_accuracy": metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=e.batch_size),
        "pgd_accuracy": report["attacks"]["pgd"]["accuracy"],
        "pgd": report["attacks"]["pgd"]["repr"],
        "num_eval": report["n"],
        "eval_warnings": report["warnings"],
    }
    if e.autoattack:
        entry["autoattack_accuracy"] = report["attacks"]["autoattack"]["accuracy"]
        entry["autoattack"] = report["attacks"]["autoattack"]["repr"]
    entry["eval_seconds"] = time.perf_counter() - started
    # For Wang Fig. 1 (robustness against non-zero weights and norm products, Thm 2).
    entry["nonzero_params"] = stats["size"] - stats["zeros"]
    products = sparsity.norm_products(model)
    entry.update({f"log_norm_product_{p}": products[f"log_{p}"] for p in ("l1", "l2")})
    entry["layer_sparsity"] = {name: v["sparsity"] for name, v in stats["layers"].items()}
    return entry


class SeedWork(engine.Work):
    """What the rows of one seed share besides the engine's files: θ0, the ticket's masks, the one fit.

    Masks and trained weights live under ``checkpoints/seed<S>/`` so a resumed run reuses
    them instead of searching or training again.
    """

    def theta0(self):
        """A fresh copy of the initial weights θ0 (``build_model`` is seeded, so every copy is equal)."""
        return build_model(self.config.model, self.dataset, self.seed)

    def fit(self, model, epochs, phase):
        """Adversarially trains ``model`` (plain or wrapped) in place for ``epochs`` epochs.

        A fresh optimizer and learning-rate schedule span exactly this phase (the
        ``adversarial_train`` policy); the data order is seeded by the run's seed. Every
        epoch is checkpointed under :meth:`training_dir`, and a phase that finds its
        checkpoint continues from it, so a run killed mid-phase resumes at its last epoch
        with the result of an uninterrupted one; the engine removes the folder once the
        row is recorded (the ticket search: once the masks are saved).

        Returns:
          ``(steps, seconds)``: the seconds of all the phase's epochs, resumed or not.
        """
        adversarial, train_cfg = adversarial_model(self.config, model, len(self.dataset.x_train))
        steps = epoch_steps(epochs, len(self.dataset.x_train), train_cfg.batch_size)
        clock = TrainingClock()
        if checkpointed_epochs(self.training_dir(phase)):
            self.log(f"seed {self.seed} {phase}: resuming after epoch {checkpointed_epochs(self.training_dir(phase))}")
        train_adversarial(adversarial, self.dataset.x_train, self.dataset.y_train, train_cfg, steps=steps,
                          seed=self.seed, verbose=self.config.verbose, callbacks=[clock],
                          checkpoint_dir=self.training_dir(phase))
        self.log(f"seed {self.seed} {phase}: {epochs:g} epoch(s), {steps} PGD-{self.config.pgd.steps} steps "
                 f"in {clock.seconds:.1f} s")
        return steps, clock.seconds

    def masks(self):
        """M_K of this seed: kept from an earlier row, loaded from its checkpoint, or found by Alg. 1 and saved."""
        return self.once("masks", self._load_or_search_masks)

    def _load_or_search_masks(self):
        path = self.path("masks.npz")
        if os.path.exists(path):
            with np.load(path) as stored:
                return {name: stored[name].astype(bool) for name in stored.files}
        lot = self.config.lottery
        started = time.perf_counter()
        phases = [f"ticket search {k}" for k in range(1, int(lot.iterations) + 1)]
        rounds = iter(phases)
        _, masks = lottery_ticket(
            self.theta0(), iterations=int(lot.iterations), prune_fraction=float(lot.prune_fraction),
            train=lambda wrapped: self.fit(wrapped, lot.search_epochs, next(rounds)),
            keep_dense=tuple(lot.keep_dense), layer_types=tuple(lot.layer_types),
        )
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = path[: -len(".npz")] + ".partial.npz"
        np.savez(partial, **masks)
        os.replace(partial, path)
        for phase in phases:
            shutil.rmtree(self.training_dir(phase), ignore_errors=True)
        kept = sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
        self.run.update(last_completed=f"seed {self.seed} ticket search")
        self.log(f"seed {self.seed}: ticket found in {time.perf_counter() - started:.1f} s, "
                 f"{1 - kept:.4f} of the selected weights pruned")
        return masks

    def trained(self, row):
        """The plain model of a completed row, read back from its checkpoint."""
        return self.load(self.theta0(), row)


def _ticket_table_row(work, row):
    config = work.config
    epochs = config.adversarial_train.epochs
    model = work.theta0() if row == "dense" else start_model(row, work.theta0(), work.masks(), work.seed)
    steps, seconds = work.fit(model, epochs, row)
    search = config.lottery.iterations * config.lottery.search_epochs if row == "ticket" else 0.0
    info = {"epochs": epochs, "total_epochs": epochs + search, "train_steps": steps, "train_seconds": seconds}
    if row == "ticket":
        info["search_epochs"] = search
    return plain(model), info


def table(kind, rows, train_row, check=check_config):
    """The declaration of a table of ``rows`` per seed (Table 3 here, Table 4 in :mod:`~tfsparse.pipelines.wang_iwi`).

    ``train_row(work, row) -> (plain trained model, info)`` makes one row from the seed's
    :class:`SeedWork`; its weights are saved (Wang Figs. 3–4 draw from them), measured
    (:func:`measure`) and recorded before the next row starts. ``results.json`` holds
    ``records`` and their ``summary``; a complete run writes ``results.csv``, ``results.md``
    and ``accuracy_by_row.png`` (:func:`write_reports`).
    """

    def run_row(work, unit):
        row = unit.fields["row"]
        model, info = train_row(work, row)
        work.save(row, model)
        return {"start": STARTS[row], **info, **measure(model, work.dataset, work.config)}

    return engine.Experiment(
        kind=kind, check=check, run_unit=run_row, work=SeedWork,
        units=lambda config, seed: [engine.Unit(row, {"seed": int(seed), "row": row}) for row in rows],
        facts=lambda config, dataset: {
            "experiment": kind, "model": config.model.name, "dataset": config.data.name, "eps": config.pgd.eps,
            "data_source": dataset.source, "num_train": len(dataset.x_train), "num_test": len(dataset.x_test)},
        summarise=lambda records: summarise(records, rows),
        describe=_describe_row, write_outputs=write_reports, figures=draw_figures, report=report_section)


def _describe_row(entry):
    aa = f" AutoAttack {entry['autoattack_accuracy']:.4f}" if "autoattack_accuracy" in entry else ""
    return (f"seed {entry['seed']} {entry['row']:>6}: sparsity {entry['sparsity']:.4f} clean "
            f"{entry['clean_accuracy']:.4f} PGD {entry['pgd_accuracy']:.4f}{aa}")


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
    text = (f"{config['model']['name']} on {config['data']['name']} ({state.get('data_source')}: "
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
    """Writes ``results.csv``, ``results.md`` and the figure of a run directory, from its files."""
    _, state, config = engine.read_run(run_dir)
    records = state.get("records", [])
    summary = summarise(records, list(STARTS))
    results.write_csv(os.path.join(run_dir, "results.csv"),
                      [{k: v for k, v in r.items() if k not in ("layer_sparsity", "eval_warnings")} for r in records])
    results.atomic_write_text(os.path.join(run_dir, "results.md"),
                              f"# {TITLES[state['pipeline']]}\n\n{_describe(state, config)}\n\n"
                              + reporting.markdown_table(summary, _columns(summary)))


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


TITLES = {KIND: "Wang et al. Table 3: adversarial lottery tickets",
          "wang_iwi": "Wang et al. Table 4: Inverse Weights Inheritance"}
SECTIONS = {KIND: "Adversarial lottery tickets (Wang et al. Table 3)",
            "wang_iwi": "Inverse Weights Inheritance (Wang et al. Table 4)"}


# The declarations (scripts/experiment.py runs them by their configs' ``experiment`` key).
run_lottery_table = table(KIND, ROWS, _ticket_table_row)

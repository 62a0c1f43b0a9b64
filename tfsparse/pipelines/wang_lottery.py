"""Wang et al. 2020 Table 3: adversarial lottery tickets against their controls.

Per seed, from one set of initial weights θ0 (``build_model`` with that seed):

1. **ticket search** — Alg. 1 as reconstructed in SPEC §4
   (:func:`tfsparse.sparsity.lottery_ticket`): K = ``lottery.iterations`` times,
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

   (:func:`tfsparse.sparsity.start_model`): ``reinit`` draws every weight again from
   its layer's initializer (:func:`tfsparse.sparsity.reinitialize`, seed ``1000 +
   seed``); ``random`` keeps
   in every layer as many weights as the ticket, at uniformly random positions
   (:func:`tfsparse.sparsity.random_masks`, seed ``(seed, 2)``), so its layer-wise
   sparsity equals the ticket's exactly. All four rows get the same training budget;
   the ticket's search (K·N epochs, which only chooses the mask: its weights are rewound)
   is recorded beside it as ``search_epochs`` (``total_epochs`` counts both).

Adversarial training is the PGD recipe of the ``pgd`` and ``adversarial_train`` sections
(:func:`tfsparse.pipelines.rsr.adversarial_model`: Madry et al. 2018; Wang et al. use
PGD-10, ε 8/255, step 2/255 on CIFAR). Each row is measured by the one measure path
(:func:`tfsparse.evaluation.measure`): clean accuracy on the whole test split, PGD-k
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
from tfsparse import sparsity
from tfsparse.attacks.autoattack import VERSIONS as AUTOATTACK_VERSIONS
from tfsparse.compat import xla_setting
from tfsparse.errors import ConfigError
from tfsparse.pipelines import engine
from tfsparse.pipelines.wang_lottery_report import STARTS
from tfsparse.pipelines.wang_lottery_report import draw_figures
from tfsparse.pipelines.wang_lottery_report import report_section
from tfsparse.pipelines.wang_lottery_report import summarise
from tfsparse.pipelines.wang_lottery_report import write_reports
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines.rsr import adversarial_fit
from tfsparse.sparsity import plain
from tfsparse.sparsity import lottery_ticket
from tfsparse.sparsity import start_model
from tfsparse.sparsity import LAYER_TYPES
from tfsparse.training import TrainingClock
from tfsparse.training import checkpointed_epochs

KIND = "wang_lottery"
ROWS = ("dense", "ticket", "reinit", "random")


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
    attack = attacks.PGD(eps=pgd.eps, step_size=pgd.step_size, steps=int(pgd.eval_steps), jit_compile=jit)
    columns = [("pgd_accuracy", attack), ("pgd", attack, "repr"), ("num_eval", "n"), ("eval_warnings", "warnings")]
    if e.autoattack:
        autoattack = attacks.AutoAttack(eps=pgd.eps, version=e.autoattack_version, jit_compile=jit)
        columns += [("autoattack_accuracy", autoattack), ("autoattack", autoattack, "repr")]
    stats = sparsity.weight_sparsity(model)
    entry = {
        "sparsity": stats["overall"],
        "clean_accuracy": metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=e.batch_size),
        **evaluation.measure(model, x, y, columns, batch_size=e.batch_size, seed=pgd.seed),
    }
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

        The one adversarial fit (:func:`tfsparse.pipelines.rsr.adversarial_fit`): a fresh
        optimizer and learning-rate schedule span exactly this phase (the ``adversarial_train``
        policy); the data order is seeded by the run's seed. Every
        epoch is checkpointed under :meth:`training_dir`, and a phase that finds its
        checkpoint continues from it, so a run killed mid-phase resumes at its last epoch
        with the result of an uninterrupted one; the engine removes the folder once the
        row is recorded (the ticket search: once the masks are saved).

        Returns:
          ``(steps, seconds)``: the seconds of all the phase's epochs, resumed or not.
        """
        steps = epoch_steps(epochs, len(self.dataset.x_train), self.config.adversarial_train.batch_size)
        clock = TrainingClock()
        if checkpointed_epochs(self.training_dir(phase)):
            self.log(f"seed {self.seed} {phase}: resuming after epoch {checkpointed_epochs(self.training_dir(phase))}")
        adversarial_fit(self.config, model, self.dataset.x_train, self.dataset.y_train, seed=self.seed, steps=steps,
                        verbose=self.config.verbose, callbacks=[clock], checkpoint_dir=self.training_dir(phase))
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


def _describe_row(entry, config):
    aa = f" AutoAttack {entry['autoattack_accuracy']:.4f}" if "autoattack_accuracy" in entry else ""
    return (f"seed {entry['seed']} {entry['row']:>6}: sparsity {entry['sparsity']:.4f} clean "
            f"{entry['clean_accuracy']:.4f} PGD {entry['pgd_accuracy']:.4f}{aa}")


# The declarations (scripts/experiment.py runs them by their configs' ``experiment`` key).
run_lottery_table = table(KIND, ROWS, _ticket_table_row)

"""Wang et al. 2020, Tables 1–2: adversarial one-shot pruning (LUP / GUP / FP / NS × p), inherited vs
re-initialised weights, with PGD-100, the distortion lower bound, AutoAttack and the Thm 2 bound.

A declaration on the experiment engine (:data:`EXPERIMENT`). The units (rows) of a seed, in order:

1. **Reference.** The dense model is trained adversarially (Madry PGD, the ``pgd`` section, ``adversarial_train``
   policy; :func:`tfsparse.pipelines.rsr.adversarial_fit`), with network slimming's L1 on BN γ for NS (Liu et al. 2017).
2. **Table 1, inherited.** Per method and ratio p the reference is pruned once (:func:`tfsparse.sparsity.prune_with`:
   GUP/LUP masks held by tfmot wrappers, FP/NS physically narrower), **adversarially fine-tuned** with the same PGD
   for the ``finetune`` budget (Stop-E: a fixed number of epochs, LR ÷10 at each third on CIFAR).
3. **Table 2, re-initialised.** The same mask (GUP/LUP: "scratch") or the same narrow shape (FP: "FP-rand"; NS:
   "scratch") with fresh weights drawn from the layers' initialisers (:func:`tfsparse.sparsity.reinitialize`),
   adversarially trained **to convergence**: Stop-C (Wang §4: LR ÷10 after ``stop_c.patience`` epochs without a
   relative improvement of ``stop_c.min_delta`` of the validation loss, stop after ``stop_c.max_decays`` decays),
   capped at ``scratch``'s epochs. Every row records its budget (epochs, optimizer steps, what stopped it).

Every fit validates on the last ``validation.num_examples`` training images at each epoch end
(:mod:`tfsparse.training.validated`: Stop-C's loss, Wang §4.2's epoch of highest clean + PGD accuracy);
rows are measured by :func:`measure` (Wang: PGD-100 at 8/255, step 2/255). Weights go to
``checkpoints/seed<s>/<row>.weights.h5``, each epoch of a training row to ``<row>.training/`` (``--resume``
continues mid-row). One device only (``distribute=none``): tfmot's wrappers cannot be PGD-trained under a strategy.
"""

import os
import time

import numpy as np

from tfsparse import attacks
from tfsparse import evaluation
from tfsparse import metrics
from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse.compat import xla_setting
from tfsparse.errors import ConfigError
from tfsparse.metrics.weights import weight_measures
from tfsparse.pipelines import engine
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import wang_suite
from tfsparse.pipelines.rsr import adversarial_fit
from tfsparse.training import checkpointed_epochs
from tfsparse.training.validated import SELECTIONS
from tfsparse.training.validated import Validation

KIND = "wang_oneshot"
METHOD_ORDER = ("dense", "lup", "gup", "fp", "ns")
PAIRED = ("clean_accuracy", "pgd_accuracy")  # also as per-seed differences: to dense (Table 1), to inherited (Table 2)
TABLE1_COLUMNS = [
    ("method", "method", "{}"), ("p", "p", "{:.2f}"), ("clean_accuracy", "clean", "{:.4f}"),
    ("pgd_accuracy", "PGD", "{:.4f}"), ("autoattack_accuracy", "AutoAttack", "{:.4f}"),
    ("distortion_eps", "dist. ε (l∞)", "{:.4f}"), ("distortion_l2", "dist. l2", "{:.3f}"),
    ("sparsity", "weight sparsity", "{:.3f}"), ("params_reduction", "params removed", "{:.3f}"),
    ("flops_reduction", "FLOPs removed", "{:.3f}"), ("lipschitz_linf_log10", "log10 Thm 2 (l∞)", "{:.2f}"),
    ("lipschitz_l2_log10", "log10 Thm 2 (l2)", "{:.2f}"), ("n", "seeds", "{:d}"),
    ("clean_accuracy_vs_dense", "Δ clean vs dense (paired)", "{:.4f}"),
    ("pgd_accuracy_vs_dense", "Δ PGD vs dense (paired)", "{:.4f}")]
TABLE2_COLUMNS = [
    ("method", "method", "{}"), ("p", "p", "{:.2f}"), ("init", "weights", "{}"), ("clean_accuracy", "clean", "{:.4f}"),
    ("pgd_accuracy", "PGD", "{:.4f}"), ("distortion_eps", "dist. ε (l∞)", "{:.4f}"),
    ("train_epochs", "epochs run", "{:.1f}"), ("train_steps", "steps run", "{:.0f}"), ("budget", "budget", "{}"),
    ("n", "seeds", "{:d}"), ("clean_accuracy_vs_inherited", "Δ clean vs inherited (paired)", "{:.4f}"),
    ("pgd_accuracy_vs_inherited", "Δ PGD vs inherited (paired)", "{:.4f}")]
MEASURES = [k for k, _, _ in TABLE1_COLUMNS[2:12]] + ["train_epochs", "train_steps", "log_l0", "log_l1", "log_l2"]


def _check(config):
    if config.distribute != "none":
        raise ConfigError(f"distribute={config.distribute}: Wang's table PGD-trains tfmot-wrapped models, which "
                          "cannot run under a tf.distribute strategy; use --config.distribute=none")
    if config.training != "pgd":
        raise ConfigError(f"training {config.training!r}: Wang's tables train adversarially; set training='pgd'")
    if config.select_epoch not in SELECTIONS:
        raise ConfigError(f"select_epoch {config.select_epoch!r} is unknown; choose from {SELECTIONS}")
    if config.scratch.lr_schedule != "constant":
        raise ConfigError("scratch.lr_schedule must be 'constant': Stop-C sets the learning rate itself")


def split(config, dataset, log=print):
    """``(x_train, y_train, x_val, y_val)``: the last ``validation.num_examples`` training images held out."""
    n = int(config.validation.num_examples)
    if not 0 < n < len(dataset.x_train):
        raise ConfigError(f"validation.num_examples must be in [1, {len(dataset.x_train) - 1}] for "
                          f"{len(dataset.x_train)} training images, got {n}")
    data = dataset.x_train[:-n], dataset.y_train[:-n], dataset.x_train[-n:], dataset.y_train[-n:].astype(np.int32)
    log(f"data: {dataset.name} from {dataset.source}: {len(data[0])} train / {len(data[2])} validation / "
        f"{len(dataset.x_test)} test")
    return data


def fit_row(config, model, data, section, *, seed, warmup_epochs=0.0, stop_c=False, checkpoint_dir=None, log=print):
    """PGD-trains ``model`` in place with ``config[section]`` (``stop_c``: until Stop-C, ``section``'s epochs the cap),
    validated on ``data``'s split (:class:`tfsparse.training.validated.Validation`) by the one adversarial fit
    (:func:`tfsparse.pipelines.rsr.adversarial_fit`, ε warm-up ``warmup_epochs``); returns the budget used."""
    x, y, x_val, y_val = data
    attack = attacks.PGD(eps=config.pgd.eps, step_size=config.validation.pgd_step_size,
                         steps=int(config.validation.pgd_steps), jit_compile=xla_setting(config.xla))
    validation = Validation(model, x_val, y_val, attack, select=config.select_epoch,
                            batch_size=config.measure.batch_size, attack_seed=config.pgd.seed,
                            stop_c=config.stop_c if stop_c else None)
    if checkpoint_dir is not None and checkpointed_epochs(checkpoint_dir):
        log(f"  {section}: resuming after epoch {checkpointed_epochs(checkpoint_dir)} ({checkpoint_dir})")
    adversarial, train_cfg, _ = adversarial_fit(config, model, x, y, seed=seed, section=section,
                                                warmup_epochs=warmup_epochs, callbacks=validation.callbacks,
                                                checkpoint_dir=checkpoint_dir, verbose=config.verbose)
    return validation.report(adversarial, train_cfg, len(x), log=log, name=section)


class SeedWork(engine.Work):
    """A seed's dense reference, ``dense() -> (model, budget)``: trained by its row, read back by resumed rows."""

    def fresh_dense(self):
        model = build_model(self.config.model, self.dataset, self.seed)
        if "ns" in self.config.methods and self.config.prune.ns_l1 > 0:
            model.add_loss(sparsity.bn_gamma_l1(model, self.config.prune.ns_l1))
        return model

    def dense(self, train=False):
        def make():
            model, info = self.fresh_dense(), None
            if train:
                self.log(f"seed {self.seed}: adversarial training of the dense reference")
                info = fit_row(self.config, model, self.data, "adversarial_train", seed=self.seed, log=self.log,
                               warmup_epochs=self.config.pgd.eps_warmup_epochs,
                               checkpoint_dir=self.training_dir("reference"))
                self.save("reference", model)
            else:
                self.load(model, "reference")
            self.run.update(reference=sparsity.structure_summary(model))
            return model, info

        return self.once("reference", make)

    def pruned(self, method, p):
        prune = self.config.prune
        return sparsity.prune_with(method, self.dense()[0], p, keep_dense=tuple(prune.keep_dense),
                                   layer_types=tuple(prune.layer_types), ns_max_per_layer=prune.ns_max_per_layer)


def units(config, seed):
    """The dense reference, then per method and p the inherited and the re-initialised row."""
    rows = [("dense", 0.0, "inherited")] + [(m, p, i) for m in config.methods for p in config.sparsities
                                            for i in ("inherited", "reinit") if i in config.inits]
    return [engine.Unit(f"{m} p={p} {i}", {"seed": seed, "method": m, "p": p, "init": i},
                        file="reference" if m == "dense" else f"{m}_p{p:g}_{i}") for m, p, i in rows]


def run_unit(work, unit):
    """Trains one row (Table 1: the reference or an inherited model; Table 2: a re-initialised one), measures it."""
    config, seed, method, p = work.config, work.seed, unit.fields["method"], unit.fields["p"]
    name = f"{method}_p{p:g}"
    if method == "dense":
        model, info = work.dense(train=True)
    elif unit.fields["init"] == "inherited":
        pruned = work.pruned(method, p)
        work.log(f"seed {seed}: {method} p={p} inherited, adversarial fine-tuning")
        info = fit_row(config, pruned, work.data, "finetune", seed=seed,
                       checkpoint_dir=work.training_dir(f"{name}_inherited"), log=work.log)
        model = sparsity.plain(pruned)
        work.save(f"{name}_inherited", model)
        if "reinit" in config.inits:  # the reinit row starts from its mask / shape
            work.once(f"{name}_inherited", lambda: model)
    else:
        def inherited():  # resumed: the mask comes from the kept inherited weights
            pruned = work.pruned(method, p)
            if method not in ("gup", "lup"):
                return pruned
            sparsity.apply_masks(pruned)  # only its structure is used: the kept weights are loaded into it
            return work.load(sparsity.strip(pruned), f"{name}_inherited")

        kept = work.once(f"{name}_inherited", inherited)
        work.log(f"seed {seed}: {method} p={p} re-initialised, adversarial training to Stop-C")
        if method in ("gup", "lup"):
            model = sparsity.wrap_with_masks(sparsity.reinitialize(work.fresh_dense(), seed=seed + 1, keep_mask=False),
                                             sparsity.masks(kept))
        else:
            model = sparsity.reinitialize(kept, seed=seed + 1, keep_mask=False)
        info = fit_row(config, model, work.data, "scratch", seed=seed, stop_c=True, log=work.log,
                       warmup_epochs=config.pgd.eps_warmup_epochs, checkpoint_dir=work.training_dir(f"{name}_reinit"))
        model = sparsity.plain(model)
        work.save(f"{name}_reinit", model)
        work.forget(f"{name}_inherited")
    return {**info, **measure(model, work.dense()[0], work.dataset, config, method)}


def measure(model, reference, dataset, config, method):
    """A Wang row's columns for a stripped model (``reference``: the dense one): clean accuracy (whole test split),
    :func:`~tfsparse.pipelines._build.wang_suite` accuracies by the one measure path on ``measure.num_examples`` test
    images, the distortion lower bound (:func:`tfsparse.metrics.distortion_lower_bound`: bisected PGD ε, mean l∞ ε
    and l2 found, [0, 1] pixel units) and :func:`tfsparse.metrics.weights.weight_measures` (Thm 2, Figs. 1–4)."""
    e, started = config.measure, time.perf_counter()
    x_eval, y_eval = eval_subset(dataset, e.num_examples)
    pgd, *autoattack = wang_suite(e, config.pgd.eps, config.xla)
    found = evaluation.measure(model, x_eval, y_eval, [
        ("pgd_accuracy", pgd), ("pgd_attack", pgd, "repr"), ("autoattack_accuracy", (autoattack or [None])[0]),
        ("worst_case_accuracy", "worst_case"), ("flags", "flags")], batch_size=e.batch_size, seed=config.pgd.seed)
    x_dist, y_dist = eval_subset(dataset, e.distortion_examples)
    bound = metrics.distortion_lower_bound(model, x_dist, y_dist.astype(np.int32), eps_max=e.distortion_eps_max,
                                           steps=int(e.distortion_steps), bisection_steps=int(e.distortion_bisections),
                                           batch_size=e.batch_size, seed=config.pgd.seed)
    weights = weight_measures(model, reference, structured=method in ("fp", "ns"), bins=config.figures.histogram_bins,
                              lipschitz_iterations=e.lipschitz_iterations, lipschitz_tol=e.lipschitz_tol)
    flags, clean = found.pop("flags"), metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, e.batch_size)
    return {"clean_accuracy": clean, "eps": float(config.pgd.eps), **found, "distortion_eps": bound["mean_eps"],
            "distortion_l2": bound["mean_l2"], "distortion_not_found": bound["not_found"],
            "distortion_units": bound["units"], **weights, "num_eval": len(x_eval), "num_distortion": len(x_dist),
            "flags": flags, "eval_seconds": time.perf_counter() - started}


def summary_rows(rows):
    """Rows aggregated over seeds per (method, p, init), paper order: mean and 95 % CI, and per-seed paired
    differences of :data:`PAIRED` (:func:`tfsparse.reporting.paired_differences`): a pruned inherited
    row minus its seed's dense reference (``<measure>_vs_dense``: does pruning cost robustness) and a
    re-initialised row minus the inherited row of its seed, method and p (``<measure>_vs_inherited``:
    Wang's inheritance > re-initialisation); a row whose counterpart is missing is left out."""
    keyed = [dict(r, group=f"{METHOD_ORDER.index(r['method'])}|{r['p']:.4f}|{r['init']}") for r in rows]
    by_key = {(r["seed"], r["method"], r["p"], r["init"]): r for r in keyed}
    pairs = [(r, by_key.get((r["seed"], "dense", 0.0, "inherited")), "dense") if r["init"] == "inherited" else
             (r, by_key.get((r["seed"], r["method"], r["p"], "inherited")), "inherited")
             for r in keyed if r["method"] != "dense"]
    paired = reporting.paired_differences([t for t in pairs if t[1]], "group", PAIRED, ("dense", "inherited"))
    summary = reporting.aggregate(keyed, "group", MEASURES)
    for entry in summary:
        entry.update(paired.get(entry["group"], {}))
        members = [r for r in keyed if r["group"] == entry["group"]]
        entry.update(method=members[0]["method"], p=members[0]["p"], init=members[0]["init"])
        stops = sorted({r.get("stopped_by") or "budget" for r in members})
        caps = sorted({r.get("budget_epochs") for r in members if r.get("budget_epochs") is not None})
        entry["budget"] = f"{'/'.join(stops)} (cap {'/'.join(f'{c:g}' for c in caps)} ep.)"
    return summary


def render(state):
    """Markdown of Tables 1–2 for one (or pooled) run's ``results.json`` dict."""
    summary, first = summary_rows(state["rows"]), state["rows"][0]
    table1 = [r for r in summary if r["init"] == "inherited"]
    table2 = [r for r in summary if r["method"] != "dense" and
              any(o["method"] == r["method"] and o["p"] == r["p"] and o["init"] == "reinit" for o in summary)]
    text = (f"### {state.get('model')} on {state.get('dataset')}: adversarial one-shot pruning (Wang Table 1)\n\n"
            f"PGD-trained reference, each pruned model PGD fine-tuned with its mask/shape held; PGD column: "
            f"{first.get('pgd_attack')} on the first {first['num_eval']} test images (ε = {first['eps']:.4g}); "
            f"distortion bound on the first {first['num_distortion']} ({first.get('distortion_units', '')}); "
            f"Thm 2 bounds as log10 of the largest class pair. Mean ± 95 % CI over seeds.\n\n"
            + reporting.markdown_table(table1, TABLE1_COLUMNS))
    if table2:
        text += ("\n### Inherited vs re-initialised weights (Wang Table 2)\n\nre-initialised = same mask (GUP/LUP: "
                 "scratch) or same narrow shape (FP: FP-rand, NS: scratch) with fresh weights, PGD-trained until "
                 "Stop-C (budget column: what stopped it, and the epoch cap); inherited = the fine-tuning budget.\n\n"
                 + reporting.markdown_table(table2, TABLE2_COLUMNS))
    return text


def _figures(rows, folder):
    """Wang Fig. 1 (robustness vs norm products) and the Fig. 2-style weight histograms of ``rows`` into ``folder``."""
    return [os.path.join(folder, name) for name in plotting.plot_oneshot_figures(rows, folder, METHOD_ORDER[1:])]


def _links(paths, folder=None):
    return "\n".join(f"![{os.path.basename(p)}]({os.path.relpath(p, folder) if folder else p})" for p in paths) + "\n"


def write_outputs(run_dir):
    """``results.csv``, ``results.md`` (Tables 1–2, figure links relative to ``run_dir``) and the figures of a run."""
    state = engine.read_json(run_dir, "results.json")
    results.write_csv(os.path.join(run_dir, "results.csv"),
                      [{k: v for k, v in r.items() if k != "histogram"} for r in state["rows"]])
    text = render(state) + "\n" + _links(figures(run_dir), run_dir)
    results.atomic_write_text(os.path.join(run_dir, "results.md"), text)


def figures(run_dir):
    """The run's figures (:func:`_figures`), from its rows."""
    return _figures(engine.read_json(run_dir, "results.json")["rows"], run_dir)


def report_section(run_dirs):
    """The markdown of Wang Tables 1–2 and their figures from run directories (scripts/report.py).

    Runs of one model, dataset and config variant are one table (a quick and a full run are two):
    their rows pool (:func:`engine.pool`: a seed found in two directories is refused). The figures
    are (re)drawn into the first directory of each table and linked by their path as given."""
    parts = []
    for runs in engine.group_runs(run_dirs, kinds=(KIND,)):
        first_dir, state, _ = engine.pool(runs, "rows")
        status = ", ".join(f"`{d}` ({s.get('status')})" for d, s, _ in runs)
        parts += ([render(state) + f"\nRun directories: {status}.\n",
                   _links(_figures(state["rows"], first_dir))]
                  if state["rows"] else [f"{status}: no rows yet\n"])
    return "## Wang et al.: adversarial pruning\n\n" + "\n".join(parts)


EXPERIMENT = engine.Experiment(
    kind=KIND, check=_check, prepare=split, work=SeedWork, units=units, run_unit=run_unit,
    describe=lambda row, config: (
        f"seed {row['seed']} {row['method']:>5} p={row['p']:.2f} {row['init']:>9}: sparsity {row['sparsity']:.4f} "
        f"clean {row['clean_accuracy']:.4f} PGD {row['pgd_accuracy']:.4f} dist ε {row['distortion_eps']:.4f} "
        f"(train {row['train_seconds']:.0f} s, eval {row['eval_seconds']:.0f} s)"),
    facts=lambda config, dataset: {"experiment": KIND, "model": config.model.name, "dataset": config.data.name},
    summarise=summary_rows, write_outputs=write_outputs, figures=figures, report=report_section,
    records_key="rows")
run_oneshot_table = EXPERIMENT  # pipelines.EXPERIMENTS["wang_oneshot"]: fn(config, workdir, *, resume, log)

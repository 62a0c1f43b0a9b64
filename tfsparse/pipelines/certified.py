"""Does sparsity help or hurt what can be *proved*? Dense vs one-shot-pruned models, certified (issue 34, item 5).

Guo et al. 2018 argue that sparse networks can be more robust; this table asks it of guaranteed
robustness. A declaration on the experiment engine (:data:`EXPERIMENT`). Per seed, per
training objective ``t`` of ``trainings``, per radius ``ε`` of ``eps_values`` and per sparsity
``s`` of ``sparsities`` (one unit each, in that order):

* **Dense** (``s = 0``): the model trained from scratch with ``t`` — ``clean`` (standard
  training, the ``train`` policy), ``pgd`` (Madry et al. 2018 at ε), ``ibp`` (Gowal et al. 2018) or
  ``crown_ibp`` (Zhang et al. 2020, Eq. 7) at ``train_eps`` (the matching entry, or ε when
  empty) with the ``ibp`` / ``crown_ibp`` section's ε, κ and β schedules — through the one
  robust-training recipe (:func:`tfsparse.pipelines.rsr.adversarial_fit`). The clean model
  does not depend on ε: it is trained once per seed and measured at every ε.
* **Pruned** (``s > 0``): the dense model of the same (t, ε) pruned once by global magnitude
  (GUP, :func:`tfsparse.sparsity.prune_with`, the masks held by tfmot wrappers) and fine-tuned
  ``finetune_epochs`` with the same objective at its final ε, κ and β (no warm-up, no ramp),
  then stripped to real zeros.

Every unit is measured once by :func:`tfsparse.evaluation.measure` on the first
``measure.num_examples`` test images: clean, PGD (``measure.pgd_*``), AutoAttack (with
``measure.autoattack``), IBP- and CROWN-certified accuracy at ε (l∞), so certified ≤ attacked ≤
clean is enforced per image (a violation is refused as a bug). The summary is the mean ± 95 % CI
over seeds per (t, ε, s), with the per-seed paired difference of each pruned row to its dense row
(``*_vs_dense``): the answer to "does pruning cost certifiability" without the spread between seeds.
"""

import time

import ml_collections

from tfsparse import evaluation
from tfsparse import reporting
from tfsparse import results
from tfsparse import sparsity
from tfsparse.certification import Certificate
from tfsparse.errors import ConfigError
from tfsparse.pipelines import engine
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._build import wang_suite
from tfsparse.pipelines.rsr import CERTIFIED
from tfsparse.pipelines.rsr import adversarial_fit
from tfsparse.pipelines.validate import validate
from tfsparse.training import train

KIND = "certified_pruning"
TRAININGS = ("clean", "pgd", *CERTIFIED)
MEASURES = ("clean_accuracy", "pgd_accuracy", "autoattack_accuracy", "certified_ibp", "certified_crown",
            "weight_sparsity", "train_seconds")
PAIRED = ("clean_accuracy", "pgd_accuracy", "certified_ibp", "certified_crown")
COLUMNS = [
    ("training", "training", "{}"), ("eps", "ε", "{:.2f}"), ("sparsity", "sparsity", "{:.2f}"),
    ("clean_accuracy", "clean", "{:.4f}"), ("pgd_accuracy", "PGD", "{:.4f}"),
    ("autoattack_accuracy", "AutoAttack", "{:.4f}"), ("certified_ibp", "certified IBP", "{:.4f}"),
    ("certified_crown", "certified CROWN", "{:.4f}"), ("weight_sparsity", "weight sparsity", "{:.3f}"),
    ("n", "seeds", "{:d}"), ("certified_crown_vs_dense", "Δ CROWN vs dense (paired)", "{:.4f}"),
    ("pgd_accuracy_vs_dense", "Δ PGD vs dense (paired)", "{:.4f}")]


def _check(config):
    unknown = [t for t in config.trainings if t not in TRAININGS]
    if unknown or not config.trainings:
        raise ConfigError(f"trainings {list(config.trainings)}: choose one or more of {TRAININGS}")
    if config.distribute != "none":
        raise ConfigError(f"distribute={config.distribute}: the pruned models train inside tfmot's wrappers, which "
                          "cannot run under a tf.distribute strategy; use --config.distribute=none")
    if not config.eps_values or not all(0 < e <= 1 for e in config.eps_values):
        raise ConfigError(f"eps_values {list(config.eps_values)}: give one or more radii in (0, 1] (pixel units)")
    if config.train_eps and len(config.train_eps) != len(config.eps_values):
        raise ConfigError(f"train_eps {list(config.train_eps)} must match eps_values {list(config.eps_values)} one "
                          "to one (or be empty: train at each ε)")
    if not config.sparsities or not all(0 <= s < 1 for s in config.sparsities):
        raise ConfigError(f"sparsities {list(config.sparsities)}: give values in [0, 1)")
    if any(s > 0 for s in config.sparsities) and not config.finetune_epochs > 0:
        raise ConfigError(f"finetune_epochs must be > 0 to fine-tune the pruned models, got {config.finetune_epochs}")
    for training in config.trainings:  # each objective's sections, as train.py checks them
        for eps in config.eps_values:
            validate(objective(config, training, eps))


def units(config, seed):
    """(training, ε, sparsity) in config order; the dense unit of each (training, ε) first."""
    order = sorted(config.sparsities)
    return [engine.Unit(f"{t} eps={e:g} s={s:g}", {"seed": seed, "training": t, "eps": float(e), "sparsity": float(s)},
                        file=_model_name(t, e, s)) for t in config.trainings for e in config.eps_values for s in order]


def _model_name(training, eps, s):
    return f"clean_s{s:g}" if training == "clean" else f"{training}_eps{eps:g}_s{s:g}"


def objective(config, training, eps, finetune=False):
    """The config the one robust-training recipe reads for ``training`` at radius ``eps``.

    ``pgd.eps`` is ``eps``; a certified training takes its section (``ibp`` / ``crown_ibp``) as
    ``certified`` with ``train_eps`` the matching entry of ``train_eps`` (0 when that is empty:
    train at ε). ``finetune``: the ``finetune_epochs`` budget at the final ε, κ, β at once.
    """
    unit = ml_collections.ConfigDict(config.to_dict())
    unit.training = training
    unit.pgd.eps = float(eps)
    if training in CERTIFIED:
        unit.certified = unit[training]
        if config.train_eps:
            unit.certified.train_eps = float(config.train_eps[list(config.eps_values).index(eps)])
    section = unit.train if training == "clean" else unit.adversarial_train
    if finetune:
        section.update({"epochs": float(config.finetune_epochs), "steps": 0})
        unit.pgd.eps_warmup_epochs = 0.0
        if training in CERTIFIED:
            unit.certified.update({"warmup_epochs": 0.0, "ramp_epochs": 0.0})
    return unit


class CertifiedWork(engine.Work):
    """A seed's models: each (training, ε, sparsity) trained once, kept, saved and read back on resume."""

    def model(self, training, eps, s):
        """The stripped trained model of a unit and the seconds its training took (0 when read back)."""
        name = _model_name(training, eps, s)

        def make():
            if self.has(name):
                return self.load(self.architecture(), name), 0.0
            started = time.perf_counter()
            if s == 0:
                model = self.architecture()
                self.log(f"seed {self.seed}: {training} training of the dense model" + (
                    "" if training == "clean" else f" at eps {eps:g}"))
            else:
                model = sparsity.prune_with("gup", self.model(training, eps, 0.0)[0], s)
                self.log(f"seed {self.seed}: {training} eps={eps:g} pruned to {s:g}, fine-tuning")
            self.fit(model, objective(self.config, training, eps, finetune=s > 0), name)
            model = sparsity.plain(model)
            self.save(name, model)
            return model, time.perf_counter() - started

        return self.once(name, make)

    def architecture(self):
        return build_model(self.config.model, self.dataset, self.seed)

    def fit(self, model, config, name):
        x, y = self.dataset.x_train, self.dataset.y_train
        if config.training == "clean":
            train(model, x, y, train_section(config), seed=self.seed, verbose=config.verbose,
                  checkpoint_dir=self.training_dir(name))
        else:
            adversarial_fit(config, model, x, y, seed=self.seed, verbose=config.verbose,
                            checkpoint_dir=self.training_dir(name))


def run_unit(work, unit):
    """Trains (or reads back) one unit's model and measures it at its ε."""
    training, eps, s = unit.fields["training"], unit.fields["eps"], unit.fields["sparsity"]
    model, seconds = work.model(training, eps, s)
    started = time.perf_counter()
    found = measure(model, work.dataset, work.config, eps)
    return {**found, "weight_sparsity": sparsity.weight_sparsity(model)["overall"], "train_seconds": seconds,
            "eval_seconds": time.perf_counter() - started}


def measure(model, dataset, config, eps):
    """Clean, PGD, AutoAttack and IBP / CROWN-certified accuracy at ``eps`` in one measure (per-image rule)."""
    e = config.measure
    x, y = eval_subset(dataset, e.num_examples)
    pgd, *autoattack = wang_suite(e, eps, config.xla)
    return evaluation.measure(model, x, y, [
        ("clean_accuracy", "clean"), ("pgd_accuracy", pgd), ("pgd_attack", pgd, "repr"),
        ("autoattack_accuracy", (autoattack or [None])[0]), ("certified_ibp", Certificate("ibp", eps)),
        ("certified_crown", Certificate("crown", eps)), ("num_eval", "n"), ("flags", "flags")],
        batch_size=e.batch_size, seed=config.pgd.seed)


def summary_rows(records):
    """Mean ± 95 % CI over seeds per (training, ε, sparsity), and each pruned row minus its seed's dense row."""
    keyed = [dict(r, group=f"{TRAININGS.index(r['training'])}|{r['eps']:.4f}|{r['sparsity']:.4f}") for r in records]
    dense = {(r["seed"], r["training"], r["eps"]): r for r in keyed if r["sparsity"] == 0}
    pairs = [(r, dense[(r["seed"], r["training"], r["eps"])], "dense") for r in keyed
             if r["sparsity"] > 0 and (r["seed"], r["training"], r["eps"]) in dense]
    paired = reporting.paired_differences(pairs, "group", PAIRED, ("dense",))
    summary = reporting.aggregate(keyed, "group", MEASURES)
    for entry in summary:
        first = next(r for r in keyed if r["group"] == entry["group"])
        entry.update(paired.get(entry["group"], {}), training=first["training"], eps=first["eps"],
                     sparsity=first["sparsity"])
    return summary


def render(state):
    """Markdown of the table for one (or pooled) run's ``results.json``."""
    first = state["records"][0]
    return (f"### Certified accuracy of dense and pruned {state.get('model')} on {state.get('dataset')}\n\n"
            f"One-shot global magnitude pruning (GUP) of each trained model, fine-tuned with its own objective; "
            f"all columns on the first {first['num_eval']} test images at the row's l∞ ε: PGD = "
            f"{first['pgd_attack']} (ε set per row), certified = every margin proved positive by interval bounds "
            f"(IBP) or CROWN. Mean ± 95 % CI over seeds; Δ = pruned minus the dense model of the same seed."
            f"{engine.status_note(state)}\n\n" + reporting.markdown_table(summary_rows(state["records"]), COLUMNS))


def write_outputs(run_dir):
    """``results.csv`` and ``results.md`` of a run, from its ``results.json``."""
    state = engine.read_json(run_dir, "results.json")
    results.write_csv(f"{run_dir}/results.csv", state["records"])
    results.atomic_write_text(f"{run_dir}/results.md", render(state))


def report_section(run_dirs):
    """The markdown of the certified tables of run directories (scripts/report.py), seeds pooled per table."""
    parts = []
    for runs in engine.group_runs(run_dirs, kinds=(KIND,)):
        _, state, _ = engine.pool(runs)
        status = ", ".join(f"`{d}` ({s.get('status')})" for d, s, _ in runs)
        parts.append(render(state) + f"\nRun directories: {status}.\n" if state["records"] else
                     f"{status}: no rows yet\n")
    return "## Certified robustness of pruned models\n\n" + "\n".join(parts)


EXPERIMENT = engine.Experiment(
    kind=KIND, check=_check, work=CertifiedWork, units=units, run_unit=run_unit,
    describe=lambda r, config: (
        f"seed {r['seed']} {r['training']:>9} eps={r['eps']:.2f} s={r['sparsity']:.2f}: clean {r['clean_accuracy']:.4f} "
        f"PGD {r['pgd_accuracy']:.4f} certified IBP {r['certified_ibp']:.4f} CROWN {r['certified_crown']:.4f} "
        f"(train {r['train_seconds']:.0f} s, eval {r['eval_seconds']:.0f} s)"),
    facts=lambda config, dataset: {"experiment": KIND, "model": config.model.name, "dataset": config.data.name},
    summarise=summary_rows, write_outputs=write_outputs, report=report_section)

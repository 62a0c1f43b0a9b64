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
clean is enforced per image (a violation is refused as a bug).

Randomized smoothing (``gaussian`` in ``trainings``; Cohen et al. 2019) takes the place of ε by
σ of ``smoothing_sigmas``: the base model is trained on inputs plus N(0, σ²), pruned and
fine-tuned the same way, and the smoothed classifier is certified by CERTIFY
(:func:`tfsparse.pipelines.rsr.smoothed_measures`, the ``smoothing`` section): certified l2
accuracy at each of ``smoothing.radii``, drawn as the accuracy-vs-radius figure.

The summary is the mean ± 95 % CI over seeds per (t, ε or σ, s), with the per-seed paired
difference of each pruned row to its dense row (``*_vs_dense``): the answer to "does pruning cost
certifiability" without the spread between seeds.
"""

import os
import time

import ml_collections

from tfsparse import evaluation
from tfsparse import metrics
from tfsparse import plotting
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
from tfsparse.pipelines.rsr import smoothed_measures
from tfsparse.pipelines.validate import validate
from tfsparse.training import train

KIND = "certified_pruning"
SMOOTHED = "gaussian"
TRAININGS = ("clean", "pgd", *CERTIFIED, SMOOTHED)
FIGURE = "smoothing_certified_radius.png"
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


def smoothed_key(radius):
    """The record field of the smoothed certified accuracy at an l2 ``radius``."""
    return f"smoothed_at_{radius:g}"


def smoothing_columns(radii):
    """Columns of the smoothing table for the run's radii."""
    return ([("sigma", "σ", "{:.2f}"), ("sparsity", "sparsity", "{:.2f}"), ("clean_accuracy", "clean (base)", "{:.4f}")]
            + [(smoothed_key(r), f"certified at r={r:g}", "{:.4f}") for r in radii]
            + [("smoothed_abstain", "abstained", "{:.3f}"), ("weight_sparsity", "weight sparsity", "{:.3f}"),
               ("n", "seeds", "{:d}"), (smoothed_key(radii[len(radii) // 2]) + "_vs_dense",
                                        f"Δ r={radii[len(radii) // 2]:g} vs dense (paired)", "{:.4f}")])


def _check(config):
    unknown = [t for t in config.trainings if t not in TRAININGS]
    if unknown or not config.trainings:
        raise ConfigError(f"trainings {list(config.trainings)}: choose one or more of {TRAININGS}")
    if config.distribute != "none":
        raise ConfigError(f"distribute={config.distribute}: the pruned models train inside tfmot's wrappers, which "
                          "cannot run under a tf.distribute strategy; use --config.distribute=none")
    if SMOOTHED in config.trainings and not (config.smoothing_sigmas and all(v > 0 for v in config.smoothing_sigmas)):
        raise ConfigError(f"smoothing_sigmas {list(config.smoothing_sigmas)}: give one or more noise scales > 0 for "
                          "the gaussian rows")
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
        for radius in _radii(config, training):
            validate(objective(config, training, radius))


def _radii(config, training):
    """The settings a training is run at: σ of ``smoothing_sigmas`` for ``gaussian``, else ε of ``eps_values``."""
    return config.smoothing_sigmas if training == SMOOTHED else config.eps_values


def _radius_field(training):
    return "sigma" if training == SMOOTHED else "eps"


def units(config, seed):
    """(training, ε or σ, sparsity) in config order; the dense unit of each (training, ε or σ) first."""
    order = sorted(config.sparsities)
    return [engine.Unit(f"{t} {_radius_field(t)}={e:g} s={s:g}",
                        {"seed": seed, "training": t, _radius_field(t): float(e), "sparsity": float(s)},
                        file=_model_name(t, e, s)) for t in config.trainings for e in _radii(config, t) for s in order]


def _model_name(training, radius, s):
    return f"clean_s{s:g}" if training == "clean" else f"{training}_{_radius_field(training)}{radius:g}_s{s:g}"


def objective(config, training, radius, finetune=False):
    """The config the one robust-training recipe reads for ``training`` at ``radius`` (ε, or σ for gaussian).

    ``pgd.eps`` is ε; a certified training takes its section (``ibp`` / ``crown_ibp``) as
    ``certified`` with ``train_eps`` the matching entry of ``train_eps`` (0 when that is empty:
    train at ε); ``gaussian`` sets ``smoothing.sigma``. ``finetune``: the ``finetune_epochs``
    budget at the final ε, κ, β at once.
    """
    unit = ml_collections.ConfigDict(config.to_dict())
    unit.training = training
    if training == SMOOTHED:
        unit.smoothing.sigma = float(radius)
    else:
        unit.pgd.eps = float(radius)
    if training in CERTIFIED:
        unit.certified = unit[training]
        if config.train_eps:
            unit.certified.train_eps = float(config.train_eps[list(config.eps_values).index(radius)])
    section = unit.train if training == "clean" else unit.adversarial_train
    if finetune:
        section.update({"epochs": float(config.finetune_epochs), "steps": 0})
        unit.pgd.eps_warmup_epochs = 0.0
        if training in CERTIFIED:
            unit.certified.update({"warmup_epochs": 0.0, "ramp_epochs": 0.0})
    return unit


class CertifiedWork(engine.Work):
    """A seed's models: each (training, ε, sparsity) trained once, kept, saved and read back on resume."""

    def model(self, training, radius, s):
        """The stripped trained model of a unit (ε or σ: ``radius``) and the seconds its training took (0 when read
        back)."""
        name = _model_name(training, radius, s)

        def make():
            if self.has(name):
                return self.load(self.architecture(), name), 0.0
            started = time.perf_counter()
            if s == 0:
                model = self.architecture()
                self.log(f"seed {self.seed}: {training} training of the dense model" + (
                    "" if training == "clean" else f" at {_radius_field(training)} {radius:g}"))
            else:
                model = sparsity.prune_with("gup", self.model(training, radius, 0.0)[0], s)
                self.log(f"seed {self.seed}: {training} {_radius_field(training)}={radius:g} pruned to {s:g}, "
                         "fine-tuning")
            self.fit(model, objective(self.config, training, radius, finetune=s > 0), name)
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
    """Trains (or reads back) one unit's model and measures it at its ε (smoothed: at its σ)."""
    training, s = unit.fields["training"], unit.fields["sparsity"]
    radius = unit.fields[_radius_field(training)]
    model, seconds = work.model(training, radius, s)
    started = time.perf_counter()
    if training == SMOOTHED:
        found = measure_smoothed(model, work.dataset, work.config, radius)
    else:
        found = measure(model, work.dataset, work.config, radius)
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


def measure_smoothed(model, dataset, config, sigma):
    """The base model's clean accuracy and the smoothed classifier's certified l2 accuracy at each radius."""
    x, y = eval_subset(dataset, config.smoothing.num_examples)
    settings = ml_collections.ConfigDict(config.smoothing.to_dict())
    settings.sigma = float(sigma)
    found = smoothed_measures(model, x, y, settings, config.pgd.seed)
    return {"clean_accuracy": metrics.clean_accuracy(model, x, y, batch_size=config.measure.batch_size),
            **{smoothed_key(float(r)): v for r, v in found.pop("smoothed_certified").items()}, **found,
            "num_eval": len(x)}


def _setting(record):
    return record.get("eps", record.get("sigma"))


def summary_rows(records):
    """Mean ± 95 % CI over seeds per (training, ε or σ, sparsity), and each pruned row minus its seed's dense row."""
    keyed = [dict(r, group=f"{TRAININGS.index(r['training'])}|{_setting(r):.4f}|{r['sparsity']:.4f}") for r in records]
    smoothed = sorted({k for r in keyed for k in r if k.startswith("smoothed_at_")})
    dense = {(r["seed"], r["training"], _setting(r)): r for r in keyed if r["sparsity"] == 0}
    pairs = [(r, dense[(r["seed"], r["training"], _setting(r))], "dense") for r in keyed
             if r["sparsity"] > 0 and (r["seed"], r["training"], _setting(r)) in dense]
    paired = {}
    for family, keys in ((False, PAIRED), (True, smoothed)):  # the l∞ rows and the smoothing rows
        chosen = [p for p in pairs if (p[0]["training"] == SMOOTHED) == family]
        paired.update(reporting.paired_differences(chosen, "group", keys, ("dense",)) if chosen else {})
    summary = reporting.aggregate(keyed, "group", (*MEASURES, *smoothed, "smoothed_abstain"))
    for entry in summary:
        first = next(r for r in keyed if r["group"] == entry["group"])
        entry.update(paired.get(entry["group"], {}), training=first["training"], sparsity=first["sparsity"],
                     **{field: first[field] for field in ("eps", "sigma") if field in first})
    return summary


def _radii_of(records):
    return sorted({float(k[len("smoothed_at_"):]) for r in records for k in r if k.startswith("smoothed_at_")})


def render(state, figure=None):
    """Markdown of the tables for one (or pooled) run's ``results.json`` (``figure``: the curve's link)."""
    summary = summary_rows(state["records"])
    bounds = [r for r in summary if r["training"] != SMOOTHED]
    smoothed = [r for r in summary if r["training"] == SMOOTHED]
    text = f"### Certified accuracy of dense and pruned {state.get('model')} on {state.get('dataset')}\n\n"
    first = next((r for r in state["records"] if r["training"] != SMOOTHED), None)
    if first:
        text += (f"One-shot global magnitude pruning (GUP) of each trained model, fine-tuned with its own objective; "
                 f"all columns on the first {first['num_eval']} test images at the row's l∞ ε: PGD = "
                 f"{first['pgd_attack']} (ε set per row), certified = every margin proved positive by interval "
                 f"bounds (IBP) or CROWN. Mean ± 95 % CI over seeds; Δ = pruned minus the dense model of the same "
                 f"seed.{engine.status_note(state)}\n\n" + reporting.markdown_table(bounds, COLUMNS))
    first = next((r for r in state["records"] if r["training"] == SMOOTHED), None)
    if first:
        text += (f"\n#### Randomized smoothing (Cohen et al. 2019)\n\nBase models trained on Gaussian-noised inputs "
                 f"at the row's σ, pruned and fine-tuned the same way; certified l2 accuracy of the smoothed "
                 f"classifier by CERTIFY ({first['smoothed_n']} draws, α {first['smoothed_alpha']:g}; abstentions count wrong) on "
                 f"the first {first['smoothed_examples']} test images.\n\n"
                 + reporting.markdown_table(smoothed, smoothing_columns(_radii_of(state["records"]))))
        if figure:
            text += f"\n![certified accuracy vs l2 radius]({figure})\n"
    return text


def figures(run_dir):
    """The certified-accuracy-vs-radius figure of the smoothing rows (none without them)."""
    records = engine.read_json(run_dir, "results.json")["records"]
    return _figures(records, run_dir)


def _figures(records, folder):
    rows = [r for r in summary_rows(records) if r["training"] == SMOOTHED]
    if not rows:
        return []
    radii = _radii_of(records)
    curves = [(f"σ={r['sigma']:g}, sparsity {r['sparsity']:g} (n={r['n']})", radii,
               [r.get(smoothed_key(v)) for v in radii], [r.get(smoothed_key(v) + "_ci95") for v in radii])
              for r in rows]
    return [plotting.plot_certified_radius_curves(curves, os.path.join(folder, FIGURE),
                                                  title="randomized smoothing: dense vs pruned")]


def write_outputs(run_dir):
    """``results.csv``, ``results.md`` and the smoothing figure of a run, from its ``results.json``."""
    state = engine.read_json(run_dir, "results.json")
    results.write_csv(os.path.join(run_dir, "results.csv"), state["records"])
    drawn = figures(run_dir)
    results.atomic_write_text(os.path.join(run_dir, "results.md"),
                              render(state, os.path.basename(drawn[0]) if drawn else None))


def report_section(run_dirs):
    """The markdown of the certified tables of run directories (scripts/report.py), seeds pooled per table."""
    parts = []
    for runs in engine.group_runs(run_dirs, kinds=(KIND,)):
        first_dir, state, _ = engine.pool(runs)
        status = ", ".join(f"`{d}` ({s.get('status')})" for d, s, _ in runs)
        drawn = _figures(state["records"], first_dir) if state["records"] else []
        parts.append(render(state, drawn[0] if drawn else None) + f"\nRun directories: {status}.\n"
                     if state["records"] else f"{status}: no rows yet\n")
    return "## Certified robustness of pruned models\n\n" + "\n".join(parts)


def describe(r):
    """A unit's progress line."""
    head = f"seed {r['seed']} {r['training']:>9} {_radius_field(r['training'])}={_setting(r):.2f} s={r['sparsity']:.2f}"
    if r["training"] == SMOOTHED:
        found = ", ".join(f"{k[len('smoothed_at_'):]} {v:.4f}" for k, v in r.items() if k.startswith("smoothed_at_"))
        body = f"clean {r['clean_accuracy']:.4f}, smoothed certified at r = {found}"
    else:
        body = (f"clean {r['clean_accuracy']:.4f} PGD {r['pgd_accuracy']:.4f} certified IBP {r['certified_ibp']:.4f} "
                f"CROWN {r['certified_crown']:.4f}")
    return f"{head}: {body} (train {r['train_seconds']:.0f} s, eval {r['eval_seconds']:.0f} s)"


EXPERIMENT = engine.Experiment(
    kind=KIND, check=_check, work=CertifiedWork, units=units, run_unit=run_unit,
    describe=lambda r, config: describe(r),
    facts=lambda config, dataset: {"experiment": KIND, "model": config.model.name, "dataset": config.data.name},
    summarise=summary_rows, write_outputs=write_outputs, figures=figures, report=report_section)

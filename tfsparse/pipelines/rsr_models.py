"""The models of RSR's tables (Rakin et al. 2019, :mod:`tfsparse.pipelines.rsr_tables`) and their measures.

* :func:`scheme_config` — a scheme of RSR Table 1 as the RSR recipe (:mod:`tfsparse.pipelines.rsr`)
  with parts switched off: CNI (channel-wise noise injection, σ by eq. 4) and the lasso term λ·Σ‖W‖₁
  of the ensemble loss (eq. 5–6);
* :class:`TableWork` — the seed's trained model of one scheme and width (trained once, kept under
  ``checkpoints/seed<S>/<scheme>_w<width>.weights.h5`` and read back on resume; a model killed
  mid-training resumes from its last epoch under ``<name>.training/``) and its copy threshold-pruned
  (§3.4) at the γ of the table's target sparsity *in that model*;
* :func:`with_sigma_rule` — the same weights with σ of eq. 4 measured by another rule;
* :func:`sources` — RSR Table 3's transfer sources, trained (or loaded) once per run;
* :func:`whitebox_measures` / :func:`blackbox_measures` — what one setting records (one
  :func:`tfsparse.evaluation.measure` call per suite; ZOO by its
  :func:`tfsparse.evaluation.black_box_columns` on RSR's seeded random test images).
"""

import shutil
import time

import ml_collections
import numpy as np

from tfsparse import attacks
from tfsparse import evaluation
from tfsparse import metrics
from tfsparse import training
from tfsparse.layers import has_inference_noise
from tfsparse.layers import set_inference_noise
from tfsparse.model_io import load_keras_model
from tfsparse.pipelines import engine
from tfsparse.pipelines import rsr as robust
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines._build import train_section

# Scheme -> (CNI on, lasso on): RSR Table 1's rows as parts of the one recipe.
SCHEMES = {"pgd": (False, False), "cni": (True, False), "lasso": (False, True), "rsr": (True, True)}


def scheme_config(config, scheme, width):
    """The RSR-recipe config of one scheme and width (training only: γ and target 0, pruned later)."""
    noise, lasso = SCHEMES[scheme]
    cfg = config.copy_and_resolve_references()
    with cfg.unlocked():
        cfg.training = "rsr"
        cfg.model.width = float(width)
        cfg.rsr.noise = cfg.rsr.noise if noise else ""
        cfg.rsr.lasso = cfg.rsr.lasso if lasso else 0.0
        cfg.rsr.gamma = 0.0
        cfg.rsr.target_sparsity = 0.0
    return cfg


def pruning(rsr_cfg, target):
    """The ``rsr`` section that :func:`tfsparse.pipelines.rsr.threshold` reads: γ of ``target`` sparsity."""
    section = ml_collections.ConfigDict(rsr_cfg.to_dict())
    section.gamma = 0.0
    section.target_sparsity = float(target)
    return section


def with_sigma_rule(model, cfg, dataset, seed, rule):
    """A copy of noisy ``model`` whose noise layers measure σ by ``rule`` (eq. 4; same weights, switch included)."""
    if rule == cfg.rsr.noise_sigma_rule:
        return model
    other = cfg.rsr.copy_and_resolve_references()
    other.noise_sigma_rule = rule
    copy = build_model(cfg.model, dataset, seed, noise_cfg=other)
    copy.set_weights(model.get_weights())
    return copy


class TableWork(engine.Work):
    """A seed of an RSR table: the trained model of one scheme and width at a time, and its pruned copy.

    ``data`` is the run's shared dict (the declaration's ``prepare``): :func:`sources` keeps the
    black-box sources there, made once for every seed.
    """

    def staged(self, width, scheme, target, prune):
        """``({"before": (model, 0.0)[, "after": (pruned, γ)]}, cfg)`` of one scheme and width.

        Made when the first of its settings is asked for: the model trained or read back, and
        with ``prune`` (a setting after pruning is still to run) pruned at ``target`` sparsity.
        """
        name = f"{scheme}_w{width:g}"
        if name not in self._memo:
            self._memo.clear()  # one scheme and width in memory at a time
            cfg = scheme_config(self.config, scheme, width)
            model = self._trained(cfg, name)
            staged = {"before": (model, 0.0)}
            if prune:
                staged["after"] = robust.threshold(model, pruning(cfg.rsr, target))
            self._memo[name] = (staged, cfg)
        return self._memo[name]

    def _trained(self, cfg, name):
        """The trained (unpruned) model of ``cfg``: read from ``checkpoints/`` or trained and kept.

        Its info (``train_seconds`` and the recipe's settings, or ``{"loaded": path}`` when the
        weights came from an earlier run) goes to ``results.json`` under ``models``.
        """
        seed = self.seed
        if self.has(name):
            model = self.load(build_model(cfg.model, self.dataset, seed, noise_cfg=cfg.rsr), name)  # as train_robust
            set_inference_noise(model, cfg.rsr.inference_noise)
            info = {"loaded": self.weights_path(name)}
        else:
            # Every epoch is checkpointed while it trains, so a run killed mid-training resumes there.
            clock, checkpoints = training.TrainingClock(), self.training_dir(name)
            if training.checkpointed_epochs(checkpoints):
                self.log(f"seed {seed} {name}: resuming after epoch {training.checkpointed_epochs(checkpoints)}")
            model, _, _, info = robust.train_robust(cfg, self.dataset, seed, verbose=cfg.verbose, callbacks=[clock],
                                                    checkpoint_dir=checkpoints)
            info["train_seconds"] = clock.seconds
            self.save(name, model)
            shutil.rmtree(checkpoints, ignore_errors=True)
            self.log(f"seed {seed} {name}: trained in {info['train_seconds']:.1f} s")
        models = dict(self.run.state.get("models", {}))
        models.setdefault(f"seed{seed}/{name}", info)
        self.run.update(models=models)
        return model


class _SourceWork(engine.Work):
    """The transfer sources' files: ``checkpoints/sources/<name>.weights.h5`` (one set per run)."""

    def path(self, name):
        return self.run.file("checkpoints", "sources", name)


def sources(work):
    """The transfer sources of ``transfer.sources``: loaded from ``path`` or trained (and kept) by the pipeline.

    A ``clean`` source trains with the ``train`` section; a ``pgd`` source with Madry PGD
    training (``pgd`` section, ``adversarial_train``). Seed: the first of ``seeds``. Made once
    per run, before the table's first model; their clean accuracies go to ``results.json`` as
    ``source_<name>_clean_accuracy``.
    """
    if "sources" in work.shared:
        return work.shared["sources"]
    config, dataset, seed = work.config, work.dataset, work.config.seeds[0]
    files, made = _SourceWork(work.run, config, dataset, None, seed, work.log), {}
    for name, spec in config.transfer.sources.items():
        if spec.path:
            made[name] = load_keras_model(spec.path)
            continue
        cfg = config.copy_and_resolve_references()
        with cfg.unlocked():
            cfg.model.name, cfg.model.width, cfg.training = spec.model, float(spec.width), spec.training
        if files.has(name):
            made[name] = files.load(build_model(cfg.model, dataset, seed), name)
            continue
        started = time.perf_counter()
        if spec.training == "clean":
            made[name] = build_model(cfg.model, dataset, seed)
            training.train(made[name], dataset.x_train, dataset.y_train, train_section(cfg), seed=seed,
                           verbose=config.verbose)
        else:
            made[name] = robust.train_robust(cfg, dataset, seed, verbose=config.verbose)[0]
        files.save(name, made[name])
        work.log(f"source {name} ({spec.model}, {spec.training}) trained in {time.perf_counter() - started:.1f} s")
    for name, model in made.items():
        accuracy = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.table.batch_size)
        work.run.update(**{f"source_{name}_clean_accuracy": accuracy})
    work.shared["sources"] = made
    return made


# What every RSR record says of its evaluation besides the columns (after them, as always).
SUITE_FACTS = [("num_eval", "n"), ("attacks", "reprs"), ("flags", "flags")]


def whitebox_measures(model, dataset, config, context):
    """Clean, FGSM, PGD, EOT-PGD (noisy models), AutoAttack accuracy and their worst case (one evaluate call)."""
    del context
    x, y = eval_subset(dataset, config.table.num_examples)
    noisy = has_inference_noise(model)
    auto = config.autoattack
    columns = [("fgsm_accuracy", attacks.FGSM(eps=config.pgd.eps)),
               ("pgd_accuracy", robust.eval_attack(config, model, eot=False)),
               ("eot_pgd_accuracy", robust.eval_attack(config, model, eot=True) if noisy else None),
               ("autoattack_accuracy", None if auto.version == "off" else attacks.AutoAttack(
                   eps=config.pgd.eps, version=auto.version, steps=int(auto.steps),
                   eot_samples=int(auto.eot_samples) if noisy else 1)),
               ("worst_case_accuracy", "worst_case"), *SUITE_FACTS]
    measured = evaluation.measure(model, x, y, columns, batch_size=config.table.batch_size, seed=config.pgd.seed,
                                  stochastic=noisy)
    clean = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.table.batch_size)
    return {"clean_accuracy": clean, **measured}


def zoo_attack(config):
    """ZOO (Chen et al. 2017) with the ``zoo`` section's parameters (all but ``num_examples``)."""
    return attacks.ZOO(**{key: value for key, value in config.zoo.items() if key != "num_examples"})


def zoo_subset(dataset, config):
    """RSR's "200 randomly selected test samples": a subset seeded by ``data.seed``."""
    n = min(int(config.zoo.num_examples), len(dataset.x_test))
    order = np.random.default_rng(config.data.seed).permutation(len(dataset.x_test))[:n]
    return dataset.x_test[order], dataset.y_test[order]


def blackbox_measures(model, dataset, config, context):
    """ZOO success counted both ways, transfer accuracy from every source, white-box PGD beside them."""
    x, y = eval_subset(dataset, config.table.num_examples)
    # Each source is deterministic: the PGD of eval_attack, crafted on it, scored on the target.
    columns = [("pgd_accuracy", robust.eval_attack(config, model))] + [
        (f"transfer_{name}", attacks.TransferAttack(source_model=source, attack=robust.eval_attack(config, source)))
        for name, source in context["sources"].items()] + SUITE_FACTS
    measured = evaluation.measure(model, x, y, columns, batch_size=config.table.batch_size, seed=config.pgd.seed,
                                  stochastic=has_inference_noise(model))
    record = {"clean_accuracy": metrics.clean_accuracy(model, dataset.x_test, dataset.y_test,
                                                       batch_size=config.table.batch_size), **measured}
    record.update({key: record.pop(key) for key in list(record) if key.startswith("transfer_")})  # after flags
    x_zoo, y_zoo = zoo_subset(dataset, config)
    record.update(evaluation.measure(model, x_zoo, y_zoo, evaluation.black_box_columns(zoo_attack(config), "zoo"),
                                     batch_size=config.table.batch_size, seed=config.pgd.seed))
    return record

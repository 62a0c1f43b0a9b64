"""``train_and_evaluate(config, workdir)``: the library entry behind scripts/train.py.

``config.training`` picks the objective (SPEC §8):
  * ``clean`` — the SGD policy of the ``train`` section;
  * ``pgd`` — Madry PGD adversarial training (:class:`AdversarialModel`, ``clean_weight``
    0) with the ``pgd`` section (ε / step / steps; negative = the dataset family's
    default: MNIST 0.3 / 0.01 / 40, CIFAR 8/255 / 2/255 / 10);
  * ``rsr`` — Robust Sparse Regularization (Rakin et al. 2019): CNI layers in every
    conv/dense layer, ensemble loss ``a·CE(clean) + (1 − a)·CE(adv) + λ·Σ‖W‖₁`` (eq. 6)
    with PGD-``rsr.steps`` examples, then threshold pruning at γ (§3.4).
"""

import math
import os
import time

from tfsparse import export
from tfsparse import metrics
from tfsparse import models as model_lib
from tfsparse import results
from tfsparse.attacks import EOTPGD
from tfsparse.attacks import PGD
from tfsparse.builders import build_model
from tfsparse.builders import open_run
from tfsparse.builders import train_section
from tfsparse.compat import keras
from tfsparse.config import ConfigError
from tfsparse.config import validate_train
from tfsparse.layers import has_inference_noise
from tfsparse.layers import set_inference_noise
from tfsparse.sparsity import weight_sparsity
from tfsparse.training.adversarial import AdversarialModel
from tfsparse.training.adversarial import train_adversarial
from tfsparse.training.clean import train
from tfsparse.training.losses import add_lasso

TRAININGS = ("clean", "pgd", "rsr")


def pgd_family(dataset_name):
    """``mnist`` for MNIST-like 28×28 data, ``cifar`` otherwise: the key into ``pgd.by_family``."""
    return "mnist" if "mnist" in dataset_name else "cifar"


def adversarial_train_section(config, dataset_name):
    """The ``train`` section of pgd/rsr training: ``train`` plus ``pgd.by_family.<family>.train``."""
    policy = config.pgd.by_family[pgd_family(dataset_name)].get("train", {})
    return train_section(config, **dict(policy))


def pgd_settings(config, dataset_name):
    """``(eps, step_size, steps)`` of training PGD: the ``pgd`` section, negatives resolved.

    Negative entries take the dataset family's default from ``pgd.by_family`` (``mnist``
    for MNIST-like 28×28 data, ``cifar`` otherwise); ``rsr`` training uses ``rsr.steps``
    (negative: the family's ``rsr_steps``).

    Raises:
      ConfigError: if the resolved step size or steps do not make sense.
    """
    defaults = config.pgd.by_family[pgd_family(dataset_name)]
    eps = config.pgd.eps if config.pgd.eps >= 0 else defaults.eps
    step_size = config.pgd.step_size if config.pgd.step_size > 0 else defaults.step_size
    steps = config.pgd.steps if config.pgd.steps >= 0 else defaults.steps
    if config.training == "rsr":
        steps = config.rsr.steps if config.rsr.steps >= 0 else defaults.rsr_steps
    if not (eps >= 0 and step_size > 0 and int(steps) >= 0):
        raise ConfigError(f"pgd: need eps >= 0, step_size > 0, steps >= 0; got {eps}, {step_size}, {steps}")
    return float(eps), float(step_size), int(steps)


def eps_warmup_steps(config, dataset_name, num_train, batch_size):
    """Optimizer steps of the training-ε ramp: ``pgd.eps_warmup_epochs`` (negative = family's)."""
    epochs = config.pgd.eps_warmup_epochs
    if epochs < 0:
        epochs = config.pgd.by_family[pgd_family(dataset_name)].eps_warmup_epochs
    return int(round(epochs * math.ceil(num_train / batch_size)))


def adversarial_model(config, model, dataset):
    """The :class:`AdversarialModel` of a pgd/rsr config around ``model``, and its ``train`` section.

    ε / step / steps from :func:`pgd_settings`, the ε ramp from :func:`eps_warmup_steps`,
    RSR's clean weight ``a`` for ``rsr`` (0 for ``pgd``), no adversarial validation.

    Returns:
      ``(adversarial_model, train_cfg)``.
    """
    eps, step_size, steps = pgd_settings(config, dataset.name)
    train_cfg = adversarial_train_section(config, dataset.name)
    adversarial = AdversarialModel(
        model, eps=eps, step_size=step_size, steps=steps, random_start=config.pgd.random_start,
        clean_weight=config.rsr.clean_weight if config.training == "rsr" else 0.0, adversarial_eval=False,
        seed=config.pgd.seed,
        eps_warmup=eps_warmup_steps(config, dataset.name, len(dataset.x_train), train_cfg.batch_size),
    )
    return adversarial, train_cfg


def validate_training(config):
    """Checks the ``training``/``pgd``/``rsr`` sections before any work (SPEC §11).

    Raises:
      ConfigError: naming the bad value.
    """
    if config.training not in TRAININGS:
        raise ConfigError(f"training must be one of {TRAININGS}, got {config.training!r}")
    if config.training == "clean":
        return
    if config.pgd.eps > 1:
        raise ConfigError(f"pgd.eps is in pixel units of [0, 1] images; got {config.pgd.eps} (did you mean {config.pgd.eps}/255?)")
    r = config.rsr
    checks = (
        (0 <= r.clean_weight <= 1, f"rsr.clean_weight must be in [0, 1], got {r.clean_weight}"),
        (r.lasso >= 0, f"rsr.lasso must be >= 0, got {r.lasso}"),
        (r.noise in ("channel", "layer", ""), f"rsr.noise must be 'channel', 'layer' or '', got {r.noise!r}"),
        (r.gamma >= 0, f"rsr.gamma must be >= 0, got {r.gamma}"),
        (0 <= r.target_sparsity < 1, f"rsr.target_sparsity must be in [0, 1), got {r.target_sparsity}"),
        (r.eot_samples >= 1, f"rsr.eot_samples must be >= 1, got {r.eot_samples}"),
    )
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    family = pgd_family(config.data.name)
    validate_train(adversarial_train_section(config, config.data.name), f"train with pgd.by_family.{family}.train")


def build_rsr_model(config, dataset, seed):
    """The configured zoo model with CNI/PNI layers (``rsr.noise``), seeded."""
    keras.utils.set_random_seed(seed)
    num_classes = 1 if config.model.name == "linear_binary" else dataset.num_classes
    mean, std = (dataset.mean, dataset.std) if config.model.normalization == "dataset" else (0.0, 1.0)
    layers = model_lib.Layers(
        kernel_initializer=config.model.kernel_initializer, noise=config.rsr.noise or None,
        noise_alpha=config.rsr.noise_alpha, inference_noise=config.rsr.inference_noise,
    )
    return model_lib.get(config.model.name)(
        num_classes, dataset.input_shape, mean, std, width=config.model.width, layers=layers
    )


def rsr_threshold_prune(model, rsr_cfg):
    """Threshold pruning of RSR §3.4 at ``rsr.gamma`` (or the γ of ``rsr.target_sparsity``).

    Returns:
      ``(model, gamma)``: the pruned copy (or ``model`` itself when nothing is pruned).
    """
    from tfsparse.sparsity.oneshot import gamma_for_sparsity
    from tfsparse.sparsity.oneshot import threshold_prune

    gamma = rsr_cfg.gamma
    if gamma == 0 and rsr_cfg.target_sparsity > 0:
        gamma = gamma_for_sparsity(model, rsr_cfg.target_sparsity)
    if gamma == 0:
        return model, 0.0
    return threshold_prune(model, gamma), float(gamma)


def pgd_accuracy(model, x, y, eps, step_size, steps, eot_samples=1, batch_size=500):
    """PGD accuracy (SPEC §7); EOT-PGD with ``eot_samples`` when inference noise is on."""
    if eps == 0 or steps == 0:
        return metrics.clean_accuracy(model, x, y, batch_size=batch_size), "none"
    if has_inference_noise(model) and eot_samples > 1:
        attack = EOTPGD(eps=eps, step_size=step_size, steps=steps, samples=int(eot_samples))
    else:
        attack = PGD(eps=eps, step_size=step_size, steps=steps)
    return float(attack.run(model, x, y).adv_accuracy), repr(attack)


def train_and_evaluate(config, workdir, log=print):
    """Trains the configured model, evaluates it, saves a SavedModel.

    The workdir receives ``config.json``, ``history.csv``, ``results.json`` (clean
    accuracy, steps, seconds; for ``pgd``/``rsr`` also ε, PGD accuracy on
    ``pgd.eval_examples`` test images, weight sparsity, γ) and ``saved_model/``
    (serving signature: [0, 1] images → logits; an RSR model keeps its
    ``rsr.inference_noise`` setting, and its round-trip check is skipped when that
    noise makes predictions random).

    Returns:
      The results dict written to ``results.json``.

    Raises:
      ConfigError: on a bad ``training``/``pgd``/``rsr`` section.
    """
    validate_training(config)
    run_dir, dataset, meta = open_run(config, workdir, log)
    summary = {"model": config.model.name, "dataset": dataset.name, "training": config.training}
    started = time.perf_counter()
    if config.training == "clean":
        model = build_model(config.model, dataset, config.seed)
        history = train(model, dataset.x_train, dataset.y_train, train_section(config), seed=config.seed, verbose=config.verbose)
        steps_done = int(model.optimizer.iterations.numpy())
    else:
        eps, step_size, steps = pgd_settings(config, dataset.name)
        rsr = config.training == "rsr"
        model = build_rsr_model(config, dataset, config.seed) if rsr else build_model(config.model, dataset, config.seed)
        if rsr:
            add_lasso(model, config.rsr.lasso)
        adversarial, train_cfg = adversarial_model(config, model, dataset)
        history = train_adversarial(adversarial, dataset.x_train, dataset.y_train, train_cfg, seed=config.seed, verbose=config.verbose)
        steps_done = int(adversarial.optimizer.iterations.numpy())
        summary.update({"eps": eps, "step_size": step_size, "pgd_steps": steps, "eps_warmup_steps": adversarial.eps_warmup,
                        "optimizer": train_cfg.get("optimizer", "sgd"), "learning_rate": train_cfg.learning_rate})
        if rsr:
            model, gamma = rsr_threshold_prune(model, config.rsr)
            set_inference_noise(model, config.rsr.inference_noise)
            summary.update({"gamma": gamma, "lasso": config.rsr.lasso, "inference_noise": bool(config.rsr.inference_noise)})
    seconds = time.perf_counter() - started
    epochs = len(history.epoch)
    results.write_csv(
        os.path.join(run_dir, "history.csv"),
        [{"epoch": e + 1, **{k: float(v[e]) for k, v in history.history.items()}} for e in range(epochs)],
    )
    summary["clean_accuracy"] = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
    if config.training != "clean":
        n = min(config.pgd.eval_examples, len(dataset.x_test))
        summary["pgd_accuracy"], summary["pgd_attack"] = pgd_accuracy(
            model, dataset.x_test[:n], dataset.y_test[:n], eps, step_size, config.pgd.eval_steps,
            config.rsr.eot_samples, config.eval.batch_size,
        )
        summary["weight_sparsity"] = weight_sparsity(model)["overall"]
    stochastic = has_inference_noise(model)
    summary["saved_model"] = export.save_saved_model(
        model, os.path.join(run_dir, "saved_model"), check_inputs=None if stochastic else dataset.x_test[:64]
    )
    summary.update({"train_steps": steps_done, "train_seconds": seconds, "metadata": meta})
    results.write_json(os.path.join(run_dir, "results.json"), summary)
    extra = f", PGD accuracy {summary['pgd_accuracy']:.4f} at eps {summary['eps']:.4g}" if "pgd_accuracy" in summary else ""
    log(f"clean accuracy {summary['clean_accuracy']:.4f}{extra} after {steps_done} steps ({seconds:.1f} s)")
    return summary

"""The robust-training recipe, once: Madry PGD training and RSR (Rakin et al. 2019), used by the
``train`` pipeline, the tuner and the RSR tables (:mod:`tfsparse.pipelines.rsr_tables`).

* ``pgd`` — Madry et al. 2018: :class:`~tfsparse.training.AdversarialModel` with clean weight
  0, PGD of the ``pgd`` section (ε, step, steps, ``pgd.random_start``: Madry's uniform
  start), ε ramped from 0 over ``pgd.eps_warmup_epochs``, the ``adversarial_train`` optimizer
  policy.
* ``rsr`` — RSR: CNI/PNI layers (``rsr.noise``, α₀ ``rsr.noise_alpha``), ensemble loss
  ``a·CE(clean) + (1 − a)·CE(adv) + λ·Σ‖W‖₁`` (eq. 5–6, ``rsr.clean_weight``,
  ``rsr.lasso``) on PGD-``rsr.steps`` examples that start at x when ``rsr.random_start`` is
  False (RSR eq. 2: x̂¹ = x), then threshold pruning at γ (§3.4: ``rsr.gamma``, or the γ that
  reaches ``rsr.target_sparsity``), inference noise per ``rsr.inference_noise``.
* ``ibp`` / ``crown_ibp`` — certified training (Gowal et al. 2018; Zhang et al. 2020, Eq. 7):
  :class:`~tfsparse.training.CertifiedModel` at ``certified.train_eps`` (0: ``pgd.eps``) with
  the ``certified`` section's ε, κ and β schedules, the ``adversarial_train`` policy.
* ``gaussian`` — the base classifier of randomized smoothing (Cohen et al. 2019, §4):
  :class:`~tfsparse.training.NoiseAugmentedModel` on inputs plus N(0, ``smoothing.sigma``²).

PGD accuracy after training (:func:`pgd_accuracy`) is measured by
:func:`tfsparse.evaluation.evaluate` with :func:`eval_attack`: ``pgd.eval_steps`` steps of
``pgd.step_size`` at the training ε, starting at x unless ``pgd.eval_random_start`` (RSR eq. 2
starts at x; Madry's evaluation starts at a random point), EOT-PGD with ``rsr.eot_samples``
draws per step when the model is random at inference; after certified training
:func:`robust_measures` adds the IBP- and CROWN-certified accuracy at ``pgd.eps`` in the same
measure (certified ≤ PGD-robust ≤ clean checked per image), and after ``gaussian`` training
:func:`smoothed_measures` the smoothed classifier's certified l2 accuracy (CERTIFY).
"""

import contextlib
import math

import ml_collections

from tfsparse import attacks
from tfsparse import evaluation
from tfsparse.layers import has_inference_noise
from tfsparse.layers import set_inference_noise
from tfsparse.pipelines._build import build_model
from tfsparse.pipelines._build import single_device_copy
from tfsparse.pipelines._build import train_section
from tfsparse.sparsity import gamma_for_sparsity
from tfsparse.sparsity import threshold_prune
from tfsparse.certification import Certificate
from tfsparse.certification import smoothing
from tfsparse.training import AdversarialModel
from tfsparse.training import CertifiedModel
from tfsparse.training import NoiseAugmentedModel
from tfsparse.training import add_lasso
from tfsparse.training import float32_logits
from tfsparse.training import precision_policy
from tfsparse.training import train_adversarial


CERTIFIED = ("ibp", "crown_ibp")


def pgd_steps(config):
    """PGD steps of training: ``rsr.steps`` for RSR, ``pgd.steps`` for Madry training."""
    return int(config.rsr.steps if config.training == "rsr" else config.pgd.steps)


def pgd_random_start(config):
    """Where training PGD starts: ``rsr.random_start`` for RSR (False: at x, RSR eq. 2),
    ``pgd.random_start`` for Madry training (True: a uniform point of the ε-ball)."""
    return bool(config.rsr.random_start if config.training == "rsr" else config.pgd.random_start)


def adversarial_model(config, model, num_train):
    """The :class:`AdversarialModel` of a pgd/rsr config (the :class:`CertifiedModel` of an
    ibp/crown_ibp one, the :class:`NoiseAugmentedModel` of a gaussian one) around ``model``, and
    its train section.

    Returns:
      ``(adversarial_model, train_cfg)``.
    """
    train_cfg = train_section(config, "adversarial_train")
    per_epoch = math.ceil(num_train / train_cfg.batch_size)
    if config.training in CERTIFIED:
        c = config.certified
        return CertifiedModel(
            model, eps=float(c.train_eps or config.pgd.eps), method=config.training, norm=c.norm,
            warmup_steps=int(round(c.warmup_epochs * per_epoch)), ramp_steps=int(round(c.ramp_epochs * per_epoch)),
            kappa=(c.kappa_start, c.kappa_end), beta=(c.beta_start, c.beta_end),
        ), train_cfg
    if config.training == "gaussian":
        return NoiseAugmentedModel(model, sigma=config.smoothing.sigma, seed=config.pgd.seed), train_cfg
    adversarial = AdversarialModel(
        model, eps=config.pgd.eps, step_size=config.pgd.step_size, steps=pgd_steps(config),
        random_start=pgd_random_start(config),
        clean_weight=config.rsr.clean_weight if config.training == "rsr" else 0.0,
        adversarial_eval=False, seed=config.pgd.seed,
        eps_warmup=int(round(config.pgd.eps_warmup_epochs * per_epoch)),
    )
    return adversarial, train_cfg


def adversarial_fit(config, model, x, y, *, seed, section="adversarial_train", warmup_epochs=None, steps=None,
                    callbacks=(), checkpoint_dir=None, verbose=0):
    """The one adversarial fit of every experiment, ``train`` and ``prune``: PGD / RSR-trains ``model`` in place.

    The :class:`AdversarialModel` is :func:`adversarial_model`'s (Madry et al. 2018 PGD, or RSR's
    PGD from x with the clean term, Rakin et al. 2019 eq. 2) over ``config`` with
    ``config[section]`` as its training policy (``finetune``, ``scratch``: Wang et al.'s) and,
    when given, an ε warm-up of ``warmup_epochs``; :func:`tfsparse.training.train_adversarial`
    trains it (masks of pruning wrappers held) for ``steps`` (default: the policy's budget),
    with ``callbacks`` and, with ``checkpoint_dir``, a checkpoint every epoch that a later call
    resumes to the result of an uninterrupted fit.

    Returns:
      ``(adversarial, train_cfg, history)``.
    """
    if section != "adversarial_train" or warmup_epochs is not None:
        config = ml_collections.ConfigDict(config.to_dict())
        config.adversarial_train = config[section]
        if warmup_epochs is not None:
            config.pgd.eps_warmup_epochs = float(warmup_epochs)
    adversarial, train_cfg = adversarial_model(config, model, len(x))
    history = train_adversarial(adversarial, x, y, train_cfg, steps=steps, seed=seed, verbose=verbose,
                                callbacks=callbacks, checkpoint_dir=checkpoint_dir)
    return adversarial, train_cfg, history


def threshold(model, rsr_cfg):
    """RSR §3.4 threshold pruning at ``rsr.gamma`` (or the γ of ``rsr.target_sparsity``).

    Returns:
      ``(model, gamma)``: the pruned copy, or ``model`` itself and 0 when nothing is pruned.
    """
    gamma = rsr_cfg.gamma
    if gamma == 0 and rsr_cfg.target_sparsity > 0:
        gamma = gamma_for_sparsity(model, rsr_cfg.target_sparsity)
    if gamma == 0:
        return model, 0.0
    return threshold_prune(model, gamma), float(gamma)


def train_robust(config, dataset, seed, *, verbose=0, callbacks=(), checkpoint_dir=None, strategy=None):
    """Builds, trains (and for RSR prunes) the model of a pgd/rsr/ibp/crown_ibp/gaussian config.

    The model, its :class:`AdversarialModel` and the optimizer are built inside
    ``strategy.scope()`` and under the ``adversarial_train.mixed_precision`` policy
    (:mod:`tfsparse.training.distribute`, :mod:`tfsparse.training.precision`); the returned
    model is then a plain float32 copy (:func:`~tfsparse.pipelines._build.single_device_copy`).

    Args:
      config: a validated config with ``training`` in (pgd, rsr, ibp, crown_ibp, gaussian).
      dataset: the loaded dataset.
      seed: seed of the initial weights and of the data order.
      verbose: Keras verbosity.
      callbacks: extra Keras callbacks of ``fit``.
      checkpoint_dir: per-epoch checkpoints; an existing one is resumed.
      strategy: a ``tf.distribute`` strategy, or None for the default one.

    Returns:
      ``(model, adversarial, history, info)``: the trained (pruned, for RSR) functional model,
      its :class:`AdversarialModel`, the Keras ``History`` and a dict of what was set
      (ε, steps, warm-up steps, optimizer, γ, ...).
    """
    rsr = config.training == "rsr"
    noise_cfg = config.rsr if rsr else None
    train_cfg = train_section(config, "adversarial_train")
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope, precision_policy(train_cfg.mixed_precision):
        model = float32_logits(build_model(config.model, dataset, seed, noise_cfg=noise_cfg))
        if rsr:
            add_lasso(model, config.rsr.lasso)
        adversarial, train_cfg, history = adversarial_fit(config, model, dataset.x_train, dataset.y_train, seed=seed,
                                                          verbose=verbose, callbacks=callbacks,
                                                          checkpoint_dir=checkpoint_dir)
    if strategy is not None or train_cfg.mixed_precision:
        model = single_device_copy(model, config.model, dataset, seed, noise_cfg)
    info = {"eps": float(config.pgd.eps), "optimizer": train_cfg.optimizer, "learning_rate": train_cfg.learning_rate}
    if config.training in CERTIFIED:
        info.update({"train_eps": adversarial.eps, "eps_warmup_steps": adversarial.warmup_steps,
                     "eps_ramp_steps": adversarial.ramp_steps, "kappa": list(adversarial.kappa),
                     "beta": list(adversarial.beta) if config.training == "crown_ibp" else None})
    elif config.training == "gaussian":
        info["sigma"] = adversarial.sigma
    else:
        info.update({"step_size": float(config.pgd.step_size), "pgd_steps": pgd_steps(config),
                     "pgd_random_start": pgd_random_start(config), "eps_warmup_steps": adversarial.eps_warmup})
    if rsr:
        model, gamma = threshold(model, config.rsr)
        set_inference_noise(model, config.rsr.inference_noise)
        info.update({"gamma": gamma, "lasso": config.rsr.lasso, "inference_noise": bool(config.rsr.inference_noise)})
    return model, adversarial, history, info


def eval_attack(config, model, steps=None, eot=None):
    """The white-box PGD of the ``pgd`` section against ``model``, EOT-PGD when it is random at inference.

    ε and step are the training ones; ``steps`` defaults to ``pgd.eval_steps``; the start is
    x unless ``pgd.eval_random_start`` (RSR eq. 2). ``eot``: None gives a model with inference
    noise on :class:`~tfsparse.attacks.EOTPGD` with ``rsr.eot_samples`` gradient draws per step
    (Athalye et al. 2018; unless that is 1) and any other model plain PGD; True / False force
    EOT-PGD / PGD (RSR Table 5 reports the attack that ignores the noise).
    """
    params = {"eps": config.pgd.eps, "step_size": config.pgd.step_size,
              "steps": int(config.pgd.eval_steps if steps is None else steps),
              "random_start": bool(config.pgd.eval_random_start)}
    if eot is None:
        eot = has_inference_noise(model) and config.rsr.eot_samples > 1
    if eot:
        return attacks.EOTPGD(samples=int(config.rsr.eot_samples), **params)
    return attacks.PGD(**params)


def robust_measures(model, x, y, config, batch_size):
    """What ``train`` records after robust training: :func:`pgd_accuracy`, and after certified
    training also ``certified_ibp`` / ``certified_crown`` at ``pgd.eps`` (l∞) in one measure
    with the PGD attack, so certified ≤ PGD-robust ≤ clean is checked per image."""
    if config.training not in CERTIFIED or config.pgd.eps == 0 or config.pgd.eval_steps == 0:
        accuracy, attack = pgd_accuracy(model, x, y, config, batch_size)
        found = {"pgd_accuracy": accuracy, "pgd_attack": attack}
        if config.training == "gaussian":
            found.update(smoothed_measures(model, x, y, config.smoothing, config.pgd.seed))
        return found
    attack = eval_attack(config, model)
    return evaluation.measure(
        model, x, y, [("pgd_accuracy", attack), ("pgd_attack", attack, "repr"),
                      ("certified_ibp", Certificate("ibp", float(config.pgd.eps))),
                      ("certified_crown", Certificate("crown", float(config.pgd.eps)))],
        batch_size=batch_size, seed=config.pgd.seed)


def smoothed_measures(model, x, y, smoothing_cfg, seed):
    """Randomized smoothing's CERTIFY (Cohen et al. 2019, §3.2) of ``model`` at ``smoothing.sigma`` on
    the first ``smoothing.num_examples`` of ``(x, y)``: ``smoothed_certified`` (certified l2 accuracy at
    each of ``smoothing.radii``, abstentions wrong), ``smoothed_abstain`` (the abstained fraction)."""
    c = smoothing_cfg
    x, y = x[:c.num_examples], y[:c.num_examples]
    found = smoothing.certify(model, x, c.sigma, n0=int(c.n0), n=int(c.n), alpha=float(c.alpha),
                              batch=int(c.batch), seed=seed)
    return {"sigma": float(c.sigma), "smoothed_certified": dict(zip((f"{r:g}" for r in c.radii),
                                                                   found.curve(y, list(c.radii)))),
            "smoothed_abstain": float((found.prediction == smoothing.ABSTAIN).mean()), "smoothed_n": int(c.n),
            "smoothed_alpha": float(c.alpha),
            "smoothed_examples": len(x)}


def pgd_accuracy(model, x, y, config, batch_size):
    """PGD accuracy (:func:`eval_attack`) by the evaluator; EOT when noisy.

    Returns:
      ``(accuracy, attack_repr)``; with 0 steps or ε = 0, the clean accuracy and ``"none"``.
    """
    if config.pgd.eps == 0 or config.pgd.eval_steps == 0:
        from tfsparse.metrics import clean_accuracy

        return clean_accuracy(model, x, y, batch_size=batch_size), "none"
    attack = eval_attack(config, model)
    found = evaluation.measure(model, x, y, [("accuracy", attack), ("repr", attack, "repr")], batch_size=batch_size,
                               seed=config.pgd.seed)
    return found["accuracy"], found["repr"]

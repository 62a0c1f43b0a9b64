"""``evaluate_model``: a saved model under an attack suite, one flat JSON record (scripts/evaluate.py).

The output file is checked before anything is loaded: an existing file needs
``overwrite``, and a location that cannot be written is refused, so no attack runs for
results that could not be kept. The attacks are built from their names and the defaults
of ``configs/evaluate.py`` before the model loads, and the evaluation itself is
:func:`tfsparse.evaluation.evaluate` (per-sample worst case, diagnostics).

Two options serve RSR's tables (Rakin et al. 2019): ``inference_noise`` switches the CNI/PNI
noise of the loaded model on or off (Table 5; with noise on the model is random at inference,
so :func:`tfsparse.sanity.prepare` replaces every gradient attack by its EOT form), and the
attack name ``transfer`` crafts ``configs/evaluate.py``'s ``attacks.transfer.attack`` on
``source_model`` and scores it on the model (Table 3's transfer columns).
"""

import os

from tfsparse import attacks as attack_lib
from tfsparse import errors
from tfsparse import evaluation
from tfsparse import model_io
from tfsparse import results
from tfsparse import sanity
from tfsparse.compat import keras
from tfsparse.errors import ConfigError
from tfsparse.layers import noisy_layers
from tfsparse.layers import set_inference_noise
from tfsparse.pipelines._run import check_output_file
from tfsparse.training import is_chief
from tfsparse.training import strategy_from_config


def evaluate_model(config, model_path, *, attack_names, eps, dataset, data_dir, classes, num_examples, subset,
                   model_outputs, signature, source_model, inference_noise, output, overwrite, distribute,
                   log=print):
    """Evaluates the model at ``model_path`` and writes the report to ``output`` (if given).

    Every argument but ``log`` is given by the caller: their defaults are the keys of the same
    names in ``configs/evaluate.py``, the only place they live; ``scripts/evaluate.py`` passes the
    config's values after its flags have overridden them. Example::

      config = configs.evaluate.get_config()
      evaluate_model(config, "model.keras", attack_names=list(config.attack_names), eps=config.eps,
                     dataset=config.dataset, data_dir=config.data_dir, ...)

    Args:
      config: a ``configs/evaluate.py`` config (per-attack settings, batch size, seed).
      model_path: a Keras ``.h5``/``.keras`` file or a SavedModel directory.
      attack_names: attack names (``evaluation.build_attacks``).
      eps: budget of every fixed-ε attack, pixel units.
      dataset, data_dir, classes, num_examples: the test data (``data_dir`` None: the embedded
        MNIST sample or TFDS; ``classes`` None: all; ``num_examples`` 0: all).
      subset: ``first`` ``num_examples`` test images (RobustBench's convention) or ``random``.
      model_outputs: ``logits`` or ``probabilities`` (see :mod:`tfsparse.sanity`).
      signature: the SavedModel signature of a non-Keras SavedModel.
      source_model: the model the ``transfer`` attack crafts its examples on, and the
        differentiable model gradient attacks are crafted on when the evaluated model has no
        gradients (TFLite): they then run as transfer attacks. Refused when neither applies.
      inference_noise: ``"on"`` / ``"off"`` switches the CNI/PNI noise of the loaded model
        (:func:`tfsparse.layers.set_inference_noise`; RSR Table 5), or None to keep the saved
        setting. A model without noise layers is refused.
      output: JSON file to write atomically, or None.
      overwrite: allow replacing an existing ``output``.
      distribute: a ``tf.distribute`` word (``tfsparse.training.STRATEGIES``): the attacks'
        batches are sharded over its replicas and workers
        (:func:`tfsparse.evaluation.run_sharded`); in a multi-worker cluster every worker
        evaluates its share and only the chief logs the table and writes ``output``.
      log: progress sink.

    Returns:
      The report dict (with ``inference_noise`` and, when given, ``source_model``).

    Raises:
      ConfigError: on bad attacks, data or output, ``transfer`` without ``source_model``, an
        unused ``source_model``, or ``inference_noise`` on a model without noise layers.
    """
    strategy = strategy_from_config(distribute)
    chief = is_chief(strategy)
    output = output if chief else None
    if output:
        check_output_file(output, overwrite)
    if inference_noise not in (None, *INFERENCE_NOISE):
        raise ConfigError(f"--inference_noise must be one of {INFERENCE_NOISE}, got {inference_noise!r}")
    transfer = [name.strip().lower() == TRANSFER for name in attack_names]
    if any(transfer) and not source_model:
        raise ConfigError("--attacks=transfer crafts its examples on another model; give it with --source_model=PATH")
    if sum(transfer) > 1:
        raise ConfigError("--attacks names transfer twice; list each attack once")
    # The transfer's attack (crafted on the source) is built apart: it may be one of the
    # white-box attacks too (pgd,transfer), which is no repetition.
    plain = [name for name, t in zip(attack_names, transfer) if not t]
    built = iter(evaluation.build_attacks(plain, eps, config) if plain or not transfer else ())
    crafted = evaluation.build_attacks([config.attacks.transfer.attack], eps, config)[0] if any(transfer) else None
    attacks = [crafted if t else next(built) for t in transfer]
    for note in sanity.budget_notes(attacks):
        log(note["detail"])
    model = model_io.load_model(model_path, signature=signature)
    gradient_free = getattr(model, "gradient_free", False)
    if source_model and not (any(transfer) or gradient_free):
        raise ConfigError("--source_model is used by --attacks=transfer (or for a model without gradients); "
                          "add transfer to --attacks or drop --source_model")
    if inference_noise is not None:
        switch_inference_noise(model, inference_noise, model_path)
    source = source_model and model_io.load_model(source_model)
    if getattr(source, "gradient_free", False):
        raise ConfigError(f"--source_model {source_model} has no gradients (TFLite); give a Keras or SavedModel source")
    attacks = [attack_lib.TransferAttack(source_model=source, attack=a) if t else a for a, t in zip(attacks, transfer)]
    asked = attacks
    if gradient_free:
        attacks = gradient_free_attacks(attacks, source)
    report = evaluation.evaluate_dataset(
        model, attacks, dataset=dataset, data_dir=data_dir, classes=classes, num_examples=num_examples,
        batch_size=config.batch_size, seed=config.seed, subset=subset, model_outputs=model_outputs,
        eot_samples=config.eot_samples, check_unbounded=config.check_unbounded,
        strategy=None if distribute == "none" else strategy,
    )
    if gradient_free:
        report["attacks"] = transfer_keys(report["attacks"], asked)
    report["model"] = {"path": os.path.abspath(model_path), "format": model_io.describe_format(model_path),
                       "sha256": model_io.content_hash(model_path)}
    if source_model:
        report["source_model"] = {"path": os.path.abspath(source_model),
                                  "format": model_io.describe_format(source_model),
                                  "sha256": model_io.content_hash(source_model)}
    report["inference_noise"] = inference_noise or "as saved"
    report["metadata"] = results.metadata()
    if not chief:
        return report
    log(evaluation.format_table(report))
    if output:
        errors.raise_if_stopped()  # a stop swallowed during the attacks: no report of a cut-short run
        results.write_json(output, report)
        log(f"results: {output}")
    return report


# The attack name that crafts ``config.attacks.transfer.attack`` on --source_model.
TRANSFER = "transfer"
INFERENCE_NOISE = ("on", "off")


def switch_inference_noise(model, setting, model_path):
    """Sets the CNI/PNI inference-noise switch of every noise layer of ``model`` (RSR Table 5).

    Raises:
      ConfigError: if ``model`` has no noise layer to switch (e.g. a plain or a non-Keras model).
    """
    layers = noisy_layers(model) if isinstance(model, keras.Model) else []
    if not layers:
        raise ConfigError(f"--inference_noise={setting}: {model_path} has no CNI/PNI noise layers to switch "
                          "(a model trained with --training=rsr has them); drop --inference_noise")
    set_inference_noise(model, setting == "on")


def transfer_keys(entries, asked):
    """The report's attack entries keyed for a model without gradients (TFLite).

    A gradient attack asked for runs there as a transfer from ``--source_model``, so its entry
    is ``transfer_<attack>`` (``transfer_pgd``), not the ``transfer_2`` that a second attack of
    that name got; ``--attacks=transfer`` stays ``transfer`` and a black-box attack keeps its name
    (names are unique: :func:`tfsparse.evaluation.build_attacks` refuses repeats).
    """
    if len(entries) != len(asked):
        raise ValueError(f"{len(entries)} report entries for {len(asked)} attacks")
    keys = [TRANSFER if isinstance(a, attack_lib.TransferAttack) else a.name if isinstance(a, attack_lib.BLACK_BOX)
            else f"{TRANSFER}_{a.name}" for a in asked]
    return dict(zip(keys, entries.values()))


def gradient_free_attacks(attacks, source_model=None):
    """The attacks for a model without gradients (TFLite), all rebuilt without XLA.

    Black-box attacks run as they are; a gradient attack becomes a transfer from
    ``source_model`` or, without one, is refused.

    Raises:
      ConfigError: for a gradient attack and no ``source_model``.
    """
    usable = []
    for attack in attacks:
        if isinstance(attack, attack_lib.TransferAttack):
            usable.append(attack_lib.TransferAttack(source_model=attack.source_model, attack=attack.attack,
                                                    jit_compile=False))
        elif isinstance(attack, attack_lib.BLACK_BOX):
            params = {k: v for k, v in attack.params.items() if k != "name"}
            usable.append(type(attack)(**{**params, "jit_compile": False}))
        elif source_model is not None:
            usable.append(attack_lib.TransferAttack(source_model=source_model, attack=attack, jit_compile=False))
        else:
            raise ConfigError(f"the model has no gradients (TFLite): {attack.name} needs them; use square or zoo, "
                              "or give --source_model to transfer it from a differentiable model")
    return usable

"""``evaluate_model``: a saved model under an attack suite, one flat JSON record (scripts/evaluate.py).

The output file is checked before anything is loaded: an existing file needs
``overwrite``, and a location that cannot be written is refused, so no attack runs for
results that could not be kept. The attacks are built from their names and the defaults
of ``configs/evaluate.py`` before the model loads, and the evaluation itself is
:func:`tfsparse.evaluation.evaluate` (per-sample worst case, diagnostics).
"""

import os

from tfsparse import attacks as attack_lib
from tfsparse import evaluation
from tfsparse import model_io
from tfsparse import results
from tfsparse.errors import ConfigError
from tfsparse.pipelines._run import check_output_file
from tfsparse.training import is_chief
from tfsparse.training import strategy_from_config


def evaluate_model(config, model_path, *, attack_names, eps, dataset, data_dir=None, classes=None,
                   num_examples=0, subset="first", model_outputs="logits", signature="serving_default",
                   source_model=None, output=None, overwrite=False, distribute="none", log=print):
    """Evaluates the model at ``model_path`` and writes the report to ``output`` (if given).

    Args:
      config: a ``configs/evaluate.py`` config (per-attack defaults, batch size, seed).
      model_path: a Keras ``.h5``/``.keras`` file or a SavedModel directory.
      attack_names: attack names (``evaluation.build_attacks``).
      eps: budget of every fixed-ε attack, pixel units.
      dataset, data_dir, classes, num_examples: the test data.
      subset: ``first`` ``num_examples`` test images (default, RobustBench) or ``random``.
      model_outputs: ``logits`` or ``probabilities`` (see :mod:`tfsparse.sanity`).
      signature: the SavedModel signature of a non-Keras SavedModel.
      source_model: a differentiable model to craft gradient attacks on when the evaluated
        model has no gradients (TFLite): they run as transfer attacks.
      output: JSON file to write atomically, or None.
      overwrite: allow replacing an existing ``output``.
      distribute: a ``tf.distribute`` word (``tfsparse.training.STRATEGIES``): the attacks'
        batches are sharded over its replicas and workers
        (:func:`tfsparse.evaluation.run_sharded`); in a multi-worker cluster every worker
        evaluates its share and only the chief logs the table and writes ``output``.
      log: progress sink.

    Returns:
      The report dict.
    """
    strategy = strategy_from_config(distribute)
    chief = is_chief(strategy)
    output = output if chief else None
    if output:
        check_output_file(output, overwrite)
    attacks = evaluation.build_attacks(attack_names, eps, config)
    model = model_io.load_model(model_path, signature=signature)
    if getattr(model, "gradient_free", False):
        attacks = gradient_free_attacks(attacks, source_model and model_io.load_model(source_model))
    report = evaluation.evaluate_dataset(
        model, attacks, dataset=dataset, data_dir=data_dir, classes=classes, num_examples=num_examples,
        batch_size=config.batch_size, seed=config.seed, subset=subset, model_outputs=model_outputs,
        eot_samples=config.eot_samples, check_unbounded=config.check_unbounded,
        strategy=None if distribute == "none" else strategy,
    )
    report["model"] = {"path": os.path.abspath(model_path), "format": model_io.describe_format(model_path),
                       "sha256": model_io.content_hash(model_path)}
    report["metadata"] = results.metadata()
    if not chief:
        return report
    log(evaluation.format_table(report))
    if output:
        results.write_json(output, report)
        log(f"results: {output}")
    return report


def gradient_free_attacks(attacks, source_model=None):
    """The attacks for a model without gradients (TFLite), all rebuilt without XLA.

    Black-box attacks run as they are; a gradient attack becomes a transfer from
    ``source_model`` or, without one, is refused.

    Raises:
      ConfigError: for a gradient attack and no ``source_model``.
    """
    usable = []
    for attack in attacks:
        if isinstance(attack, attack_lib.BLACK_BOX):
            params = {k: v for k, v in attack.params.items() if k != "name"}
            usable.append(type(attack)(**{**params, "jit_compile": False}))
        elif source_model is not None:
            usable.append(attack_lib.TransferAttack(source_model=source_model, attack=attack, jit_compile=False))
        else:
            raise ConfigError(f"the model has no gradients (TFLite): {attack.name} needs them; use square or zoo, "
                              "or give --source_model to transfer it from a differentiable model")
    return usable

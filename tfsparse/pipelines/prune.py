"""``prune_saved_model(config, model_path, output)``: one-shot pruning of a saved model (scripts/prune.py).

Order of work, so that bad input costs nothing and leaves nothing behind: check the
output folder, load the model and the data, check their shapes agree, prune (a method
that cannot apply to this model, e.g. network slimming without BatchNorm, is a usage
error here) — and only then create the output folder, retrain and export.

Under ``distribute`` the loaded model is copied into the strategy's scope and pruned and
retrained there (``train.batch_size`` is the global batch); the result is measured and
exported from a single-device copy, and in a multi-worker cluster (methods fp and ns only:
the others retrain tfmot pruning wrappers, which cannot train across workers) only the chief
writes ``output``.
``training = "pgd"`` runs on one device only: tfmot's pruning wrappers re-apply their masks
with a cross-replica ``merge_call``, which TensorFlow refuses inside the attack's loop, so
that combination is refused before any work.
"""


from tfsparse import export
from tfsparse import metrics
from tfsparse import plotting
from tfsparse import results
from tfsparse import sanity
from tfsparse import sparsity
from tfsparse import training
from tfsparse.errors import ConfigError
from tfsparse.model_io import load_keras_model
from tfsparse.pipelines._build import WRAPPED_METHODS
from tfsparse.pipelines._build import check_model_fits
from tfsparse.pipelines._build import distribution
from tfsparse.pipelines._build import load_data
from tfsparse.pipelines._build import strategy_scope
from tfsparse.pipelines._build import train_section
from tfsparse.pipelines._run import Run
from tfsparse.pipelines._build import eval_subset
from tfsparse.pipelines.rsr import adversarial_fit
from tfsparse.pipelines.rsr import robust_measures

KIND = "prune"
RETRAININGS = ("clean", "pgd", "ibp", "crown_ibp")


def prune_saved_model(config, model_path, output, log=print):
    """Prunes a saved Keras model once with ``config.method``, retrains it, exports it.

    ``output`` receives ``saved_model/`` (wrappers stripped, real zeros; for FP/NS the
    physically smaller model; serving signature on [0, 1] images), ``stats.json``
    (per-layer sparsity, norms, parameter/FLOP counts before and after, clean accuracy
    before and after), ``weights_histogram.png`` and ``results.json`` (status and the
    headline numbers). ``train`` with 0 steps and 0 epochs prunes without retraining.
    ``training = "pgd"`` fine-tunes adversarially instead (Wang et al. 2020: pruned models
    are fine-tuned with the PGD training that made the reference robust): the ``pgd`` attack
    inside the ``adversarial_train`` policy, the masks held as in clean retraining;
    ``ibp`` / ``crown_ibp`` fine-tune on the certified loss at ``pgd.eps`` (the ``certified``
    section). After robust fine-tuning the record adds the PGD accuracy (and, certified, the
    IBP- and CROWN-certified accuracy) at ``pgd.eps`` on the first ``pgd.eval_examples`` test
    images (:func:`tfsparse.pipelines.rsr.robust_measures`).

    Returns:
      The statistics dict written to ``stats.json`` (None on a multi-worker cluster's other
      workers, which train and write nothing).

    Raises:
      tfsparse.errors.UsageError: on a taken output folder, an unloadable model, bad data,
        a model/data shape mismatch or outputs that do not fit the classes, a method that does not apply to the model, or
        a robust ``training`` under a ``distribute`` strategy.
    """
    if config.training not in RETRAININGS:
        raise ConfigError(f"training {config.training!r}: pruned models are retrained with one of {RETRAININGS}")
    if config.training != "clean" and config.distribute != "none":
        raise ConfigError(f"--training={config.training} cannot run under distribute={config.distribute}: tfmot's "
                          "pruning wrappers call a cross-replica merge_call inside the robust train step, which "
                          "tf.distribute refuses; use --config.distribute=none (docs/SCALE.md)")
    strategy, chief = distribution(config, "train", wrappers=config.method in WRAPPED_METHODS)
    run = Run(output, config, KIND, writer=chief).prepare()
    model = load_keras_model(model_path)
    dataset = load_data(config.data)
    check_model_fits(model, dataset)
    note = sanity.step_note(config.pgd.eps, config.pgd.step_size, "pgd") if config.training == "pgd" else None
    if note:
        log(note)
    gamma = config.prune.gamma if config.prune.gamma >= 0 else None
    with strategy_scope(strategy):
        # The variables of the model to train must belong to the strategy.
        source = sparsity.copy_model(model) if strategy is not None else model
        try:
            pruned = sparsity.prune_with(
                config.method, source, config.sparsity, keep_dense=tuple(config.prune.keep_dense),
                layer_types=tuple(config.prune.layer_types), gamma=gamma,
                ns_max_per_layer=config.prune.ns_max_per_layer,
            )
        except ValueError as error:
            raise ConfigError(f"--method={config.method}: {error}") from None
    with run.start(method=config.method, requested_sparsity=config.sparsity):
        if chief:
            before = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
        with strategy_scope(strategy):
            if config.training != "clean":
                adversarial_fit(config, pruned, dataset.x_train, dataset.y_train, seed=config.seed,
                                verbose=config.verbose)
            else:
                training.train(pruned, dataset.x_train, dataset.y_train, train_section(config), seed=config.seed,
                               verbose=config.verbose)
            sparsity.apply_masks(pruned)  # with --retrain_epochs=0 no step computed the masks: that is asked for
            final = sparsity.plain(pruned)
        if strategy is not None:  # on every worker: reading the trained weights is a collective
            final = sparsity.copy_model(final)
        if not chief:
            log("worker done; the chief evaluates and exports")
            return None
        after = metrics.clean_accuracy(final, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
        robust = {} if config.training == "clean" else robust_measures(
            final, *eval_subset(dataset, config.pgd.eval_examples), config, config.eval.batch_size)
        export.save_saved_model(final, run.file("saved_model"), check_inputs=dataset.x_test[:64])
        weight_stats = sparsity.weight_sparsity(final)
        stats = {
            "method": config.method, "requested_sparsity": config.sparsity, "source_model": model_path,
            "training": config.training,
            "clean_accuracy_before": before, "clean_accuracy_after": after, **robust,
            "weight_sparsity": weight_stats, "norms": sparsity.weight_norms(final),
            "structure_before": sparsity.structure_summary(model), "structure_after": sparsity.structure_summary(final),
            "metadata": run.metadata,
        }
        results.write_json(run.file("stats.json"), stats)
        plotting.plot_weight_histograms(final, run.file("weights_histogram.png"), log_y=True)
        run.update(last_completed="export", clean_accuracy_before=before, clean_accuracy_after=after, **robust,
                   weight_sparsity=weight_stats["overall"], params_before=stats["structure_before"]["params"],
                   params_after=stats["structure_after"]["params"],
                   nonzero_params_before=stats["structure_before"]["nonzero_params"],
                   nonzero_params_after=stats["structure_after"]["nonzero_params"])
    log(sparsity.format_sparsity_table(weight_stats))
    shape, nonzero = (stats["structure_before"], stats["structure_after"]), "nonzero_params"
    log(f"clean accuracy {before:.4f} -> {after:.4f}; params {shape[0]['params']} -> {shape[1]['params']}, "
        f"non-zero {shape[0][nonzero]} -> {shape[1][nonzero]}")
    return stats

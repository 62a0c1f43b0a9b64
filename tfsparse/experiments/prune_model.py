"""``prune_saved_model(config, model_path, output)``: the library entry behind scripts/prune.py."""

import os

from tfsparse import export
from tfsparse import metrics
from tfsparse import plotting
from tfsparse import results
from tfsparse import sparsity
from tfsparse import training
from tfsparse.builders import load_data
from tfsparse.builders import train_section
from tfsparse.model_io import load_keras_model


def prune_saved_model(config, model_path, output, log=print):
    """Prunes a saved Keras model once with ``config.method``, retrains it, exports it.

    ``output`` receives ``saved_model/`` (wrappers stripped, real zeros; for FP/NS the
    physically smaller model; serving signature on [0, 1] images), ``stats.json``
    (per-layer sparsity, norms, parameter/FLOP counts before and after, clean accuracy
    before and after) and ``weights_histogram.png``.

    Returns:
      The statistics dict written to ``stats.json``.
    """
    results.check_run_dir_free(output)
    model = load_keras_model(model_path)
    dataset = load_data(config.data, seed=config.data.seed)
    if tuple(model.input_shape[1:]) != tuple(dataset.input_shape):
        from tfsparse.config import ConfigError

        raise ConfigError(f"model input {model.input_shape[1:]} does not match {dataset.name} images "
                          f"{dataset.input_shape}; choose the dataset the model was trained on")
    run_dir = results.make_run_dir(output)
    before = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
    gamma = config.prune.gamma if config.prune.gamma >= 0 else None
    pruned = sparsity.prune_with(
        config.method, model, config.sparsity, keep_dense=tuple(config.prune.keep_dense),
        layer_types=tuple(config.prune.layer_types), gamma=gamma, ns_max_per_layer=config.prune.ns_max_per_layer,
    )
    training.train(pruned, dataset.x_train, dataset.y_train, train_section(config), seed=config.seed,
                   verbose=config.verbose)
    final = sparsity.strip(pruned) if sparsity.has_pruning_wrappers(pruned) else pruned
    after = metrics.clean_accuracy(final, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
    export.save_saved_model(final, os.path.join(run_dir, "saved_model"), check_inputs=dataset.x_test[:64])
    weight_stats = sparsity.weight_sparsity(final)
    stats = {
        "method": config.method, "requested_sparsity": config.sparsity, "source_model": os.path.abspath(model_path),
        "clean_accuracy_before": before, "clean_accuracy_after": after,
        "weight_sparsity": weight_stats, "norms": sparsity.weight_norms(final),
        "structure_before": sparsity.structure_summary(model), "structure_after": sparsity.structure_summary(final),
        "metadata": results.metadata(),
    }
    results.write_json(os.path.join(run_dir, "stats.json"), stats)
    plotting.plot_weight_histograms(final, os.path.join(run_dir, "weights_histogram.png"), log_y=True)
    log(sparsity.format_sparsity_table(weight_stats))
    log(f"clean accuracy {before:.4f} -> {after:.4f}; params {stats['structure_before']['params']} -> "
        f"{stats['structure_after']['params']}")
    return stats

"""``train_and_evaluate(config, workdir)``: the library entry behind scripts/train.py."""

import os
import time

from tfsparse import export
from tfsparse import metrics
from tfsparse import results
from tfsparse.builders import build_model
from tfsparse.builders import load_data
from tfsparse.builders import train_section
from tfsparse.training.clean import train


def train_and_evaluate(config, workdir, log=print):
    """Trains the configured model, evaluates clean test accuracy, saves a SavedModel.

    The workdir receives ``config.json``, ``history.csv``, ``results.json`` (clean
    accuracy, steps, seconds) and ``saved_model/`` (serving signature: [0, 1] images →
    logits, verified by reloading).

    Returns:
      The results dict written to ``results.json``.
    """
    results.check_run_dir_free(workdir)
    dataset = load_data(config.data, seed=config.data.seed)
    run_dir = results.make_run_dir(workdir)
    meta = results.metadata()
    results.write_json(os.path.join(run_dir, "config.json"), {"config": config.to_dict(), "metadata": meta})
    log(f"data: {dataset.name} from {dataset.source}: {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    model = build_model(config.model, dataset, config.seed)
    started = time.perf_counter()
    history = train(model, dataset.x_train, dataset.y_train, train_section(config), seed=config.seed, verbose=config.verbose)
    seconds = time.perf_counter() - started
    epochs = len(history.epoch)
    results.write_csv(
        os.path.join(run_dir, "history.csv"),
        [{"epoch": e + 1, **{k: float(v[e]) for k, v in history.history.items()}} for e in range(epochs)],
    )
    accuracy = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
    saved = export.save_saved_model(model, os.path.join(run_dir, "saved_model"), check_inputs=dataset.x_test[:64])
    summary = {
        "model": config.model.name, "dataset": dataset.name, "clean_accuracy": accuracy,
        "train_steps": int(model.optimizer.iterations.numpy()), "train_seconds": seconds,
        "saved_model": saved, "metadata": meta,
    }
    results.write_json(os.path.join(run_dir, "results.json"), summary)
    log(f"clean accuracy {accuracy:.4f} after {summary['train_steps']} steps ({seconds:.1f} s)")
    return summary

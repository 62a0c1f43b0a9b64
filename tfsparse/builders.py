"""Objects built from config sections (data, model, train section, evaluation subset), shared by pipelines."""

import os

import ml_collections

from tfsparse import data as data_lib
from tfsparse import models as model_lib
from tfsparse import results
from tfsparse.compat import keras
from tfsparse.config import parse_int_list
from tfsparse.config import xla_flag


def load_data(data_cfg, seed=0):
    """Loads the dataset a config's ``data`` section names (0 = all for the sizes)."""
    return data_lib.load(
        data_cfg.name,
        data_cfg.data_dir or None,
        num_train=data_cfg.num_train or None,
        num_test=data_cfg.num_test or None,
        classes=parse_int_list(data_cfg.classes, "data.classes") or None,
        seed=seed,
    )


def build_model(model_cfg, dataset, seed):
    """Builds the zoo model a config names for ``dataset``, with seeded initial weights."""
    keras.utils.set_random_seed(seed)
    num_classes = 1 if model_cfg.name == "linear_binary" else dataset.num_classes
    mean, std = (dataset.mean, dataset.std) if model_cfg.normalization == "dataset" else (0.0, 1.0)
    return model_lib.get(model_cfg.name)(
        num_classes, dataset.input_shape, mean, std, width=model_cfg.width,
        layers=model_lib.Layers(kernel_initializer=model_cfg.kernel_initializer),
    )


def train_section(config, **overrides):
    """The ``train`` section with the run-wide XLA switch resolved, plus overrides."""
    section = ml_collections.ConfigDict(config.train.to_dict())
    section.jit_compile = xla_flag(config.xla)
    for key, value in overrides.items():
        section[key] = value
    return section


def eval_subset(dataset, num_examples):
    """The first ``num_examples`` test images (deterministic), as used by every round."""
    n = min(int(num_examples), len(dataset.x_test))
    return dataset.x_test[:n], dataset.y_test[:n]


def open_run(config, workdir, log=print):
    """Starts a run: checks ``workdir`` is free, loads the data, then creates the directory.

    Loading before creating means bad data never leaves a half-made run directory. The
    resolved config and metadata (version, git commit) go to ``config.json``.

    Returns:
      ``(run_dir, dataset, metadata)``.
    """
    results.check_run_dir_free(workdir)
    dataset = load_data(config.data, seed=config.data.seed)
    run_dir = results.make_run_dir(workdir)
    meta = results.metadata()
    results.write_json(os.path.join(run_dir, "config.json"), {"config": config.to_dict(), "metadata": meta})
    log(f"data: {dataset.name} from {dataset.source}: {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    return run_dir, dataset, meta

"""Prunes a saved Keras model (.h5 / .keras / SavedModel) once, retrains it and exports it.

Usage:
  python scripts/prune.py --model=runs/train1/saved_model --method=gup --sparsity=0.6 \
      --dataset=mnist --data_dir=../shared/data --retrain_epochs=1 --output=runs/pruned1

Methods: gup, lup (Wang et al. unstructured), fp (filter pruning), ns (network slimming;
needs BN layers), threshold (RSR gamma: set --config.prune.gamma, or --sparsity picks gamma).
--retrain_epochs=0 prunes without retraining; --training=pgd fine-tunes adversarially (--eps),
--training=ibp|crown_ibp on the certified (bound) loss at --eps (verification-aware
fine-tuning; the run then reports IBP- and CROWN-certified accuracy). --output receives
saved_model/ (real zeros, wrappers stripped; FP/NS physically smaller), stats.json,
weights_histogram.png and results.json; the per-layer table is printed.
--config.distribute=mirrored retrains on replicas (multi_worker: fp/ns only; --training other
than clean needs distribute=none; docs/SCALE.md). Exit codes: 0 ok, 1 failure, 2 bad usage,
130/143 interrupted.
"""

import _bootstrap  # noqa: F401
from absl import flags

from tfsparse import cli

_CONFIG = cli.define_config_file("config", f"{_bootstrap.REPO_ROOT}/configs/prune.py", "Pruning config file.")
_MODEL = flags.DEFINE_string("model", None, "Saved Keras model: .h5/.keras file or SavedModel directory.", required=True)
_METHOD = flags.DEFINE_enum("method", None, ["gup", "lup", "fp", "ns", "threshold"], "Pruning method (config.method).")
_SPARSITY = flags.DEFINE_float("sparsity", None, "Fraction of weights (gup/lup/threshold) or channels (fp/ns) to remove.")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset to retrain on (config.data.name).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Data file or directory (config.data.data_dir).")
_EPOCHS = flags.DEFINE_float("retrain_epochs", None, "Retraining epochs (config.train.epochs and "
                              "config.adversarial_train.epochs; their steps become 0); 0 = no retraining.")
_TRAINING = flags.DEFINE_enum("training", None, ["clean", "pgd", "ibp", "crown_ibp"],
                              "Retraining objective (config.training): clean, pgd for adversarial fine-tuning, "
                              "ibp / crown_ibp for certified fine-tuning.")
_EPS = cli.define_number("eps", None, "Fine-tuning radius (PGD or certified) in pixel units, e.g. 0.3 or 8/255 "
                                      "(config.pgd.eps).")
_OUTPUT = flags.DEFINE_string("output", None, "Output directory to create (must not already hold files).", required=True)


def main(argv):
    config = _CONFIG.value
    budget = [] if _EPOCHS.value is None else [
        (_EPOCHS.value, section, "epochs") for section in (config.train, config.adversarial_train)] + [
        (0, section, "steps") for section in (config.train, config.adversarial_train)]
    config = cli.resolved_config(_CONFIG, [
        (_METHOD.value, config, "method"), (_SPARSITY.value, config, "sparsity"),
        (_DATASET.value, config.data, "name"), (_DATA_DIR.value, config.data, "data_dir"),
        (_TRAINING.value, config, "training"), (_EPS.value, config.pgd, "eps"), *budget,
    ], allow_no_training=True)
    from tfsparse.pipelines.prune import prune_saved_model

    prune_saved_model(config, _MODEL.value, _OUTPUT.value)
    print(f"output directory: {_OUTPUT.value}")


if __name__ == "__main__":
    cli.run(main)

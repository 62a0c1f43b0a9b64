"""keras-tuner search over RSR's λ and γ (SPEC §8; Rakin et al. 2019 §4.2, Fig. 2b–c).

:class:`RSRTuner` subclasses keras-tuner's ``BaseTuner`` and implements ``run_trial``
itself (keras-tuner's ``Tuner`` drives ``model.fit`` through Keras 3 paths that clash
with tf_keras, keras-tuner issue #1039). Each trial:

1. builds the model with CNI layers and the trial's noise init α₀, adds the lasso term
   ``λ·Σ‖W‖₁`` (λ sampled on a log scale), trains with the RSR ensemble loss
   (eq. 6, clean weight ``a``) on PGD examples;
2. threshold-prunes at the γ giving the trial's ``target_sparsity`` (RSR §3.4);
3. evaluates clean accuracy, PGD accuracy (EOT-PGD when inference noise is on) and
   weight sparsity on a fixed test subset.

Objective (stated, maximised): ``score = pgd_accuracy − penalty · max(0,
min_sparsity − sparsity)`` — PGD accuracy subject to sparsity ≥ ``min_sparsity``,
the constraint enforced by a linear penalty.
"""

import math

import keras_tuner

from tfsparse.compat import keras
from tfsparse.sparsity import weight_sparsity
from tfsparse.training.adversarial import train_adversarial
from tfsparse.training.losses import add_lasso
from tfsparse.training.recipes import adversarial_model
from tfsparse.training.recipes import build_rsr_model
from tfsparse.training.recipes import pgd_accuracy
from tfsparse.training.recipes import rsr_threshold_prune

OBJECTIVE = "score"


def score(pgd_acc, sparsity, min_sparsity, penalty):
    """The tuner objective: PGD accuracy minus ``penalty`` × the sparsity shortfall."""
    return float(pgd_acc) - float(penalty) * max(0.0, float(min_sparsity) - float(sparsity))


class RSRTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Searches RSR's λ, target sparsity (γ), clean weight ``a`` and noise init α₀.

    Example::

        tuner = RSRTuner(config, dataset, max_trials=8, directory="runs/tune", project_name="rsr")
        tuner.search()
        rows = tuner.results_table()

    Args:
      config: a ``configs/tune_rsr.py`` config (``model``, ``train``, ``pgd``, ``rsr``,
        ``search``, ``xla`` sections). ``search`` holds the ranges: ``lasso_min``,
        ``lasso_max``, ``sparsities`` (choices), ``clean_weights``, ``noise_alphas``,
        ``min_sparsity``, ``penalty``, ``eval_examples``.
      dataset: a ``tfsparse.data`` dataset.
      max_trials: trials of the random search.
      seed: seed of the oracle and of every trial's model.
      **kwargs: ``BaseTuner`` arguments (``directory``, ``project_name``, ``overwrite``).
    """

    def __init__(self, config, dataset, *, max_trials=10, seed=0, **kwargs):
        oracle = keras_tuner.oracles.RandomSearchOracle(
            objective=keras_tuner.Objective(OBJECTIVE, direction="max"), max_trials=max_trials, seed=seed
        )
        super().__init__(oracle=oracle, hypermodel=None, **kwargs)
        self.config = config
        self.dataset = dataset
        self.seed = seed

    def _hyperparameters(self, hp):
        search = self.config.search
        return {
            "lasso": hp.Float("lasso", search.lasso_min, search.lasso_max, sampling="log"),
            "target_sparsity": hp.Choice("target_sparsity", list(search.sparsities)),
            "clean_weight": hp.Choice("clean_weight", list(search.clean_weights)),
            "noise_alpha": hp.Choice("noise_alpha", list(search.noise_alphas)),
        }

    def run_trial(self, trial, *args, **kwargs):
        """Trains, prunes and evaluates one RSR configuration.

        Returns:
          ``{"score", "clean_accuracy", "pgd_accuracy", "sparsity", "gamma"}`` as floats.
        """
        from tfsparse.metrics import clean_accuracy
        from tfsparse.training.recipes import pgd_settings

        values = self._hyperparameters(trial.hyperparameters)
        config = self.config.copy_and_resolve_references()
        with config.unlocked():
            config.training = "rsr"
            config.rsr.lasso = values["lasso"]
            config.rsr.target_sparsity = values["target_sparsity"]
            config.rsr.gamma = 0.0
            config.rsr.clean_weight = values["clean_weight"]
            config.rsr.noise_alpha = values["noise_alpha"]
        keras.backend.clear_session()
        eps, step_size, steps = pgd_settings(config, self.dataset.name)
        model = build_rsr_model(config, self.dataset, self.seed)
        add_lasso(model, config.rsr.lasso)
        adversarial, train_cfg = adversarial_model(config, model, self.dataset)
        train_adversarial(adversarial, self.dataset.x_train, self.dataset.y_train, train_cfg, seed=self.seed)
        pruned, gamma = rsr_threshold_prune(model, config.rsr)
        n = min(config.search.eval_examples, len(self.dataset.x_test))
        x, y = self.dataset.x_test[:n], self.dataset.y_test[:n]
        robust, _ = pgd_accuracy(pruned, x, y, eps, step_size, config.pgd.eval_steps, config.rsr.eot_samples)
        sparsity = weight_sparsity(pruned)["overall"]
        return {
            OBJECTIVE: score(robust, sparsity, config.search.min_sparsity, config.search.penalty),
            "clean_accuracy": float(clean_accuracy(pruned, x, y)),
            "pgd_accuracy": float(robust),
            "sparsity": float(sparsity),
            "gamma": float(gamma),
        }

    def results_table(self):
        """One dict per completed trial: trial id, hyperparameters and metrics, best first."""
        rows = []
        for trial in self.oracle.get_best_trials(num_trials=len(self.oracle.trials)):
            row = {"trial": trial.trial_id, **trial.hyperparameters.values}
            for name in (OBJECTIVE, "clean_accuracy", "pgd_accuracy", "sparsity", "gamma"):
                value = trial.metrics.get_last_value(name) if trial.metrics.exists(name) else math.nan
                row[name] = float(value)
            rows.append(row)
        return rows

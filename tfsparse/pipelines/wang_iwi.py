"""Wang et al. 2020 Table 4: Inverse Weights Inheritance (Alg. 2) against dense adversarial training.

Per seed, from the initial weights θ0 of the large network (``build_model`` with that seed):

* ``ticket`` — Alg. 2 steps 1–2: find the winning ticket by Alg. 1 (K =
  ``lottery.iterations`` × ``lottery.search_epochs`` epochs of PGD training, as in
  :mod:`tfsparse.pipelines.wang_lottery`) and adversarially fine-tune θ0 ⊙ M_K for
  N_f = ``adversarial_train.epochs`` epochs with its mask held → θ′ ⊙ M_K (the small robust
  network; Wang: 120 epochs).
* ``iwi`` — steps 3–5: load θ′ ⊙ M_K into the large network and re-initialise the pruned
  positions from θ0, θ′ ⊙ M_K + θ0 ⊙ (M0 − M_K)
  (:func:`tfsparse.sparsity.inverse_weights_inheritance`; biases and BN from θ′),
  then adversarially train the large *dense* network for ``iwi.large_epochs`` epochs (Wang:
  45, Stop-E).
* ``dense`` — the same large network adversarially trained from θ0 for the same total
  number of epochs as IWI: K·N + N_f + ``iwi.large_epochs`` (an "equal epochs" baseline;
  Wang's base networks have 240 epochs against IWI's 120 + 45 after the search, so this
  baseline is the stricter comparison at equal optimizer steps per epoch).

Rows, measurement (clean / PGD-k / optional AutoAttack accuracy, weight sparsity),
checkpoints (``checkpoints/seed<S>/{masks.npz, <row>.weights.h5}``), resume (unit = one
(seed, row); a resumed ``iwi`` row reads the fine-tuned ticket back from its checkpoint),
seed summary and report are those of :func:`tfsparse.pipelines.wang_lottery.table`.
"""

from tfsparse.errors import ConfigError
from tfsparse.pipelines import wang_lottery
from tfsparse.sparsity import plain
from tfsparse.sparsity import start_model
from tfsparse.sparsity import inverse_weights_inheritance

KIND = "wang_iwi"
ROWS = ("dense", "ticket", "iwi")


def total_epochs(config):
    """Epochs of IWI from θ0 on: ticket search K·N + fine-tuning N_f + large-network training."""
    lot = config.lottery
    return lot.iterations * lot.search_epochs + config.adversarial_train.epochs + config.iwi.large_epochs


def iwi_start(work):
    """The large network before its training (Alg. 2 step 4): θ′ ⊙ M_K + θ0 ⊙ (M0 − M_K).

    θ′ is the fine-tuned ticket of the seed's completed ``ticket`` row, read from its
    checkpoint; θ0 and M_K are the seed's.
    """
    return inverse_weights_inheritance(work.theta0(), work.trained("ticket"), work.masks())


def _iwi_table_row(work, row):
    config = work.config
    if row == "dense":
        model, epochs = work.theta0(), total_epochs(config)
    elif row == "ticket":
        model, epochs = start_model("ticket", work.theta0(), work.masks(), work.seed), config.adversarial_train.epochs
    else:
        model, epochs = iwi_start(work), config.iwi.large_epochs
    steps, seconds = work.fit(model, epochs, row)
    # Epochs from θ0 on: the IWI row carries the search and the ticket's fine-tuning before it.
    total = {"dense": epochs, "ticket": total_epochs(config) - config.iwi.large_epochs,
             "iwi": total_epochs(config)}[row]
    info = {"epochs": epochs, "total_epochs": total, "train_steps": steps, "train_seconds": seconds}
    if row != "dense":
        info["search_epochs"] = config.lottery.iterations * config.lottery.search_epochs
    return plain(model), info


def check_config(config):
    """Table 3's checks (:func:`tfsparse.pipelines.wang_lottery.check_config`) and the large network's budget."""
    wang_lottery.check_config(config)
    if not config.iwi.large_epochs > 0:
        raise ConfigError(f"iwi.large_epochs (training of the large network after inheritance) must be > 0, "
                          f"got {config.iwi.large_epochs}")


# The declaration (scripts/experiment.py runs it by the config's ``experiment`` key): Table 3's
# machinery with the rows of Table 4.
run_iwi_table = wang_lottery.table(KIND, ROWS, _iwi_table_row, check=check_config)

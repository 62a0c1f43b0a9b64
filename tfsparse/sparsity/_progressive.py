"""Progressive (iterative) magnitude pruning, Guo et al. 2018 §4.1 after Han et al. 2015.

Round r removes a fraction ρ of the weights still non-zero in each layer (layer-wise
uniform), then retrains with the zeros held by tfmot masks. After r rounds each layer
has sparsity 1 − (1 − ρ)^r (paper: m = 16, ρ = 1/3 → 99.85% by the rule; the paper
quotes 99.74%). We report the sparsity actually achieved, counted in the weights.
"""

from tfsparse.sparsity.prune import prune
from tfsparse.sparsity.prune import strip


def progressive_targets(rounds, rate):
    """Per-round cumulative sparsity targets 1 − (1 − ρ)^r for r = 1..rounds.

    Raises:
      ValueError: if ``rounds`` < 1 or ``rate`` not in (0, 1).
    """
    if int(rounds) < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not 0.0 < float(rate) < 1.0:
        raise ValueError(f"rate (fraction of remaining weights pruned per round) must be in (0, 1), got {rate}")
    return [1.0 - (1.0 - rate) ** r for r in range(1, int(rounds) + 1)]


def progressive_prune(model, *, rounds, rate, retrain, keep_dense=(), on_round=None, start=1):
    """Runs ``rounds`` of prune-then-retrain on a copy of ``model``.

    Args:
      model: dense (or already sparse) functional model; left unchanged.
      rounds: m, the number of pruning rounds.
      rate: ρ, the fraction of the remaining non-zero weights removed per round.
      retrain: ``retrain(pruned_model) -> None`` trains the wrapped model in place; it
        must pass tfmot's ``UpdatePruningStep`` callback to ``fit`` (the recipes in
        ``tfsparse.training`` do). Clean or adversarial training: the caller decides.
      keep_dense: layer names, or "first"/"last", kept dense (Guo does so on CIFAR).
      on_round: optional ``on_round(round_index, target, stripped_model)`` called after
        each round's retraining, e.g. to evaluate robustness.

    Returns:
      The stripped model after the last round (real zeros in its kernels).
    """
    if not 1 <= int(start) <= int(rounds) + 1:
        raise ValueError(f"start must be in [1, rounds + 1], got {start}")
    current = model
    for index, target in enumerate(progressive_targets(rounds, rate), start=1):
        if index < start:
            continue
        wrapped = prune(current, target, keep_dense=keep_dense)
        retrain(wrapped)
        current = strip(wrapped)
        if on_round is not None:
            on_round(index, target, current)
    return current

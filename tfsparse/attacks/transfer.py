"""Transfer (black-box) attack: craft on a source model, score on the target model.

Papernot, McDaniel, Goodfellow 2016 ("Transferability in Machine Learning"); RSR (Rakin et al.
2019 §5) reports it beside ZOO as the black-box check of a noise-injected model, and a transfer
attack beating the white-box one is a gradient-masking sign (Athalye et al. 2018).
"""

from tfsparse.attacks.base import Attack


class TransferAttack(Attack):
    """Runs ``attack``'s core against ``source_model`` and evaluates the result on the target.

    The adversarial batch is built (and constrained to ``attack``'s ε-ball and box) on the
    source, inside the same traced function that then scores it on the target model passed to
    :meth:`__call__` / :meth:`run`; the target's gradients are never used. ``params`` shows the
    source model by name and the inner attack by its params, so it is JSON-friendly but not
    rebuildable from ``ATTACKS`` (the source model is not serialisable).

    Example::

        TransferAttack(source_model=surrogate, attack=PGD(eps=0.1, step_size=0.01, steps=40))
            .run(target, x_test, y_test).adv_accuracy

    Args:
      source_model: Keras model (logits out) the examples are crafted on; called with
        ``training=False``.
      attack: any :class:`~tfsparse.attacks.Attack`.
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on GPU only).

    Raises:
      ValueError: if ``attack`` is not an Attack or ``source_model`` is not callable.
    """

    name = "transfer"

    def __init__(self, *, source_model, attack, jit_compile="auto"):
        if not isinstance(attack, Attack):
            raise ValueError(f"attack must be a tfsparse Attack, got {attack!r}")
        if not callable(source_model):
            raise ValueError(f"source_model must be a callable Keras model, got {source_model!r}")
        super().__init__(source_model=source_model, attack=attack, jit_compile=jit_compile)

    @property
    def params(self) -> dict:
        return {
            "name": self.name,
            "source_model": getattr(self.source_model, "name", type(self.source_model).__name__),
            "attack": self.attack.params,
            "jit_compile": self.jit_compile,
        }

    def __repr__(self):
        source = self.params["source_model"]
        return f"TransferAttack(source_model={source!r}, attack={self.attack!r})"

    @property
    def eps_ball(self):
        return self.attack.eps_ball

    @property
    def clips_to_box(self) -> bool:
        return self.attack.clips_to_box

    def _attack(self, model_fn, x, y, logits, seed):
        def source_fn(inputs):
            return self.source_model(inputs, training=False)

        return self.attack._attack(source_fn, x, y, source_fn(x), seed)

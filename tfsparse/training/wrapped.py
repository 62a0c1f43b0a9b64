"""The base of the training wrappers: a subclassed Keras model that trains a functional ``inner``.

:class:`~tfsparse.training.AdversarialModel` (PGD) and
:class:`~tfsparse.training.CertifiedModel` (IBP / CROWN-IBP) override only ``train_step`` /
``test_step``; the architecture stays the functional ``inner``, so tfmot's pruning
wrappers inside it keep working (``prune_low_magnitude`` / ``strip_pruning`` reject
subclassed models, STYLE §4). What every such wrapper shares lives here once: it is built
from the start (every weight is ``inner``'s), ``compile`` creates the optimizer slots before
the first traced step, ``call`` and the shapes are ``inner``'s, ``.keras`` files carry
``inner`` beside the wrapper's settings, and HDF5 is refused. Subclasses register with
:class:`tfsparse.sparsity.prune.ModelWrapper` so ``strip`` / ``plain`` / export unwrap them.
"""

from tfsparse.compat import keras
from tfsparse.errors import UsageError
from tfsparse.sparsity.prune import scope


class InnerModelWrapper(keras.Model):
    """A Keras model whose architecture and weights are its functional ``inner`` model's."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(inner, keras.Model):
            raise ValueError(f"{type(self).__name__}: inner must be a Keras model, got {type(inner).__name__}")
        self.inner = inner
        # Built from the start: every weight is inner's, and fit never calls the wrapper itself
        # (without this, Keras warns on save that the model "has not yet been built").
        self.built = True

    def compile(self, *args, **kwargs):
        """``keras.Model.compile``, then creates the optimizer slots for ``inner``'s weights.

        Creating the slots before the first traced step spares ``tf.function`` the
        retrace it makes when a call creates variables (one trace per run).
        """
        super().compile(*args, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=None):
        return self.inner(inputs, training=training)

    # The shapes of the model it trains, so shape checks (pipelines, evaluation) take the
    # wrapper as they take ``inner`` (Keras gives a subclassed model none before a call).
    @property
    def input_shape(self):
        return self.inner.input_shape

    @property
    def output_shape(self):
        return self.inner.output_shape

    def settings(self):
        """The wrapper's own constructor arguments (besides ``inner``) for :meth:`get_config`."""
        raise NotImplementedError

    def get_config(self):
        """``inner``'s own config and the wrapper's settings: ``.keras`` files hold both."""
        return {"inner": keras.saving.serialize_keras_object(self.inner), "name": self.name, **self.settings()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds ``inner`` (tfsparse's layers and pruning wrappers in scope), then the wrapper."""
        config = dict(config)
        with scope():
            inner = keras.saving.deserialize_keras_object(config.pop("inner"), custom_objects=custom_objects)
        return cls(inner, **config)

    def save(self, filepath, overwrite=True, save_format=None, **kwargs):
        """``keras.Model.save`` to ``.keras`` or a SavedModel directory; HDF5 is refused.

        Keras writes HDF5 for functional and Sequential models only, and this one is
        subclassed: a ``.keras`` file round-trips the wrapper (``inner`` and the settings),
        or ``model.inner.save("m.h5")`` writes the model it trains.

        Raises:
          tfsparse.errors.UsageError: for a ``.h5``/``.hdf5`` path or ``save_format="h5"``.
        """
        if str(save_format).lower() in ("h5", "hdf5") or str(filepath).lower().endswith((".h5", ".hdf5")):
            name = type(self).__name__
            raise UsageError(
                f"{name} cannot be saved as HDF5 ({filepath}): save it as .keras "
                f"(model.save('model.keras') keeps the {name} settings) or save the model it trains, "
                "model.inner.save('model.h5')"
            )
        return super().save(filepath, overwrite=overwrite, save_format=save_format, **kwargs)

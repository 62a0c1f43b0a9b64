"""tfsparse's small interface over tfmot magnitude pruning: wrap, strip, scope.

This package is the only place in tfsparse that imports tensorflow-model-optimization,
so a move to another pruning backend (or to Keras 3) touches these files alone.

Two tfmot behaviours shape this module (STYLE §4):
  * ``prune_low_magnitude`` wraps *every* layer of a model and fails on layers it does
    not know (our ``Normalize``, activation regularisers). We clone the model with our
    own ``clone_function`` that wraps only layers owning a prunable kernel.
  * tfmot reuses the original layer objects inside the wrappers, so the pruned model
    would share variables with the caller's model. We copy the model first.
"""

import abc
import contextlib
import warnings

import numpy as np
import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

from tfsparse import keras3_bridge
from tfsparse import layers as tfsparse_layers
from tfsparse.compat import keras
from tfsparse.compat import tf

PruneLowMagnitude = pruning_wrapper.PruneLowMagnitude
UpdatePruningStep = tfmot.sparsity.keras.UpdatePruningStep
ConstantSparsity = tfmot.sparsity.keras.ConstantSparsity
PolynomialDecay = tfmot.sparsity.keras.PolynomialDecay
PruningSchedule = tfmot.sparsity.keras.PruningSchedule
PrunableLayer = tfmot.sparsity.keras.PrunableLayer

# tfsparse layers with a prunable kernel implement ``get_prunable_weights()`` without
# subclassing tfmot's ``PrunableLayer`` (``layers`` must not import ``sparsity``); they
# become virtual subclasses here, so ``isinstance(layer, PrunableLayer)`` holds for them
# in tfsparse and in tfmot alike. (``Normalize`` and ``ActivationL1`` also define
# ``get_prunable_weights() -> []`` for tfmot, but are deliberately not registered: they
# own no kernel and must not count as prunable layers.)
_PRUNABLE_CUSTOM_LAYERS = (tfsparse_layers.NoisyConv2D, tfsparse_layers.NoisyDense)
for _cls in _PRUNABLE_CUSTOM_LAYERS:
    PrunableLayer.register(_cls)
del _cls

_PRUNABLE_TYPES = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.DepthwiseConv2D)


def prunable_weights(layer):
    """The kernels of ``layer`` that tfsparse prunes (biases, BN and noise scales excluded)."""
    if isinstance(layer, PruneLowMagnitude):
        layer = layer.layer
    if isinstance(layer, PrunableLayer):
        return list(layer.get_prunable_weights())
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [layer.depthwise_kernel]
    if isinstance(layer, _PRUNABLE_TYPES):
        return [layer.kernel]
    return []


def prunable_layers(model):
    """Layers of ``model`` (recursing into nested models) that own a prunable kernel, in order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(prunable_layers(layer))
        elif isinstance(layer, PruneLowMagnitude) or (
            isinstance(layer, _PRUNABLE_TYPES + (PrunableLayer,)) and layer.built
        ):
            found.append(layer)
    return found


def has_pruning_wrappers(model):
    """True if any layer of ``model`` (nested models included) is a pruning wrapper."""
    return any(isinstance(layer, PruneLowMagnitude) for layer in prunable_layers(model))


def resolve_keep_dense(model, keep_dense):
    """Turns ``keep_dense`` (layer names, or the words "first"/"last") into a set of names.

    Raises:
      ValueError: if a name is not a prunable layer of the model.
    """
    names = [_inner(layer).name for layer in prunable_layers(model)]
    resolved = set()
    for item in keep_dense or ():
        if item == "first":
            resolved.add(names[0])
        elif item == "last":
            resolved.add(names[-1])
        elif item in names:
            resolved.add(item)
        else:
            raise ValueError(
                f"keep_dense: {item!r} is not a prunable layer; choose from 'first', 'last', {names}"
            )
    return resolved


def copy_model(model):
    """A functional copy of ``model`` with its own variables holding the same values."""
    with scope():
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def prune(model, sparsity=None, *, schedule=None, keep_dense=(), sparsity_by_layer=None):
    """Wraps the prunable kernels of a copy of ``model`` in tfmot magnitude pruning.

    The mask is computed by tfmot at the first training step after the wrapper sees
    ``pruning_step == 1`` (so fit with ``UpdatePruningStep``): the smallest-magnitude
    ``round(sparsity * size)`` entries of each kernel are zeroed and stay zero through
    further training (with no training step, :func:`strip` computes that mask). Weights
    already zero are the smallest, so pruning an already pruned model to a higher target
    keeps the old zeros (progressive pruning).

    Args:
      model: a functional or sequential ``tf_keras`` model (subclassed models are
        rejected by tfmot). A Keras 3 model (TensorFlow's default Keras) is first rebuilt
        in tf_keras (``tfsparse.model_io.from_keras3``, logits checked), so the result is a
        tf_keras model: write it back with ``model_io.to_keras3(strip(pruned), "m.keras")``.
      sparsity: target fraction of zeros in [0, 1) applied once, at the first step.
      schedule: a tfmot ``PruningSchedule`` used instead of ``sparsity``.
      keep_dense: layer names (or "first"/"last") left unpruned.
      sparsity_by_layer: optional ``{layer_name: sparsity}`` overriding ``sparsity``
        per layer (global-threshold methods derive per-layer targets this way).

    Returns:
      A new model whose prunable layers are ``PruneLowMagnitude`` wrappers.

    Raises:
      ValueError: on a bad sparsity, an unknown layer name, or neither/both of
        ``sparsity`` and ``schedule``.
      ConfigError: for a Keras 3 model with a layer the bridge cannot rebuild (named).
    """
    if keras3_bridge.is_keras3(model):
        model = keras3_bridge.to_tf_keras(model)
    if (sparsity is None) == (schedule is None) and not sparsity_by_layer:
        raise ValueError("prune: pass exactly one of sparsity= or schedule=")
    if sparsity is not None:
        _check_sparsity(sparsity)
    for name, value in (sparsity_by_layer or {}).items():
        _check_sparsity(value, f"sparsity_by_layer[{name!r}]")
    keep = resolve_keep_dense(model, keep_dense)
    source = copy_model(model)

    def wrap(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=wrap)
        if not prunable_weights(layer) or layer.name in keep or isinstance(layer, PruneLowMagnitude):
            return layer
        layer_schedule = schedule
        if sparsity_by_layer and layer.name in sparsity_by_layer:
            layer_schedule = one_shot_schedule(sparsity_by_layer[layer.name])
        elif layer_schedule is None:
            if sparsity is None:
                return layer
            layer_schedule = one_shot_schedule(sparsity)
        return PruneLowMagnitude(layer, pruning_schedule=layer_schedule)

    with scope():
        pruned = keras.models.clone_model(source, clone_function=wrap)
    return pruned


def one_shot_schedule(sparsity):
    """A tfmot schedule that prunes to ``sparsity`` exactly once, at pruning step 1."""
    _check_sparsity(sparsity)
    return ConstantSparsity(float(sparsity), begin_step=1, end_step=1, frequency=1)


def apply_masks(model):
    """Multiplies every wrapped kernel by its mask now (tfmot does it lazily per step).

    A wrapper that has not taken a training step yet (``pruning_step < 1``, e.g. pruning
    with 0 retraining steps) still holds tfmot's initial all-ones mask: tfmot computes the
    mask only inside a training step. Its mask is computed first, as that first step would
    (the schedule asked at step 1), so a wrapped model pruned without retraining still
    carries its target's zeros; a schedule that does not prune at step 1 (``HeldMask``, a
    later ``begin_step``) leaves the mask as it is.
    """
    for layer in prunable_layers(model):
        if isinstance(layer, PruneLowMagnitude):
            step = int(layer.pruning_step.numpy())
            if step < 1:  # the step is given back, so a later fit starts as it would have
                layer.pruning_step.assign(1)
                layer.pruning_obj.conditional_mask_update()
                layer.pruning_step.assign(step)
            for weight, mask, _ in layer.pruning_vars:
                weight.assign(weight * tf.cast(mask, weight.dtype))


class ModelWrapper(abc.ABC):
    """Subclassed Keras models that train a functional model they hold as ``inner``.

    :class:`tfsparse.training.AdversarialModel` is one: its architecture is ``inner``, and
    Keras and tfmot cannot clone, strip or save a subclassed model as a graph. Every library
    function that needs the architecture (``strip``, ``plain``, export, SavedModel) takes
    the wrapper and works on :func:`unwrap` of it. The wrappers live a floor above this
    package, so they join as virtual subclasses (``ModelWrapper.register(cls)``, as the
    noise layers join ``PrunableLayer`` above).
    """


def unwrap(model):
    """The functional model inside a :class:`ModelWrapper` (``adv.inner``), else ``model`` itself."""
    while isinstance(model, ModelWrapper):
        model = model.inner
    return model


def plain(model):
    """The model without pruning wrappers (:func:`strip`, its zeros kept), or ``model`` itself when it has none.

    A :class:`ModelWrapper` (``AdversarialModel``) gives the model it trains.
    """
    model = unwrap(model)
    return strip(model) if has_pruning_wrappers(model) else model


def strip(model):
    """Removes pruning wrappers, returning a plain model whose kernels hold real zeros.

    Masks are applied first, so the zeros are in the weights themselves, not only in
    the wrapper's mask; a stripped model saves and serves like any Keras model. A
    :class:`ModelWrapper` (``AdversarialModel``) is stripped to the model it trains (the
    wrapper itself keeps training ``inner``, wrappers and all).

    Warns (``UserWarning``) when a wrapper took no training step and tfmot has therefore
    pruned nothing yet (``strip(prune(m, 0.8))`` without a ``fit``): its mask is computed
    here from the current weights, which is pruning without retraining. Fit with
    :class:`UpdatePruningStep` first, or call :func:`apply_masks` before ``strip`` to ask
    for exactly that (then nothing is left to warn about).
    """
    model = unwrap(model)
    pending = _not_pruned_yet(model)
    if pending:
        warnings.warn(
            f"strip: {', '.join(pending)} took no training step, so tfmot had pruned nothing yet; "
            "the masks are computed now from the current weights (pruning without retraining). "
            "Fit with sparsity.UpdatePruningStep() before strip, or call sparsity.apply_masks(model) "
            "first if pruning without retraining is meant",
            UserWarning, stacklevel=2,
        )
    apply_masks(model)
    with scope():
        return tfmot.sparsity.keras.strip_pruning(model)


def masks(model):
    """``{layer_name: bool ndarray}`` of the non-zero pattern of each prunable kernel."""
    result = {}
    for layer in prunable_layers(model):
        kernel = prunable_weights(layer)[0]
        result[_inner(layer).name] = np.asarray(kernel.numpy() != 0)
    return result


@contextlib.contextmanager
def scope():
    """Custom-object scope for loading models saved with tfsparse pruning wrappers/layers."""
    objects = {
        "PruneLowMagnitude": PruneLowMagnitude,
        "ConstantSparsity": ConstantSparsity,
        "PolynomialDecay": PolynomialDecay,
    }
    layer_classes = (getattr(tfsparse_layers, name) for name in tfsparse_layers.__all__)
    objects.update({cls.__name__: cls for cls in layer_classes if isinstance(cls, type)})
    with keras.utils.custom_object_scope(objects):
        yield


def _not_pruned_yet(model):
    """Names of the wrappers whose schedule prunes at step 1 but whose mask tfmot never computed.

    That is a wrapper before its first training step (``pruning_step < 1``) still holding
    the initial all-ones mask; :func:`apply_masks` computes it (a held mask, ``HeldMask``,
    is never recomputed and is not listed).
    """
    names = []
    for layer in prunable_layers(model):
        if not isinstance(layer, PruneLowMagnitude) or int(layer.pruning_step.numpy()) >= 1:
            continue
        prunes, target = layer.pruning_schedule(1)
        untouched = all(bool(tf.reduce_all(tf.equal(mask, 1))) for _, mask, _ in layer.pruning_vars)
        if bool(prunes) and float(target) > 0 and untouched:
            names.append(layer.layer.name)
    return names


def _inner(layer):
    return layer.layer if isinstance(layer, PruneLowMagnitude) else layer


def _check_sparsity(value, what="sparsity"):
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")

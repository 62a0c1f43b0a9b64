"""One-shot unstructured pruning: GUP, LUP (Wang et al. 2020 §4) and threshold γ (RSR §3.4).

* **GUP** (global unstructured pruning): one magnitude threshold across all selected
  kernels, so layers end up with *unequal* sparsities whose weighted mean is the target.
* **LUP** (layer-wise unstructured pruning): the same fraction p in every layer.
* **Threshold γ** (Rakin et al. 2019, §3.4): every weight with |w| < γ is set to zero;
  γ is chosen for a target sparsity with :func:`gamma_for_sparsity`.

GUP and LUP return models wrapped by tfmot (:func:`tfsparse.sparsity.prune`): the mask is
computed at the first training step and holds the zeros during (clean or adversarial)
retraining; :func:`one_shot` runs prune → retrain → strip. Masks given explicitly (a
lottery ticket, a threshold-γ pattern) are held with :func:`wrap_with_masks`, whose
schedule never recomputes the mask.
"""

import numpy as np

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.sparsity.prune import PruneLowMagnitude
from tfsparse.sparsity.prune import PruningSchedule
from tfsparse.sparsity.prune import copy_model
from tfsparse.sparsity.prune import has_pruning_wrappers
from tfsparse.sparsity.prune import prunable_layers
from tfsparse.sparsity.prune import prunable_weights
from tfsparse.sparsity.prune import prune
from tfsparse.sparsity.prune import resolve_keep_dense
from tfsparse.sparsity.prune import strip

LAYER_TYPES = ("conv", "dense")
METHODS = ("gup", "lup")


@keras.utils.register_keras_serializable(package="tfsparse")
class HeldMask(PruningSchedule):
    """A tfmot schedule that never recomputes the mask: the mask assigned to the wrapper holds.

    ``wrap_with_masks`` assigns the masks; the wrapper then multiplies the kernel by them
    at every step, so zeros stay zero and surviving weights train freely.
    """

    def __call__(self, step):
        return (tf.constant(False), tf.constant(0.0))

    def get_config(self):
        return {"class_name": keras.utils.get_registered_name(type(self)), "config": {}}


def select_layers(model, *, keep_dense=(), layer_types=LAYER_TYPES):
    """Names of the prunable layers of ``model`` taking part in pruning, in model order.

    A kernel of rank 2 is "dense", of rank ≥ 3 "conv" (Conv2D, DepthwiseConv2D and
    tfsparse's noisy subclasses alike).

    Args:
      model: a functional or sequential model (possibly wrapped for pruning).
      keep_dense: layer names, or "first"/"last", left out.
      layer_types: subset of ``("conv", "dense")``; Wang prunes conv layers only.

    Returns:
      A list of layer names.

    Raises:
      ValueError: on an unknown layer type or ``keep_dense`` name.
    """
    unknown = set(layer_types) - set(LAYER_TYPES)
    if unknown or not layer_types:
        raise ValueError(
            f"layer_types must be a non-empty subset of {LAYER_TYPES}, got {layer_types!r}"
        )
    keep = resolve_keep_dense(model, keep_dense)
    names = []
    for layer in prunable_layers(model):
        kind = "dense" if len(prunable_weights(layer)[0].shape) == 2 else "conv"
        name = _name(layer)
        if kind in layer_types and name not in keep:
            names.append(name)
    return names


def kernels(model, names=None):
    """``{layer_name: float32 ndarray}`` of the prunable kernels, read through any tfmot mask."""
    result = {}
    for layer in prunable_layers(model):
        name = _name(layer)
        if names is not None and name not in names:
            continue
        kernel = np.asarray(prunable_weights(layer)[0].numpy())
        if isinstance(layer, PruneLowMagnitude):
            kernel = kernel * np.asarray(layer.pruning_vars[0][1].numpy())
        result[name] = kernel
    return result


def global_sparsity_targets(model, sparsity, *, keep_dense=(), layer_types=LAYER_TYPES):
    """Per-layer sparsities implied by one global magnitude threshold (GUP, Wang §4).

    All selected kernels are ranked together by |w|; the threshold t is the smallest
    magnitude kept when ``round(sparsity · N)`` of the N weights are removed. Each layer's
    target is the fraction of its kernel with |w| < t (weights already zero count as
    pruned). Weights tied with t are kept, so the total is met exactly unless magnitudes
    tie at t; tfmot's per-layer mask (keep the largest ``round(size · (1 − s))``) then
    reproduces the global choice. A layer the threshold would empty keeps its largest
    weight (tfmot keeps at least one per kernel; this also avoids layer collapse), so the
    total may then fall short by one weight per such layer.

    Args:
      model: the dense (or already sparse) model.
      sparsity: global target fraction of zeros in [0, 1).
      keep_dense, layer_types: see :func:`select_layers`.

    Returns:
      ``{layer_name: sparsity}`` for the selected layers.

    Raises:
      ValueError: on a bad sparsity or when no layer is selected.
    """
    _check_sparsity(sparsity)
    selected = _selected_kernels(model, keep_dense, layer_types)
    threshold = _global_threshold([np.abs(k) for k in selected.values()], sparsity)
    # tfmot keeps at least one weight per kernel; saying so here keeps targets in [0, 1).
    return {
        name: min(_pruned_count(np.abs(k), threshold), k.size - 1) / k.size
        for name, k in selected.items()
    }


def gup(model, sparsity, *, keep_dense=(), layer_types=LAYER_TYPES):
    """Global unstructured pruning (Wang et al. 2020, GUP): one threshold for all kernels.

    Example::

        wrapped = gup(model, 0.9, layer_types=("conv",))
        retrain(wrapped)            # fit with UpdatePruningStep: masks set at step 1
        sparse = strip(wrapped)

    Args:
      model: a functional or sequential model; left unchanged.
      sparsity: global fraction of the selected weights to zero, in [0, 1).
      keep_dense: layer names (or "first"/"last") left dense.
      layer_types: which kernels take part, subset of ``("conv", "dense")``.

    Returns:
      A copy of ``model`` whose selected layers are tfmot wrappers with per-layer one-shot
      targets from :func:`global_sparsity_targets`; other layers are unwrapped.

    Raises:
      ValueError: on a bad sparsity, layer type or layer name.
    """
    targets = global_sparsity_targets(
        model, sparsity, keep_dense=keep_dense, layer_types=layer_types
    )
    return prune(model, sparsity_by_layer=targets)


def lup(model, sparsity, *, keep_dense=(), layer_types=LAYER_TYPES):
    """Layer-wise unstructured pruning (Wang et al. 2020, LUP): the same p in every layer.

    With both layer types this is ``prune(model, sparsity, keep_dense=keep_dense)``.

    Args:
      model: a functional or sequential model; left unchanged.
      sparsity: fraction of each selected kernel to zero, in [0, 1).
      keep_dense, layer_types: see :func:`gup`.

    Returns:
      A copy of ``model`` with the selected layers wrapped for one-shot pruning.

    Raises:
      ValueError: on a bad sparsity, layer type or layer name.
    """
    _check_sparsity(sparsity)
    names = list(_selected_kernels(model, keep_dense, layer_types))
    return prune(model, sparsity_by_layer={name: float(sparsity) for name in names})


def one_shot(model, method, sparsity, *, retrain, keep_dense=(), layer_types=LAYER_TYPES):
    """One-shot pruning to ``sparsity`` followed by retraining (Wang et al. 2020 §4).

    Args:
      model: the trained dense model; left unchanged.
      method: "gup" or "lup".
      sparsity: target fraction of zeros in [0, 1).
      retrain: ``retrain(wrapped_model) -> None`` trains in place with tfmot's
        ``UpdatePruningStep`` callback (``tfsparse.training.train`` adds it); clean or
        adversarial, the caller decides.
      keep_dense, layer_types: see :func:`gup`.

    Returns:
      The stripped retrained model (real zeros in its kernels).

    Raises:
      ValueError: on an unknown method or a bad argument of :func:`gup` / :func:`lup`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    pruner = gup if method == "gup" else lup
    wrapped = pruner(model, sparsity, keep_dense=keep_dense, layer_types=layer_types)
    retrain(wrapped)
    return strip(wrapped)


def gamma_for_sparsity(model, sparsity, *, keep_dense=(), layer_types=LAYER_TYPES):
    """The threshold γ of RSR §3.4 at which |w| < γ zeroes ``sparsity`` of the weights.

    γ is the smallest magnitude kept when ``round(sparsity · N)`` weights (N over all
    selected kernels) are removed, so threshold pruning hits the count exactly when no
    magnitudes tie at γ (ties are kept). Returns 0.0 (prune nothing) for sparsity 0.

    Args:
      model: the model whose kernels set γ.
      sparsity: target fraction in [0, 1).
      keep_dense, layer_types: see :func:`select_layers`.

    Returns:
      γ as a Python float (exactly a float32 magnitude of the model).

    Raises:
      ValueError: on a bad sparsity or when no layer is selected.
    """
    _check_sparsity(sparsity)
    selected = _selected_kernels(model, keep_dense, layer_types)
    return float(_global_threshold([np.abs(k) for k in selected.values()], sparsity))


def threshold_masks(model, gamma, *, keep_dense=(), layer_types=LAYER_TYPES):
    """``{layer_name: bool ndarray}``, True where a weight survives γ (|w| ≥ γ and w ≠ 0).

    Raises:
      ValueError: if γ < 0.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    names = select_layers(model, keep_dense=keep_dense, layer_types=layer_types)
    return {name: ~_pruned(np.abs(k), gamma) for name, k in kernels(model, names).items()}


def threshold_prune(model, gamma, *, keep_dense=(), layer_types=LAYER_TYPES):
    """Threshold pruning (Rakin et al. 2019 §3.4): a copy of ``model`` with |w| < γ set to 0.

    The copy is a plain model; to retrain with the zeros held, wrap it with
    ``wrap_with_masks(pruned, threshold_masks(model, gamma))``.

    Args:
      model: the trained model; left unchanged.
      gamma: the threshold γ ≥ 0 (see :func:`gamma_for_sparsity`).
      keep_dense, layer_types: see :func:`select_layers`.

    Returns:
      A functional copy of ``model`` with real zeros in the selected kernels.

    Raises:
      ValueError: if γ < 0 or on a bad layer name/type.
    """
    kept = threshold_masks(model, gamma, keep_dense=keep_dense, layer_types=layer_types)
    pruned = strip(copy_model(model)) if has_pruning_wrappers(model) else copy_model(model)
    set_kernel_masks(pruned, kept)
    return pruned


def set_kernel_masks(model, kept):
    """Multiplies the kernels of a plain ``model`` in place by ``kept`` masks ``{name: bool}``."""
    for layer in prunable_layers(model):
        if _name(layer) in kept:
            kernel = prunable_weights(layer)[0]
            kernel.assign(kernel.numpy() * kept[_name(layer)].astype(kernel.dtype.as_numpy_dtype))


def wrap_with_masks(model, kept):
    """Wraps a copy of ``model`` for training with the given masks held fixed.

    Unlike :func:`tfsparse.sparsity.prune`, which recomputes a magnitude mask at the first
    step, the wrappers here use :class:`HeldMask` and keep exactly ``kept``; the kernels
    are multiplied by their masks at once. Layers absent from ``kept`` stay unwrapped.
    Train with tfmot's ``UpdatePruningStep`` (``tfsparse.training.train`` adds it) and
    ``strip`` afterwards.

    Args:
      model: a plain functional or sequential model.
      kept: ``{layer_name: bool ndarray}`` of the kernel shapes, True = trainable weight.

    Returns:
      The wrapped copy.

    Raises:
      ValueError: if a mask names no prunable layer or has the wrong shape.
    """
    names = [_name(layer) for layer in prunable_layers(model)]
    for name, mask in kept.items():
        if name not in names:
            raise ValueError(
                f"wrap_with_masks: {name!r} is not a prunable layer; choose from {names}"
            )
    keep = [name for name in names if name not in kept]
    wrapped = prune(model, schedule=HeldMask(), keep_dense=keep)
    for layer in prunable_layers(wrapped):
        if isinstance(layer, PruneLowMagnitude):
            weight, mask, _ = layer.pruning_vars[0]
            value = kept[_name(layer)]
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(
                    f"wrap_with_masks: mask of {_name(layer)!r} has shape {value.shape}, "
                    f"kernel {weight.shape}"
                )
            mask.assign(value.astype(mask.dtype.as_numpy_dtype))
            weight.assign(weight.numpy() * value.astype(weight.dtype.as_numpy_dtype))
    return wrapped


def _selected_kernels(model, keep_dense, layer_types):
    names = select_layers(model, keep_dense=keep_dense, layer_types=layer_types)
    if not names:
        raise ValueError("no prunable layer selected (check keep_dense and layer_types)")
    return kernels(model, names)


def _global_threshold(magnitudes, sparsity):
    flat = np.sort(np.concatenate([m.ravel() for m in magnitudes]))
    count = int(round(float(sparsity) * flat.size))
    return flat.dtype.type(0) if count == 0 else flat[count]


def _pruned(magnitude, threshold):
    return (magnitude < threshold) | (magnitude == 0)


def _pruned_count(magnitude, threshold):
    return int(np.count_nonzero(_pruned(magnitude, threshold)))


def _name(layer):
    return layer.layer.name if isinstance(layer, PruneLowMagnitude) else layer.name


def _check_sparsity(value):
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {value}")

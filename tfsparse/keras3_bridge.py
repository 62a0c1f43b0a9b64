"""The bridge between Keras 3 models and tf_keras: rebuild, verify, and write back.

tfsparse trains and prunes with Keras 2 (``tf_keras``) because tfmot does not support Keras 3,
but TensorFlow's default Keras is Keras 3, so most users' models are Keras 3 models. A Keras 3
Sequential or functional model of standard layers is rebuilt here as a tf_keras model of the
same layers (each layer's config translated, its weights copied), and a tf_keras model of
standard layers is written back the same way as a Keras 3 model and ``.keras`` file. Every
crossing is checked on a probe batch (seeded uniform images in [0, 1]): the two models' logits
must agree to ``ATOL`` + ``RTOL``·|logits|, or the crossing is refused; a layer with no
equivalent on the other side is refused with one line naming it and its class.

This is the only module of tfsparse that imports Keras 3 (``import keras``), and only inside
the functions that read or write a user's Keras 3 model, so importing tfsparse does not load
it. Both sides run on TensorFlow (Keras 3's ``tensorflow`` backend) with the same kernels, so
the logits agree to float32 rounding; a larger difference means a translation went wrong.
"""

import inspect
import sys

import numpy as np

from tfsparse.compat import keras
from tfsparse.errors import ConfigError

# Layers whose config means the same in both libraries (the class name is the same on both
# sides; arguments one side lacks are dropped only while they hold their neutral value).
LAYERS = (
    "InputLayer", "Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D",
    "BatchNormalization", "LayerNormalization", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling1D", "AveragePooling1D",
    "GlobalAveragePooling1D", "Flatten", "Dropout", "SpatialDropout2D", "Activation", "ReLU",
    "LeakyReLU", "Softmax", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
    "Concatenate", "Reshape", "Permute", "ZeroPadding2D", "Cropping2D", "UpSampling2D",
    "Rescaling", "Normalization", "Identity",
)
MODELS = ("Sequential", "Functional", "Model")
PROBE_BATCH = 8
PROBE_SIZE = 32  # spatial size used for an input dimension left as None
ATOL, RTOL = 1e-5, 1e-5
# Arguments that changed their name: {layer: (Keras 3 name, tf_keras name)}.
_RENAMED = {"InputLayer": ("batch_shape", "batch_input_shape"), "LeakyReLU": ("negative_slope", "alpha")}
# Layer arguments every layer takes in both libraries (the rest are read off the target class).
_BASE_ARGUMENTS = {"name", "trainable", "dtype", "activity_regularizer"}


def keras3():
    """Keras 3 itself (TensorFlow backend), imported on first use.

    Raises:
      ConfigError: if Keras 3 is not installed or runs another backend.
    """
    try:
        import keras as keras3_module
    except ImportError:
        raise ConfigError("this needs Keras 3, which is not installed; pip install 'keras>=3'") from None
    if not keras3_module.__version__.startswith("3."):
        raise ConfigError(f"the 'keras' package is {keras3_module.__version__}, not Keras 3; pip install 'keras>=3'")
    if keras3_module.backend.backend() != "tensorflow":
        raise ConfigError(f"Keras 3 runs the {keras3_module.backend.backend()!r} backend; set KERAS_BACKEND=tensorflow")
    return keras3_module


def is_keras3(model):
    """True for a Keras 3 model object, or a :class:`Keras3Callable` around one."""
    if isinstance(model, Keras3Callable):
        return True
    if "keras" not in sys.modules:  # no Keras 3 model can exist without the module
        return False
    return isinstance(model, sys.modules["keras"].Model) and not isinstance(model, keras.Model)


class Keras3Callable:
    """A Keras 3 model (TensorFlow backend) as ``model(x, training=False)`` → logits.

    What :func:`tfsparse.model_io.load_model` returns for a Keras 3 file the bridge cannot
    rebuild: attacks need nothing but the call and TensorFlow gradients, so it is evaluated
    as it is; pruning or training it raises the bridge's error naming the layer.
    """

    def __init__(self, model):
        self.model = model
        self.input_shape = tuple(model.input_shape)
        self.name = model.name
        self.layers = []  # Keras 3 layers: not inspected by tf_keras-based checks

    def __call__(self, x, training=False):
        return self.model(x, training=training)


def load(path):
    """Loads a Keras 3 ``.keras`` file with Keras 3 (no compile state).

    Raises:
      ConfigError: if Keras 3 is missing, runs another backend, or cannot load the file.
    """
    keras3_module = keras3()
    try:
        return keras3_module.saving.load_model(path, compile=False)
    except (OSError, ValueError, ImportError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"could not load the Keras 3 model {path}: {_first(error)}") from None


def to_tf_keras(model):
    """Rebuilds a Keras 3 model as a tf_keras model with the same layers, weights and logits.

    Args:
      model: a Keras 3 ``Sequential`` or functional ``Model`` (or a :class:`Keras3Callable`)
        of the standard layers in ``LAYERS``, nested models of them included.

    Returns:
      A tf_keras ``Sequential`` / functional ``Model`` whose logits equal the Keras 3 model's
      on a probe batch.

    Raises:
      ConfigError: naming the first layer (and its class) that has no tf_keras equivalent,
        or if the rebuilt model's logits differ.
    """
    if isinstance(model, Keras3Callable):
        model = model.model
    return _rebuild(model, keras, to_keras3=False, what=f"the Keras 3 model {model.name!r}", side="tf_keras")


def to_keras3(model):
    """Rebuilds a plain tf_keras model (no pruning wrappers) as a Keras 3 model, logits checked.

    Raises:
      ConfigError: naming the first layer (and its class) that has no Keras 3 equivalent
        (tfsparse's own layers, a pruning wrapper left in), or if the logits differ.
    """
    return _rebuild(model, keras3(), to_keras3=True, what=f"the model {model.name!r}", side="Keras 3")


def _rebuild(model, module, *, to_keras3, what, side):
    """``model`` rebuilt in ``module`` (tf_keras or Keras 3): config translated, weights copied, logits checked."""
    config = _model_config(_entry_of(model), to_keras3=to_keras3)
    try:
        rebuilt = _model_class(module, config).from_config(config["config"])
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(f"{what} could not be rebuilt in {side}: {_first(error)}") from None
    _copy_weights(model, rebuilt)
    _check_same_logits(model, rebuilt, f"the {side} rebuild of {what.removeprefix('the ')}")
    return rebuilt


def save(model, path):
    """Writes a plain tf_keras model as a Keras 3 ``.keras`` file and checks what Keras 3 reads back.

    The file is reloaded with Keras 3; every weight must come back bit for bit (pruned zeros
    included) and the logits must equal the tf_keras model's.

    Returns:
      The Keras 3 model loaded from ``path``.

    Raises:
      ConfigError: as :func:`to_keras3`, for a path not ending in ``.keras``, or if the reloaded
        file differs.
    """
    if not str(path).endswith(".keras"):
        raise ConfigError(f"a Keras 3 model is saved as a .keras file; got {path!r}")
    rebuilt = to_keras3(model)
    rebuilt.save(path)
    loaded = load(path)
    for before, after in zip(model.get_weights(), loaded.get_weights()):
        if before.shape != after.shape or not np.array_equal(before, after):
            raise ConfigError(f"{path}: Keras 3 read back other weights than were written")
    _check_same_logits(model, loaded, f"the Keras 3 model read back from {path}")
    return loaded


def _entry_of(model):
    """A model as an entry of a layer list: ``{"class_name", "config"}`` in its own library's format.

    A subclassed model (its own class, its own ``call``) has no graph to translate; it is
    refused before its ``get_config`` (which may not exist) is asked.
    """
    entry = {"class_name": type(model).__name__, "name": getattr(model, "name", None),
             "module": type(model).__module__}
    if entry["class_name"] not in MODELS:
        raise _unsupported(entry, to_keras3=not is_keras3(model))
    entry["config"] = model.get_config()
    return entry


def _model_config(entry, to_keras3):
    """The other library's ``{"class_name", "config"}`` for a Sequential / functional model entry."""
    kind = entry["class_name"]
    source = entry["config"]
    # tf_keras counts a nested model's own first node (its Input), Keras 3 does not: calls of
    # nested models are numbered one apart.
    nested = {layer.get("name") or layer["config"]["name"] for layer in source["layers"] if layer["class_name"] in MODELS}
    offset = {name: -1 if to_keras3 else 1 for name in nested}
    layers = [_layer_entry(layer, to_keras3, offset) for layer in source["layers"]]
    if kind == "Sequential":
        config = {"name": source["name"], "layers": layers}
    else:
        kind = "Functional"
        config = {"name": source["name"], "layers": layers,
                  "input_layers": _tensor_refs(source["input_layers"], to_keras3),
                  "output_layers": _tensor_refs(source["output_layers"], to_keras3)}
    if not to_keras3:
        kind = "Model" if kind == "Functional" else kind
        return {"class_name": kind, "config": config}
    # As Keras 3 itself serializes its two model classes.
    if kind == "Sequential":
        return {"module": "keras", "class_name": kind, "config": config, "registered_name": None}
    return {"module": "keras.src.models.functional", "class_name": kind, "config": config,
            "registered_name": kind}


def _layer_entry(entry, to_keras3, offset):
    """One layer of a model config, translated; nested models recurse."""
    kind = entry["class_name"]
    if kind in MODELS:
        first = entry["config"]["layers"][0]["class_name"] if entry["config"]["layers"] else None
        if first != "InputLayer":
            raise ConfigError(f"nested model {entry['config']['name']!r} ({kind}) has no Input layer; "
                              "the bridge rebuilds nested models that start with keras.Input")
        translated = _model_config(entry, to_keras3)
    else:
        custom = entry.get("registered_name") not in (None, kind) or entry.get("module", "keras.layers") not in (
            "keras.layers", None)
        if kind not in LAYERS or custom:
            raise _unsupported(entry, to_keras3)
        target = getattr(_target_layers(to_keras3), kind)
        translated = {"class_name": kind, "config": _layer_config(kind, entry["config"], target, to_keras3)}
        if to_keras3:
            translated.update(module="keras.layers", registered_name=None)
    if "inbound_nodes" in entry:
        translated["name"] = entry.get("name", entry["config"]["name"])
        translated["inbound_nodes"] = [_legacy_node(node, translated["name"], offset)
                                       for node in entry["inbound_nodes"]]
    return translated


def _layer_config(kind, config, target, to_keras3):
    """A layer's config as ``target``'s constructor takes it (see ``LAYERS``)."""
    config = dict(config)
    config.pop("build_config", None)
    accepted = set(_arguments(target)) | _BASE_ARGUMENTS
    source = getattr(_target_layers(not to_keras3), kind)
    if kind in _RENAMED:
        new, old = _RENAMED[kind] if to_keras3 else _RENAMED[kind][::-1]
        if old in config:
            config[new] = config.pop(old)
        accepted.add(new)  # tf_keras's InputLayer takes batch_input_shape through **kwargs
    if kind == "BatchNormalization" and isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
        config["axis"] = config["axis"][0]  # tf_keras writes [3], Keras 3 takes an int
    result = {}
    for key, value in config.items():
        if key == "dtype":
            value = _dtype_name(value)
        elif isinstance(value, dict) and "class_name" in value:
            value = _object_config(value, key, config["name"], kind, to_keras3)
        if key in accepted:
            result[key] = value
        elif key.endswith("_initializer"):
            continue  # an initializer the target has no use for: the weights are copied anyway
        elif value is not None and value is not False and not _is_default(source, key, value):
            side = "Keras 3" if to_keras3 else "tf_keras"
            raise ConfigError(f"layer {config['name']!r} ({kind}): {key}={value!r} has no {side} equivalent; "
                              "the bridge rebuilds standard layers only")
    return result


def _object_config(value, key, layer, kind, to_keras3):
    """An initializer / regularizer / constraint config for the other library (``{"class_name", "config"}``)."""
    translated = {"class_name": value["class_name"], "config": dict(value.get("config") or {})}
    if key.endswith("_initializer"):
        # Initial values do not matter (the weights are copied); keep the class, drop new knobs.
        target = (keras3().initializers if to_keras3 else keras.initializers).get(value["class_name"])
        accepted = set(_arguments(type(target)))
        translated["config"] = {k: v for k, v in translated["config"].items() if k in accepted}
    elif value.get("registered_name") not in (None, value["class_name"]):
        raise ConfigError(f"layer {layer!r} ({kind}): its {key} {value['registered_name']!r} is a custom object; "
                          "the bridge rebuilds standard layers only")
    if to_keras3:
        translated.update(module=f"keras.{key.rpartition('_')[2]}s", registered_name=None)
    return translated


def _arguments(cls):
    """``{name: default}`` of every constructor argument of ``cls``, its bases' included (many
    pass ``**kwargs`` up); the most derived class's default wins."""
    arguments = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for name, parameter in inspect.signature(vars(klass)["__init__"]).parameters.items():
                arguments.setdefault(name, parameter.default)
    for name in ("self", "args", "kwargs"):
        arguments.pop(name, None)
    return arguments


def _is_default(cls, key, value):
    """True if ``value`` is what ``cls`` uses when ``key`` is not given (an option left untouched)."""
    default = _arguments(cls).get(key, inspect.Parameter.empty)
    as_list = (lambda v: list(v) if isinstance(v, tuple) else v)
    return default is not inspect.Parameter.empty and as_list(default) == as_list(value)


def _dtype_name(value):
    if isinstance(value, dict):  # Keras 3 DTypePolicy / tf_keras Policy config
        return value.get("config", {}).get("name", "float32")
    return value


def _legacy_node(node, layer, offset):
    """One inbound node in the ``[[name, node, tensor, kwargs], ...]`` form both libraries read
    (``offset``: ``{nested model name: node index shift}``)."""
    if isinstance(node, list):  # tf_keras already writes it so
        return [[name, index + offset.get(name, 0), *rest] for name, index, *rest in node]
    args, kwargs = node.get("args", []), {k: v for k, v in node.get("kwargs", {}).items() if v is not None}
    if len(args) != 1:
        raise ConfigError(f"layer {layer!r} is called with {len(args)} positional arguments; the bridge "
                          "rebuilds layers called on one tensor or one list of tensors")
    tensors = args[0] if isinstance(args[0], list) else [args[0]]
    refs = []
    for tensor in tensors:
        if not (isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__"):
            raise ConfigError(f"layer {layer!r} is called on a constant ({tensor!r}); the bridge rebuilds "
                              "layers called on tensors only")
        name, node_index, tensor_index = tensor["config"]["keras_history"]
        refs.append([name, node_index + offset.get(name, 0), tensor_index, kwargs])
    return refs


def _tensor_refs(refs, to_keras3):
    """``input_layers`` / ``output_layers`` as ``[name, node, tensor]`` triples: a list of them
    for tf_keras; for Keras 3 a lone triple when there is one (its model then takes a tensor,
    not a one-element list)."""
    refs = [list(refs)] if refs and not isinstance(refs[0], list) else [list(ref) for ref in refs]
    return refs[0] if to_keras3 and len(refs) == 1 else refs


def _target_layers(to_keras3):
    return keras3().layers if to_keras3 else keras.layers


def _model_class(library, config):
    return library.Sequential if config["class_name"] == "Sequential" else library.Model


def _unsupported(entry, to_keras3):
    name = entry.get("name") or entry.get("config", {}).get("name")
    kind = entry["class_name"]
    if entry.get("module") not in (None, "keras", "keras.layers"):  # e.g. keras.src.ops.numpy.Add for `x + 1`
        kind = f"{entry['module']}.{kind}"
    if to_keras3:
        hint = ("strip the pruning wrappers first: tfsparse.strip(model)" if entry["class_name"] == "PruneLowMagnitude"
                else "the bridge writes standard Keras layers only")
        return ConfigError(f"layer {name!r} ({kind}) has no Keras 3 equivalent; {hint}")
    return ConfigError(f"layer {name!r} ({kind}) cannot be rebuilt in tf_keras; the bridge knows the standard "
                       "layers in tfsparse.keras3_bridge.LAYERS (evaluate the model as it is with "
                       "tfsparse.model_io.load_model, or rewrite the layer with tf_keras)")


def _copy_weights(source, target):
    """Copies weights layer by layer (nested models included), refusing any shape mismatch."""
    by_name = {layer.name: layer for layer in target.layers}
    for layer in source.layers:
        weights = layer.get_weights()
        other = by_name.get(layer.name)
        if other is None:
            raise ConfigError(f"layer {layer.name!r} ({type(layer).__name__}) is missing from the rebuilt model")
        shapes = [w.shape for w in weights], [tuple(w.shape) for w in other.get_weights()]
        if shapes[0] != shapes[1]:
            raise ConfigError(f"layer {layer.name!r} ({type(layer).__name__}) holds weights of shapes {shapes[0]}, "
                              f"its rebuild {shapes[1]}; the bridge cannot copy them")
        if weights:
            other.set_weights(weights)
            if hasattr(other, "finalize_state"):  # adapted preprocessing layers (Normalization)
                other.finalize_state()  # derive their constants from the copied variables


def _probe(model):
    """Seeded uniform [0, 1] inputs, one array per model input (None dimensions set to ``PROBE_SIZE``)."""
    rng = np.random.default_rng(0)
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    probes = [rng.uniform(size=(PROBE_BATCH, *(PROBE_SIZE if d is None else d for d in shape[1:])))
              .astype("float32") for shape in shapes]
    return probes if len(probes) > 1 else probes[0]


def _check_same_logits(reference, candidate, what):
    probe = _probe(reference)
    expected = [np.asarray(y) for y in _as_list(reference(probe, training=False))]
    got = [np.asarray(y) for y in _as_list(candidate(probe, training=False))]
    worst = max(float(np.max(np.abs(a - b) - RTOL * np.abs(a))) for a, b in zip(expected, got))
    if len(expected) != len(got) or worst > ATOL:
        raise ConfigError(f"{what} gives other logits on a probe batch (max difference {worst + ATOL:.3g}); "
                          "refusing it")


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _first(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""Loading users' models: Keras 2 and Keras 3 ``.h5`` / ``.keras`` files and SavedModel directories.

tfsparse trains with Keras 2 (``tf_keras``), but models users bring today are mostly Keras 3.
A Keras 3 ``.keras`` file (TensorFlow backend) is read with Keras 3 itself and rebuilt in
tf_keras by :mod:`tfsparse.keras3_bridge` (logits checked), so it can be pruned, trained and
attacked like any tfsparse model; :func:`to_keras3` writes the result back as a Keras 3 file.
"""

import json
import os
import struct
import zipfile

from tfsparse import keras3_bridge
from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.errors import ConfigError
from tfsparse.sparsity import plain
from tfsparse.sparsity import scope

# IndexError: a truncated SavedModel's variables ("Read less bytes than requested"); OpError: TF's reader.
_KERAS_LOAD_ERRORS = (OSError, ValueError, ImportError, KeyError, TypeError, AttributeError, IndexError,
                      zipfile.BadZipFile, tf.errors.OpError)


class _SignatureModel:
    """A plain TF SavedModel's ``serving_default`` signature as a ``model(x, training=...)``."""

    def __init__(self, loaded, signature="serving_default"):
        self._loaded = loaded  # keeps the signature's variables alive
        if signature not in loaded.signatures:
            raise ValueError(f"no signature {signature!r}; the SavedModel has {sorted(loaded.signatures)} "
                             "(choose one with --signature)")
        self._fn = loaded.signatures[signature]
        inputs = self._fn.structured_input_signature[1]
        outputs = self._fn.structured_outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError("serving_default must take one input and return one output (logits)")
        self._input = next(iter(inputs))
        self._output = next(iter(outputs))
        self.input_shape = tuple(inputs[self._input].shape.as_list())
        self.name = signature

    def __call__(self, x, training=False):
        return self._fn(**{self._input: x})[self._output]


class _TFLiteModel:
    """A TFLite flatbuffer as ``model(x, training=False)`` → logits, through the TFLite interpreter.

    It has no gradients (``gradient_free``): only black-box attacks (Square, ZOO) or a transfer
    from a differentiable source model apply, and its attacks run without XLA (the interpreter
    is called through ``tf.numpy_function``).
    """

    gradient_free = True

    def __init__(self, path):
        from tfsparse.export.tflite import interpreter  # LiteRT's where installed, else tf.lite's

        self.interpreter = interpreter(path, threads=None)
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError("a TFLite model must take one input (images) and return one output (logits)")
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = (None, *(int(d) for d in self._input["shape"][1:]))
        self.num_outputs = int(self._output["shape"][-1])
        self.name = os.path.basename(path)
        self.layers = []

    def _run(self, x):
        self.interpreter.resize_tensor_input(self._input["index"], x.shape)
        self.interpreter.allocate_tensors()
        self.interpreter.set_tensor(self._input["index"], x.astype(self._input["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).astype("float32")

    def __call__(self, x, training=False):
        x = tf.convert_to_tensor(x, tf.float32)
        logits = tf.numpy_function(self._run, [x], tf.float32)
        logits.set_shape([x.shape[0], self.num_outputs])
        return logits


def keras_file_version(path):
    """The ``keras_version`` a ``.keras`` zip was saved with, or None for other files."""
    if not (os.path.isfile(path) and zipfile.is_zipfile(path)):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            if "metadata.json" not in archive.namelist():
                return None
            return json.loads(archive.read("metadata.json")).get("keras_version")
    except (zipfile.BadZipFile, ValueError, AttributeError):
        return None  # a damaged archive: check_model_file names it when it is loaded


def load_keras3_model(path):
    """Loads a Keras 3 ``.keras`` file: rebuilt in tf_keras when the bridge can, else as a callable.

    The tf_keras rebuild (:func:`from_keras3`) goes everywhere a tfsparse model goes. A model
    with a layer the bridge cannot rebuild (a custom layer, an op such as ``x + 1``) is still
    evaluated as it is, through Keras 3 (``Keras3Callable``: attacks need nothing but
    ``model(x, training=False)`` → logits and TensorFlow gradients); pruning or training it
    raises the bridge's one-line error naming that layer.

    Raises:
      ConfigError: if Keras 3 is missing, uses another backend, or cannot load the file.
    """
    model = keras3_bridge.load(path)
    try:
        return keras3_bridge.to_tf_keras(model)
    except ConfigError:
        return keras3_bridge.Keras3Callable(model)


def from_keras3(model):
    """A Keras 3 model (or ``.keras`` file) rebuilt as a tf_keras model tfsparse can prune and train.

    Each layer's config is translated and its weights copied; the rebuild is refused unless
    its logits equal the Keras 3 model's on a probe batch (:mod:`tfsparse.keras3_bridge`).
    :func:`load_model` and :func:`tfsparse.sparsity.prune` call it for you; call it yourself
    for a Keras 3 model built in memory, or to see why a model cannot be rebuilt.

    Example::

        pruned = tfsparse.prune(model_io.from_keras3(keras3_model), 0.5)

    Args:
      model: a Keras 3 ``Sequential`` / functional model of standard layers, or the path of
        a Keras 3 ``.keras`` file.

    Returns:
      A tf_keras ``Sequential`` / functional model with the same layers, weights and logits.

    Raises:
      ConfigError: naming the first layer (and its class) that cannot be rebuilt.
    """
    if isinstance(model, (str, os.PathLike)):
        model = keras3_bridge.load(os.fspath(model))
    return keras3_bridge.to_tf_keras(model)


def to_keras3(model, path=None):
    """A tfsparse model written back as Keras 3: the model, and a ``.keras`` file if ``path`` is given.

    Pruning wrappers are stripped first (their masks applied, so the zeros are in the kernels)
    and an ``AdversarialModel`` gives the model it trains. The Keras 3 rebuild must give the
    same logits on a probe batch; a written file is read back with Keras 3 and must hold the
    very same weights (zeros included) and logits.

    Example::

        model_io.to_keras3(tfsparse.strip(pruned), "pruned.keras")   # keras.saving.load_model reads it

    Returns:
      The Keras 3 model (read back from ``path`` when one is given).

    Raises:
      ConfigError: naming the first layer with no Keras 3 equivalent (e.g. tfsparse's own
        ``Normalize`` or noise layers), or for a path not ending in ``.keras``.
    """
    model = plain(model)
    return keras3_bridge.to_keras3(model) if path is None else keras3_bridge.save(model, os.fspath(path))


def load_keras_model(path):
    """Loads a Keras model (``.h5``, ``.keras`` or a Keras SavedModel directory).

    tfsparse's custom layers and pruning wrappers are in scope, so models saved by
    tfsparse load without ``custom_objects``. A Keras 3 ``.keras`` file is rebuilt in tf_keras
    (:func:`from_keras3`), so the pipelines that prune or train take it too.

    Raises:
      ConfigError: if ``path`` does not exist or does not hold a Keras model (a plain TF
        SavedModel without Keras metadata cannot be pruned or retrained), or holds a Keras 3
        model with a layer the bridge cannot rebuild (named).
    """
    if not os.path.exists(path):
        raise ConfigError(f"model {path} does not exist; pass a .h5/.keras file or a SavedModel directory")
    check_model_file(path)
    version = keras_file_version(path)
    if version and not version.startswith("2."):
        return from_keras3(path)
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "keras_metadata.pb")):
        # Not asked of tf_keras, which would warn that the user saved it wrongly and then fail.
        raise ConfigError(f"{path} is a SavedModel without Keras metadata, not a Keras model")
    try:
        with scope():
            model = keras.models.load_model(path, compile=False)
    except _KERAS_LOAD_ERRORS as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"could not load a Keras model from {path}: {first}") from None
    if not isinstance(model, keras.Model):
        # tf_keras falls back to tf.saved_model.load for a SavedModel without Keras metadata.
        raise ConfigError(f"{path} is a SavedModel without Keras metadata, not a Keras model")
    return model


def load_model(path, signature="serving_default"):
    """Loads any model a user has, for evaluation: ``model(x, training=False)`` → logits.

    A ``.tflite`` flatbuffer runs in the TFLite interpreter (no gradients: black-box attacks or
    a transfer only). A Keras 3 ``.keras`` file is read with Keras 3 and, when its layers are
    standard ones, rebuilt as a tf_keras model (logits checked; :func:`load_keras3_model`):
    a Keras user expects what ``load_model`` returns to be prunable and trainable, not only
    evaluable, and the rebuild is exact, so nothing is lost. Other ``.h5``/``.keras`` files and
    Keras SavedModels with tf_keras; any other SavedModel through its ``signature`` (one
    input — [0, 1] images — and one output — logits), whether or not Keras made it (e.g.
    ``tf.saved_model.save`` of a ``tf.Module`` or Keras 3's ``model.export``).

    Raises:
      ConfigError: if the path does not exist or holds no loadable model.
    """
    if path.endswith(".tflite"):
        if not os.path.isfile(path):
            raise ConfigError(f"model {path} does not exist; pass a .tflite file")
        check_model_file(path)
        try:
            return _TFLiteModel(path)
        except (ValueError, RuntimeError) as error:
            raise ConfigError(f"could not load the TFLite model {path}: {error}") from None
    if os.path.exists(path):
        check_model_file(path)  # before the SavedModel fallback below answers for a damaged Keras model
    version = keras_file_version(path)
    if version and not version.startswith("2."):
        return load_keras3_model(path)
    try:
        return load_keras_model(path)
    except ConfigError:
        if not os.path.isdir(path):
            raise
    try:
        return _SignatureModel(tf.saved_model.load(path), signature)
    except (ValueError, OSError, KeyError, IndexError, tf.errors.OpError) as error:
        raise ConfigError(f"{path}: neither a Keras model nor a serving SavedModel ({_first_line(error)})") from None


# What a model file starts with: HDF5's signature (at 0, or after a user block of 512 · 2^k
# bytes), a zip's local header (.keras), TFLite's "TFL3" file identifier at bytes 4-8.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NAMES = {"h5": "an HDF5 (.h5) Keras file", "keras": "a .keras (zip) archive", "tflite": "a TFLite flatbuffer"}
_SUFFIXES = {"h5": ".h5", "keras": ".keras", "tflite": ".tflite"}


def _sniff(path):
    """``h5``, ``keras`` or ``tflite`` by the file's first bytes, or None (unknown or damaged)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        hdf5 = head.startswith(_HDF5_SIGNATURE)
        for offset in (512, 1024, 2048):
            if not hdf5:
                handle.seek(offset)
                hdf5 = handle.read(8) == _HDF5_SIGNATURE
    if hdf5:
        return "h5"
    if head.startswith(b"PK\x03\x04"):
        return "keras"
    return "tflite" if head[4:8] == b"TFL3" else None


def check_model_file(path):
    """Refuses an empty, damaged or misnamed model file with one line naming it, before it is loaded.

    The loaders answer such files with whatever their parser hits first: h5py's "file signature
    not found", a ``BadZipFile`` traceback for a damaged ``.keras``, an ``IndexError`` for a
    truncated SavedModel, and the TFLite interpreter, which does not verify its flatbuffer, a
    segmentation fault (issue 30, item 8). Checked here: an empty file (or ``saved_model.pb``);
    a file whose content is another format than its name says (Keras picks the loader by the
    name); a ``.keras`` archive whose CRCs fail; a ``.tflite`` file whose flatbuffer does not
    parse or whose tensor, buffer and operator indices point outside it (what crashes the
    interpreter). A SavedModel's variables are read, and checked, by its loader.

    Raises:
      ConfigError: naming the file and what to do.
    """
    if os.path.isdir(path):
        graph = os.path.join(path, "saved_model.pb")
        if os.path.isfile(graph) and os.path.getsize(graph) == 0:
            raise ConfigError(f"SavedModel {path} is damaged: its saved_model.pb is empty; save or copy it again")
        return
    if os.path.getsize(path) == 0:
        raise ConfigError(f"model file {path} is empty (0 bytes); save or copy it again")
    named = {".h5": "h5", ".hdf5": "h5", ".keras": "keras", ".tflite": "tflite"}.get(os.path.splitext(path)[1])
    found = _sniff(path)
    if named and found and found != named and not (named == "keras" and found == "h5"):  # tf_keras reads both
        raise ConfigError(f"model file {path} is {_NAMES[found]}, not {_NAMES[named]} as its name says; "
                          f"rename it to end in {_SUFFIXES[found]}")
    damaged = f"model file {path} is damaged or not {_NAMES.get(named or found, 'a model file')}"
    if named and not found:
        raise ConfigError(f"{damaged} (its first bytes are no {_SUFFIXES[named]} signature); save, export or "
                          "download it again")
    try:
        if found == "keras":
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"bad CRC-32 for {bad}")
        elif found == "tflite":
            _check_flatbuffer(path)
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        raise ConfigError(f"{damaged} ({_first_line(error)}); save, export or download it again") from None


def _check_flatbuffer(path):
    """Parses a TFLite flatbuffer in Python and checks every index in it; raises ValueError if one is out of range.

    The interpreter trusts these indices (it builds from the file without the flatbuffer
    verifier), so an out-of-range one is a segmentation fault there and an exception here.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as handle:
        raw = bytearray(handle.read())
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(raw, 0))
    except (IndexError, struct.error, ValueError, TypeError, AttributeError):  # UnicodeDecodeError is a ValueError
        raise ValueError("its flatbuffer does not parse: an offset or a string in it is damaged") from None
    buffers, codes = len(model.buffers or ()), len(model.operatorCodes or ())
    if not model.subgraphs:
        raise ValueError("no subgraph")
    listed = lambda values: [] if values is None else list(values)  # noqa: E731  (absent vectors are None)
    for graph in model.subgraphs:
        tensors, operators = listed(graph.tensors), listed(graph.operators)
        used = [i for op in operators for i in listed(op.inputs) + listed(op.outputs)]  # -1: an optional input
        ends = listed(graph.inputs) + listed(graph.outputs)
        if (any(not 0 <= t.buffer < buffers for t in tensors) or any(not 0 <= op.opcodeIndex < codes for op in operators)
                or any(not -1 <= i < len(tensors) for i in used) or not ends
                or any(not 0 <= i < len(tensors) for i in ends)):
            raise ValueError("an index points outside the flatbuffer")


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def describe_format(path):
    """A word for what ``path`` holds: tflite, keras3, keras2 (.keras), h5, or saved_model."""
    if path.endswith(".tflite"):
        return "tflite"
    version = keras_file_version(path)
    if version:
        return "keras2" if version.startswith("2.") else "keras3"
    if path.endswith((".h5", ".hdf5")):
        return "h5"
    return "saved_model" if os.path.isdir(path) else "file"


def content_hash(path):
    """SHA-256 over the file, or over a directory's files (sorted relative paths and bytes)."""
    import hashlib

    digest = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
    for file in files:
        digest.update(os.path.relpath(file, path).encode() if file != path else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()

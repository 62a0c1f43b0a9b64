"""What an artifact holds and weighs: bytes, gzip bytes, and kernel entries read back from it.

One definition serves the source model and every format, so their numbers compare:

* **params** are the entries of the *kernels*: the floating-point (float32, float16, or
  int8-quantised) weight tensors of rank ≥ 2, i.e. conv, depthwise and dense kernels.
  Biases, batch-norm parameters and noise scales (rank ≤ 1) are left out on purpose: the
  TFLite converter folds batch norm into conv biases (creating biases a source conv did not
  have), which would make the count differ between formats by construction.
* **nonzero_params** counts the kernel entries that are not exactly zero, **weight_sparsity**
  is ``1 − nonzero_params / params`` (the zero fraction of the kernels, as in
  :func:`tfsparse.sparsity.weight_sparsity`). TFLite's int8 weights are quantised
  symmetrically per channel (zero point 0), so a zero weight stays the integer 0; float16
  keeps every float32 zero.

Each count is read from the artifact itself: a SavedModel's variables from its checkpoint,
a TFLite model's constant tensors from its flatbuffer (a sparse-encoded tensor stores only its
kept values, and its dense size is its shape).
"""

import gzip
import io
import os
import tarfile

import numpy as np

from tfsparse.compat import tf


def disk_bytes(path):
    """Size of a file, or the sum of the sizes of the files under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def gzip_bytes(path):
    """Bytes of ``gzip -9`` of a file, or of a deterministic tar of a directory.

    This is tfmot's measure of what pruning buys on disk (``get_gzipped_model_size`` in the
    pruning examples compresses the saved file): zeros compress, so a sparse model shrinks
    only once compressed. The tar of a directory lists its files sorted, with zeroed times,
    owners and modes, so equal contents give equal sizes.
    """
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            return len(gzip.compress(handle.read(), compresslevel=9, mtime=0))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
        for file in files:
            info = tarfile.TarInfo(os.path.relpath(file, path))
            info.size = os.path.getsize(file)
            with open(file, "rb") as handle:
                tar.addfile(info, handle)
    return len(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))


def kernel_counts(entries):
    """``{"params", "nonzero_params", "weight_sparsity"}`` of ``(size, nonzero)`` pairs."""
    params = int(sum(size for size, _ in entries))
    nonzero = int(sum(count for _, count in entries))
    return {"params": params, "nonzero_params": nonzero,
            "weight_sparsity": 1.0 - nonzero / params if params else 0.0}


def model_kernels(model):
    """``(size, nonzero)`` of each kernel of a (stripped) Keras model."""
    return [(int(np.size(value)), int(np.count_nonzero(value)))
            for value in (w.numpy() for w in model.weights if w.dtype.is_floating and w.shape.rank >= 2)]


def saved_model_kernels(path):
    """``(size, nonzero)`` of each kernel variable stored in a SavedModel's checkpoint."""
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    entries = []
    for name, shape in sorted(reader.get_variable_to_shape_map().items()):
        if dtypes[name].is_floating and len(shape) >= 2:
            value = reader.get_tensor(name)
            entries.append((int(value.size), int(np.count_nonzero(value))))
    return entries


def tflite_tensors(path):
    """The tensors of a TFLite flatbuffer's first subgraph and its buffers (TFLite schema objects)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(path)
    return model.subgraphs[0].tensors, model.buffers


def tflite_kernels(path):
    """``(size, nonzero)`` of each constant float32 / float16 / int8 tensor of rank ≥ 2."""
    from tensorflow.lite.python import schema_py_generated as schema

    dtypes = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16,
              schema.TensorType.INT8: np.int8}
    tensors, buffers = tflite_tensors(path)
    entries = []
    for tensor in tensors:
        data = buffers[tensor.buffer].data if tensor.buffer else None
        if data is None or len(data) == 0 or tensor.type not in dtypes or len(tensor.shape) < 2:
            continue  # an activation, an input, or a bias / shape / padding constant
        values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtypes[tensor.type])
        entries.append((int(np.prod(tensor.shape)), int(np.count_nonzero(values))))
    return entries


def tflite_sparse_tensors(path):
    """How many tensors of a TFLite flatbuffer are stored sparse-encoded."""
    return sum(tensor.sparsity is not None for tensor in tflite_tensors(path)[0])

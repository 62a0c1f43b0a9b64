"""TFLite conversion, inference and latency of the exported artifacts.

Every flatbuffer keeps the SavedModel's interface: one float32 input ``images`` ([0, 1],
NHWC, resizable batch) and float32 logits out. Conversion starts from the concrete serving
function, so the batch dimension stays ``-1`` and the interpreter can be resized.
"""

import contextlib
import statistics
import time
import warnings

import numpy as np

from tfsparse.compat import tf

# The TFLite variants: float32, float16 weights (dequantised to float32 at run time), full
# integer quantisation (int8 weights and activations, float32 in/out), and float32 with
# sparse-encoded kernels (TFLite's experimental sparsity, Optimize.EXPERIMENTAL_SPARSITY).
FILES = {"tflite": "model.tflite", "tflite_fp16": "model_fp16.tflite", "tflite_int8": "model_int8.tflite",
         "tflite_sparse": "model_sparse.tflite"}
_WARMUP_RUNS = 5
_PREDICT_BATCH = 256


@contextlib.contextmanager
def quiet():
    """Silences Python warnings and TF's Python logger below ERROR (the converter's chatter)."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def convert(function, model, kind, representative_data=None):
    """Converts a concrete serving function to TFLite flatbuffer bytes.

    Args:
      function: a concrete function ``images → {"logits"}`` with batch dimension ``None``.
      model: the Keras model the function calls (keeps its variables alive for the converter).
      kind: a key of :data:`FILES`.
      representative_data: [0, 1] images for ``tflite_int8``: the converter runs them one at
        a time through the float model to calibrate each activation's int8 range (full
        integer quantisation, TFLite post-training quantisation guide). Weights are int8
        per channel, symmetric; input and output stay float32.
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    if kind == "tflite_fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "tflite_int8":
        images = np.asarray(representative_data, np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif kind == "tflite_sparse":
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    with quiet():
        return converter.convert()


def interpreter(path, threads=1):
    """The TFLite interpreter on ``path``: LiteRT's where ai-edge-litert is installed, else TensorFlow's.

    ``ai_edge_litert.interpreter.Interpreter`` is the runtime TensorFlow 2.20+ points to when
    it deprecates ``tf.lite.Interpreter``; both take the same flatbuffer and give the same
    logits (bit-identical on the float32, float16 and int8 exports of LeNet-5 on 300 MNIST
    test images, ai-edge-litert 2.3.0 against TensorFlow 2.21). ``tf.lite.Interpreter`` (its
    deprecation notice silenced) is the fallback where ai-edge-litert is not installed.
    ``threads``: ``num_threads`` (None: the runtime's default).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with quiet():
            return tf.lite.Interpreter(model_path=path, num_threads=threads)
    return Interpreter(model_path=path, num_threads=threads)


def predict(path, images, threads=1):
    """Logits of the TFLite model at ``path`` on ``images``, in batches of up to 256."""
    runner = interpreter(path, threads)
    (source,), (target,) = runner.get_input_details(), runner.get_output_details()
    logits = []
    for start in range(0, len(images), _PREDICT_BATCH):
        batch = np.asarray(images[start:start + _PREDICT_BATCH], np.float32)
        runner.resize_tensor_input(source["index"], batch.shape)
        runner.allocate_tensors()
        runner.set_tensor(source["index"], batch)
        runner.invoke()
        logits.append(runner.get_tensor(target["index"]).astype(np.float32))
    return np.concatenate(logits)


def latency_ms(path, runs, threads=1):
    """Median wall time of ``runs`` batch-1 invocations in ms, after 5 warm-up runs.

    Returns:
      ``{"median", "runs", "threads", "batch": 1}``.
    """
    runner = interpreter(path, threads)
    (source,) = runner.get_input_details()
    runner.resize_tensor_input(source["index"], [1, *source["shape"][1:]])
    runner.allocate_tensors()
    runner.set_tensor(source["index"], np.full([1, *source["shape"][1:]], 0.5, np.float32))
    times = []
    for step in range(_WARMUP_RUNS + runs):
        start = time.perf_counter()
        runner.invoke()
        if step >= _WARMUP_RUNS:
            times.append(time.perf_counter() - start)
    return {"median": 1e3 * statistics.median(times), "runs": runs, "threads": threads, "batch": 1}

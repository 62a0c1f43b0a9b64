"""Export to SavedModel and TFLite, checked against the source model and measured (SPEC §10).

:func:`export` writes a trained model (pruning wrappers stripped, CNI/PNI noise off or on)
as a SavedModel and as TFLite flatbuffers (float32, float32 sparse-encoded, float16 weights,
full-integer int8), reloads each artifact, compares its logits with the source model's, and
reports what it weighs (bytes, gzip bytes), what it holds (kernel entries, non-zeros) and how
fast it runs (TFLite interpreter, batch 1). Every artifact has the interface of the training
model: [0, 1] images in, logits out, so attacks and evaluation treat them alike
(:func:`tfsparse.model_io.load_model`).

Modules: ``saved_model`` (signatures, :func:`without_noise`, :func:`save_saved_model`),
``tflite`` (conversion, inference, latency), ``artifacts`` (sizes and kernel counts read from
the files), ``writer`` (:func:`export`, :func:`format_table`).
"""

from tfsparse.export.saved_model import save_saved_model
from tfsparse.export.saved_model import without_noise
from tfsparse.export.writer import FORMATS
from tfsparse.export.writer import REPORT_FILE
from tfsparse.export.writer import TOLERANCES
from tfsparse.export.writer import export
from tfsparse.export.writer import format_table

__all__ = ["FORMATS", "REPORT_FILE", "TOLERANCES", "export", "format_table", "save_saved_model", "without_noise"]

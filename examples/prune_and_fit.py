"""Prune your own Keras model while you fit it, then measure its robustness.

A plain Keras workflow (your model, ``compile``, ``fit`` with callbacks, save) with
tfsparse added in four places: ``tfsparse.sparsity.prune`` wraps the model for tfmot
magnitude pruning, ``UpdatePruningStep``/``SparsityMonitor``/``RobustnessEval`` go into
the callback list, ``strip`` + ``tfsparse.export.save_saved_model`` write a model whose
kernels hold real zeros, and ``tfsparse.metrics`` measures Guo et al.'s r∞ (FGSM
accuracy) and r2 (DeepFool).

Run:   python examples/prune_and_fit.py          (full size, under 2 minutes on 2 CPU cores)
       TFSPARSE_EXAMPLE_QUICK=1 python examples/prune_and_fit.py   (smoke test: fewer images
       and epochs, same code path)
Optional: TFSPARSE_EXAMPLE_OUT=DIR writes the TensorBoard logs and the SavedModel under DIR
(default: a fresh temporary directory).

Prints ``key=value`` lines: clean_accuracy, r_inf, r2, sparsity, target_sparsity, saved_model.
"""

import os

QUICK = os.environ.get("TFSPARSE_EXAMPLE_QUICK") == "1"

import tempfile  # noqa: E402

import numpy as np  # noqa: E402

import tfsparse  # noqa: E402  (import first: it selects tf_keras before TensorFlow loads)
from tfsparse.compat import keras  # noqa: E402  (the tf_keras module tfmot needs)
from tfsparse.compat import tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402  (for a pruning schedule)

from tfsparse.attacks import DeepFool, FGSM  # noqa: E402
from tfsparse.export import save_saved_model  # noqa: E402
from tfsparse.sparsity import UpdatePruningStep  # noqa: E402
from tfsparse.training import RobustnessEval, SparsityMonitor  # noqa: E402

TARGET_SPARSITY = 0.8
EPOCHS = 1 if QUICK else 4
NUM_TRAIN = 2048 if QUICK else 6000  # the embedded MNIST sample has 6,000 training images
NUM_VAL = 100 if QUICK else 500  # fixed subset RobustnessEval attacks after every epoch
NUM_TEST = 200 if QUICK else 1000
NUM_R2 = 50 if QUICK else 500  # DeepFool is the slowest measurement: fewer images
BATCH = 64
OUT = os.environ.get("TFSPARSE_EXAMPLE_OUT") or tempfile.mkdtemp(prefix="tfsparse_prune_")

tf.random.set_seed(0)
np.random.seed(0)

# Real MNIST: float32 NHWC images in [0, 1], integer labels.
data = tfsparse.data.load("mnist")
x_train, y_train = data.x_train[:NUM_TRAIN], data.y_train[:NUM_TRAIN]
x_val, y_val = data.x_train[-NUM_VAL:], data.y_train[-NUM_VAL:]  # held out from training
x_test, y_test = data.x_test[:NUM_TEST], data.y_test[:NUM_TEST]


# 1. Your own model: any functional or Sequential tf_keras model. It must return logits
#    (no softmax): attacks and metrics differentiate the logits.
def my_model():
    return keras.Sequential([
        keras.layers.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])


model = my_model()

# 2. Wrap it for pruning. A tfmot schedule ramps sparsity from 0 to the target over the
#    first ~70 % of the optimizer steps (pruning every 10 steps), then holds the mask while
#    the remaining weights recover. prune() copies the model: `model` itself is untouched.
steps_per_epoch = -(-NUM_TRAIN // BATCH)
end_step = max(10, int(0.7 * EPOCHS * steps_per_epoch) // 10 * 10)
schedule = tfmot.sparsity.keras.PolynomialDecay(
    initial_sparsity=0.0, final_sparsity=TARGET_SPARSITY, begin_step=0, end_step=end_step,
    frequency=10,
)
pruned = tfsparse.sparsity.prune(model, schedule=schedule)

# 3. Compile and fit as usual. UpdatePruningStep is required (it advances the pruning step);
#    SparsityMonitor and RobustnessEval add `weight_sparsity` and `robust_fgsm` to the epoch
#    logs, so they reach History and TensorBoard (list them before TensorBoard).
pruned.compile(
    optimizer=keras.optimizers.Adam(3e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
history = pruned.fit(
    x_train, y_train, batch_size=BATCH, epochs=EPOCHS, validation_data=(x_val, y_val),
    verbose=2,
    callbacks=[
        UpdatePruningStep(),
        SparsityMonitor(),
        RobustnessEval(FGSM(eps=0.1), x_val, y_val),
        keras.callbacks.TensorBoard(os.path.join(OUT, "logs")),
    ],
)
print("per-epoch weight_sparsity:", [round(v, 4) for v in history.history["weight_sparsity"]])
print("per-epoch robust_fgsm:", [round(v, 4) for v in history.history["robust_fgsm"]])

# 4. Strip the wrappers (the masks are multiplied into the kernels) and export a SavedModel
#    with a `serving_default` signature; check_inputs verifies the reloaded model's logits.
final = tfsparse.sparsity.strip(pruned)
saved = save_saved_model(final, os.path.join(OUT, "saved_model"), check_inputs=x_test[:8])

# 5. Measure: clean accuracy, r∞ (accuracy under FGSM at ε = 0.1, Guo et al.), r2 (mean
#    DeepFool l2 distance, misclassified images count as 0), and the weight sparsity.
rinf = tfsparse.metrics.r_inf(final, x_test, y_test, eps=0.1)
r2 = tfsparse.metrics.r2(final, x_test[:NUM_R2], y_test[:NUM_R2], attack=DeepFool())
sparsity = tfsparse.sparsity.weight_sparsity(final)
print(tfsparse.sparsity.format_sparsity_table(sparsity))

print(f"clean_accuracy={rinf['clean_accuracy']:.4f}")
print(f"r_inf={rinf['r_inf']:.4f}")
print(f"r2={r2['r2']:.4f}")
print(f"sparsity={sparsity['overall']:.4f}")
print(f"target_sparsity={TARGET_SPARSITY:.4f}")
print(f"saved_model={saved}")

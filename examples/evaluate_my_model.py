"""Evaluate a model made elsewhere (here: a Keras 3 ``.keras`` file) under FGSM, PGD and AutoAttack.

tfsparse trains with Keras 2 (tf_keras), but it evaluates whatever model you have: a
Keras 3 ``.keras`` file, a Keras 2 ``.h5``/``.keras``, a SavedModel or a ``.tflite`` file
(``tfsparse.model_io.load_model``). Keras 3 and tf_keras live side by side in one process
as long as ``tfsparse`` is imported first. ``evaluate_dataset`` loads the test split, runs
its sanity checks (inputs in [0, 1], logits-shaped output, gradient masking), every
attack on the same images and the per-sample worst case; ``format_table`` prints it.

Run:   python examples/evaluate_my_model.py          (full size, under 2 minutes on 2 CPU cores)
       TFSPARSE_EXAMPLE_QUICK=1 python examples/evaluate_my_model.py   (smoke test: fewer
       images and attack steps, same code path)
Optional: TFSPARSE_EXAMPLE_OUT=DIR writes the .keras file under DIR (default: a fresh
temporary directory).

Prints the report table, then ``key=value`` lines: clean_accuracy, fgsm_accuracy,
pgd_accuracy, autoattack_accuracy, worst_case_accuracy, num_examples.
"""

import os

QUICK = os.environ.get("TFSPARSE_EXAMPLE_QUICK") == "1"

import tempfile  # noqa: E402

import tfsparse  # noqa: E402  (import before keras: it pins tf_keras for tfsparse's own use)
import keras  # noqa: E402  (Keras 3, the user's Keras)

from tfsparse.attacks import PGD, AutoAttack, FGSM  # noqa: E402
from tfsparse.evaluation import evaluate_dataset, format_table  # noqa: E402
from tfsparse.model_io import load_model  # noqa: E402

EPS = 0.1
NUM_TRAIN = 2048 if QUICK else 6000
NUM_EXAMPLES = 60 if QUICK else 500  # first N test images
PGD_STEPS = 10 if QUICK else 40
AA_STEPS = 5 if QUICK else 100  # AutoAttack's own default is 100 iterations per component
AA_QUERIES = 100 if QUICK else 5000  # Square's query budget (AutoAttack's default: 5,000)
OUT = os.environ.get("TFSPARSE_EXAMPLE_OUT") or tempfile.mkdtemp(prefix="tfsparse_eval_")

# ---- Somewhere else: a user trains a small Keras 3 model and saves it as .keras ----------
keras.utils.set_random_seed(0)
data = tfsparse.data.load("mnist")  # images in [0, 1]; the model must see the same scale
user_model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(16, 3, activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10),  # logits: attacks need them (a softmax output is refused)
])
user_model.compile(optimizer="adam", metrics=["accuracy"],
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
user_model.fit(data.x_train[:NUM_TRAIN], data.y_train[:NUM_TRAIN], batch_size=64, epochs=2,
               verbose=2)
path = os.path.join(OUT, "my_model.keras")
user_model.save(path)

# ---- Here: load it with tfsparse and evaluate ---------------------------------------------
model = load_model(path)  # a Keras 3 file is rebuilt as tf_keras (logits checked): prunable too
attacks = [
    FGSM(eps=EPS),
    PGD(eps=EPS, step_size=2.5 * EPS / PGD_STEPS, steps=PGD_STEPS),
    AutoAttack(eps=EPS, steps=AA_STEPS, square_queries=AA_QUERIES),  # the standard ensemble
]
report = evaluate_dataset(model, attacks, dataset="mnist", num_examples=NUM_EXAMPLES,
                          progress=False)
print(format_table(report))

print(f"clean_accuracy={report['clean_accuracy']:.4f}")
print(f"fgsm_accuracy={report['attacks']['fgsm']['accuracy']:.4f}")
print(f"pgd_accuracy={report['attacks']['pgd']['accuracy']:.4f}")
print(f"autoattack_accuracy={report['attacks']['autoattack']['accuracy']:.4f}")
print(f"worst_case_accuracy={report['worst_case']['accuracy']:.4f}")
print(f"num_examples={report['n']}")

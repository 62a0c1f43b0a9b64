"""Adversarial training of your own Keras model: PGD training (Madry) and RSR (noise + lasso).

Part 1 wraps a plain tf_keras model in ``tfsparse.training.AdversarialModel``: every
optimizer step crafts PGD examples in-graph and trains on them; ``compile`` and ``fit``
are ordinary Keras calls. Part 2 is RSR (Rakin et al. 2019) on the same architecture:
``NoisyConv2D``/``NoisyDense`` layers (trainable weight noise), the ensemble loss
``a·CE(clean) + (1 − a)·CE(PGD)`` with a = 0.5 (``clean_weight=0.5``), an l1 (lasso)
penalty on the kernels (``add_lasso``) and Wang et al.'s Stop-C schedule (``StopC``
callback: learning rate ÷10 on a validation-loss plateau). The noisy model is random at
inference, so it is evaluated with EOT-PGD (gradients averaged over noise draws).

Run:   python examples/adversarial_fit.py          (full size, under 2 minutes on 2 CPU cores)
       TFSPARSE_EXAMPLE_QUICK=1 python examples/adversarial_fit.py   (smoke test: fewer images,
       epochs and attack steps, same code path)
Optional: TFSPARSE_EXAMPLE_OUT=DIR saves the two trained models under DIR (default: a fresh
temporary directory).

Prints ``key=value`` lines: clean_accuracy, pgd_accuracy (the PGD-trained model),
rsr_clean_accuracy, rsr_eot_pgd_accuracy (the RSR model, noise on), stopc_decays.
"""

import os

QUICK = os.environ.get("TFSPARSE_EXAMPLE_QUICK") == "1"

import tempfile  # noqa: E402

import numpy as np  # noqa: E402

import tfsparse  # noqa: E402  (import first: it selects tf_keras before TensorFlow loads)
from tfsparse.compat import keras  # noqa: E402
from tfsparse.compat import tf  # noqa: E402

from tfsparse.attacks import EOTPGD, PGD  # noqa: E402
from tfsparse.evaluation import evaluate  # noqa: E402
from tfsparse.layers import NoisyConv2D, NoisyDense, set_inference_noise  # noqa: E402
from tfsparse.training import AdversarialModel, StopC, add_lasso  # noqa: E402

EPS = 0.1  # l∞ budget in pixel units (MNIST images lie in [0, 1])
TRAIN_STEPS = 3 if QUICK else 5  # PGD steps inside each training step
EVAL_STEPS = 5 if QUICK else 20  # PGD steps of the evaluation attack
EOT_SAMPLES = 2 if QUICK else 8  # noise draws per EOT-PGD gradient
EPOCHS = 1 if QUICK else 2
NUM_TRAIN = 1024 if QUICK else 6000
NUM_VAL = 128 if QUICK else 300
NUM_TEST = 100 if QUICK else 1000
BATCH = 64
OUT = os.environ.get("TFSPARSE_EXAMPLE_OUT") or tempfile.mkdtemp(prefix="tfsparse_adv_")

tf.random.set_seed(0)
np.random.seed(0)

data = tfsparse.data.load("mnist")  # the embedded MNIST sample, images in [0, 1]
x_train, y_train = data.x_train[:NUM_TRAIN], data.y_train[:NUM_TRAIN]
x_val, y_val = data.x_train[-NUM_VAL:], data.y_train[-NUM_VAL:]
x_test, y_test = data.x_test[:NUM_TEST], data.y_test[:NUM_TEST]


# Your own architecture, written once; the layer classes are parameters so that the RSR
# part can swap in the noisy layers. It returns logits (no softmax).
def my_model(conv=keras.layers.Conv2D, dense=keras.layers.Dense):
    inputs = keras.Input((28, 28, 1))
    h = conv(16, 3, activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = conv(32, 3, activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = dense(64, activation="relu")(h)
    return keras.Model(inputs, dense(10)(h))


loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

# ---- Part 1: PGD adversarial training (Madry et al.) -------------------------------------
# AdversarialModel wraps the functional model; compile/fit it like any Keras model. It
# logs `accuracy` (clean) and `adv_accuracy` (on the training PGD examples). eps_warmup
# ramps ε from 0 over the first steps so the small model does not stall at chance.
inner = my_model()
model = AdversarialModel(inner, eps=EPS, step_size=2.5 * EPS / TRAIN_STEPS, steps=TRAIN_STEPS,
                         eps_warmup=NUM_TRAIN // BATCH)
model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=loss, metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=BATCH, epochs=EPOCHS, verbose=2)
inner.save(os.path.join(OUT, "pgd_trained.keras"))  # the plain functional model is what you keep

# Evaluate the inner model under a stronger PGD than the one used in training.
pgd = PGD(eps=EPS, step_size=2.5 * EPS / EVAL_STEPS, steps=EVAL_STEPS)
report = evaluate(inner, x_test, y_test, [pgd])
print(f"clean_accuracy={report['clean_accuracy']:.4f}")
print(f"pgd_accuracy={report['attacks']['pgd']['accuracy']:.4f}")

# ---- Part 2: RSR = noisy layers + ensemble loss (a = 0.5) + lasso + Stop-C ----------------
noisy = my_model(conv=NoisyConv2D, dense=NoisyDense)
# RSR keeps the noise on at inference ("noise on"), so the training attack faces it too.
set_inference_noise(noisy, True)
add_lasso(noisy, 1e-5)  # λ · Σ ‖W‖₁ over conv/dense kernels, added to model.losses
rsr = AdversarialModel(noisy, eps=EPS, step_size=2.5 * EPS / TRAIN_STEPS, steps=TRAIN_STEPS,
                       clean_weight=0.5, eps_warmup=NUM_TRAIN // BATCH)
# StopC sets the learning rate itself: compile with a constant rate, not a schedule. It
# watches val_loss (the adversarial objective on the validation data), so pass
# validation_data. patience=1 makes it act within this short run (Wang et al. use 10).
stop_c = StopC(patience=1)
rsr.compile(optimizer=keras.optimizers.Adam(2e-3), loss=loss, metrics=["accuracy"])
rsr.fit(x_train, y_train, batch_size=BATCH, epochs=EPOCHS + 1, validation_data=(x_val, y_val),
        callbacks=[stop_c], verbose=2)
noisy.save(os.path.join(OUT, "rsr.keras"))

# A model random at inference needs EOT: each PGD gradient averages `samples` noise draws.
eot = EOTPGD(eps=EPS, step_size=2.5 * EPS / EVAL_STEPS, steps=EVAL_STEPS, samples=EOT_SAMPLES)
report = evaluate(noisy, x_test, y_test, [eot])
print(f"rsr_clean_accuracy={report['clean_accuracy']:.4f}")
print(f"rsr_eot_pgd_accuracy={report['attacks']['eot_pgd']['accuracy']:.4f}")
print(f"stopc_decays={stop_c.decays}")
print(f"saved_models={OUT}")

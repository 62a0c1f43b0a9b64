"""Clean (non-adversarial) training with the papers' SGD policies (SPEC §8).

LeNet policy (Guo, after Caffe): SGD momentum 0.9, lr 0.01 with Caffe's ``inv`` decay,
weight decay 5e-4, batch 64, an iteration budget (paper: 50,000). CIFAR policy: SGD
momentum 0.9, lr 0.1, weight decay 5e-4, batch 128. The training step is the Keras one,
compiled into one ``tf.function`` (XLA per the ``auto`` rule of SPEC §1).
"""

import math

from tfsparse.compat import keras
from tfsparse.compat import tf
from tfsparse.compat import use_xla
from tfsparse.data import pipelines
from tfsparse.sparsity import UpdatePruningStep
from tfsparse.sparsity import has_pruning_wrappers
from tfsparse.sparsity import prunable_layers
from tfsparse.sparsity import prunable_weights
from tfsparse.training.callbacks import CheckpointedCallback
from tfsparse.training.callbacks import EpochCheckpoint
from tfsparse.training.callbacks import NaNGuard
from tfsparse.training.callbacks import StopAtStep
from tfsparse.training.schedules import make_schedule

OPTIMIZERS = ("sgd", "adam")


def is_binary(model):
    """True for single-logit models (Guo's linear_binary), trained with the softplus loss."""
    return int(model.output_shape[-1]) == 1


def loss_for(model):
    """Cross-entropy on logits; for one logit, softplus τ(−s·z) (= sigmoid CE, s = 2y − 1)."""
    if is_binary(model):
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def accuracy_metric(model):
    if is_binary(model):
        return keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def add_weight_decay(model, weight_decay):
    """Adds Caffe-style coupled L2 decay (λ/2)·Σ‖W‖² on prunable kernels only.

    The gradient of this term is λ·W, exactly Caffe's ``weight_decay`` and PyTorch's
    SGD ``weight_decay``; biases, BN parameters and noise scales are not decayed.
    """
    if weight_decay <= 0:
        return
    kernels = [prunable_weights(layer)[0] for layer in prunable_layers(model)]
    model.add_loss(lambda: 0.5 * weight_decay * tf.add_n([tf.reduce_sum(tf.square(k)) for k in kernels]))


def steps_for(train_cfg, num_train):
    """The iteration budget: ``epochs`` × batches per epoch if epochs > 0, else ``steps``."""
    per_epoch = math.ceil(num_train / train_cfg.batch_size)
    if train_cfg.epochs and train_cfg.epochs > 0:
        return max(1, int(round(train_cfg.epochs * per_epoch)))
    return int(train_cfg.steps)


def make_optimizer(train_cfg, total_steps):
    """The optimizer of a ``train`` section: its ``optimizer`` and schedule (every config file sets both).

    ``sgd`` is SGD with ``momentum`` (the papers' LeNet and CIFAR policies); ``adam`` is
    Adam with Keras defaults (β 0.9/0.999), as Madry et al. train MNIST adversarially.
    The learning rate follows ``lr_schedule`` over ``total_steps`` in both cases.

    Raises:
      ValueError: for an unknown optimizer name.
    """
    name = train_cfg.optimizer
    schedule = make_schedule(train_cfg.lr_schedule, train_cfg.learning_rate, total_steps)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=schedule, momentum=train_cfg.momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=schedule)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def compile_model(model, train_cfg, total_steps):
    """Compiles ``model`` with the configured optimizer, schedule, decay and XLA switch."""
    optimizer = make_optimizer(train_cfg, total_steps)
    add_weight_decay(model, train_cfg.weight_decay)
    model.compile(
        optimizer=optimizer,
        loss=loss_for(model),
        metrics=[accuracy_metric(model)],
        jit_compile=use_xla(train_cfg.jit_compile),
    )
    # Creating the optimizer slots now, not inside the first traced step, saves
    # tf.function a second trace (it retraces when variables are created on a call).
    optimizer.build(model.trainable_variables)


def train(model, x, y, train_cfg, *, steps=None, seed=0, verbose=0, callbacks=(), checkpoint_dir=None):
    """Trains ``model`` in place on arrays ``x, y`` for ``steps`` SGD iterations.

    Works on dense models and on models wrapped for pruning (the pruning-step callback is
    added when wrappers are present, and zeros stay zero).

    Args:
      model: a ``tf_keras`` model returning logits.
      x, y: training images in [0, 1] (NHWC) and integer labels.
      train_cfg: the ``train`` section of a config (batch_size, learning_rate, momentum,
        weight_decay, lr_schedule, augment, jit_compile, steps/epochs).
      steps: iteration budget; default ``steps_for(train_cfg, len(x))``.
      seed: seed of the shuffling and augmentation.
      verbose: Keras progress verbosity.
      callbacks: extra Keras callbacks.
      checkpoint_dir: checkpoint every epoch there and resume from the last one
        (see :func:`fit_arrays`).

    Returns:
      The Keras ``History``.
    """
    steps = steps_for(train_cfg, len(x)) if steps is None else int(steps)
    compile_model(model, train_cfg, steps)
    return fit_arrays(model, x, y, train_cfg, steps, seed=seed, verbose=verbose, callbacks=callbacks,
                      checkpoint_dir=checkpoint_dir)


def fit_arrays(model, x, y, train_cfg, steps, *, seed=0, verbose=0, callbacks=(), pruned=None,
               checkpoint_dir=None):
    """``model.fit`` on arrays for exactly ``steps`` iterations of a compiled model.

    Shared by clean and adversarial training: seeded shuffling (and augmentation when the
    config asks), the NaN guard, and tfmot's ``UpdatePruningStep`` whenever ``pruned``
    (default ``model``) holds pruning wrappers. ``steps == 0`` trains nothing (the
    returned ``History`` is empty).

    With ``checkpoint_dir`` the model, optimizer and epoch count are checkpointed at every
    epoch end (:class:`EpochCheckpoint`); when that folder already holds a checkpoint,
    training continues after its epoch, with the seeded batch stream advanced past the
    completed epochs, so the resumed run ends with the weights of an uninterrupted one.
    ``callbacks`` run before the checkpoint at each epoch end; the state of those that are
    :class:`~tfsparse.training.callbacks.CheckpointedCallback` s is checkpointed with the
    model, and when one of them had stopped training (Stop-C) the resumed fit trains no
    further epoch (it still runs the callbacks' ``on_train_begin``/``on_train_end``).
    """
    if steps == 0:
        history = keras.callbacks.History()
        history.set_model(model)
        history.on_train_begin()
        return history
    # Keras counts in epochs: epochs of about one pass over the data, the last one cut
    # short by StopAtStep when the budget is not a multiple of the epoch length.
    epochs = math.ceil(steps / math.ceil(len(x) / train_cfg.batch_size))
    per_epoch = math.ceil(steps / epochs)
    dataset = pipelines.train_pipeline(
        x, y, train_cfg.batch_size, seed=seed, augment=bool(train_cfg.augment), repeat=True
    )
    all_callbacks = [NaNGuard(), *callbacks]
    stop = StopAtStep(steps)
    if has_pruning_wrappers(model if pruned is None else pruned):
        all_callbacks.insert(0, UpdatePruningStep())
    initial_epoch = 0
    if checkpoint_dir is not None:
        stateful = [cb for cb in all_callbacks if isinstance(cb, CheckpointedCallback)]
        checkpoint = EpochCheckpoint(checkpoint_dir, model, callbacks=stateful)
        completed = checkpoint.restore()
        initial_epoch = epochs if checkpoint.stopped else completed
        all_callbacks.append(checkpoint)
        if initial_epoch and not checkpoint.stopped:
            dataset = dataset.skip(initial_epoch * per_epoch)
    stop.done = initial_epoch * per_epoch
    all_callbacks.insert(0, stop)
    return model.fit(
        dataset, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=per_epoch, verbose=verbose,
        callbacks=all_callbacks,
    )

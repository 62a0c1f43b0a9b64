"""``tf.distribute`` strategies from a config word, and the rules a distributed run follows (SPEC §10).

``distribute`` in a training config names the strategy (:data:`STRATEGIES`):

* ``none`` — TensorFlow's default strategy: one device, exactly the code path of a run
  without any strategy;
* ``mirrored`` — :class:`tf.distribute.MirroredStrategy` over every GPU of this machine
  (on a machine without GPUs: every logical CPU device, one unless the program split the
  CPU with ``tf.config.set_logical_device_configuration``);
* ``multi_worker`` — :class:`tf.distribute.MultiWorkerMirroredStrategy` over the cluster
  that ``TF_CONFIG`` describes (``scripts/launch_local.py`` writes it for localhost
  workers; on a cluster the scheduler does);
* ``tpu`` — :class:`tf.distribute.TPUStrategy` on the TPU this VM is attached to.

What a distributed step means (stated here, tested in ``tests/test_distribute.py``):

* **Global batch.** The train section's ``batch_size`` is the *global* batch: Keras splits
  every batch of the input pipeline over the ``R`` replicas, ``batch_size / R`` each, so
  ``batch_size`` must be a multiple of ``R`` (:func:`per_replica_batch` refuses others).
  The iteration budget counts global steps, as without a strategy.
* **Learning rate unchanged.** Keras scales each replica's loss by ``1 / global batch``
  and sums the gradients over replicas, so one step of ``R`` replicas on ``B / R`` images
  each is the step of one device on ``B`` images; the configured learning rate (and its
  schedule, driven by ``optimizer.iterations``) applies as it is — no linear scaling.
* **Pruning step.** tfmot's ``pruning_step`` is a mirrored variable: every replica adds 1
  once per global optimizer step (the one ``training=True`` pass of the step), and the
  mirrored update keeps one value, so after ``N`` steps it is ``N`` on every replica.
* **Chief.** In a multi-worker cluster, worker 0 (or the task of type ``chief``) alone
  writes the run directory; the other workers take part in every collective (training
  steps, checkpoint saves, reading synchronised variables) but write into a private
  scratch folder that is removed after each save (:func:`write_dir`) — the checkpoint
  pattern of TensorFlow's multi-worker guide. Restoring reads the chief's checkpoints, so
  a multi-host resume needs the run directory on a shared filesystem.
"""

import os
import shutil
import tempfile

from tfsparse.compat import tf
from tfsparse.errors import ConfigError

STRATEGIES = ("none", "mirrored", "multi_worker", "tpu")

# A process may create one MultiWorkerMirroredStrategy / TPU system only (collective ops and
# the TPU are configured once per process), so strategies are made once per name.
_STRATEGIES = {}


def strategy_from_config(name):
    """The ``tf.distribute.Strategy`` a config's ``distribute`` word names (made once per process).

    Create it before any other TensorFlow work of the run: ``MultiWorkerMirroredStrategy``
    configures the process's collective ops at creation.

    Example::

        strategy = strategy_from_config("mirrored")
        with strategy.scope():
            model = build()               # variables mirrored on every replica
            model.compile(...)            # optimizer slots too
        model.fit(dataset_of_global_batches, ...)

    Args:
      name: one of :data:`STRATEGIES`.

    Returns:
      The strategy; ``none`` gives the default strategy (``tf.distribute.get_strategy()``
      outside any scope).

    Raises:
      ConfigError: for an unknown name, ``multi_worker`` without ``TF_CONFIG``, or ``tpu``
        where no TPU can be found.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"distribute {name!r} is unknown; choose from {STRATEGIES}")
    if name == "none":
        return tf.distribute.get_strategy()
    if name not in _STRATEGIES:
        _STRATEGIES[name] = _make(name)
    return _STRATEGIES[name]


def _make(name):
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("distribute=multi_worker needs TF_CONFIG (the cluster and this task); start the "
                              "workers with scripts/launch_local.py or set it per host (docs/SCALE.md)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError) as error:
        raise ConfigError(f"distribute=tpu: no TPU found ({str(error).splitlines()[0]}); run on a TPU VM "
                          "or choose none, mirrored or multi_worker") from None
    return tf.distribute.TPUStrategy(resolver)


def per_replica_batch(batch_size, strategy, key="batch_size"):
    """``batch_size / replicas``: the share of one replica of a global batch.

    Raises:
      ConfigError: when ``batch_size`` is not a multiple of the replica count (Keras would
        otherwise give the replicas unequal shares and change the step's statistics).
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ConfigError(f"{key} {batch_size} is the global batch and must be a multiple of the "
                          f"{replicas} replicas; choose e.g. {replicas * max(1, batch_size // replicas)}")
    return batch_size // replicas


def task(strategy):
    """``(task_type, task_id)`` of this process in a multi-worker cluster; ``(None, None)`` otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """True for the process that writes results: the only one, or the cluster's chief / worker 0."""
    task_type, task_id = task(strategy)
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in strategy.cluster_resolver.cluster_spec().jobs


def write_dir(directory, strategy):
    """Where this process writes what belongs in ``directory``: the folder itself on the chief,
    a private scratch folder on other workers (remove it with :func:`remove_scratch` after use).
    """
    if is_chief(strategy):
        return directory
    task_type, task_id = task(strategy)
    return tempfile.mkdtemp(prefix=f"tfsparse-{task_type}{task_id}-{os.path.basename(str(directory))}-")


def remove_scratch(path, directory):
    """Removes a :func:`write_dir` scratch folder (never ``directory`` itself)."""
    if os.path.abspath(path) != os.path.abspath(directory):
        shutil.rmtree(path, ignore_errors=True)

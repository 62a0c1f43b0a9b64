"""Objects built from config sections, shared by every pipeline: data, model, train section, attack suites.

Each function reads one section and nothing else, so a pipeline states which sections it
uses. Defaults are never filled in here: every value comes from the config file.
"""

import contextlib
import time

import ml_collections

from tfsparse import attacks
from tfsparse import data as data_lib
from tfsparse import evaluation
from tfsparse import metrics
from tfsparse import models as model_lib
from tfsparse import sanity
from tfsparse import sparsity
from tfsparse.metrics import theory
from tfsparse.compat import keras
from tfsparse.compat import xla_setting
from tfsparse.errors import ConfigError
from tfsparse.training import is_chief
from tfsparse.training import per_replica_batch
from tfsparse.training import strategy_from_config

# model.normalization: "dataset" puts the data's per-channel mean/std in the model's first
# layer; "none" feeds [0, 1] pixels unchanged (Caffe's LeNets, Guo's references).
NORMALIZATIONS = ("dataset", "none")
# Zoo models that are linear classifiers (Guo et al. 2018 §3: their records carry the theory).
LINEAR_MODELS = ("linear", "linear_binary")


def parse_int_list(text, key):
    """Parses "1,7" (or "") into a tuple of ints; ConfigError naming ``key`` otherwise."""
    if isinstance(text, (tuple, list)):
        return tuple(int(v) for v in text)
    text = (text or "").strip()
    if not text:
        return ()
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{key} must be comma-separated integers such as '1,7', got {text!r}") from None


def load_data(data_cfg, log=None):
    """Loads the dataset a ``data`` section names (sizes: 0 = all); ``log`` gets one line saying
    which data, from where and how much (a run's first progress line)."""
    dataset = data_lib.load(
        data_cfg.name,
        data_cfg.data_dir or None,
        num_train=data_cfg.num_train or None,
        num_test=data_cfg.num_test or None,
        classes=parse_int_list(data_cfg.classes, "data.classes") or None,
        seed=data_cfg.seed,
    )
    if log is not None:
        log(f"data: {dataset.name} from {dataset.source}: {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    return dataset


def num_outputs(model_cfg, dataset):
    """The logits of the zoo model ``model_cfg`` names on ``dataset``: one per class, or one for
    ``linear_binary`` (Guo et al.'s binary linear classifier), which needs two classes.

    Raises:
      ConfigError: ``linear_binary`` on data with more than two classes (a pipeline calls this
        before any work).
    """
    count = 1 if model_cfg.name == "linear_binary" else dataset.num_classes
    sanity.check_outputs_for_classes(count, dataset.num_classes, f"model.name {model_cfg.name!r}",
                                     hint="pick two classes, e.g. --config.data.classes=1,7, or a multi-class model")
    return count


def check_model_fits(model, dataset, hint="choose the dataset the model was trained on"):
    """Raises ConfigError unless a loaded ``model`` takes ``dataset``'s images and has one logit per
    class (:func:`tfsparse.sanity.check_outputs_for_classes`); ``hint`` says what to change.

    The check of every pipeline that is given a trained model (prune, export) before any work.
    """
    if tuple(model.input_shape[1:]) != tuple(dataset.input_shape):
        raise ConfigError(f"model input {model.input_shape[1:]} does not match {dataset.name} images "
                          f"{dataset.input_shape}; {hint}")
    sanity.check_outputs_for_classes(int(model.output_shape[-1]), dataset.num_classes, "the model", hint=hint)


def check_subset_size(dataset, num_examples, key):
    """Raises ConfigError if ``num_examples`` (the value of config key ``key``) exceeds the test split:
    a number of images the user asked for is never cut silently."""
    if int(num_examples) > len(dataset.x_test):
        raise ConfigError(f"{key}={num_examples} but the {dataset.name} test split has {len(dataset.x_test):,} "
                          f"images; set {key} to at most {len(dataset.x_test)}")


def subset_note(dataset, num_examples, key):
    """A one-line note when ``num_examples`` (config key ``key``) exceeds the test split, else None.

    For the sections whose value means "up to N" (Guo's ``eval.num_examples``: the paper
    variants' 10,000 is the whole split, the linear configs' 2,000 is cut to the pair's test
    images): the value is legitimate, but the run says how many images it measures.
    """
    if int(num_examples) <= len(dataset.x_test):
        return None
    return (f"note: {key}={num_examples} exceeds the {len(dataset.x_test):,}-image {dataset.name} test split; "
            f"all {len(dataset.x_test):,} are measured")


def build_model(model_cfg, dataset, seed, noise_cfg=None):
    """The zoo model a ``model`` section names for ``dataset``, with seeded initial weights.

    Args:
      model_cfg: the ``model`` section.
      dataset: a loaded ``tfsparse.data.Dataset`` (classes, input shape, mean/std).
      seed: seed of the initial weights.
      noise_cfg: an ``rsr`` section to build CNI/PNI layers (``noise``, ``noise_alpha``,
        ``inference_noise``; Rakin et al. 2019), or None for plain layers.
    """
    num_classes = num_outputs(model_cfg, dataset)
    keras.utils.set_random_seed(seed)
    mean, std = (dataset.mean, dataset.std) if model_cfg.normalization == "dataset" else (0.0, 1.0)
    layer_args = {"kernel_initializer": model_cfg.kernel_initializer}
    if noise_cfg is not None:
        layer_args.update(noise=noise_cfg.noise or None, noise_alpha=noise_cfg.noise_alpha,
                          inference_noise=noise_cfg.inference_noise, noise_sigma_rule=noise_cfg.noise_sigma_rule)
    return model_lib.get(model_cfg.name)(
        num_classes, dataset.input_shape, mean, std, width=model_cfg.width, layers=model_lib.Layers(**layer_args)
    )


def single_device_copy(model, model_cfg, dataset, seed, noise_cfg=None):
    """A float32 copy, outside any strategy, of a model trained under a strategy or mixed precision.

    Evaluation and export work on this copy: it has plain variables, so the chief can attack
    and save it alone (reading a synchronised variable of the distributed model, e.g. batch
    normalisation's moving statistics, is a collective every worker would have to join), and
    float32 layers. Call it on every worker, outside ``strategy.scope()`` and the
    mixed-precision policy: ``get_weights`` is that collective read.

    Args:
      model: the trained model (a :func:`tfsparse.training.float32_logits` wrapper allowed:
        it adds no weights).
      model_cfg, dataset, seed, noise_cfg: as given to :func:`build_model` for ``model``.
    """
    weights = model.get_weights()
    copy = build_model(model_cfg, dataset, seed, noise_cfg=noise_cfg)
    copy.set_weights(weights)
    return copy


# Pruning methods whose retraining holds the zeros with tfmot pruning wrappers (fp and ns
# retrain physically narrower plain models).
WRAPPED_METHODS = ("gup", "lup", "threshold")


def distribution(config, *sections, wrappers=False):
    """The ``tf.distribute`` setting of a run: ``(strategy, chief)`` (see :mod:`tfsparse.training.distribute`).

    Call it first, before any other TensorFlow work (``MultiWorkerMirroredStrategy``
    configures the process's collectives when it is made). Each train section named must
    have a global ``batch_size`` the replicas can share. ``wrappers``: the run trains models
    holding tfmot pruning wrappers, which ``multi_worker`` cannot do: their cross-replica
    mask and step updates hang in a collective until the workers' heartbeats time out
    (found with two localhost workers), so that pair is refused before any work.

    Returns:
      ``(strategy, chief)``: the strategy of ``config.distribute``, or None for ``none`` (the
      pipeline then runs exactly as without a strategy); ``chief`` is False on the workers
      of a multi-worker cluster that must not write the run directory.

    Raises:
      ConfigError: for a batch that is not a multiple of the replica count, ``multi_worker``
        with ``wrappers``, or an unusable ``distribute`` (see
        :func:`~tfsparse.training.strategy_from_config`).
    """
    if wrappers and config.distribute == "multi_worker":
        raise ConfigError("distribute=multi_worker cannot train tfmot's pruning wrappers (their cross-replica "
                          "updates hang across workers); use mirrored (every GPU of one machine) or none "
                          "(docs/SCALE.md)")
    strategy = strategy_from_config(config.distribute)
    for section in sections:
        per_replica_batch(config[section].batch_size, strategy, f"{section}.batch_size")
    return (None if config.distribute == "none" else strategy), is_chief(strategy)


def strategy_scope(strategy):
    """Where a pipeline builds, prunes and trains its models: ``strategy.scope()``, or no scope for None.

    Every variable of a model trained under a strategy (tfmot's masks and step included)
    must be made in here; evaluation and export run outside, on a copy with plain variables
    (:func:`tfsparse.sparsity.copy_model` made outside the scope, or :func:`single_device_copy`).
    """
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def train_section(config, section="train", **overrides):
    """A copy of a train section with the run-wide XLA switch resolved, plus overrides."""
    result = ml_collections.ConfigDict(config[section].to_dict())
    result.jit_compile = xla_setting(config.xla)
    for key, value in overrides.items():
        result[key] = value
    return result


def eval_subset(dataset, num_examples):
    """The first ``num_examples`` test images (deterministic, as RobustBench takes them)."""
    n = min(int(num_examples), len(dataset.x_test))
    return dataset.x_test[:n], dataset.y_test[:n]


# Guo et al. 2018 §4's four measures, by record key: r∞ is the accuracy under an l∞ attack at
# ε = eval.fgs_eps (FGS, or rFGS after Tramèr et al. 2018), r2 the mean l2 distance found by a
# minimal-perturbation attack (DeepFool, or Carlini & Wagner's L2 attack); eval.measures picks them.
MEASURES = ("r_inf", "r_inf_rfgs", "r2", "r2_cw")
MINIMAL_MEASURES = ("r2", "r2_cw")  # each reported with "<key>_failures" beside it


def parse_measures(text):
    """``eval.measures`` ("r_inf,r2_cw" or a sequence) as a tuple in the order given.

    Raises:
      ConfigError: for an empty list, an unknown name or a repeated one.
    """
    names = tuple(text) if isinstance(text, (tuple, list)) else tuple(
        part.strip() for part in (text or "").split(",") if part.strip())
    if not names:
        raise ConfigError(f"eval.measures is empty; name at least one of {','.join(MEASURES)}")
    unknown = [name for name in names if name not in MEASURES]
    if unknown:
        raise ConfigError(f"eval.measures: unknown {unknown}; choose from {','.join(MEASURES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"eval.measures names a measure twice: {','.join(names)}")
    return names


def guo_suite(eval_cfg, xla):
    """The attacks of ``eval.measures`` in order: ``{measure: attack}`` (Guo et al. 2018 §4).

    ``r_inf``: FGS at ``fgs_eps``; ``r_inf_rfgs``: rFGS at ``fgs_eps`` with a random step
    ``rfgs_alpha``·ε; ``r2``: DeepFool (``deepfool_*``); ``r2_cw``: C&W L2 (``cw_*``). The two
    r2 attacks are scored by the evaluator's failure rule. Building the suite checks every
    setting, so a pipeline calls it before any work.

    Raises:
      ConfigError: for bad ``measures`` or an attack parameter out of range.
    """
    jit = xla_setting(xla)
    eps = eval_cfg.fgs_eps
    makers = {
        "r_inf": lambda: attacks.FGSM(eps=eps, jit_compile=jit),
        "r_inf_rfgs": lambda: attacks.RFGSM(eps=eps, alpha=eval_cfg.rfgs_alpha * eps, jit_compile=jit),
        "r2": lambda: attacks.DeepFool(
            overshoot=eval_cfg.deepfool_overshoot, max_iter=eval_cfg.deepfool_max_iter, box=eval_cfg.deepfool_box,
            box_rule=eval_cfg.deepfool_box_rule, jit_compile=jit),
        "r2_cw": lambda: attacks.CarliniWagnerL2(
            confidence=eval_cfg.cw_confidence, initial_const=eval_cfg.cw_initial_const,
            binary_search_steps=eval_cfg.cw_binary_search_steps, steps=eval_cfg.cw_steps,
            learning_rate=eval_cfg.cw_learning_rate, jit_compile=jit),
    }
    suite = {}
    for measure in parse_measures(eval_cfg.measures):
        try:
            suite[measure] = makers[measure]()
        except ValueError as error:  # an attack parameter out of range: say which measure's
            raise ConfigError(f"eval settings of {measure}: {error}") from None
    return suite


def wang_suite(measure_cfg, eps, xla):
    """PGD-``pgd_steps`` (Wang et al. 2020: PGD-100) and, with ``autoattack``, AutoAttack at ``eps``
    (the training ε) from a ``measure`` section (configs/wang_mnist.py, wang_cifar.py)."""
    e, jit = measure_cfg, xla_setting(xla)
    suite = [attacks.PGD(eps=eps, step_size=e.pgd_step_size, steps=int(e.pgd_steps), restarts=int(e.pgd_restarts),
                         jit_compile=jit)]
    if e.autoattack:
        suite.append(attacks.AutoAttack(eps=eps, steps=int(e.autoattack_steps),
                                        n_target_classes=int(e.autoattack_target_classes),
                                        square_queries=int(e.autoattack_square_queries), jit_compile=jit))
    return suite


# Table columns (key, header, format) of the measures in a robustness_record (FGS and DeepFool;
# :func:`robustness_columns` gives those of any ``eval.measures``).
ROBUSTNESS_COLUMNS = [
    ("sparsity", "weight sparsity", "{:.4f}"),
    ("clean_accuracy", "clean accuracy", "{:.4f}"),
    ("r_inf", "r∞ (FGS)", "{:.4f}"),
    ("r2", "r2 (DeepFool)", "{:.4f}"),
]
# How each measure is named in tables and figures.
MEASURE_LABELS = {"r_inf": "r∞ (FGS)", "r_inf_rfgs": "r∞ (rFGS)", "r2": "r2 (DeepFool)", "r2_cw": "r2 (C&W)"}


def robustness_columns(measures):
    """Table columns of a robustness_record with ``measures``: sparsity, clean accuracy, each
    measure, and beside each r2 its failure count."""
    columns = ROBUSTNESS_COLUMNS[:2]
    for measure in measures:
        columns.append((measure, MEASURE_LABELS[measure], "{:.4f}"))
        if measure in MINIMAL_MEASURES:
            columns.append((f"{measure}_failures", "failures", "{:.1f}"))
    return columns


def robustness_record(model, dataset, config):
    """Clean accuracy (whole test split), weight sparsity and the ``eval.measures`` of a model.

    The measures (Guo et al. 2018 §4: r∞ by FGS / rFGS, eq. 1 and 5; r2 by DeepFool / C&W, with
    ``<key>_failures`` and the failure rule of :func:`tfsparse.metrics.robustness.minimal_distances`) come from
    :func:`tfsparse.evaluation.measure` on the first ``config.eval.num_examples`` test images.
    For a linear model (``model.name`` linear / linear_binary) the record also holds
    ``theory``: the Theorem 3.1 / 3.2 values of :func:`tfsparse.metrics.theory.linear_model_bounds`
    on the same images at ε = ``eval.fgs_eps``.
    """
    x_eval, y_eval = eval_subset(dataset, config.eval.num_examples)
    started = time.perf_counter()
    clean = metrics.clean_accuracy(model, dataset.x_test, dataset.y_test, batch_size=config.eval.batch_size)
    columns = []
    for measure, attack in guo_suite(config.eval, config.xla).items():
        columns += ([(measure, attack, "r2"), (f"{measure}_failures", attack, "failures")]
                    if measure in MINIMAL_MEASURES else [(measure, attack)])
    measured = evaluation.measure(model, x_eval, y_eval, columns, batch_size=config.eval.batch_size)
    stats = sparsity.weight_sparsity(model)
    record = {"sparsity": stats["overall"], "clean_accuracy": clean, **measured}
    record.update({
        "num_eval": len(x_eval),
        "eval_seconds": time.perf_counter() - started,
        "layer_sparsity": {name: v["sparsity"] for name, v in stats["layers"].items()},
    })
    if config.model.name in LINEAR_MODELS:
        record["theory"] = theory.linear_model_bounds(model, x_eval, y_eval, config.eval.fgs_eps)
    return record

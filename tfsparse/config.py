"""Config validation before any work starts (SPEC §11), and closed vocabularies.

Configs are ``ml_collections.ConfigDict`` objects built by the files in ``configs/``.
``validate`` checks every section present in a config and raises ``ConfigError`` with a
one-line message naming the key, the bad value, and what to change.
"""

XLA_CHOICES = ("auto", "on", "off")
LR_SCHEDULES = ("constant", "caffe_inv", "thirds", "cosine")
OPTIMIZERS = ("sgd", "adam")
DEEPFOOL_BOX_RULES = ("accumulate", "mask")
NORMALIZATIONS = ("dataset", "none")


class ConfigError(ValueError):
    """A config value is invalid; the message says which key and what to change."""


def xla_flag(value):
    """Maps the config's ``xla`` string (auto/on/off) to ``use_xla``'s argument."""
    if value not in XLA_CHOICES:
        raise ConfigError(f"xla must be one of {XLA_CHOICES}, got {value!r}")
    return {"auto": "auto", "on": True, "off": False}[value]


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


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def validate(config):
    """Checks a config in place of starting work with a bad one.

    Raises:
      ConfigError: on the first invalid value found.
    """
    from tfsparse import data as data_lib
    from tfsparse import models as model_lib

    if "data" in config:
        d = config.data
        _require(d.name in data_lib.DATASETS, f"data.name {d.name!r} is unknown; choose from {data_lib.DATASETS}")
        _require(d.num_train >= 0, f"data.num_train must be >= 0 (0 = all), got {d.num_train}")
        _require(d.num_test >= 0, f"data.num_test must be >= 0 (0 = all), got {d.num_test}")
        classes = parse_int_list(d.classes, "data.classes")
        _require(len(classes) != 1, "data.classes needs at least two classes, e.g. '1,7'")
    if "model" in config:
        m = config.model
        _require(m.name in model_lib.names(), f"model.name {m.name!r} is unknown; choose from {model_lib.names()}")
        _require(m.width > 0, f"model.width must be > 0, got {m.width}")
        _require(m.normalization in NORMALIZATIONS, f"model.normalization must be one of {NORMALIZATIONS}, got {m.normalization!r}")
    if "train" in config:
        validate_train(config.train, "train")
    if "xla" in config:
        xla_flag(config.xla)
    if "methods" in config:
        from tfsparse.experiments.wang import METHODS

        unknown = [m for m in config.methods if m not in METHODS]
        _require(not unknown, f"methods {unknown} unknown; choose from {METHODS}")
    if "method" in config:
        from tfsparse.sparsity.methods import METHODS

        _require(config.method in METHODS, f"method {config.method!r} is unknown; choose from {METHODS}")
    if "sparsity" in config:
        _require(0.0 <= config.sparsity < 1.0, f"sparsity must be in [0, 1), got {config.sparsity}")
    if "sparsities" in config:
        _require(all(0.0 <= p < 1.0 for p in config.sparsities), f"sparsities must be in [0, 1), got {config.sparsities}")
    if "prune" in config and "rounds" in config.prune:
        p = config.prune
        _require(p.rounds >= 1, f"prune.rounds must be >= 1, got {p.rounds}")
        _require(0.0 < p.rate < 1.0, f"prune.rate (fraction of remaining weights removed per round) must be in (0, 1), got {p.rate}")
    if "prune" in config and "retrain_steps" in config.prune:
        p = config.prune
        _require(p.retrain_steps >= 0, f"prune.retrain_steps must be >= 0, got {p.retrain_steps}")
        _require(p.retrain_learning_rate > 0, f"prune.retrain_learning_rate must be > 0, got {p.retrain_learning_rate}")
    if "eval" in config:
        e = config.eval
        _require(e.num_examples >= 1, f"eval.num_examples must be >= 1, got {e.num_examples}")
        _require(e.batch_size >= 1, f"eval.batch_size must be >= 1, got {e.batch_size}")
        _require(e.fgs_eps >= 0, f"eval.fgs_eps must be >= 0 (pixel units in [0, 1]), got {e.fgs_eps}")
        _require(e.deepfool_overshoot >= 0, f"eval.deepfool_overshoot must be >= 0, got {e.deepfool_overshoot}")
        _require(e.deepfool_max_iter >= 1, f"eval.deepfool_max_iter must be >= 1, got {e.deepfool_max_iter}")
        rule = e.get("deepfool_box_rule", "accumulate")
        _require(rule in DEEPFOOL_BOX_RULES, f"eval.deepfool_box_rule must be one of {DEEPFOOL_BOX_RULES}, got {rule!r}")
    if "seeds" in config:
        _require(len(config.seeds) >= 1, "seeds must list at least one seed, e.g. (0,)")
    return config


def validate_train(t, key="train"):
    """Checks one ``train`` section (``key`` names it in the message).

    Raises:
      ConfigError: naming the bad value.
    """
    _require(t.batch_size >= 1, f"{key}.batch_size must be >= 1, got {t.batch_size}")
    _require(t.learning_rate > 0, f"{key}.learning_rate must be > 0, got {t.learning_rate}")
    _require(0 <= t.momentum < 1, f"{key}.momentum must be in [0, 1), got {t.momentum}")
    _require(t.weight_decay >= 0, f"{key}.weight_decay must be >= 0, got {t.weight_decay}")
    _require(t.get("optimizer", "sgd") in OPTIMIZERS, f"{key}.optimizer {t.get('optimizer')!r} is unknown; choose from {OPTIMIZERS}")
    _require(t.lr_schedule in LR_SCHEDULES, f"{key}.lr_schedule {t.lr_schedule!r} is unknown; choose from {LR_SCHEDULES}")
    _require(t.steps >= 1 or t.epochs > 0, f"{key}: set steps >= 1 or epochs > 0")
    _require(t.epochs >= 0, f"{key}.epochs must be >= 0, got {t.epochs}")

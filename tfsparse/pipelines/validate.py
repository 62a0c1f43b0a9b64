"""Config validation before any work (SPEC §11): every section present is checked, top to bottom.

Configs are ``ml_collections.ConfigDict`` objects from the files in ``configs/``.
:func:`validate` raises :class:`~tfsparse.errors.ConfigError` with a one-line message
naming the key, the bad value and what to change. The closed word lists it checks
against live with the code that uses them (``attacks.DeepFool.BOX_RULES``,
``training.OPTIMIZERS``, ``training.LR_SCHEDULES``, ``training.STRATEGIES``,
``sparsity.METHODS``, ...); this module imports them, never the other way round.
"""

from tfsparse import data as data_lib
from tfsparse import models as model_lib
from tfsparse.attacks import DeepFool
from tfsparse.compat import XLA_CHOICES
from tfsparse.errors import ConfigError
from tfsparse.layers import SIGMA_RULES
from tfsparse.models.blocks import NOISE_MODES
from tfsparse.pipelines._build import NORMALIZATIONS
from tfsparse.pipelines._build import parse_int_list
from tfsparse.pipelines._build import parse_measures
from tfsparse.pipelines.export import parse_formats
from tfsparse.sanity import check_linf_eps
from tfsparse.sparsity import METHODS
from tfsparse.training import LR_SCHEDULES
from tfsparse.training import OPTIMIZERS
from tfsparse.training import STRATEGIES

TRAININGS = ("clean", "pgd", "rsr", "ibp", "crown_ibp", "gaussian")
CERTIFIED_TRAININGS = ("ibp", "crown_ibp")
# Wang et al.'s one-shot table compares these; "threshold" (RSR's γ) belongs to the RSR recipe.
TABLE_METHODS = tuple(m for m in METHODS if m != "threshold")
INITS = ("inherited", "reinit")


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def validate(config, allow_no_training=False):
    """Checks every section of ``config`` that is present; returns ``config``.

    ``allow_no_training`` admits a ``train`` section with no budget (prune without retraining).

    Raises:
      ConfigError: on the first invalid value found.
    """
    checks = (
        ("data", _data), ("model", _model), ("train", lambda c: validate_train(c.train, "train", allow_no_training)),
        ("xla", lambda c: _one_of(c.xla, XLA_CHOICES, "xla")),
        ("distribute", lambda c: _one_of(c.distribute, STRATEGIES, "distribute")), ("training", _training),
        ("methods", _methods), ("inits", _inits), ("method", _method), ("sparsity", _sparsity),
        ("sparsities", _sparsities), ("prune", _prune), ("eval", _eval), ("seeds", _seeds),
        ("search", _search), ("max_trials", _max_trials), ("export", _export), ("robustness", _robustness),
    )
    for key, check in checks:
        if key in config:
            check(config)
    return config


def _one_of(value, choices, key):
    _require(value in choices, f"{key} {value!r} is unknown; choose from {choices}")


def _data(config):
    d = config.data
    _one_of(d.name, data_lib.DATASETS, "data.name")
    _require(d.num_train >= 0, f"data.num_train must be >= 0 (0 = all), got {d.num_train}")
    _require(d.num_test >= 0, f"data.num_test must be >= 0 (0 = all), got {d.num_test}")
    classes = parse_int_list(d.classes, "data.classes")
    _require(len(classes) != 1, "data.classes needs at least two classes, e.g. '1,7'")


def _model(config):
    m = config.model
    _one_of(m.name, model_lib.names(), "model.name")
    _require(m.width > 0, f"model.width must be > 0, got {m.width}")
    _one_of(m.normalization, NORMALIZATIONS, "model.normalization")


def validate_train(t, key="train", allow_no_training=False):
    """Checks one train section; ``key`` names it in messages.

    The budget is ``steps`` (optimizer iterations) or ``epochs``: exactly one of them is
    positive, the other 0, so neither silently wins over the other. ``allow_no_training``
    admits both 0 (e.g. pruning without retraining).

    Raises:
      ConfigError: naming the bad value.
    """
    _require(t.batch_size >= 1, f"{key}.batch_size must be >= 1, got {t.batch_size}")
    _require(t.learning_rate > 0, f"{key}.learning_rate must be > 0, got {t.learning_rate}")
    _require(0 <= t.momentum < 1, f"{key}.momentum must be in [0, 1), got {t.momentum}")
    _require(t.weight_decay >= 0, f"{key}.weight_decay must be >= 0, got {t.weight_decay}")
    _one_of(t.optimizer, OPTIMIZERS, f"{key}.optimizer")
    _one_of(t.lr_schedule, LR_SCHEDULES, f"{key}.lr_schedule")
    _require(t.steps >= 0, f"{key}.steps must be >= 0, got {t.steps}")
    _require(t.epochs >= 0, f"{key}.epochs must be >= 0, got {t.epochs}")
    _require(not (t.steps > 0 and t.epochs > 0),
             f"{key}: set either steps ({t.steps}) or epochs ({t.epochs}), not both; set the other to 0")
    if not allow_no_training:
        _require(t.steps > 0 or t.epochs > 0, f"{key}: set steps >= 1 or epochs > 0")


def _training(config):
    _one_of(config.training, TRAININGS, "training")
    if config.training == "clean":
        return
    p = config.pgd
    check_linf_eps(p.eps, "pgd.eps")
    _require(p.step_size > 0, f"pgd.step_size must be > 0, got {p.step_size}")
    _require(p.steps >= 1, f"pgd.steps must be >= 1, got {p.steps}")
    _require(p.eval_steps >= 0, f"pgd.eval_steps must be >= 0, got {p.eval_steps}")
    _require(p.eval_examples >= 1, f"pgd.eval_examples must be >= 1, got {p.eval_examples}")
    _require(p.eps_warmup_epochs >= 0, f"pgd.eps_warmup_epochs must be >= 0, got {p.eps_warmup_epochs}")
    validate_train(config.adversarial_train, "adversarial_train")
    if config.training in CERTIFIED_TRAININGS:
        _certified(config.certified)
    if config.training == "gaussian":
        _smoothing(config.smoothing)
    if config.training != "rsr":
        return
    r = config.rsr
    _require(0 <= r.clean_weight <= 1, f"rsr.clean_weight must be in [0, 1], got {r.clean_weight}")
    _require(r.lasso >= 0, f"rsr.lasso must be >= 0, got {r.lasso}")
    _require((r.noise or None) in NOISE_MODES, f"rsr.noise must be 'channel' (CNI), 'layer' (PNI) or '' (none), got {r.noise!r}")
    _require(r.steps >= 1, f"rsr.steps (PGD steps of RSR training) must be >= 1, got {r.steps}")
    _require(r.gamma >= 0, f"rsr.gamma must be >= 0, got {r.gamma}")
    _require(0 <= r.target_sparsity < 1, f"rsr.target_sparsity must be in [0, 1), got {r.target_sparsity}")
    _require(r.eot_samples >= 1, f"rsr.eot_samples must be >= 1, got {r.eot_samples}")
    _one_of(r.noise_sigma_rule, SIGMA_RULES, "rsr.noise_sigma_rule")


def _certified(c):
    if c.train_eps:
        check_linf_eps(c.train_eps, "certified.train_eps")
    _one_of(c.norm, ("linf", "l2"), "certified.norm")
    for key in ("warmup_epochs", "ramp_epochs"):
        _require(c[key] >= 0, f"certified.{key} must be >= 0, got {c[key]}")
    for key in ("kappa_start", "kappa_end", "beta_start", "beta_end"):
        _require(0 <= c[key] <= 1, f"certified.{key} must be in [0, 1], got {c[key]}")


def _smoothing(c):
    _require(c.sigma > 0, f"smoothing.sigma (the noise scale, pixel units) must be > 0, got {c.sigma}")
    for key in ("n0", "n", "batch", "num_examples"):
        _require(c[key] >= 1, f"smoothing.{key} must be >= 1, got {c[key]}")
    _require(0 < c.alpha < 1, f"smoothing.alpha must be in (0, 1), got {c.alpha}")
    _require(len(c.radii) >= 1 and all(r >= 0 for r in c.radii),
             f"smoothing.radii must be one or more l2 radii >= 0, got {list(c.radii)}")


def _methods(config):
    unknown = [m for m in config.methods if m not in TABLE_METHODS]
    _require(not unknown, f"methods {unknown} unknown; choose from {TABLE_METHODS}")


def _inits(config):
    unknown = [i for i in config.inits if i not in INITS]
    _require(not unknown, f"inits {unknown} unknown; choose from {INITS}")


def _method(config):
    _one_of(config.method, METHODS, "method")


def _sparsity(config):
    _require(0.0 <= config.sparsity < 1.0, f"sparsity must be in [0, 1), got {config.sparsity}")


def _sparsities(config):
    _require(all(0.0 <= p < 1.0 for p in config.sparsities), f"sparsities must be in [0, 1), got {config.sparsities}")


def _prune(config):
    p = config.prune
    if "rounds" in p:
        _require(p.rounds >= 1, f"prune.rounds must be >= 1, got {p.rounds}")
        _require(0.0 < p.rate < 1.0,
                 f"prune.rate (fraction of remaining weights removed per round) must be in (0, 1), got {p.rate}")
    if "retrain_steps" in p:
        _require(p.retrain_steps >= 0, f"prune.retrain_steps must be >= 0, got {p.retrain_steps}")
        _require(p.retrain_learning_rate > 0, f"prune.retrain_learning_rate must be > 0, got {p.retrain_learning_rate}")
        _one_of(p.retrain_lr_schedule, LR_SCHEDULES, "prune.retrain_lr_schedule")
    if "ns_max_per_layer" in p:
        _require(0 < p.ns_max_per_layer <= 1, f"prune.ns_max_per_layer must be in (0, 1], got {p.ns_max_per_layer}")


def _eval(config):
    e = config.eval
    _require(e.num_examples >= 1, f"eval.num_examples must be >= 1, got {e.num_examples}")
    _require(e.batch_size >= 1, f"eval.batch_size must be >= 1, got {e.batch_size}")
    check_linf_eps(e.fgs_eps, "eval.fgs_eps")
    _require(e.deepfool_overshoot >= 0, f"eval.deepfool_overshoot must be >= 0, got {e.deepfool_overshoot}")
    _require(e.deepfool_max_iter >= 1, f"eval.deepfool_max_iter must be >= 1, got {e.deepfool_max_iter}")
    _require(e.deepfool_box_rule in DeepFool.BOX_RULES,
             f"eval.deepfool_box_rule must be one of {DeepFool.BOX_RULES}, got {e.deepfool_box_rule!r}")
    if "measures" in e:
        parse_measures(e.measures)


def _seeds(config):
    _require(len(config.seeds) >= 1, "seeds must list at least one seed, e.g. (0,)")


def _search(config):
    s = config.search
    _require(0 < s.lasso_min <= s.lasso_max, f"search: need 0 < lasso_min <= lasso_max, got {s.lasso_min}, {s.lasso_max}")
    _require(all(0 <= p < 1 for p in s.sparsities), f"search.sparsities must be in [0, 1), got {list(s.sparsities)}")
    _require(all(0 <= a <= 1 for a in s.clean_weights), f"search.clean_weights must be in [0, 1], got {list(s.clean_weights)}")
    _require(s.eval_examples >= 1, f"search.eval_examples must be >= 1, got {s.eval_examples}")
    _one_of(s.objective, ("constrained", "weighted"), "search.objective")
    weights = (s.weight_clean, s.weight_robust, s.weight_sparsity)
    _require(all(w >= 0 for w in weights) and sum(weights) > 0,
             f"search.weight_clean/robust/sparsity must be >= 0 and not all 0, got {weights}")
    _require(s.over_pruning_drop >= 0, f"search.over_pruning_drop must be >= 0, got {s.over_pruning_drop}")


def _max_trials(config):
    _require(config.max_trials >= 1, f"max_trials must be >= 1, got {config.max_trials}")


def _export(config):
    e = config.export
    parse_formats(e.formats)
    _one_of(e.inference_noise, ("off", "on"), "export.inference_noise")
    _require(e.representative_examples >= 1, f"export.representative_examples must be >= 1, got {e.representative_examples}")
    _require(e.check_examples >= 1, f"export.check_examples must be >= 1, got {e.check_examples}")
    _require(e.latency_runs >= 1, f"export.latency_runs must be >= 1, got {e.latency_runs}")
    _require(e.threads >= 1, f"export.threads must be >= 1, got {e.threads}")


def _robustness(config):
    r = config.robustness
    _require(r.num_examples >= 1, f"robustness.num_examples must be >= 1, got {r.num_examples}")
    check_linf_eps(r.eps, "robustness.eps")
    _require(r.pgd_steps >= 1, f"robustness.pgd_steps must be >= 1, got {r.pgd_steps}")
    _require(r.pgd_step_size > 0, f"robustness.pgd_step_size must be > 0, got {r.pgd_step_size}")
    _require(r.square_queries >= 1, f"robustness.square_queries must be >= 1, got {r.square_queries}")
    _require(0 < r.square_p_init <= 1, f"robustness.square_p_init must be in (0, 1], got {r.square_p_init}")
    _require(0 < r.confidence < 1, f"robustness.confidence must be in (0, 1), got {r.confidence}")
    _require(r.batch_size >= 1, f"robustness.batch_size must be >= 1, got {r.batch_size}")

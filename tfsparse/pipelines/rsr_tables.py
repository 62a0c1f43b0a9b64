"""RSR's tables (Rakin et al. 2019) as engine declarations: Tables 1, 2, 5 (white box) and 3 (black box).

Every table is a grid of trained models (:mod:`tfsparse.pipelines.rsr_models`), each measured in
one or more *settings*:

* a **scheme** (RSR Table 1's rows) is the RSR recipe of :mod:`tfsparse.pipelines.rsr` with
  parts switched off — ``pgd`` (neither CNI nor lasso), ``cni`` (CNI, λ = 0), ``lasso`` (λ, no
  noise), ``rsr`` (both). All four train with the same ensemble loss (eq. 5, ``a =
  rsr.clean_weight``), the same PGD-``rsr.steps`` from ``rsr.random_start`` and the same
  budget, so CNI and lasso are the only differences between rows (the PGD baseline is
  therefore He et al.'s "vanilla" a = 0.5 adversarial training, as in the PNI paper RSR
  compares with, not Madry's a = 0);
* a **stage**: ``before`` pruning, or ``after`` threshold pruning (RSR §3.4,
  :func:`tfsparse.pipelines.rsr.threshold`) at the γ that gives ``table.sparsities`` (one
  per width) *in that model*, so every scheme is pruned to the same sparsity — the paper's
  "prune each of the four training cases by equal amount", whose PGD row is the missing
  control "PGD training, then γ";
* for models with noise layers: the **σ rule** of eq. 4 (``table.sigma_rules``, after
  pruning only: the variance of the full kernel, the paper's, or of its non-zero entries)
  and the **inference noise** (``table.inference_noise``: on / off, RSR Table 5);
* a **width** (``table.widths``, RSR Table 2).

White-box settings (kinds ``rsr_table1``, ``rsr_width``, ``rsr_noise``) record clean
accuracy (whole test split), and on the first ``table.num_examples`` test images FGSM, PGD
(``pgd.eval_steps`` steps from x, RSR eq. 2), EOT-PGD (``rsr.eot_samples`` draws per step;
noisy models only — on a deterministic model it equals PGD) and AutoAttack
(``autoattack.version``, ``rand`` for random models; one draw per gradient on deterministic
models, where more draws average identical gradients) accuracy, their per-sample worst case
and weight sparsity (:func:`tfsparse.evaluation.measure`). Black-box settings (kind
``rsr_blackbox``, RSR Table 3) record ZOO's success rate on ``zoo.num_examples`` seeded random
test images, counted both ways (:func:`tfsparse.evaluation.black_box_columns`: over the correctly
classified samples, Chen et al.'s count, and over all attacked test samples, RSR's), and the
accuracy under PGD examples transferred from each source model of ``transfer.sources``, beside
the white-box PGD accuracy; every attack queries the target as deployed (RSR's with its
inference noise on, as the paper's were).

Each kind is an :class:`~tfsparse.pipelines.engine.Experiment` (:data:`TABLES`) whose unit is one
setting of one seed; ``--resume`` continues with the first missing one, reusing the kept weights
of every trained scheme and width. A complete run holds ``results.csv``, ``results.md``
(:func:`report_section`: mean ± 95 % CI over seeds, Student t) and ``results.png``.
"""

import functools
import os
import time

from tfsparse import plotting
from tfsparse import reporting
from tfsparse import results
from tfsparse.attacks.autoattack import VERSIONS as AUTOATTACK_RAW_VERSIONS
from tfsparse.errors import ConfigError
from tfsparse.layers import SIGMA_RULES
from tfsparse.layers import set_inference_noise
from tfsparse.pipelines import engine
from tfsparse.pipelines import rsr_models
from tfsparse.pipelines.rsr_models import SCHEMES
from tfsparse.sparsity import weight_sparsity


STAGES = ("before", "after")
NOISE_SETTINGS = ("on", "off")
WHITE_BOX = ("rsr_table1", "rsr_width", "rsr_noise")
BLACK_BOX = "rsr_blackbox"
SOURCE_TRAININGS = ("clean", "pgd")
AUTOATTACK_VERSIONS = ("off",) + AUTOATTACK_RAW_VERSIONS
# Fields that identify one record (one setting of one seed).
ROW_FIELDS = ("seed", "width", "scheme", "stage", "sigma_rule", "inference_noise")
WHITE_BOX_MEASURES = ["sparsity", "clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "eot_pgd_accuracy",
                      "autoattack_accuracy", "worst_case_accuracy", "gamma", "params_remaining"]
BLACK_BOX_MEASURES = ["sparsity", "clean_accuracy", "pgd_accuracy", "zoo_success_over_correct",
                      "zoo_success_over_samples", "zoo_mean_l2"]


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def check_config(config, kind=None):
    """Checks the table sections (``table``, ``autoattack``, ``zoo``, ``transfer``) before any work.

    ``kind``: the table the config runs as (its ``experiment`` must name it), or None for any.

    Raises:
      ConfigError: naming the key, the bad value and what to change.
    """
    _require(config.experiment in WHITE_BOX + (BLACK_BOX,),
             f"experiment {config.experiment!r} is not an RSR table; choose from {WHITE_BOX + (BLACK_BOX,)}")
    _require(kind in (None, config.experiment), f"experiment {config.experiment!r} cannot run as {kind!r}")
    t = config.table
    _require(t.schemes and all(s in SCHEMES for s in t.schemes),
             f"table.schemes {list(t.schemes)}: choose from {tuple(SCHEMES)}")
    _require(t.stages and all(s in STAGES for s in t.stages), f"table.stages {list(t.stages)}: choose from {STAGES}")
    _require(t.widths and all(w > 0 for w in t.widths), f"table.widths must be > 0, got {list(t.widths)}")
    _require(len(t.sparsities) == len(t.widths),
             f"table.sparsities needs one target per width ({len(t.widths)}), got {list(t.sparsities)}")
    _require(all(0 < s < 1 for s in t.sparsities), f"table.sparsities must be in (0, 1), got {list(t.sparsities)}")
    _require(t.sigma_rules and all(r in SIGMA_RULES for r in t.sigma_rules),
             f"table.sigma_rules {list(t.sigma_rules)}: choose from {SIGMA_RULES}")
    _require(t.inference_noise and all(n in NOISE_SETTINGS for n in t.inference_noise),
             f"table.inference_noise {list(t.inference_noise)}: choose from {NOISE_SETTINGS}")
    _require(t.num_examples >= 1, f"table.num_examples must be >= 1, got {t.num_examples}")
    _require(t.batch_size >= 1, f"table.batch_size must be >= 1, got {t.batch_size}")
    _require(config.pgd.eval_steps >= 1, f"pgd.eval_steps must be >= 1 for a table, got {config.pgd.eval_steps}")
    if config.experiment in WHITE_BOX:
        a = config.autoattack
        _require(a.version in AUTOATTACK_VERSIONS,
                 f"autoattack.version {a.version!r}: choose from {AUTOATTACK_VERSIONS}")
        _require(a.steps >= 1 and a.eot_samples >= 1,
                 f"autoattack.steps and autoattack.eot_samples must be >= 1, got {a.steps}, {a.eot_samples}")
        return
    _require(config.zoo.num_examples >= 1, f"zoo.num_examples must be >= 1, got {config.zoo.num_examples}")
    try:
        rsr_models.zoo_attack(config)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"zoo: {error}") from None
    for name, source in config.transfer.sources.items():
        _require(source.training in SOURCE_TRAININGS,
                 f"transfer.sources.{name}.training {source.training!r}: choose from {SOURCE_TRAININGS}")
        _require(not source.path or os.path.exists(source.path),
                 f"transfer.sources.{name}.path {source.path} does not exist; give a saved Keras model or ''")


def _settings(config, scheme, stage):
    """``(sigma_rule, inference_noise)`` pairs measured for one scheme at one stage (None: no noise layers)."""
    if not (SCHEMES[scheme][0] and config.rsr.noise):  # no noise layers
        return [(None, None)]
    rules = tuple(config.table.sigma_rules) if stage == "after" else (config.rsr.noise_sigma_rule,)
    return [(rule, noise) for rule in rules for noise in config.table.inference_noise]


def label(record):
    """A record's setting as a readable label (seed left out): the aggregation key and the unit's name."""
    parts = [f"w={record['width']:g}", record["scheme"], record["stage"]]
    parts += [f"σ {record['sigma_rule']}"] if record.get("sigma_rule") else []
    parts += [f"noise {record['inference_noise']}"] if record.get("inference_noise") else []
    return " ".join(parts)


def units(config, seed):
    """The settings of one seed in table order: width × scheme × stage × (σ rule, inference noise)."""
    return [engine.Unit(label(fields), fields) for width in config.table.widths for scheme in config.table.schemes
            for stage in config.table.stages for rule, noise in _settings(config, scheme, stage)
            for fields in [dict(zip(ROW_FIELDS, (int(seed), float(width), scheme, stage, rule, noise)))]]


def run_unit(work, unit):
    """One setting of one seed: its model (trained once per scheme and width) at its stage, σ rule and noise."""
    f, config = unit.fields, work.config
    target = dict(zip(map(float, config.table.widths), config.table.sparsities))[f["width"]]
    shared = {"sources": rsr_models.sources(work)} if config.experiment == BLACK_BOX else {}
    previous = (work.run.previous or {}).get("records", [])
    prune = any(u.fields["stage"] == "after" and not u.done_in(previous) for u in units(config, work.seed)
                if (u.fields["width"], u.fields["scheme"]) == (f["width"], f["scheme"]))
    staged, cfg = work.staged(f["width"], f["scheme"], target, prune)
    variant, gamma = staged[f["stage"]]
    if f["sigma_rule"] is not None:
        variant = rsr_models.with_sigma_rule(variant, cfg, work.dataset, work.seed, f["sigma_rule"])
        set_inference_noise(variant, f["inference_noise"] == "on")
    stats = weight_sparsity(variant)
    size, nonzero = stats["size"], stats["size"] - stats["zeros"]
    started = time.perf_counter()
    record = {"gamma": gamma, "target_sparsity": target if f["stage"] == "after" else 0.0,
              "sparsity": 1.0 - nonzero / size, "prunable_params": size, "nonzero_params": nonzero}
    measure = rsr_models.blackbox_measures if config.experiment == BLACK_BOX else rsr_models.whitebox_measures
    record.update(measure(variant, work.dataset, config, shared))
    record["eval_seconds"] = time.perf_counter() - started
    record["label"] = unit.name
    return record


# Table columns per kind: (key, header, format).
_SETTING_COLUMNS = {
    "rsr_table1": [("scheme", "scheme", "{}"), ("stage", "pruning", "{}"), ("sigma_rule", "σ rule", "{}"),
                   ("inference_noise", "inference noise", "{}")],
    "rsr_width": [("width", "width", "{:g}"), ("scheme", "scheme", "{}"), ("stage", "pruning", "{}"),
                  ("params_remaining", "params vs widest (%)", "{:.2f}")],
    "rsr_noise": [("scheme", "scheme", "{}"), ("stage", "pruning", "{}"), ("inference_noise", "inference noise", "{}")],
    "rsr_blackbox": [("scheme", "scheme", "{}"), ("stage", "pruning", "{}")],
}
_WHITE_BOX_COLUMNS = [("sparsity", "weight sparsity", "{:.4f}"), ("clean_accuracy", "clean", "{:.4f}"),
                      ("fgsm_accuracy", "FGSM", "{:.4f}"), ("pgd_accuracy", "PGD", "{:.4f}"),
                      ("eot_pgd_accuracy", "EOT-PGD", "{:.4f}"), ("autoattack_accuracy", "AutoAttack", "{:.4f}"),
                      ("worst_case_accuracy", "worst case", "{:.4f}"), ("n", "seeds", "{:d}")]
_BLACK_BOX_COLUMNS = [("sparsity", "weight sparsity", "{:.4f}"), ("clean_accuracy", "clean", "{:.4f}"),
                      ("pgd_accuracy", "white-box PGD", "{:.4f}"),
                      ("zoo_success_over_samples", "ZOO success / test samples (RSR)", "{:.4f}"),
                      ("zoo_success_over_correct", "ZOO success / correct (Chen)", "{:.4f}"),
                      ("zoo_mean_l2", "ZOO mean l2 (seeds with a flip)", "{:.3f}")]
# Bars of each kind's figure: (key, legend).
_FIGURE_MEASURES = {
    "white": [("clean_accuracy", "clean"), ("pgd_accuracy", "PGD"), ("eot_pgd_accuracy", "EOT-PGD"),
              ("autoattack_accuracy", "AutoAttack"), ("sparsity", "weight sparsity")],
    "black": [("clean_accuracy", "clean"), ("pgd_accuracy", "white-box PGD"), ("zoo_success_over_samples",
              "ZOO success / samples"), ("zoo_success_over_correct", "ZOO success / correct")]}



# NaN when undefined in a seed: ZOO's mean l2 (nothing flipped), its rate over correct samples (none correct).
_UNDEFINED_WHEN_NAN = ("zoo_mean_l2", "zoo_success_over_correct")


def summary_rows(kind, records):
    """Records aggregated over seeds per setting (mean, std, 95 % CI), with the setting's fields kept."""
    widest = {}
    for r in records:
        widest[r["seed"]] = max(widest.get(r["seed"], 0), r["prunable_params"])
    records = [dict(r, params_remaining=100.0 * r["nonzero_params"] / widest[r["seed"]]) for r in records]
    keys = WHITE_BOX_MEASURES if kind in WHITE_BOX else BLACK_BOX_MEASURES + sorted(
        {k for r in records for k in r if k.startswith("transfer_")})
    rows = reporting.aggregate_in_order(records, "label", keys, keep=ROW_FIELDS[1:], nan_undefined=_UNDEFINED_WHEN_NAN)
    for row in rows:
        row["row"] = row["label"].replace(" ", "\n", 2)  # the figure's tick label
    return rows


def _title(kind, config, records):
    pgd, table = config["pgd"], config["table"]
    seeds = sorted({r["seed"] for r in records})
    start = "random start" if pgd["eval_random_start"] else "start at x"
    what = {"rsr_table1": "RSR Table 1: PGD / CNI / Lasso / RSR before and after threshold pruning at equal sparsity",
            "rsr_width": "RSR Table 2: width ablation", "rsr_noise": "RSR Table 5: inference noise on / off",
            "rsr_blackbox": "RSR Table 3: black-box attacks"}[kind]
    text = (f"{what} — {config['model']['name']} on {config['data']['name']}, {len(seeds)} seed(s) "
            f"(mean ± 95 % CI over seeds); PGD-{pgd['eval_steps']} at ε = {pgd['eps']:.4g}, step "
            f"{pgd['step_size']:.4g}, {start}, on the first {table['num_examples']} test images; clean accuracy on "
            f"the whole test split; after-pruning rows at target sparsity "
            f"{', '.join(f'{s:g}' for s in table['sparsities'])}.")
    if kind == BLACK_BOX:
        sources = ", ".join(f"{name} ({s['path'] or s['model'] + ' ' + s['training']})"
                            for name, s in config["transfer"]["sources"].items())
        text += (f" ZOO on {config['zoo']['num_examples']} seeded random test images; transfer: PGD crafted on "
                 f"{sources}, accuracy of the target.")
    return text


def _section(kind, config, records, figure, draw=True):
    """The markdown of one table (its figure at ``figure``, drawn unless ``draw`` is False)."""
    rows = summary_rows(kind, records)
    if kind == BLACK_BOX:
        transfer = sorted({k for r in records for k in r if k.startswith("transfer_")})
        columns = _SETTING_COLUMNS[kind] + _BLACK_BOX_COLUMNS + [
            (k, f"transfer from {k[len('transfer_'):]}", "{:.4f}") for k in transfer] + [("n", "seeds", "{:d}")]
        measures = _FIGURE_MEASURES["black"] + [(k, f"transfer {k[len('transfer_'):]}") for k in transfer]
    else:
        columns = _SETTING_COLUMNS[kind] + _WHITE_BOX_COLUMNS
        measures = _FIGURE_MEASURES["white"]
    title = _title(kind, config, records)
    if draw:
        plotting.plot_accuracy_by_row(rows, figure, measures, title=f"{config['model']['name']}: {kind}")
    return (f"### {title}\n\n" + reporting.markdown_table(rows, columns)
            + f"\n![{kind}]({figure})\n")


def write_outputs(run_dir):
    """``results.csv`` (the records but their attack reprs and flags), ``results.md`` (its table) and the figure."""
    _, state, config = engine.read_run(run_dir)
    results.write_csv(os.path.join(run_dir, "results.csv"),
                      [{k: v for k, v in r.items() if k not in ("attacks", "flags")} for r in state["records"]])
    text = _section(state["pipeline"], config, state["records"], os.path.join(run_dir, "results.png"), draw=False)
    results.atomic_write_text(os.path.join(run_dir, "results.md"), text)
    figures(run_dir)


def figures(run_dir):
    """``results.png``: every setting's measures as bars (mean ± 95 % CI over seeds), from the run's files."""
    _, state, config = engine.read_run(run_dir)
    _section(state["pipeline"], config, state["records"], os.path.join(run_dir, "results.png"))
    return [os.path.join(run_dir, "results.png")]


def report_section(run_dirs):
    """The markdown of RSR table runs: one table (mean ± 95 % CI over every seed found) per kind and model.

    Runs of one kind, model, dataset and config variant are pooled (:func:`~tfsparse.pipelines.engine.pool`:
    seeds run in separate directories; a seed found in two is refused); each block's figure is
    written beside the first run's results as ``report.png``.
    """
    sections = []
    for runs in engine.group_runs(run_dirs, kinds=tuple(TABLES)):
        first_dir, state, config = engine.pool(runs)
        if not state["records"]:
            raise ConfigError(f"{first_dir} holds no completed RSR table row yet; run or --resume it first")
        sections.append(_section(state["pipeline"], config, state["records"], os.path.join(first_dir, "report.png")))
    return "\n".join(sections)


def _declaration(kind):
    return engine.Experiment(
        kind=kind, units=units, run_unit=run_unit, write_outputs=write_outputs, figures=figures, report=report_section,
        describe=lambda r, config: f"seed {r['seed']} {r['label']}: " + ", ".join(
            f"{k} {r[k]:.4f}" for k in ("sparsity", "clean_accuracy", "pgd_accuracy")),
        check=functools.partial(check_config, kind=kind), work=rsr_models.TableWork,
        facts=lambda config, dataset: {"experiment": kind, "model": config.model.name, "dataset": config.data.name})


# One declaration per kind (pipelines.EXPERIMENTS names them); a config runs as its own ``experiment``.
TABLES = {kind: _declaration(kind) for kind in WHITE_BOX + (BLACK_BOX,)}
TABLE1, WIDTH, NOISE, BLACKBOX = (TABLES[kind] for kind in WHITE_BOX + (BLACK_BOX,))

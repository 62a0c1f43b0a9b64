"""Shared plumbing of the absl scripts: help, config flags, exit codes and signals (SPEC §10).

The contract every script keeps:

* exit 0: done (also ``--help``, ``--print_config``, and ``--resume`` of a complete run);
* exit 1: a failure during the work itself (a traceback is printed);
* exit 2: bad usage — a bad flag or ``--config.*`` key, a config file that is missing or
  does not load, an invalid value, bad data, a taken or unwritable output — reported as
  one line ``error: …`` saying what to change, before any work and with nothing written;
* exit 130 / 143: interrupted by Ctrl-C / SIGTERM: one line, the run directory records
  ``status: interrupted`` and keeps its partial results (``--resume`` continues); a script
  without ``--resume`` (evaluate, export) has written nothing. A SIGTERM that TensorFlow's
  C++ code turned into another error (or swallowed) still ends the script this way
  (:func:`tfsparse.errors.request_stop`).

``--help`` is answered before TensorFlow is imported. This module sits on top of the
pipelines (scripts → cli → pipelines); nothing in the library imports it.
"""

import ast
import contextlib
import math
import os
import re
import signal
import sys
import tempfile

from absl import app
from absl import logging as absl_logging
from absl import flags

from tfsparse import errors
from tfsparse.errors import Interrupted
from tfsparse.errors import UsageError
from tfsparse.launch import HELP_FLAGS

_PRINT_CONFIG = flags.DEFINE_bool("print_config", False, "Print the resolved config (after all overrides) and exit.")
_CONFIG_FILES = {}  # flag name -> default config file, for --help
_CONFIG_EXAMPLES = {}  # flag name -> an example KEY=VALUE of that file, for --help
_CONFIG_EXPERIMENTS = {}  # flag name -> the experiments its script runs (None: as its default config)


def _usage_exit(message):
    sys.stderr.write(f"error: {message}\nTry --help for the list of flags.\n")
    sys.exit(2)


def _last_line(error):
    # Config-file errors arrive with the whole traceback in the message: keep its last line.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = (lines[-1] if lines else type(error).__name__).strip('"')
    return re.sub(r"^\w+(Error|Exception): ", "", last)


class _ListParser(flags.ArgumentParser):
    """Parses a ``--config.KEY=VALUE`` override of a list-valued key, as ml_collections parses tuples.

    ml_collections overrides tuples (``--config.seeds='(0,1)'``) but refuses list-valued keys
    outright ("Type list ... is not supported for overriding"), so the syntax the configs'
    docs advise, ``--config.search.sparsities='(0.3, 0.5)'``, failed on the keys that are
    lists. Accepted: a Python literal (``(0.3, 0.5)``, ``[0.3, 0.5]``, ``0.3``) or comma-separated
    words (``gup,fp``); the result is a list.
    """

    def parse(self, argument):
        if isinstance(argument, (list, tuple)):
            return list(argument)
        try:
            value = ast.literal_eval(argument)
        except (SyntaxError, ValueError):
            value = [part.strip() for part in argument.strip("()[] ").split(",") if part.strip()]
            value = [_literal(part) for part in value]
        return list(value) if isinstance(value, (list, tuple)) else [value]

    def flag_type(self):
        return "list"


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return text


def parse_number(text):
    """A float from a decimal (``0.031``, ``1e-3``) or a fraction (``8/255``), as ε and steps are written.

    The one parser of every ε/step flag (:func:`define_number`) and of every float
    ``--config.KEY=VALUE`` override, so ``--eps=8/255`` and ``--config.pgd.step_size=2/255``
    both work. Raises ``ValueError`` (absl's one-line flag error) on anything else.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    numerator, slash, denominator = str(text).partition("/")
    if not slash:
        return float(text)  # its error is absl's usual "could not convert string to float: ..."
    try:
        return float(numerator) / float(denominator)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"could not convert string to float: {text!r} (write a decimal such as 0.031 "
                         "or a fraction such as 8/255)") from None


class _NumberParser(flags.FloatParser):
    """absl's float parser (bounds, help) reading its values with :func:`parse_number`."""

    def convert(self, argument):
        return parse_number(argument)


def define_number(name, default, help_text, **bounds):
    """A float flag that also takes a fraction (``--eps=8/255``); ``bounds``: lower_bound, upper_bound."""
    return flags.DEFINE(_NumberParser(**bounds), name, default, help_text, serializer=flags.ArgumentSerializer())


# Flags defined through this module's helpers (define_number) belong to the script calling them.
flags.disclaim_key_flags()


def define_config_file(name, default, help_text, example="eval.num_examples=500", experiments=None):
    """``config_flags.DEFINE_config_file`` with bad overrides reported as usage errors.

    ml_collections applies ``--config.*`` overrides from ``sys.argv`` while the flag is
    defined (at import of the script) when it can, so errors are caught here as well as
    at parse time. ``example``: a ``KEY=VALUE`` of the file that ``--help`` shows.
    ``experiments``: the ``experiment`` names a given ``--config`` may hold (experiment.py: all);
    None: the default config's kind (:func:`_check_config_kind`).
    """
    from ml_collections import config_flags

    _CONFIG_FILES[name] = default
    _CONFIG_EXAMPLES[name] = example
    _CONFIG_EXPERIMENTS[name] = experiments
    config_flags.register_flag_parser_for_type(list, _ListParser())
    config_flags.register_flag_parser_for_type(float, _NumberParser())  # --config.pgd.eps=8/255
    try:
        return config_flags.DEFINE_config_file(name, default, help_text, lock_config=True)
    except Exception as error:  # noqa: BLE001  (a config file can fail in any way: all are bad usage)
        _config_error(error)


def _config_error(error):
    message = _last_line(error)
    if isinstance(error, AttributeError) and "get_config" in message:
        message = ("the config file defines no get_config(); add def get_config(arg=None) returning an "
                   "ml_collections.ConfigDict (as configs/train.py does), or check the --config path")
    elif isinstance(error, (AttributeError, KeyError)):
        message = f"unknown config key {message}; check the key against the config file"
    elif isinstance(error, (OSError, ImportError)) or "No such file" in message or "does not exist" in message:
        message = f"could not load the config file: {message}; check the --config path"
    elif isinstance(error, SyntaxError):
        message = f"the config file has a syntax error: {error.msg} (line {error.lineno}); fix the file"
    _usage_exit(message)


def override(config, pairs):
    """Applies a script's convenience flags: ``(value, section, key)``; None = flag not given."""
    with config.unlocked():
        for value, section, key in pairs:
            if value is not None:
                section[key] = value
    return config


def apply_flags(config, keys):
    """Puts a script's flags that mirror config keys into ``config``: ``(flag_holder, key)`` pairs.

    For a script whose flags read their defaults from its config file: a flag given on the
    command line overrides its key; one not given leaves the file's value (and ``--config.KEY``
    overrides) alone, and only fills a key that a user's own config file lacks.
    """
    with config.unlocked():
        for holder, key in keys:
            if holder.present or key not in config:
                config[key] = holder.value
    return config


def resolved_config(config_flag, pairs=(), **validate_args):
    """The config of a run: the file, ``--config.*`` and the script's flags, validated.

    With ``--print_config`` the resolved config is printed and the script exits 0.

    Raises:
      tfsparse.errors.ConfigError: on an invalid value (exit 2 through :func:`run`).
    """
    from tfsparse.pipelines.validate import validate

    config = override(config_flag.value, pairs)
    validate(config, **validate_args)
    if _PRINT_CONFIG.value:
        print(config)
        sys.exit(0)
    return config


def _help(argv):
    """Prints the script's docstring and every flag with its default; exits 0."""
    main = sys.modules["__main__"]
    print((main.__doc__ or "").strip() + "\n")
    by_module = flags.FLAGS.flags_by_module_dict()
    shown = []
    for module, module_flags in by_module.items():
        if module.endswith(argv[0].split("/")[-1]) or module == __name__:
            shown.extend(module_flags)
    print("Flags:")
    for flag in sorted(shown, key=lambda f: f.name):
        default = flag.default_as_str if flag.name not in _CONFIG_FILES else repr(_CONFIG_FILES[flag.name])
        print(f"  --{flag.name}: {flag.help}\n    (default: {default})")
    for name, path in _CONFIG_FILES.items():
        print(f"\nConfig keys: every key of {path} (see its docstring for variants, FILE:VARIANT)\n"
              f"can be set with --{name}.KEY=VALUE, e.g. --{name}.{_example(name)};\n"
              f"--print_config shows them all, resolved, and exits.")
    sys.exit(0)


def _example(name):
    """The script's example override if its key is in the loaded config, else the config's first number key.

    So the footer never suggests a key the file lacks (``eval.num_examples`` is no key of
    configs/export.py), whichever ``--config=FILE`` is given.
    """
    example = _CONFIG_EXAMPLES[name]
    try:
        config = flags.FLAGS[name].value  # loaded when the flag was defined
        leaves = dict(_number_leaves(config))
    except Exception:  # noqa: BLE001  (a config that does not load: its error comes at parse time)
        return example
    if example.split("=")[0] in leaves or not leaves:
        return example
    key, value = next(iter(leaves.items()))
    return f"{key}={value!r}"


def _number_leaves(config, prefix=""):
    for key, value in config.items():
        if hasattr(value, "items"):
            yield from _number_leaves(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


def _check_config_kind(name):
    """Refuses a ``--config`` file of another script's kind, before any work (issue 30, item 8).

    A config of the wrong kind (``experiment.py --config=configs/train.py``) used to fail on
    the first missing key deep inside a pipeline, with a traceback. The kind of a config is its
    ``experiment`` key when it has one (which the script must run: the default config's, or
    ``experiments`` of :func:`define_config_file`), else its sections (the ``ConfigDict`` keys),
    of which it must hold every one the script's default config has; more keys are fine (a
    user's copy with additions).
    """
    flag = flags.FLAGS[name]
    if not flag.present:
        return
    script = os.path.basename(sys.argv[0])
    default_path = _CONFIG_FILES[name]
    relative = os.path.relpath(default_path)
    default_path = relative if not relative.startswith("..") else default_path  # as the user would type it
    given, default = flag.value, flag.parser.parse(default_path)
    shown = flag.config_filename
    accepted = _CONFIG_EXPERIMENTS[name] or ((default.experiment,) if "experiment" in default else None)
    if accepted is not None:
        if "experiment" not in given:
            _usage_exit(f"--{name}={shown} is no experiment config (it has no 'experiment' key); {script} runs "
                        f"a config naming one of {', '.join(sorted(accepted))}, e.g. --{name}={default_path}")
        if given.experiment not in accepted:
            _usage_exit(f"--{name}={shown} is a config of the experiment {given.experiment!r}; {script} runs only "
                        f"{', '.join(sorted(accepted))}" + ("" if script == "experiment.py" else
                                                           " (run it with scripts/experiment.py)"))
        return
    if "experiment" in given:
        _usage_exit(f"--{name}={shown} is the config of the experiment {given.experiment!r}, not of {script}; "
                    f"run it with scripts/experiment.py, or pass --{name}={default_path.split(':')[0]}[:VARIANT]")
    missing = [key for key, value in default.items() if hasattr(value, "items") and key not in given]
    if missing:
        _usage_exit(f"--{name}={shown} is not a config of {script}: it lacks the sections {missing} of "
                    f"{default_path.split(':')[0]}; pass that file[:VARIANT] or a copy of it")


def _check_overrides(name):
    """Refuses a ``--config.KEY=VALUE`` whose value is not of the kind the config file holds there.

    ml_collections checks a scalar override's type (an int key refuses ``abc``) but takes any
    literal for a tuple key (``--config.seeds=abc`` became ``('abc',)`` and failed in the run's
    engine, a traceback after the run directory was made) and any float, ``inf`` and ``nan``
    included (an infinite learning rate trains to NaN). So each element of a tuple or list
    must have the type of the file's elements there (an int is a float), and every number
    must be finite. A key whose file value is empty or None says nothing of its type; the
    validation of the config checks those.
    """
    flag = flags.FLAGS[name]
    overrides = flag.override_values
    if not overrides:
        return
    original = flag.parser.parse(flag.config_filename)
    for path, value in overrides.items():
        default = original
        for part in path.split("."):
            default = default[part]
        given = next((arg.split("=", 1)[1] for arg in sys.argv if arg.startswith(f"--{name}.{path}=")),
                     repr(value))
        problem = _override_problem(default, value, f"--{name}.{path}")
        if problem:
            _usage_exit(f"--{name}.{path}={given}: {path} {problem}")


def _override_problem(default, value, flag_name):
    """What is wrong with ``value`` as ``flag_name``'s override of a key holding ``default``, or None."""
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in items):
        return f"must be a finite number, e.g. {default!r} (the config file's value)"
    kinds = {type(v) for v in default} if isinstance(default, (tuple, list)) else set()
    if len(kinds) != 1:  # not a sequence, empty, or of mixed types: nothing to compare with
        return None
    kind = kinds.pop()
    if all(type(v) is kind or (kind is float and type(v) is int) for v in items):
        return None
    example = repr(tuple(default))
    quote = '"' if "'" in example else "'"
    return (f"holds {kind.__name__} values, e.g. {flag_name}={quote}{example}{quote} (the config file's value); "
            f"got {value!r}")


def _parse_flags(argv, positional=False):
    # After '--' the words are positional (launch_local.py's command): their --help is the command's.
    own = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    if any(arg in HELP_FLAGS for arg in own):
        _help(argv)
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as error:
        _usage_exit(_last_line(error))
    except Exception as error:  # noqa: BLE001  (loading the config file: any failure is bad usage)
        _config_error(error)
    for name in _CONFIG_FILES:
        # ml_collections defers some load failures (a missing file) to the first use.
        try:
            flags.FLAGS[name].value.keys()
        except Exception as error:  # noqa: BLE001
            _config_error(error)
        _check_config_kind(name)
        _check_overrides(name)
    if len(rest) > 1 and not positional:
        _usage_exit(f"unexpected arguments {rest[1:]}; pass options as --flags (see --help)")
    return rest


# What TensorFlow's C++ code prints while it loads on a machine without a GPU, before its log
# level (TF_CPP_MIN_LOG_LEVEL, which scripts/_bootstrap.py sets to 2) is read: absl's pre-init
# notice, the CUDA stub's and CPU-feature lines, the failed cuInit, and (TensorFlow 2.21) the
# oneDNN notice, printed once per loaded library whatever the log level. Up to nine lines before any of ours.
_START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|\] Could not find cuda drivers|"
    r"cpu_feature_guard\.cc|^To enable the following instructions: |\] failed call to cuInit|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|TF-TRT Warning|"
    r"\] oneDNN custom operations are on")


@contextlib.contextmanager
def _start_up_noise_dropped():
    """Sends fd 2 to a file while TensorFlow loads, then replays every line but the start-up noise.

    The noise is written by C++ straight to the file descriptor, so only fd-level redirection
    catches it; anything else written meanwhile (a real error, a Python traceback) is replayed.
    ``TF_CPP_MIN_LOG_LEVEL=0`` (the user asks for every log) turns the filter off.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not _START_UP_NOISE.search(line)]
            sys.stderr.write("".join(kept))


def _on_sigterm(signum, frame):
    errors.request_stop(signum)


def _interrupted_exit(signum):
    """Exit 130 / 143 with one line that says what is left (only run scripts have ``--resume``)."""
    kept = ("partial results kept (resume with --resume)" if "resume" in flags.FLAGS
            else "nothing was written; run the command again")
    stopped = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"interrupted by signal {signum}"
    sys.stderr.write(f"{stopped}; {kept}\n")
    _end_process(128 + signum)


def _end_process(code):
    """Ends the process with ``code`` now, without the interpreter's teardown.

    The run has recorded its state by then. After an interrupt TensorFlow's own threads (a
    ``tf.data`` prefetch, an op's thread pool) can still be at work, and finalising the modules
    under them crashed the process (exit -11 instead of 130, once in a CI run of a Ctrl-C'd
    sweep). In-process callers (tests) replace this with ``sys.exit``.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(main, positional=False, tensorflow=True):
    """Runs an absl ``main(argv)`` with tfsparse's exit-code and signal contract.

    ``positional``: the script takes positional arguments (``argv[1:]``); otherwise any is
    refused as bad usage. ``tensorflow``: import TensorFlow before ``main`` to quiet its
    logger; False for a script that never uses it (``launch_local.py``, whose start-up would
    otherwise pay 2-6 s for an import it does not need).
    """

    def guarded(argv):
        if tensorflow:
            with _start_up_noise_dropped():
                from tfsparse.compat import tf

                tf.config.list_physical_devices()  # the platform's start-up lines come out here

            # Each pruning round attacks a new model, which TF reports as "retracing"; that is
            # expected here and would bury the progress lines.
            tf.get_logger().setLevel("ERROR")
        absl_logging.set_verbosity(absl_logging.WARNING)  # tf_keras's INFO lines on every SavedModel save
        errors.clear_stop()
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            outcome = main(argv)
        except UsageError as error:
            _usage_exit(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        except Interrupted as stop:
            _interrupted_exit(stop.signum)
        except KeyboardInterrupt:
            _interrupted_exit(signal.SIGINT)
        except Exception:
            if errors.stop_requested() is None:
                raise
            _interrupted_exit(errors.stop_requested())  # the stop came out as another error
        if errors.stop_requested() is not None:  # swallowed on the way, but the user asked to stop
            _interrupted_exit(errors.stop_requested())
        return outcome

    app.run(guarded, flags_parser=lambda argv: _parse_flags(argv, positional))

"""scripts/evaluate.py keeps no default of its own: every flag's default is read from configs/evaluate.py.

Issue 29 item 4 ("defaults only in config files"). ``--help`` answers before TensorFlow is
imported, so each check costs one short subprocess.
"""

import os
import re
import subprocess
import sys

from cli_helpers import ENV
from cli_helpers import REPO
from cli_helpers import run_script

from configs import evaluate as evaluate_config

# Flags without a config default: the config file itself, cli's --print_config (shared by every
# script) and the required --model. Every other flag is the config key of its name, but these.
NOT_CONFIG = {"config", "print_config", "model"}
KEY_OF_FLAG = {"attacks": "attack_names"}

# Every run-level key changed to another valid value: a default the script still carried
# itself would show in --help instead of these.
CHANGED = {"dataset": "cifar10", "data_dir": "/data/cifar", "classes": ["3", "5"], "num_examples": 7,
           "subset": "random", "attack_names": ("cw", "zoo"), "eps": 0.25, "model_outputs": "probabilities",
           "signature": "serve", "source_model": "source.keras", "inference_noise": "on",
           "output": "out.json", "overwrite": True}

# Runs --help with configs/evaluate.py's get_config() patched to return CHANGED's values.
_PATCHED_HELP = """
import runpy, sys
sys.path[:0] = [{repo!r}, {scripts!r}]
from configs import evaluate
original = evaluate.get_config
def get_config(arg=None):
    config = original(arg)
    config.update({changed!r})
    return config
evaluate.get_config = get_config
sys.argv = [{script!r}, "--help"]
runpy.run_path({script!r}, run_name="__main__")
"""


def help_defaults(text):
    """``{flag: shown default}`` from the ``--help`` text of a tfsparse script."""
    return dict(re.findall(r"^  --(\w+): .*\n    \(default: (.*)\)$", text, flags=re.M))


def shown(value):
    """A config value as ``--help`` shows it as a flag default (absl's ``default_as_str``)."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return repr(str(value).lower())
    if isinstance(value, (list, tuple)):
        return repr(",".join(value))
    return repr(str(value))


def check(help_text, config):
    defaults = help_defaults(help_text)
    assert {"dataset", "eps", "attacks", "num_examples"} <= set(defaults), help_text[-2000:]
    flags = set(defaults) - NOT_CONFIG
    keys = {KEY_OF_FLAG.get(flag, flag) for flag in flags}
    assert keys <= set(config.keys()), f"flags with a default not in configs/evaluate.py: {keys - set(config)}"
    for flag in sorted(flags):
        key = KEY_OF_FLAG.get(flag, flag)
        assert defaults[flag] == shown(config[key]), f"--{flag} shows {defaults[flag]}, config {key}={config[key]!r}"
    assert defaults["model"] == "None"  # required: no default at all


def test_every_flag_default_in_help_is_the_config_value():
    result = run_script("evaluate.py", "--help", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    check(result.stdout, evaluate_config.get_config())


def test_help_follows_a_changed_config_so_no_default_is_left_in_the_script():
    script = os.path.join(REPO, "scripts", "evaluate.py")
    code = _PATCHED_HELP.format(repo=REPO, scripts=os.path.dirname(script), changed=CHANGED, script=script)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    config = evaluate_config.get_config()
    config.update(CHANGED)
    assert set(CHANGED) == {KEY_OF_FLAG.get(f, f) for f in help_defaults(result.stdout)} - NOT_CONFIG
    check(result.stdout, config)

"""Which peer libraries (IBM ART, Foolbox: the ``bench`` extra) the benchmarks can compare with."""

import importlib.util


def available(module, wanted=True):
    """True if ``wanted`` and ``module`` is importable; says so when a peer column is skipped."""
    if not wanted:
        return False
    if importlib.util.find_spec(module) is None:
        print(f"{module} not importable (pip install .[bench]): its columns are skipped", flush=True)
        return False
    return True

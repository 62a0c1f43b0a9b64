# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) the virtual environment .venv and install tfsparse into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: demo test test-all install clean-venv

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/sweep.py --config=configs/guo_mnist.py:quick --workdir=$(RUN)

# -n auto: one pytest worker per CPU core (pytest-xdist); most tests start TensorFlow in a
# script subprocess, so two cores run the suite in about half the time of one process.
test: $(STAMP)
	$(PY) -m pytest -q -n auto

test-all: $(STAMP)
	$(PY) -m pytest -q -n auto --runslow

clean-venv:
	rm -rf $(VENV)

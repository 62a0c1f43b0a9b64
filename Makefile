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

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q --runslow

clean-venv:
	rm -rf $(VENV)

# Two commands are the whole set-up: `make demo` and `make test`. Both build .venv if needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-all clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: on a CPU-only machine this takes the CPU wheel; GPU users install their
	# CUDA build of torch 2.13 into .venv before `make install`.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py --out demo_out

# One pytest worker per core (at most 4), each on one torch / BLAS thread: the tests' models are
# tiny, so threads inside a worker only add synchronisation while the other workers keep the
# cores busy.
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q -n auto --maxprocesses 4

test: $(STAMP)
	$(PYTEST)

test-all: $(STAMP)
	$(PYTEST) -m "slow or not slow"

clean:
	rm -rf $(VENV) demo_out .pytest_cache

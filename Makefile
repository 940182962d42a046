# Entry points. Every target creates/reuses the project's virtualenv (.venv)
# from the pinned requirement files, so `make m3w` and `make test` work on a
# fresh machine with nothing but Python 3.11 and access to PyPI.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

SAMPLE_WARC := build/sample/sample.warc.gz
SAMPLE_INPUTS := $(SAMPLE_WARC) tests/data/warc/*.warc*
INPUT ?= $(SAMPLE_INPUTS)
OUTPUT ?= out/m3w
RUNNER ?= DirectRunner
# The bundled sample is offline: its images are archived in the sample WARC.
M3W_ARGS ?= $(if $(filter $(SAMPLE_INPUTS),$(INPUT)),--no-fetch,)
BEAM_ARGS ?=
export NO_ALBUMENTATIONS_UPDATE := 1
export PYTHONHASHSEED := 0

.PHONY: help venv sample m3w validate test bench clean

help:
	@echo "make m3w        build M3W shards from the bundled sample (INPUT=... OUTPUT=... RUNNER=... BEAM_ARGS=...)"
	@echo "make validate   check every shard in OUTPUT against the manifest and schema"
	@echo "make test       run the test suite"
	@echo "make bench      run the benchmarks and print figures"

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(STAMP)

$(SAMPLE_WARC): $(STAMP) pipeline/sample.py
	$(PY) -m pipeline.sample --out $@

sample: $(SAMPLE_WARC)

m3w: $(STAMP) $(if $(filter $(SAMPLE_WARC),$(INPUT)),$(SAMPLE_WARC),)
	$(PY) -m pipeline.m3w $(foreach i,$(INPUT),--input '$(i)') --output $(OUTPUT) \
	    $(M3W_ARGS) --runner=$(RUNNER) $(BEAM_ARGS)

validate: $(STAMP)
	$(PY) -m shards.validate $(OUTPUT)

test: $(STAMP)
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build out runs .pytest_cache

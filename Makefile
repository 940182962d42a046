# Entry points. Every target creates/reuses the project's virtualenv (.venv)
# from the pinned requirement files, so `make m3w` and `make test` work on a
# fresh machine with nothing but Python 3.11 and access to PyPI.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# TORCH=cu128 (or cu126, cu130, ...): the venv gets the CUDA build of the SAME
# pinned torch version from the PyTorch index (https://download.pytorch.org/whl/cu128);
# empty (the default): torch as requirements.txt resolves it (the CPU build here).
# `make venv TORCH=cu128` also switches an existing venv.
TORCH ?=
TORCH_VERSION := $(shell sed -n 's/^torch==//p' requirements.txt)
TORCH_INSTALL = $(PY) -m pip install -q --disable-pip-version-check "torch==$(TORCH_VERSION)+$(TORCH)" \
    --index-url https://download.pytorch.org/whl/$(TORCH)

SAMPLE_WARC := build/sample/sample.warc.gz
SAMPLE_INPUTS := $(SAMPLE_WARC) tests/data/warc/*.warc*
INPUT ?= $(SAMPLE_INPUTS)
OUTPUT ?= out/m3w
RUNNER ?= DirectRunner
# RUNNER=dask: a local dask.distributed cluster on 127.0.0.1 (or DASK_SCHEDULER=tcp://host:port)
BEAM_RUNNER = $(if $(filter dask Dask DaskRunner,$(RUNNER)),DaskRunner,$(RUNNER))
# The bundled sample is offline: its images are archived in the sample WARC; the
# demo also keeps what each filter dropped (OUTPUT/dropped/, for make browse).
M3W_ARGS ?= $(if $(filter $(SAMPLE_INPUTS),$(INPUT)),--no-fetch --keep-dropped,)
BEAM_ARGS ?=
# Eval-set dedup: an index file from `make dedup-index`; empty = no eval dedup.
DEDUP_INDEX ?=
DEMO_INDEX := build/dedup/eval_index.npz
DEMO_MEDIA := build/dedup/coco_standins
EVAL ?= coco_captions=tests/data/evalsets/coco_captions_val2014_sample.json:$(DEMO_MEDIA)
INDEX_OUT ?= $(DEMO_INDEX)
DEDUP_OUTPUT ?= out/m3w-dedup
export NO_ALBUMENTATIONS_UPDATE := 1
export PYTHONHASHSEED := 0

CONFIG ?= configs/tiny.yaml
TRAIN_ARGS ?=

VIDEOS_WARC := build/sample/videos.warc.gz

.PHONY: help venv sample m3w pairs videos browse validate dedup-index dedup-report train eval test test-all bench bench-scale faults clean

help:
	@echo "make m3w        build M3W shards from the bundled sample (INPUT=... OUTPUT=... RUNNER=... BEAM_ARGS=...)"
	@echo "make pairs      image-text pairs (ALIGN/LTIP-like) from the bundled sample -> out/pairs"
	@echo "make videos     video-text pairs from the bundled video sample -> out/videos"
	@echo "make browse     look at OUTPUT's samples and dropped victims in a web page (BROWSE_ARGS=--serve)"
	@echo "make validate   check every shard in OUTPUT against the manifest and schema"
	@echo "make dedup-index  build an eval-set index (EVAL='name=ANNOTATIONS:MEDIA_DIR ...' INDEX_OUT=...)"
	@echo "make dedup-report run m3w with eval dedup and write dedup_report.{json,html}"
	@echo "make train      train Flamingo on the m3w shards (CONFIG=configs/....yaml TRAIN_ARGS=...)"
	@echo "make venv       build/reuse .venv (TORCH=cu128: the CUDA build of the pinned torch)"
	@echo "make eval       few-shot eval of the trained checkpoint on the bundled eval sample (EVAL_CHECKPOINT=... EVAL_TASKS=... EVAL_DATA=... EVAL_ARGS=...)"
	@echo "make test       run the test suite (the slow tests only with CI=true)"
	@echo "make test-all   run the whole test suite, slow tests too"
	@echo "make bench      run the benchmarks and print figures"
	@echo "make bench-scale  the M3W job at scale vs the per-page step and datatrove (BENCH_SCALE_ARGS=...)"
	@echo "make faults     run the fault suite (adversarial corpus, kills) and print figures"

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(TORCH_INSTALL),)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(STAMP)
	$(if $(TORCH),$(TORCH_INSTALL),)

$(SAMPLE_WARC): $(STAMP) pipeline/sample.py
	$(PY) -m pipeline.sample --out $@

sample: $(SAMPLE_WARC)

m3w: $(STAMP) $(if $(filter $(SAMPLE_WARC),$(INPUT)),$(SAMPLE_WARC),)
	$(PY) -m pipeline.m3w $(foreach i,$(INPUT),--input '$(i)') --output $(OUTPUT) \
	    $(M3W_ARGS) $(if $(DEDUP_INDEX),--dedup-index $(DEDUP_INDEX),) --runner=$(BEAM_RUNNER) $(BEAM_ARGS)

$(VIDEOS_WARC): $(STAMP) pipeline/sample_videos.py
	$(PY) -m pipeline.sample_videos --out $@

PAIRS_INPUT ?= $(SAMPLE_INPUTS)
PAIRS_OUTPUT ?= out/pairs
# ALIGN-like (alt texts) and LTIP-like (descriptions) sets in PAIRS_OUTPUT/align
# and PAIRS_OUTPUT/ltip, as configs/flamingo-*-like.yaml and mixture-tiny.yaml
# expect; PAIRS_SPLIT= (empty) writes one set.
PAIRS_SPLIT ?= align=alt ltip=figcaption,title,context
pairs: $(STAMP) $(SAMPLE_WARC)
	$(PY) -m pipeline.pairs $(foreach i,$(PAIRS_INPUT),--input '$(i)') --output $(PAIRS_OUTPUT) \
	    $(if $(filter $(SAMPLE_INPUTS),$(PAIRS_INPUT)),--no-fetch --keep-dropped,) \
	    $(foreach s,$(PAIRS_SPLIT),--split $(s)) \
	    $(if $(DEDUP_INDEX),--dedup-index $(DEDUP_INDEX),) --runner=$(BEAM_RUNNER) $(BEAM_ARGS)

VIDEOS_OUTPUT ?= out/videos
videos: $(STAMP) $(VIDEOS_WARC)
	$(PY) -m pipeline.videos --input $(VIDEOS_WARC) --list build/sample/videos.csv --no-fetch --keep-dropped \
	    --output $(VIDEOS_OUTPUT) $(if $(DEDUP_INDEX),--dedup-index $(DEDUP_INDEX),) \
	    --runner=$(BEAM_RUNNER) $(BEAM_ARGS)

# With no EVAL this builds the offline demo index (real COCO annotations, real
# photos as stand-in images: see dedup/demo_evalset.py).
dedup-index: $(STAMP)
	$(if $(findstring $(DEMO_MEDIA),$(EVAL)),$(PY) -m dedup.demo_evalset --out $(DEMO_MEDIA),)
	$(PY) -m dedup.build_index $(foreach e,$(EVAL),--eval '$(e)') --out $(INDEX_OUT) \
	    $(if $(findstring $(DEMO_MEDIA),$(EVAL)),--allow-missing-media,)

dedup-report: $(STAMP) $(SAMPLE_WARC)
	@test -f "$(or $(DEDUP_INDEX),$(DEMO_INDEX))" || $(MAKE) --no-print-directory dedup-index
	$(MAKE) --no-print-directory m3w OUTPUT=$(DEDUP_OUTPUT) DEDUP_INDEX=$(or $(DEDUP_INDEX),$(DEMO_INDEX))
	$(PY) -m dedup.report --matches $(DEDUP_OUTPUT)/dedup_matches.jsonl \
	    --index $(or $(DEDUP_INDEX),$(DEMO_INDEX)) --out $(DEDUP_OUTPUT)/dedup_report

validate: $(STAMP)
	$(PY) -m shards.validate $(OUTPUT)

# One self-contained page, OUTPUT/browse.html (BROWSE_ARGS=--serve: a local
# server on 127.0.0.1 instead); the default OUTPUT is built first if absent.
BROWSE_ARGS ?=
browse: $(STAMP) $(if $(filter out/m3w,$(OUTPUT)),out/m3w/manifest.json,)
	$(PY) -m shards.browse $(OUTPUT) $(BROWSE_ARGS)

# With the bundled configs, trains on the shards `make m3w` (and for
# mixture-tiny.yaml `make pairs` and `make videos`) write, building them first
# if they are absent.
MIXTURE_OUTPUTS := out/m3w/manifest.json out/pairs/align/manifest.json out/videos/manifest.json
train: $(STAMP) $(if $(filter configs/tiny.yaml,$(CONFIG)),out/m3w/manifest.json,) \
       $(if $(filter configs/mixture-tiny.yaml,$(CONFIG)),$(MIXTURE_OUTPUTS),)
	$(PY) -m train.train --config $(CONFIG) $(TRAIN_ARGS)

out/m3w/manifest.json:
	$(MAKE) --no-print-directory m3w OUTPUT=out/m3w

out/pairs/align/manifest.json:
	$(MAKE) --no-print-directory pairs PAIRS_OUTPUT=out/pairs

out/videos/manifest.json:
	$(MAKE) --no-print-directory videos VIDEOS_OUTPUT=out/videos

# Few-shot evaluation (python -m eval). With no variables: the checkpoint
# `make train` writes (trained first if absent) on the bundled eval sample
# (python -m eval.sample: real annotations, stand-in photos), a few minutes on CPU.
EVAL_CHECKPOINT ?= runs/tiny
EVAL_DATA ?= build/eval_sample
EVAL_TASKS ?= coco,textvqa,msrvtt,imagenet
EVAL_ARGS ?= --shots 0,4 --trials 2 --limit 8
EVAL_OUT ?= out/eval
eval: $(STAMP) $(if $(filter runs/tiny,$(EVAL_CHECKPOINT)),runs/tiny/final.safetensors,)
	$(if $(filter build/eval_sample,$(EVAL_DATA)),$(PY) -m eval.sample --out $(EVAL_DATA),)
	$(PY) -m eval --checkpoint $(EVAL_CHECKPOINT) --tasks $(EVAL_TASKS) --data $(EVAL_DATA) \
	    --out $(EVAL_OUT) $(EVAL_ARGS)

runs/tiny/final.safetensors:
	$(MAKE) --no-print-directory train

# `make test` leaves out the tests marked slow (end-to-end cases on Dask, FSDP
# and a training SIGKILL+resume; pyproject.toml's markers) unless CI is set
# (CI=true .ci/run runs everything); `make test-all` always runs everything.
TEST_SELECT := $(if $(filter true 1 yes,$(CI)),,-m "not slow")

test: $(STAMP)
	$(PY) -m pytest -q tests $(TEST_SELECT); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

test-all: $(STAMP)
	$(PY) -m pytest -q tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

bench: $(STAMP)
	@for b in $(filter-out bench/bench_scale.py,$(wildcard bench/bench_*.py)) bench/extract_quality.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The M3W job at scale beside the per-page step alone and datatrove (installed
# into build/bench-venv-datatrove on first use); BENCH_SCALE_ARGS='--pages 20000 --profile'
BENCH_SCALE_ARGS ?=
bench-scale: $(STAMP) $(SAMPLE_WARC)
	$(PY) bench/bench_scale.py $(BENCH_SCALE_ARGS)

faults: $(STAMP)
	$(PY) -m faults

clean:
	rm -rf build out runs .pytest_cache

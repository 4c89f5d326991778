# avgen: every target works on a fresh clone; the first one run creates .venv (make setup).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
AVGEN := $(VENV)/bin/avgen
STAMP := $(VENV)/.installed
# A CPU wheel of this version lies on the dev/CI machines; a looser spec pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0
DATASET ?= folder
EXP ?= cmmd_synthetic_quick
RESUME ?=
ARGS ?=
empty :=
space := $(empty) $(empty)
commas = $(subst $(space),$(comma),$(strip $(1)))
comma := ,
BASE_ARGS ?=

.PHONY: consolidate plan memory score fake-cache guidance-sweep setup lock doctor gpu-check wheelhouse readme-numbers readme-tests test test-slow test-all data prepare train sample eval pipeline toy bench compare suite gpu-smoke smoke-ood weights wandb-report lint clean help

help: ## this list, read from the comment beside each target
	@echo "usage: make <target> [EXP=<experiment>] [ARGS='key=value ...']"
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every other dependency at the exact version CI passed with (requirements.lock), then the project itself.
LOCK := requirements.lock
$(STAMP): pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip freeze | grep -iE '^torch==' > $(VENV)/constraints.txt
	$(VENV)/bin/pip install -q -c $(VENV)/constraints.txt -r $(LOCK)
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) ## the .venv: torch, then requirements.lock, then the project (first target run does it)

# Regenerate requirements.lock from pyproject.toml: a scratch venv resolves today's newest versions (test
# them with `make test-all` before committing the new lock).
lock: ## regenerate requirements.lock from pyproject.toml in a scratch venv
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q $(TORCH)
	.lock-venv/bin/pip freeze | grep -iE '^torch==' > .lock-venv/constraints.txt
	.lock-venv/bin/pip install -q -c .lock-venv/constraints.txt '.[dev]'
	{ sed -n '/^#/p' $(LOCK); .lock-venv/bin/pip freeze --exclude-editable | grep -viE '^(torch|avgen)([=@ ]|$$)'; } \
	  > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv
	@echo "$(LOCK): $$(grep -vc '^#' $(LOCK)) pins"

# Can this install run the README's commands? Imports, versions against the lock, numba's JIT cache (in a
# child process), folders, codecs, GPU/NCCL: a table; exit code 0 only when nothing fails.
doctor: $(STAMP) ## can this install run the README's commands? a table, exit 0 when nothing fails
	$(AVGEN) doctor $(ARGS)

lint: $(STAMP) ## ruff: lint and format check (pyproject.toml [tool.ruff]); `ruff format .` fixes the format
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) ## the fast tier (about 2.5 minutes on 2 cores; README "Tests"): everything not marked slow
	$(PY) -m pytest -q $(ARGS)

test-slow: $(STAMP) ## the slow tier: whole-CLI runs, DDP, kill-and-resume, smoke-ood, concurrent JIT cache
	$(PY) -m pytest -q -m slow $(ARGS)

test-all: $(STAMP) ## both tiers in one run (CI runs test, then test-slow)
	$(PY) -m pytest -q -m "slow or not slow" $(ARGS)

# The default synthetic store (data/synthetic/store): generated mp4s -> the real decode path -> store.
data: $(STAMP) ## the embedded synthetic store (data/synthetic/store)
	$(AVGEN) prepare $(ARGS)

prepare: $(STAMP) ## a store from your media: DATASET=<adapter> RAW=<dir> OUT=<dir>
	@test -n "$(RAW)" -a -n "$(OUT)" || { echo "usage: make prepare DATASET=<name> RAW=<dir> OUT=<dir> [ARGS=...]"; exit 2; }
	$(AVGEN) prepare dataset=$(DATASET) raw=$(RAW) out=$(OUT) $(ARGS)

# Train an experiment (experiments/<EXP>.yaml); synthetic ones build the synthetic store first if needed.
train: $(STAMP) ## train EXP (default cmmd_synthetic_quick, the first run) [RESUME=1]: checkpoint, samples, metrics.json
	@case "$(EXP)" in *_synthetic*) $(MAKE) --no-print-directory data ARGS= ;; esac
	$(AVGEN) train experiment=$(EXP) $(if $(filter 1 true yes,$(RESUME)),resume=true) $(ARGS)

# Generated pairs of a trained run as mp4s with audio: outputs/<EXP>/samples_<MODE>/ (MODE joint|v2a|a2v)
MODE ?= joint
N ?= 8
sample: $(STAMP) ## mp4s with audio of a trained run: EXP [MODE=joint|v2a|a2v] [N=8] [CKPT=]
	$(AVGEN) sample experiment=$(EXP) mode=$(MODE) num=$(N) $(if $(CKPT),ckpt=$(CKPT)) $(ARGS)

# Score a trained run again (more samples, other sampler/guidance settings): outputs/<EXP>/eval/metrics.json
CKPT ?=
eval: $(STAMP) ## re-score a trained run: EXP [CKPT=] -> outputs/<EXP>/eval/metrics.json
	$(AVGEN) eval experiment=$(EXP) $(if $(CKPT),ckpt=$(CKPT)) $(ARGS)

# Training memory per GPU of a model (parameters, gradients, Adam, EMA, activations; DDP vs FSDP, checkpointing)
memory: $(STAMP) ## memory per GPU of a model, computed on the meta device [MODEL=dual_dit_xl] [GPUS=8] [BATCH=8]
	$(PY) -m avgen.bench.memory model=$(or $(MODEL),dual_dit_xl) gpus=$(or $(GPUS),8) batch=$(or $(BATCH),8)

# What paper-setting runs cost before they start: FLOPs on the meta device -> GPU-hours at a stated utilisation
plan: $(STAMP) ## FLOPs and GPU-hours of runs (default: the AIST++ CMMD chain) [EXP=a,b] [PRESET=cmmd] [GPUS=8] [MFU=0.024]
	$(PY) -m avgen.bench.plan $(if $(filter command line,$(origin EXP)),experiment=$(EXP)) gpus=$(or $(GPUS),8) \
	  $(if $(MFU),mfu=$(MFU)) $(if $(DEVICE),device=$(DEVICE)) $(if $(PRESET),preset=$(PRESET))

# An FSDP run's distributed checkpoint folder as one file (make eval / sample / init_from read folders directly)
consolidate: $(STAMP) ## a distributed checkpoint folder -> one file: CKPT=outputs/<run>/checkpoints/last.ckpt [OUT=...]
	$(AVGEN) consolidate $(CKPT) $(if $(OUT),out=$(OUT)) $(ARGS)

# Any folder of mp4s (with audio tracks or .wav files beside them), e.g. another project's released samples,
# scored with our protocol: AV-Align as its reference script computes it; FVD/FAD/ImageBind against REF.
score: $(STAMP) ## score a folder of mp4s: DIR [REF=<real clips>] [METRICS=av_align,fvd,...] -> DIR/scores/
	$(AVGEN) score dir=$(DIR) $(if $(REF),ref=$(REF)) $(if $(METRICS),metrics=$(METRICS)) $(ARGS)

# The v2a/a2v guidance lambda of a trained run, chosen on the validation split (never on test)
LAMBDAS ?= [0,1,2,5,10]
guidance-sweep: $(STAMP) ## choose EXP's guidance lambda on the val split: [LAMBDAS=[0,1,2,5,10]] -> outputs/<EXP>/guidance_sweep/
	$(AVGEN) guidance-sweep experiment=$(EXP) lambdas='$(LAMBDAS)' $(ARGS)

edge-probe: $(STAMP) ## can a time-shifted negative be told from one modality alone? [STORE=data/synthetic/store]
	$(PY) scripts/edge_probe.py store=$(or $(STORE),data/synthetic/store)

fake-cache: $(STAMP) ## MMDisCo's fake pairs from its bases (resumable; training builds them if missing): EXP
	$(AVGEN) fake-cache experiment=$(EXP) $(ARGS)

# An experiment with every run it starts from (its method's start_checkpoints: MMDisCo's bases, CMMD's nCMMD
# parent), each trained if it has no checkpoint yet; BASE_ARGS go to those upstream runs only.
pipeline: $(STAMP) ## EXP with the runs it starts from (bases, parents), each trained if missing [BASE_ARGS=]
	@case "$(EXP)" in *_synthetic*) $(MAKE) --no-print-directory data ARGS= ;; esac
	$(AVGEN) pipeline experiment=$(EXP) base_args='$(BASE_ARGS)' $(ARGS)

# Pretrained weights by registry name (docs/weights.md): download + verify into the caches, then a table of
# what is present. WHICH=<name>[,<name>...] (default: every entry, ~10 GB); run it where there is network.
WHICH ?=
weights: $(STAMP) ## fetch + verify pretrained weights [WHICH=<name>,...] (docs/weights.md), then a table
	$(AVGEN) weights $(if $(WHICH),which=$(WHICH)) $(ARGS)

# MMDisCo out of domain on tiny random AudioLDM + AnimateDiff pipelines built on the spot: checks an install
# (loading, fake cache, discriminator steps, one guided mp4) before pointing it at real weights. CPU, minutes.
smoke-ood: $(STAMP) ## MMDisCo out of domain on tiny random AudioLDM + AnimateDiff pipelines (CPU, minutes)
	$(AVGEN) smoke-ood $(ARGS)

# One short DDP + bf16 run of every method of the suite registry on the visible GPUs (outputs/gpu_smoke/).
gpu-smoke: data ## one short DDP + bf16 run of every registered method on the visible GPUs
	$(AVGEN) gpu-smoke $(ARGS)

# Wheels of every locked dependency but torch (and SKIP: wandb decord) for an offline machine:
# make wheelhouse PYTHON=3.12 PLATFORM=manylinux_2_28_x86_64 [ONLY="librosa av ..."] -> wheelhouse/
PYTHON_VERSION ?= 3.12
PLATFORM ?= manylinux_2_28_x86_64
ONLY ?=
wheelhouse: ## wheels of the locked dependencies for an offline GPU node (PYTHON=3.12 PLATFORM=manylinux_2_28_x86_64)
	bash scripts/wheelhouse.sh $(if $(filter command line,$(origin PYTHON)),$(PYTHON),$(PYTHON_VERSION)) $(PLATFORM) wheelhouse $(ONLY)

# One command for a GPU machine (<= 8 min on one GPU, offline): outputs/gpu_check/results.json + a table.
gpu-check: data ## measure a GPU machine: U-Net MFU eager/compiled, default experiment, evaluation, every method
	$(AVGEN) gpu-check $(ARGS)

bench: data ## speed figures -> outputs/bench/results.json
	$(AVGEN) bench $(ARGS)

# Every run's metrics side by side: outputs/compare/<dataset>.md and PNG plots (offline).
compare: $(STAMP) ## runs side by side: outputs/compare/<DATASET>.md/.html + plots [RUNS='glob ...'] [EXCLUDE='glob ...']
	$(AVGEN) compare $(if $(filter command line environment,$(origin DATASET)),dataset_name=$(DATASET)) \
	  $(if $(RUNS),'runs=[$(call commas,$(RUNS))]') $(if $(EXCLUDE),'exclude=[$(call commas,$(EXCLUDE))]') $(ARGS)

wandb-report: $(STAMP) ## the W&B dashboard of DATASET's group as code (ARGS="wandb.offline=false wandb.entity=<you>")
	$(AVGEN) wandb-report $(if $(filter command line environment,$(origin DATASET)),dataset_name=$(DATASET)) $(ARGS)

# Every run of the suite registry (configs/suite/synthetic.yaml: runs x variants x seeds, one budget), each
# re-scored on the registry's shared samples, then the report. Trained runs are kept: re-running continues.
SEEDS ?= 1
REPORT ?= true
suite: data ## every run of configs/suite/synthetic.yaml, SEEDS seeds each (trained if missing) [RUNS='glob ...'], then the report [REPORT=false]
	$(AVGEN) suite dataset=synthetic seeds=$(SEEDS) $(if $(RUNS),only='$(call commas,$(RUNS))') report=$(REPORT) $(ARGS)

readme-numbers: $(STAMP) ## the README's measured numbers, from outputs/$(EXP)/metrics.json
	$(PY) scripts/readme_numbers.py outputs/$(EXP)/metrics.json README.md

readme-tests: $(STAMP) ## run both test tiers and write their counts and times into the README
	mkdir -p outputs
	$(PY) -m pytest -q > outputs/test_fast.log || { tail -30 outputs/test_fast.log; exit 1; }
	$(PY) -m pytest -q -m slow > outputs/test_slow.log || { tail -30 outputs/test_slow.log; exit 1; }
	$(PY) scripts/readme_numbers.py --tests outputs/test_fast.log outputs/test_slow.log README.md

clean: ## remove outputs/ (runs, reports)
	rm -rf outputs .pytest_cache

# MMDisCo's 2-D toy experiment -> outputs/toy/ (results.json, samples_*.npy, figure.png)
toy: $(STAMP) ## MMDisCo's 2-D toy experiment -> outputs/toy/
	$(AVGEN) toy $(ARGS)

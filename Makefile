# Every target sets up .venv first if needed (python3 >= 3.10 on PATH).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
SWEEP ?=
CKPT ?=
RUNS ?=

.DEFAULT_GOAL := help
PORT ?= 6006
LOGDIR ?= outputs

.PHONY: help install train test test-fast lint format clean sweep sweep-quick report tensorboard bench bench-gpu benchmark-omniglot

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its dev extras

train: $(STAMP)  ## train on the embedded synthetic data (extra overrides: make train ARGS="loss=sdrn")
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## the whole test suite, end-to-end runs included (what CI runs)
	$(PY) -m pytest $(ARGS)

test-fast: $(STAMP)  ## the fast tests only (the end-to-end runs, marked slow, deselected)
	$(PY) -m pytest -m "not slow" $(ARGS)

sweep: $(STAMP)  ## the SPRN vs SDRN grid (24 jobs; add ARGS="hydra/launcher=ray ..." for parallel jobs)
	$(PY) train.py +sweep=sprn_vs_sdrn $(ARGS)

sweep-quick: $(STAMP)  ## the same grid on small data (debug=quick), two epochs: a few minutes on a CPU
	$(PY) train.py +sweep=sprn_vs_sdrn name=sprn_vs_sdrn_quick debug=quick $(ARGS)

report: $(STAMP)  ## table, CSV, plot and SPRN − SDRN difference of the latest sweep (or SWEEP=dir)
	$(PY) -m siamese.report $(SWEEP)

tensorboard: $(STAMP)  ## TensorBoard over every run under outputs/, on 127.0.0.1 port 6006 (LOGDIR=, PORT=)
	$(VENV)/bin/tensorboard --logdir $(LOGDIR) --host 127.0.0.1 --port $(PORT)

bench: $(STAMP)  ## CPU benchmarks, each a ratio against its baseline in the same run (bench/RESULTS.md)
	$(PY) bench/bench_step.py --steps 40 --warmup 10 --repeat 4
	$(PY) bench/bench_step.py --threads 1 debug=tiny
	$(PY) bench/bench_memory.py data.image_size=64
	$(PY) bench/bench_speed.py --steps 40 --warmup 10 --repeat 3
	$(PY) bench/bench_startup.py --repeat 3
	$(PY) bench/bench_retrieval.py --sizes 10000 100000
	$(PY) bench/bench_index.py --sizes 10000 100000 1000000
	$(PY) bench/bench_data.py
	$(PY) bench/bench_guard.py --steps 0 --reps 50
	$(PY) bench/bench_sweep.py

benchmark-omniglot: $(STAMP)  ## error on the 20 official Omniglot runs of CKPT=... (RUNS=dir or zip; default: cache)
	$(PY) -m siamese.benchmark omniglot ckpt_path=$(CKPT) $(if $(RUNS),runs=$(RUNS))

bench-gpu: $(STAMP)  ## the same on one GPU: step, retrieval at 1M, jobs per GPU on the real grid
	$(PY) bench/bench_step.py trainer=gpu
	$(PY) bench/bench_speed.py trainer=gpu
	$(PY) bench/bench_retrieval.py --device cuda --sizes 100000 1000000 --naive-budget-gib 0
	$(PY) bench/bench_guard.py --accelerator gpu --steps 0 --reps 50
	$(PY) bench/bench_sweep.py --gpus 1 --grid

lint: $(STAMP)  ## ruff checks
	$(VENV)/bin/ruff check src tests bench train.py
	$(VENV)/bin/ruff format --check src tests bench train.py

format: $(STAMP)  ## ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests bench train.py
	$(VENV)/bin/ruff format src tests bench train.py

clean:  ## remove the venv and caches (outputs/ is kept: runs are never deleted by make)
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# A fair SPRN vs SDRN verdict: equal tuning budgets on val, the best of each over seeds on test
COMPARE_TRIALS ?= 50
COMPARE_SEEDS ?= 5
QUICK_TRIALS ?= 10
QUICK_SEEDS ?= 5
# debug=quick at 16 pixels and 10 steps an epoch (the tune spaces reach 384 images a step);
# TPE proper after 4 random trials
COMPARE_QUICK := debug=quick data.image_size=16 data.steps_per_epoch=10 \
	hydra.sweeper.sampler.n_startup_trials=4
.PHONY: compare compare-quick

compare: $(STAMP)  ## tune SPRN and SDRN (COMPARE_TRIALS each, on val), re-run each best over seeds, report
	$(PY) -m siamese.compare --trials $(COMPARE_TRIALS) --seeds $(COMPARE_SEEDS) $(ARGS)

compare-quick: $(STAMP)  ## the same on tiny data with fewer trials: minutes on a CPU
	$(PY) -m siamese.compare --name quick --trials $(QUICK_TRIALS) --seeds $(QUICK_SEEDS) $(COMPARE_QUICK) $(ARGS)

# nerlstm: `make demo` and `make test` set everything up on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Without a GPU, install the CPU build of torch, never the multi-GB CUDA one: pip must find
# torch==X+cpu (on a machine whose pip does not, set TORCH_INDEX to PyTorch's CPU wheel index).
TORCH_CPU ?= torch==2.13.0+cpu
TORCH_INDEX ?=
TRAIN ?= data/train.txt
DEV ?= data/dev.txt
TEST ?= data/test.txt
MODEL ?= model.pt
INPUT ?= -
ARGS ?=

.PHONY: install test test-slow lint demo train eval tag bench profile clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install torch; \
	  else $(BIN)/pip install "$(TORCH_CPU)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) \
	    || { echo "error: no CPU build of torch found: set TORCH_INDEX to PyTorch's CPU wheel index" >&2; exit 1; }; fi; \
	fi
	$(BIN)/pip install -e ".[dev,plot,hf,dask,onnx,serve]"
	touch $@

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check nerlstm tests

demo: install
	$(BIN)/nerlstm train data/train.txt --dev data/dev.txt -m demo-model.pt --epochs 25
	$(BIN)/nerlstm eval data/test.txt -m demo-model.pt
	echo "Peter Blackburn visited Paris, where the European Commission met on Monday." | $(BIN)/nerlstm tag -m demo-model.pt

train: install
	$(BIN)/nerlstm train $(TRAIN) --dev $(DEV) -m $(MODEL) $(ARGS)

eval: install
	$(BIN)/nerlstm eval $(TEST) -m $(MODEL) $(ARGS)

tag: install
	$(BIN)/nerlstm tag $(INPUT) -m $(MODEL) $(ARGS)

bench: install
	$(BIN)/python benchmarks/bench.py $(ARGS)

profile: install
	$(BIN)/python benchmarks/profile_training.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo-model.pt demo-model.pt.metrics.jsonl
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

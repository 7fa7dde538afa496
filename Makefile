# make test  - create .venv, install hftel with its extension and the Debian tools, run the test suite
# make demo  - run the simulated trading engine with the exporter alongside (Ctrl-C stops)
# make bench - run the benchmarks side by side with the anchor libraries; writes docs/benchmarks.md

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SOURCES := pyproject.toml setup.py $(wildcard cext/*.h cext/hftel/*.pyx cext/hftel/*.pxi cext/hftel/*.pxd cext/hftel_exporter/*.pyx)

.PHONY: install tools test demo bench clean

install: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "setuptools>=64" wheel "Cython>=3.0"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation -e '.[exporter,test,bench]'
	touch $@

# Prometheus, promtool, Alertmanager and amtool from Debian's packages (skipped tests say so if not).
tools:
	scripts/install-tools

test: $(STAMP) tools
	$(PY) -m pytest tests

demo: $(STAMP)
	$(VENV)/bin/hftel demo

bench: $(STAMP)
	$(PY) -m pytest bench --benchmark-only --benchmark-json=bench/results.json -p no:randomly
	$(PY) bench/report.py bench/results.json docs/benchmarks.md

clean:
	rm -rf $(VENV) build src/*.egg-info src/hftel/*.so src/hftel_exporter/*.so cext/hftel/*.c cext/hftel_exporter/*.c bench/_build

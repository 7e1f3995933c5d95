# Build Your Own Redis, in Python.
#
#   make run-chapter 7            run chapter 07's server (PORT=6380 to change the port)
#   make test                     run every test on every chapter
#   make test-chapter 7           run the tests that apply to chapter 07
#   make test-chapter 7 SERVER='python my_server.py --port {port}'
#                                 ... against your own server instead
#                                 (DETAILS=1 adds pytest's tracebacks to the report)
#   make progress SERVER='python my_server.py --port {port}'
#                                 your server against every chapter, one row each
#   make start DIR=~/my-redis     a starting point for your own server
#   make diff-chapter 7           what chapter 07 changed since chapter 06
#   make demo-chapter 8           run chapter 08's demo or measurement (ARGS=... for its options)
#   make bench [CHAPTERS=14]      requests per second, RSS per key: chapters against Redis and a Python ceiling
#                                 (PEERS='name@port=command' adds another server, pydis for one)
#   make redis-suite 14           Redis's own test suite against chapter 14
#                                 (REDIS_TESTS=dir for another copy, FILES='unit/multi' for some; needs tcl)
#
# The first use creates .venv with the clients and test tools; nothing else
# to install by hand (real Redis, for the differential tests and benchmarks,
# comes from Debian: apt-get install redis-server redis-tools).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 6379

# `make test-chapter 7`: the chapter is the word after the target (7 or 07).
CHAPTER := $(patsubst 0%,%,$(word 2,$(MAKECMDGOALS)))
chapter_dir = $(patsubst %/server.py,%,$(firstword $(wildcard chapters/$(shell printf '%02d' '$(1)' 2>/dev/null)_*/server.py)))
CHAPTER_DIR = $(call chapter_dir,$(CHAPTER))
PREVIOUS_DIR = $(call chapter_dir,$(shell expr '$(CHAPTER)' - 1 2>/dev/null))
# Chapter numbers, as typed after a target, are goals that do nothing.
CHAPTER_NUMBERS := $(foreach dir,$(wildcard chapters/*/server.py),$(word 2,$(subst /, ,$(dir))))
CHAPTER_GOALS := $(sort $(foreach dir,$(CHAPTER_NUMBERS),$(firstword $(subst _, ,$(dir))) $(patsubst 0%,%,$(firstword $(subst _, ,$(dir))))))

.PHONY: help run-chapter test test-chapter diff-chapter demo-chapter bench redis-suite progress start clean check-chapter

help:
	@sed -n '3,17p' Makefile | sed 's/^# \{0,1\}//'

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "$(PYTHON) could not create a virtual environment (Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $@

check-chapter:
	@if [ -z "$(CHAPTER)" ] || [ -z "$(CHAPTER_DIR)" ]; then \
		echo "usage: make $(firstword $(MAKECMDGOALS)) N   (N is a chapter number: $(sort $(filter-out 0%,$(CHAPTER_GOALS))))"; \
		exit 2; fi

run-chapter: check-chapter $(VENV)/.installed
	$(PY) $(CHAPTER_DIR)/server.py --port $(PORT)

test: $(VENV)/.installed
	$(PY) -m pytest

test-chapter: check-chapter $(VENV)/.installed
	$(PY) -m pytest --chapter $(CHAPTER) $(if $(SERVER),--server "$(SERVER)") $(if $(DETAILS),--pytest-details)

# From chapter 15 on, a chapter imports its predecessor: show the functions it replaces, not a folder diff.
diff-chapter: check-chapter
	@if [ -z "$(PREVIOUS_DIR)" ]; then echo "chapter $(CHAPTER) is the first one"; exit 2; fi
	@if grep -q "load_chapter(" $(CHAPTER_DIR)/server.py; then $(PYTHON) tools/diff_chapter.py $(CHAPTER); else \
		git diff --no-index --stat $(PREVIOUS_DIR) $(CHAPTER_DIR); git diff --no-index $(PREVIOUS_DIR) $(CHAPTER_DIR); true; fi

# A chapter's demo: the one runnable .py file beside server.py that is not a client (03's client.py needs
# a server); a file that holds part of the chapter's lesson (16's snapshots.py) has no __main__.
DEMO = $(firstword $(filter-out %/server.py %/client.py,$(shell grep -l '__main__' $(CHAPTER_DIR)/*.py 2>/dev/null)))

demo-chapter: check-chapter $(VENV)/.installed
	@if [ -z "$(DEMO)" ]; then echo "chapter $(CHAPTER) has no demo; its README says how to try it"; exit 2; fi
	$(PY) $(DEMO) $(ARGS)

progress: $(VENV)/.installed
	@if [ -z "$(SERVER)" ]; then echo "usage: make progress SERVER='python my_server.py --port {port}'"; exit 2; fi
	$(PY) tools/progress.py --server "$(SERVER)"

start: $(VENV)/.installed
	@$(PY) tools/start.py "$(DIR)"

bench: $(VENV)/.installed
	$(PY) tools/bench.py $(if $(CHAPTERS),--chapters $(CHAPTERS)) $(if $(PEERS),--peers "$(PEERS)")

redis-suite: check-chapter $(VENV)/.installed
	$(PY) tools/redis_suite.py $(CHAPTER) $(if $(REDIS_TESTS),--redis-tests "$(REDIS_TESTS)") $(if $(FILES),--files $(FILES))

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

$(CHAPTER_GOALS):
	@:

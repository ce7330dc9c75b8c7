# Every target installs what it needs first (scripts/bootstrap.sh): a fresh clone needs nothing else.
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow test-all test-peer lint coverage demo bench bench-large clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q --durations=20

# The tests behind the slow marker (README.md, Tests): the long versions of what `make test` checks.
test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow --durations=20

test-all: $(STAMP)
	$(BIN)/pytest -q -m ''

test-peer: $(STAMP)
	SHIFTSYNC_EXTRAS=dev,peer bash scripts/bootstrap.sh
	$(BIN)/pytest -q -m peer

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/python scripts/vulture_check.py

# Statement and branch coverage of the product and of the stand-in (scripts/coverage.sh).
coverage: $(STAMP)
	bash scripts/coverage.sh

demo: $(STAMP)
	$(BIN)/shiftsync demo

bench: $(STAMP)
	$(BIN)/python -m bench.peers --install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.deletes

bench-large: $(STAMP)
	$(BIN)/python -m bench.peers --install
	$(BIN)/python -m bench --large

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

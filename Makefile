# Entry points for people and CI. See README.md.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: bootstrap demo test down
bootstrap:
	bash infra/bootstrap.sh

# Each component adds its own targets in infra/make/<component>.mk.
-include infra/make/*.mk

# Landing data: `make data` writes $(DATA_OUT)/user_interactions and
# $(DATA_OUT)/user_metadata with `python -m datagen` (see --help for every option).
#   make data EVENTS=1000000 MODE=realistic
#   make data MODE=challenge FORMAT=parquet LAYOUT=date-folders
#   make data BAD_BATCH=out_of_set DATA_OUT=.local/landing-bad
DATA_OUT ?= .local/landing
MODE ?= realistic
EVENTS ?= 1000000
USERS ?=
DAYS ?= 365
START_DATE ?= 2023-01-01
FORMAT ?= csv
LAYOUT ?= file
METADATA_LAYOUT ?= file
SEED ?= 42
MALFORMED_SHARE ?=
BAD_BATCH ?=

DATAGEN_ARGS = --mode $(MODE) --out $(DATA_OUT) --events $(EVENTS) --days $(DAYS) \
	--start-date $(START_DATE) --format $(FORMAT) --layout $(LAYOUT) \
	--metadata-layout $(METADATA_LAYOUT) --seed $(SEED) \
	$(if $(USERS),--users $(USERS)) \
	$(if $(MALFORMED_SHARE),--malformed-share $(MALFORMED_SHARE)) \
	$(if $(BAD_BATCH),--bad-batch $(BAD_BATCH))

.PHONY: data datagen-test
data:
	$(PY) -m datagen $(DATAGEN_ARGS)

datagen-test:
	$(PY) -m pytest tests/unit/test_datagen.py -q

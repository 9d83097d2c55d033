# Single-node YARN (ResourceManager + NodeManager) and the Spark History Server.
# `make yarn-start` starts all three; `eval "$$(infra/hadoop.sh env)"` then
# sends spark-submit / SPARK_MASTER=yarn jobs to it.
.PHONY: hadoop-install yarn-start yarn-stop yarn-status yarn-env history-start history-stop test-yarn

hadoop-install:
	bash infra/hadoop.sh install

yarn-start:
	bash infra/hadoop.sh start

yarn-stop:
	bash infra/hadoop.sh stop

yarn-status:
	bash infra/hadoop.sh status

yarn-env:
	@bash infra/hadoop.sh env

history-start:
	bash infra/hadoop.sh history-start

history-stop:
	bash infra/hadoop.sh history-stop

test-yarn:
	$(PY) -m pytest -q tests/e2e/test_yarn.py

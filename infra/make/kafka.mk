# One Kafka broker in KRaft mode on localhost (infra/kafka.sh) and the speed layer that reads it.
# `make kafka-produce` replays make demo's landing events into the `interactions` topic.
.PHONY: kafka-install kafka-start kafka-stop kafka-status kafka-produce test-kafka

KAFKA_RATE ?= 10000

kafka-install:
	bash infra/kafka.sh install

kafka-start:
	bash infra/kafka.sh start

kafka-stop:
	bash infra/kafka.sh stop

kafka-status:
	bash infra/kafka.sh status

kafka-produce:
	$(PY) -m speed_layer.producer --rate $(KAFKA_RATE) $(PRODUCER_ARGS)

test-kafka:
	$(PY) -m pytest -q tests/e2e/test_kafka.py

# The speed layer (infra/stream.sh): Kafka -> live Iceberg tables; STREAM_ARGS go to spark_jobs/stream.py.
.PHONY: stream-start stream-stop stream-status stream-reconcile test-stream
stream-start:
	bash infra/stream.sh start $(STREAM_ARGS)

stream-stop:
	bash infra/stream.sh stop

stream-status:
	bash infra/stream.sh status

stream-reconcile:
	$(PY) -m spark_jobs.live_reconcile $(RECONCILE_ARGS)

test-stream:
	$(PY) -m pytest -q tests/e2e/test_stream.py

# One Kafka broker in KRaft mode on localhost (infra/kafka.sh), for the speed layer.
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

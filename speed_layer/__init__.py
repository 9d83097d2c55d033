"""The speed layer: interaction events through Kafka (docs/architecture.md)."""

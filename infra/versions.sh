# Every downloaded artifact's version, in one place. Checksums: checksums.sha256.
ICEBERG_VERSION=1.10.1
SPARK_SCALA_SUFFIX=4.0_2.13
# pyspark's (requirements.txt): Spark's Kafka source, pinned in infra/spark-kafka/lib.sha256.
SPARK_VERSION=4.0.1
POSTGRES_JDBC_VERSION=42.7.8
# Hadoop's local file system without a chmod process per file written (iceberg_catalog.config).
BARE_LOCAL_FS_VERSION=0.1.0
# Single-node YARN (ResourceManager + NodeManager); jars pinned in infra/hadoop/lib.sha256.
HADOOP_VERSION=3.5.0
# Trino server-core + Iceberg plugin + CLI (one version for all three); needs Java 24+.
TRINO_VERSION=476
# One Kafka broker in KRaft mode; jars pinned in infra/kafka/lib.sha256.
KAFKA_VERSION=4.1.1

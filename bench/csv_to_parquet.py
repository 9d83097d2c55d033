"""Baseline for the ingest benchmark: the same landing parse and validation as the
ingest job, written to plain Parquet files instead of Iceberg tables.

    spark-submit --py-files .local/dist/pipeline.zip bench/csv_to_parquet.py \
        --interactions DIR --metadata DIR --out DIR --run-id ID

Same SparkSession settings, same reading and classification
(spark_jobs.ingest.classify_landing_interactions; read_landing for the metadata);
only the sink differs, so the ratio ingest / this is what the Iceberg tables (and
the job's bookkeeping) cost.
"""
from __future__ import annotations

import argparse
import sys

from spark_jobs.common import DateRange
from spark_jobs.ingest import classify_landing_interactions
from spark_jobs.landing import read_landing
from spark_jobs.spark_session import build_spark_session
from spark_jobs.transforms import ingest as T


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interactions", required=True)
    ap.add_argument("--metadata", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--run-id", required=True)
    args = ap.parse_args(argv)
    spark = build_spark_session(f"csv_to_parquet {args.run_id}")
    classified, rejectable = classify_landing_interactions(spark, args.interactions, DateRange())
    (T.accepted_interactions(classified).write.mode("overwrite").partitionBy("event_date")
     .option("compression", "zstd").parquet(f"{args.out}/interactions"))
    T.rejected_interactions(rejectable, args.run_id).write.mode("overwrite").parquet(f"{args.out}/rejected_interactions")
    meta = T.classify_metadata(read_landing(spark, args.metadata, T.METADATA_FIELDS, DateRange())).persist()
    T.accepted_metadata(meta).write.mode("overwrite").parquet(f"{args.out}/user_metadata")
    T.rejected_metadata(meta, args.run_id).write.mode("overwrite").parquet(f"{args.out}/rejected_metadata")
    meta.unpersist()
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])

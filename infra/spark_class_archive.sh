#!/usr/bin/env bash
# Writes $PLATFORM_STATE/jvm/spark-driver.jsa: a class data sharing archive of
# the classes a Spark driver of this project loads. Every driver the project
# starts maps it (iceberg_catalog.config.spark_driver_conf) instead of finding,
# reading and verifying some 15,000 classes in jars, which is most of what a
# spark-submit on small data spends before its first job (docs/performance.md).
# The classes are those one small gated run of every stage loads, in a scratch
# catalog dropped afterwards. Made again when java, Spark or the catalog jars
# change; a stale archive costs a warning, and the JVM loads from the jars.
. "$(dirname "$0")/lib.sh"
ensure_platform_env
cd "$PLATFORM_HOME"
export PATH="$PLATFORM_HOME/.venv/bin:$PATH"  # spark-submit finds pyspark through python3
PY="$PLATFORM_HOME/.venv/bin/python"
archive="$PLATFORM_STATE/jvm/spark-driver.jsa"

jars="$("$PY" -c 'from iceberg_catalog.config import spark_jars; print(",".join(spark_jars()))')"
# The driver's class path and file system as spark_driver_conf gives them.
local_fs="$("$PY" -c 'from iceberg_catalog.config import spark_driver_conf as c; print(c()["spark.driver.extraClassPath"])')"
fs_impl="$("$PY" -c 'from iceberg_catalog.config import spark_driver_conf as c; print(c()["spark.hadoop.fs.file.impl"])')"
key="$({ java -version 2>&1; "$PY" -c 'import pyspark; print(pyspark.__version__)'; echo "$jars $local_fs"; } | sha256sum | cut -d' ' -f1)"
if [ -f "$archive" ] && [ "$(cat "$archive.key" 2>/dev/null)" = "$key" ]; then
  exit 0
fi

log "writing the Spark driver's class archive $archive (once, about 2 minutes)"
work="$(mktemp -d)"
# spark-submit's own classpath, the one spark_driver_conf maps the archive for.
unset SPARK_CONF_DIR
export ICEBERG_CATALOG_DB=iceberg_class_archive ICEBERG_WAREHOUSE="$work/warehouse" LANDING_DIR="$work/landing" \
  DATA_DOCS_DIR="$work/data_docs" GX_RESULTS_DIR="$work/gx" SPARK_EVENT_LOG_DIR="file:$work/events"
drop_catalog() {
  bash infra/postgres.sh drop-database "$ICEBERG_CATALOG_DB" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap drop_catalog EXIT
bash infra/postgres.sh start  # creates $ICEBERG_CATALOG_DB
bash infra/package.sh >/dev/null
"$PY" -m datagen --mode realistic --out "$LANDING_DIR" --events 2000 --users 200 \
  --start-date 2023-07-01 --days 3 --seed 7 > "$work/datagen.log" 2>&1 ||
  { cat "$work/datagen.log" >&2; die "the class archive's sample data failed"; }
mkdir -p "$(dirname "$archive")"
rm -f "$archive.part"
spark-submit --master 'local[*]' --jars "$jars" --driver-class-path "$local_fs" \
  --conf "spark.hadoop.fs.file.impl=$fs_impl" \
  --conf "spark.driver.extraJavaOptions=-XX:ArchiveClassesAtExit=$archive.part" \
  --py-files "$PLATFORM_STATE/dist/pipeline.zip" spark_jobs/pipeline.py \
  --run-id class_archive --branch wap_class_archive > "$work/run.log" 2>&1 ||
  { tail -40 "$work/run.log" >&2; die "the class archive's pipeline run failed"; }
[ -s "$archive.part" ] || { tail -40 "$work/run.log" >&2; die "the JVM wrote no class archive"; }
mv "$archive.part" "$archive"
echo "$key" > "$archive.key"
log "class archive written ($(du -h "$archive" | cut -f1))"

#!/usr/bin/env bash
# Builds .local/dist/pipeline.zip: the Python packages spark-submit ships to the
# driver and executors with --py-files (the same zip serves local and YARN).
. "$(dirname "$0")/lib.sh"
dist="$PLATFORM_STATE/dist"
mkdir -p "$dist"
cd "$PLATFORM_HOME"
tmp="$(mktemp -u "$dist/pipeline.XXXX.zip")"
python3 - "$tmp" <<'PY'
import sys, zipfile, pathlib
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for pkg in ("spark_jobs", "iceberg_catalog"):
        for f in sorted(pathlib.Path(pkg).rglob("*.py")):
            z.write(f)
PY
mv "$tmp" "$dist/pipeline.zip"
echo "$dist/pipeline.zip"

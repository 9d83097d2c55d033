"""Reads landing files (CSV with a header, or Parquet; one file or a tree with
Hive-style ``name=value`` folders) into string columns for validation.

A CSV file is read as lines of bytes (Spark's text source, which keeps a line's
bytes as they are), so that every physical line but the header becomes a row,
blank or not valid UTF-8 included (transforms.ingest.LINE_REASONS)."""
from __future__ import annotations

import csv
import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.common import DateRange
from spark_jobs.transforms.ingest import CORRUPT, LINE_REJECT, parse_csv_lines


class LandingInputError(RuntimeError):
    pass


def _list_files(spark: SparkSession, path: str) -> tuple[list[str], list[str]]:
    """The data files under ``path``, named as Spark's ``_metadata.file_path`` names
    them (a URI: a space is ``%20``) so they can key what Spark reads, and the
    names of the Hive-style ``name=value`` folders below ``path``."""
    hpath = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hpath):
        raise LandingInputError(f"input not found: {path}")
    root = fs.makeQualified(hpath).toUri().getRawPath().rstrip("/")
    files, partitions, it = [], [], fs.listFiles(hpath, True)
    while it.hasNext():
        # Parsed again from its string, the Path has the URI Spark names the file by
        # ("file:/a%20b", where the listed Path's own URI is "file:///a%20b").
        uri = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(it.next().getPath().toString()).toUri()
        below_root = uri.getRawPath()[len(root):].split("/")
        # Spark skips what lies under a hidden name below the root ("_x", ".x"; not "_x=1").
        if any(n.startswith(".") or (n.startswith("_") and "=" not in n) for n in below_root):
            continue
        files.append(uri.toString())
        for folder in below_root[:-1]:
            if "=" in folder and folder.split("=", 1)[0] not in partitions:
                partitions.append(folder.split("=", 1)[0])
    if not files:
        raise LandingInputError(f"input {path} contains no data files")
    return files, partitions


def landing_bytes(spark: SparkSession, path: str) -> int:
    """The size of the files under ``path``; 0 when it does not exist (the reader then says so)."""
    hpath = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs.getContentSummary(hpath).getLength() if fs.exists(hpath) else 0


def read_landing(spark: SparkSession, path: str, fields: list[str], date_range: DateRange) -> DataFrame:
    """String columns ``fields`` + ``_corrupt_record`` + ``_line_reject`` +
    ``source_file`` + ``folder_date`` (from a ``date=`` folder, else NULL). A
    ``date=`` tree is pruned to the run's dates; a flat file is read whole.

    A CSV file gives one row per physical line but its header (the first
    non-blank line, checked against ``fields`` as Spark's CSV reader checks it),
    split by Spark's CSV parser as its CSV reader splits it; a line that cannot
    be a row has its reason in ``_line_reject`` (transforms.ingest.parse_csv_lines).
    """
    files, partitions = _list_files(spark, path)
    file_fields = [f for f in fields if f not in partitions]
    is_parquet = all(f.endswith(".parquet") for f in files)
    if is_parquet:
        df = spark.read.parquet(path)
        missing = [f for f in fields if f not in df.columns]
        if missing:
            raise LandingInputError(f"{path}: Parquet schema lacks columns {missing}; found {df.columns}")
        casts = []
        for f in fields:
            dtype = dict(df.dtypes)[f]
            col = F.date_format(F.col(f), "yyyy-MM-dd HH:mm:ss") if dtype == "timestamp" else F.col(f).cast("string")
            casts.append(col.alias(f))
        df = df.select(*casts, *[c for c in partitions if c not in fields], F.lit(None).cast("string").alias(CORRUPT),
                       F.lit(None).cast("string").alias(LINE_REJECT), F.col("_metadata.file_path").alias("source_file"))
        df = _with_folder_date(df, partitions, date_range)
    else:
        headers = _header_lines(spark, [f for f in files if _in_folder_range(f, date_range)], file_fields)
        folders = [F.col(p).cast("string").alias(p) if p in fields else F.col(p) for p in partitions]
        lines = spark.read.text(path).select(F.col("value").alias("line"), *folders,
                                             F.col("_metadata.file_path").alias("source_file"))
        body = without_header_lines(_with_folder_date(lines, partitions, date_range), headers)
        df = parse_csv_lines(body, file_fields, keep=tuple(f for f in fields if f in partitions))
    return df.select(*fields, CORRUPT, LINE_REJECT, "source_file", "folder_date")


def header_line(headers: dict[str, str]) -> Column:
    """Whether ``line`` is its ``source_file``'s header line (read_csv_lines's ``headers``)."""
    if not headers:
        return F.lit(False)
    file_header = F.create_map(*[F.lit(x) for pair in headers.items() for x in pair])[F.col("source_file")]
    return F.coalesce(F.col("line") == file_header, F.lit(False))


def without_header_lines(lines: DataFrame, headers: dict[str, str]) -> DataFrame:
    """``lines`` less one header line of each file: the lines equal to a file's
    header are all alike, so which of them the CSV reader took as the header
    does not matter, only that the others stay (as rows it rejects). The lines
    are read twice, the second time for the few header lines only."""
    if not headers:
        return lines
    is_header = header_line(headers)
    repeated = (lines.where(is_header)
                .withColumn("_nth", F.row_number().over(Window.partitionBy("source_file").orderBy("line")))
                .where(F.col("_nth") > 1).drop("_nth"))
    return lines.where(~is_header).unionByName(repeated)


def _with_folder_date(df: DataFrame, partitions: list[str], date_range: DateRange) -> DataFrame:
    if "date" not in partitions:
        return df.withColumn("folder_date", F.lit(None).cast("date"))
    df = df.withColumn("folder_date", F.col("date").cast("date"))
    return df.where(date_range.contains(F.col("folder_date")))


def read_csv_lines(spark: SparkSession, path: str, fields: list[str],
                   date_range: DateRange) -> tuple[DataFrame, dict[str, str]] | None:
    """The landing's lines as read_landing reads them, for callers that split
    plain lines more cheaply than Spark's CSV parser does: ``line`` (the bytes
    as read: see transforms.ingest.line_reject), ``source_file`` and
    ``folder_date``, blank and header lines included;
    and the header line of each file read that has one (see _header_lines). None when
    the landing is not CSV files that hold every field (Parquet, or a field given
    by folder names)."""
    files, partitions = _list_files(spark, path)
    if any(f.endswith(".parquet") for f in files) or any(f in partitions for f in fields):
        return None
    # Every file the run reads is checked: one with no header, its first line plain
    # data, fails here as the reader fails on it, instead of passing unnoticed.
    headers = _header_lines(spark, [f for f in files if _in_folder_range(f, date_range)], fields)
    lines = spark.read.text(path).select(F.col("value").alias("line"), "*",
                                         F.col("_metadata.file_path").alias("source_file"))
    return _with_folder_date(lines, partitions, date_range).select("line", "source_file", "folder_date"), headers


def _header_lines(spark: SparkSession, files: list[str], fields: list[str]) -> dict[str, str]:
    """The header line of each file that has one (a blank file has none), checked
    against ``fields`` as Spark's CSV reader checks it (``enforceSchema`` off):
    same columns, in order, any case."""
    headers = {}
    for file in files:
        header = _header_line(spark, file)
        if header is None:
            continue
        names = next(csv.reader([header]))
        if [n.lower() for n in names] != [f.lower() for f in fields]:
            raise LandingInputError(f"{file}: the header has columns {names}; expected {fields}")
        headers[file] = header
    return headers


def _in_folder_range(file: str, date_range: DateRange) -> bool:
    """Whether the run reads ``file``: its ``date=`` folder, if any, is in the range."""
    folders = dict(part.split("=", 1) for part in file.split("/")[:-1] if "=" in part)
    if "date" not in folders or date_range.everything:
        return True
    try:
        return date_range.start <= dt.date.fromisoformat(folders["date"]) <= date_range.end
    except ValueError:
        return False


def _header_line(spark: SparkSession, file: str) -> str | None:
    """The file's first non-blank line, the one Spark's CSV reader takes as its header."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hpath = jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(file))
    stream = hpath.getFileSystem(conf).open(hpath)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(hpath)
    if codec is not None:
        stream = codec.createInputStream(stream)
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
    try:
        first = True
        while (line := reader.readLine()) is not None:
            if first:
                line = line.removeprefix("\ufeff")  # Hadoop's line reader skips a UTF-8 byte order mark
                first = False
            if any(c > " " for c in line):  # the CSV reader skips lines that Java's trim() empties
                return line
        return None
    finally:
        reader.close()

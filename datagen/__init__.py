"""Synthetic landing data: `python -m datagen --mode challenge|realistic --out DIR`
writes DIR/user_interactions/, DIR/user_metadata/ and DIR/_manifest.json, the same
bytes for the same arguments (the modes and every flag: `python -m datagen --help`).

Modules
  domains    value domains of the public challenge, shape constants of realistic mode
  config     Config: the parameters of a run
  rows       Rows (a chunk of landing text), random streams per chunk, ids and dates as text
  users      the realistic "world" of users; metadata rows of both modes
  events     interaction events: challenge draws, realistic sessions
  anomalies  planted anomalies (usage burst, latency spike) and bad batches
  malformed  malformed rows, exact duplicates, line faults
  output     CSV lines, the Sink (CSV or Parquet, file or Hive-style folders), the manifest
  generate   run(): chunks, their finishing, publishing, the manifest
  cli        argument parsing and main(); __main__ runs it
"""

"""Reads a topic's Parquet export as an analyst would: the directory DIR
(`<prefix>/export/<topic>`, hive-style `partition=N` folders) as a pyarrow
dataset, one JSON line per row sorted by partition and offset, then the
same files through DuckDB's read_parquet as a last line
{"duckdb": {"rows": N, "distinct": M}}.

usage: read_export.py DIR
"""
import glob
import json
import sys

import duckdb
import pyarrow.dataset as ds


def text(value):
    return None if value is None else value.decode()


def main():
    root = sys.argv[1]
    files = glob.glob(f"{root}/partition=*/*.parquet")
    rows = []
    if files:
        # The files, not the directory: a file being written is not one
        # yet (a local store stages it under another name).
        dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=root)
        for row in dataset.to_table().to_pylist():
            rows.append({
                "partition": row["partition"],
                "offset": row["offset"],
                "timestamp": int(row["timestamp"].timestamp() * 1000),
                "timestamp_type": row["timestamp_type"],
                "key": text(row["key"]),
                "value": text(row["value"]),
                "headers": [[h["key"], text(h["value"])] for h in row["headers"]],
            })
    rows.sort(key=lambda r: (r["partition"], r["offset"]))
    for row in rows:
        print(json.dumps(row))
    counted = {"rows": 0, "distinct": 0}
    if files:
        rows_n, distinct = duckdb.sql(
            f"SELECT count(*), count(DISTINCT (partition, \"offset\")) "
            f"FROM read_parquet('{root}/*/*.parquet', hive_partitioning = true)"
        ).fetchone()
        counted = {"rows": rows_n, "distinct": distinct}
    print(json.dumps({"duckdb": counted}))


main()

"""Reads a topic's Parquet export as an analyst would: the directory
(`<prefix>/export/<topic>`, hive-style `partition=N` folders) in a local
path or an S3 bucket as a pyarrow dataset, one JSON line per row sorted by
partition and offset; then DuckDB counts them, as a last line
{"duckdb": {"rows": N, "distinct": M}}: with read_parquet over local
files, over the dataset for S3 (DuckDB's S3 support is an extension this
machine cannot download).

usage: read_export.py DIR
       read_export.py s3://BUCKET/PREFIX/export/TOPIC ENDPOINT   (test credentials)
"""
import glob
import json
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs

from rows import print_rows


def files_of(root):
    """The export files under `root` (not files being written: a local
    store stages them under other names), the filesystem, the base dir."""
    if not root.startswith("s3://"):
        return glob.glob(f"{root}/partition=*/*.parquet"), None, root
    endpoint = sys.argv[2].split("://", 1)
    s3 = fs.S3FileSystem(endpoint_override=endpoint[1], scheme=endpoint[0], access_key="test",
                         secret_key="test", region="us-east-1")
    base = root[len("s3://"):]
    found = s3.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    return [f.path for f in found if f.path.endswith(".parquet")], s3, base


def main():
    root = sys.argv[1]
    files, filesystem, base = files_of(root)
    counted = {"rows": 0, "distinct": 0}
    if not files:
        print(json.dumps({"duckdb": counted}))
        return
    # Files of JSON values gain columns as fields appear: the union of
    # their schemas, as analysts read an evolving table.
    schema = pa.unify_schemas([pq.read_schema(f, filesystem=filesystem) for f in files])
    schema = schema.append(pa.field("partition", pa.int32()))
    partitioning = ds.partitioning(pa.schema([("partition", pa.int32())]), flavor="hive")
    dataset = ds.dataset(files, schema=schema, filesystem=filesystem, format="parquet",
                         partitioning=partitioning, partition_base_dir=base)
    exported = dataset.to_table()
    print_rows(exported)
    source = "exported" if filesystem else \
        f"read_parquet('{root}/*/*.parquet', hive_partitioning = true, union_by_name = true)"
    rows_n, distinct = duckdb.sql(
        f"SELECT count(*), count(DISTINCT (partition, \"offset\")) FROM {source}").fetchone()
    print(json.dumps({"duckdb": {"rows": rows_n, "distinct": distinct}}))


main()

"""Reads a topic's Iceberg table as an analyst would, with pyiceberg:
through Silt's REST catalog (the bucket's endpoint and region come from
the catalog), one JSON line per row sorted by partition and offset, as
read_export.py prints them; then a last line
{"iceberg": {...}} with what the table's own metadata file (loaded
without the catalog) scans, a scan of partition 1 alone, and the number
of snapshots and data files.

usage: read_iceberg.py CATALOG_URI TOPIC [S3_ENDPOINT]   (test credentials)
"""
import json
import sys

from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.expressions import EqualTo
from pyiceberg.table import StaticTable

from rows import print_rows


def main():
    uri, topic = sys.argv[1], sys.argv[2]
    credentials = {}
    if len(sys.argv) > 3:
        credentials = {"s3.access-key-id": "test", "s3.secret-access-key": "test"}
    catalog = RestCatalog("silt", uri=uri, **credentials)
    assert ("silt",) in catalog.list_namespaces()
    assert ("silt", topic) in catalog.list_tables("silt")
    table = catalog.load_table(f"silt.{topic}")
    print_rows(table.scan().to_arrow())

    static_properties = dict(credentials)
    if len(sys.argv) > 3:
        static_properties.update({"s3.endpoint": sys.argv[3], "s3.region": "us-east-1"})
    static = StaticTable.from_metadata(table.metadata_location, properties=static_properties)
    positions = static.scan(selected_fields=("partition", "offset")).to_arrow().to_pylist()
    partition_1 = table.scan(row_filter=EqualTo("partition", 1)).to_arrow()
    print(json.dumps({"iceberg": {
        "static_rows": len(positions),
        "static_distinct": len({(p["partition"], p["offset"]) for p in positions}),
        "partition_1_rows": partition_1.num_rows,
        "snapshots": len(table.metadata.snapshots),
        "files": table.inspect.files().num_rows,
        "metadata_location": table.metadata_location,
    }}))


main()

"""Prints a table's rows as the export tests read them: one JSON line per
row, sorted by partition and offset, the timestamp in milliseconds, keys,
values and header values as text."""
import json


def text(value):
    return None if value is None else value.decode()


def print_rows(table):
    rows = []
    for row in table.to_pylist():
        row["timestamp"] = int(row["timestamp"].timestamp() * 1000)
        row["headers"] = [[h["key"], text(h["value"])] for h in row["headers"]]
        rows.append({k: text(v) if isinstance(v, bytes) else v for k, v in row.items()})
    rows.sort(key=lambda r: (r["partition"], r["offset"]))
    for row in rows:
        print(json.dumps(row))

"""Produces COUNT keyed messages `PREFIX-<i>` with kafka-python's default
producer settings and prints `key partition offset` for each acknowledged one.

usage: produce.py BOOTSTRAP TOPIC PREFIX COUNT
"""
import sys

from kafka import KafkaProducer


def main():
    bootstrap, topic, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    futures = []
    for i in range(count):
        key = f"{prefix}-{i}".encode()
        futures.append((key, producer.send(topic, key=key, value=b"python-value-" + key)))
    producer.flush()
    for key, future in futures:
        meta = future.get(timeout=30)
        print(f"{key.decode()} {meta.partition} {meta.offset}")
    producer.close()


if __name__ == "__main__":
    main()

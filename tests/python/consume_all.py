"""Reads every partition of a topic from the beginning with kafka-python
(default settings, no consumer group) and prints `partition offset key` per
message, until COUNT messages arrived or TIMEOUT seconds passed.

usage: consume_all.py BOOTSTRAP TOPIC COUNT TIMEOUT
"""
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def main():
    bootstrap, topic, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    deadline = time.time() + timeout
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = None
    while not partitions and time.time() < deadline:
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        sys.exit(f"topic {topic} not found")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen = 0
    out = sys.stdout
    while seen < count and time.time() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=10000).values():
            for r in records:
                key = r.key.decode() if r.key is not None else ""
                out.write(f"{r.partition} {r.offset} {key}\n")
                seen += 1
    consumer.close()


if __name__ == "__main__":
    main()

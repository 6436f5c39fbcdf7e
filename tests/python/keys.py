"""Shared by the test scripts: read a topic from the beginning."""
import time

from kafka import KafkaConsumer, TopicPartition


def print_keys(bootstrap, topic, count, deadline, **config):
    """Reads every partition of `topic` from the beginning (a consumer
    with `config`, no group) and prints each message's key, until `count`
    arrived or the `deadline` (time.time()) passed."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **config)
    partitions = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen = 0
    while seen < count and time.time() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for r in records:
                print(r.key.decode())
                seen += 1
    consumer.close()

"""A kafka-python transactional producer: commits COUNT messages
`py-committed-i`, aborts COUNT messages `py-aborted-i` (interleaved with
the commits: one transaction of each, alternating), then reads the topic
from the beginning with a read_committed consumer and prints the key of
every message it reads, until the committed ones all arrived or TIMEOUT
seconds passed.

usage: transactional.py BOOTSTRAP TOPIC COUNT TIMEOUT
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def main():
    bootstrap, topic, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    deadline = time.time() + timeout
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="py-txn")
    producer.init_transactions()
    for i in range(count):
        producer.begin_transaction()
        producer.send(topic, key=f"py-committed-{i}".encode(), value=b"v")
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, key=f"py-aborted-{i}".encode(), value=b"v")
        producer.flush()
        producer.abort_transaction()
    producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
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


if __name__ == "__main__":
    main()

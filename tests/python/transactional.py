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

from kafka import KafkaProducer
from keys import print_keys


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

    print_keys(bootstrap, topic, count, deadline, isolation_level="read_committed")


if __name__ == "__main__":
    main()

"""kafka-python over TLS: produces COUNT messages `tls-i` to TOPIC through
an SSL listener (trusting CAFILE; with CERT and KEY, a client certificate),
then reads the topic from the beginning and prints each key it reads,
until COUNT arrived or TIMEOUT seconds passed.

usage: tls_roundtrip.py BOOTSTRAP TOPIC COUNT TIMEOUT CAFILE [CERT KEY]
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def main():
    bootstrap, topic, count, timeout, cafile = sys.argv[1:6]
    count, timeout = int(count), float(timeout)
    tls = {"security_protocol": "SSL", "ssl_cafile": cafile}
    if len(sys.argv) > 7:
        tls.update(ssl_certfile=sys.argv[6], ssl_keyfile=sys.argv[7])
    deadline = time.time() + timeout
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **tls)
    for i in range(count):
        producer.send(topic, key=f"tls-{i}".encode(), value=b"v")
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **tls)
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

"""kafka-python over TLS: produces COUNT messages `tls-i` to TOPIC through
an SSL listener (trusting CAFILE; with CERT and KEY, a client certificate),
then reads the topic from the beginning and prints each key it reads,
until COUNT arrived or TIMEOUT seconds passed.

usage: tls_roundtrip.py BOOTSTRAP TOPIC COUNT TIMEOUT CAFILE [CERT KEY]
"""
import sys
import time

from kafka import KafkaProducer
from keys import print_keys


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
    print_keys(bootstrap, topic, count, deadline, **tls)


if __name__ == "__main__":
    main()

"""kafka-python with SASL: produces COUNT messages `sasl-i` to TOPIC as
USER with PASSWORD over MECHANISM (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
on a SASL_PLAINTEXT listener, or SASL_SSL when CAFILE is given, then reads
the topic from the beginning and prints each key it reads, until COUNT
arrived or TIMEOUT seconds passed.

usage: sasl_roundtrip.py BOOTSTRAP TOPIC COUNT TIMEOUT MECHANISM USER PASSWORD [CAFILE]
"""
import sys
import time

from kafka import KafkaProducer
from keys import print_keys


def main():
    bootstrap, topic, count, timeout, mechanism, user, password = sys.argv[1:8]
    count, timeout = int(count), float(timeout)
    sasl = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }
    if len(sys.argv) > 8:
        sasl.update(security_protocol="SASL_SSL", ssl_cafile=sys.argv[8])
    deadline = time.time() + timeout
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **sasl)
    for i in range(count):
        producer.send(topic, key=f"sasl-{i}".encode(), value=b"v")
    producer.flush()
    producer.close()
    print_keys(bootstrap, topic, count, deadline, **sasl)


if __name__ == "__main__":
    main()

"""kafka-python with OAUTHBEARER: produces COUNT messages `oauth-i` to TOPIC
with the bearer TOKEN on a SASL_PLAINTEXT listener, then reads the topic
from the beginning and prints each key it reads, until COUNT arrived or
TIMEOUT seconds passed.

usage: oauth_roundtrip.py BOOTSTRAP TOPIC COUNT TIMEOUT TOKEN
"""
import sys
import time

from kafka import KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider
from keys import print_keys


class Token(AbstractTokenProvider):
    def __init__(self, token):
        self._token = token

    def token(self):
        return self._token


def main():
    bootstrap, topic, count, timeout, token = sys.argv[1:6]
    count, timeout = int(count), float(timeout)
    sasl = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": Token(token),
    }
    deadline = time.time() + timeout
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **sasl)
    for i in range(count):
        producer.send(topic, key=f"oauth-{i}".encode(), value=b"v")
    producer.flush()
    producer.close()
    print_keys(bootstrap, topic, count, deadline, **sasl)


if __name__ == "__main__":
    main()

"""A kafka-python consumer group member (default settings but the ones
named here). Prints `partition offset key` per message and commits after
each poll; SIGTERM closes it cleanly (LeaveGroup), SIGKILL is a crash.

usage: group_member.py BOOTSTRAP TOPIC GROUP [INSTANCE_ID]
"""
import signal
import sys

# Before the (slow) import: a SIGTERM that arrives early still closes cleanly.
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(True))

from kafka import KafkaConsumer  # noqa: E402


def main():
    bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
    instance = sys.argv[4] if len(sys.argv) > 4 else None
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        group_instance_id=instance,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        client_id="kafka-python-member",
    )
    print("started", flush=True)
    while not stop:
        batch = consumer.poll(timeout_ms=200)
        for records in batch.values():
            for r in records:
                key = r.key.decode() if r.key is not None else ""
                print(f"{r.partition} {r.offset} {key}", flush=True)
        if batch:
            consumer.commit()
    consumer.close()


if __name__ == "__main__":
    main()

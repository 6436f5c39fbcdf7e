"""Deletes the records of one partition before an offset with kafka-python's
admin client (DeleteRecords) and prints the new low watermark, or the
error's name.

usage: delete_records.py BOOTSTRAP TOPIC PARTITION OFFSET
"""
import sys

from kafka import KafkaAdminClient, TopicPartition


def main():
    bootstrap, topic, partition, offset = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        result = admin.delete_records({TopicPartition(topic, partition): offset}, timeout_ms=30000)
        for info in result.values():
            print(info["low_watermark"])
    except Exception as e:  # the test reads the error's name
        print(type(e).__name__)
    finally:
        admin.close()


if __name__ == "__main__":
    main()

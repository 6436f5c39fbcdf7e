#!/usr/bin/env bash
# Starts Apache Kafka (single-node KRaft, the jars of bench/kafka/pom.xml
# from Maven Central, copied once into $KAFKA_BENCH_HOME) with its
# client listener on 127.0.0.1:PORT and its controller on PORT+1, its log
# in DIR, and any further server properties given; waits until it
# accepts connections and prints the PID. The broker runs until killed.
# With `lib`, prints the directory of the jars (the tools' too) instead.
#
#   bench/kafka.sh PORT DIR [flush.messages=1 ...]
#   bench/kafka.sh lib
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="${KAFKA_BENCH_HOME:-/var/tmp/silt-apache-kafka}"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
lib="$home/$version/lib"
if [[ ! -f "$lib/kafka_2.13-$version.jar" || ! -f "$lib/kafka-tools-$version.jar" ]]; then
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib" >&2
fi
if [[ "$1" == lib ]]; then echo "$lib"; exit 0; fi
port="$1" dir="$2"
shift 2
mkdir -p "$dir"
cat > "$dir/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$((port + 1))
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/log
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES
printf '%s\n' "$@" >> "$dir/server.properties"
java -cp "$lib/*" kafka.tools.StorageTool format --standalone --ignore-formatted \
  -t "$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid)" -c "$dir/server.properties" > /dev/null
nohup java -Xmx1g -Dlog4j2.configurationFile="$here/kafka/log4j2.yaml" -cp "$lib/*" \
  kafka.Kafka "$dir/server.properties" > "$dir/kafka.log" 2>&1 &
pid=$!
for _ in $(seq 240); do
  if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$pid"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || { echo "Apache Kafka exited; see $dir/kafka.log" >&2; exit 1; }
  sleep 0.25
done
echo "Apache Kafka did not listen on $port; see $dir/kafka.log" >&2
kill "$pid"
exit 1

package silt;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What Java applications do with Kafka's own client, against the broker at
 * the bootstrap address: {@code java silt.Clients SCENARIO BOOTSTRAP}. Each
 * scenario checks what a user would and prints one line per check; any
 * mismatch throws, so the process exits non-zero naming it.
 */
public final class Clients {
    private static final Duration DEADLINE = Duration.ofSeconds(60);
    private static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");

    public static void main(String[] args) throws Exception {
        String bootstrap = args[1];
        switch (args[0]) {
            case "produce-consume" -> produceConsume(bootstrap);
            case "groups" -> groups(bootstrap);
            case "admin" -> admin(bootstrap);
            case "errors" -> errors(bootstrap);
            case "follow-leader" -> followLeader(bootstrap);
            default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
        }
    }

    /**
     * The producer with its defaults (idempotent, acks=all) in every codec,
     * with keys and headers; a consumer of a group (classic protocol) reads
     * everything once and commits by hand; a second member resumes at the
     * committed offsets.
     */
    static void produceConsume(String bootstrap) throws Exception {
        String topic = "java-orders";
        try (Admin admin = Admin.create(common(bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get();
        }
        Map<String, String> sent = new HashMap<>();
        for (String codec : CODECS) {
            Properties props = common(bootstrap);
            props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
                check(producer.metrics().keySet().stream().anyMatch(m -> m.name().equals("record-send-rate")), "producer metrics");
                List<java.util.concurrent.Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    String key = codec + "-" + i;
                    String value = "value " + key + " " + "x".repeat(i);
                    ProducerRecord<String, String> record = new ProducerRecord<>(topic, key, value);
                    record.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
                    record.headers().add("index", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    acks.add(producer.send(record));
                    sent.put(key, value);
                }
                producer.flush();
                for (var ack : acks) {
                    check(ack.get().offset() >= 0, "acknowledged with an offset");
                }
            }
            System.out.println("produced 200 " + codec);
        }

        Map<String, String> read = new HashMap<>();
        String group = "java-readers";
        try (KafkaConsumer<String, String> consumer = consumer(bootstrap, group, "cooperative-sticky", null)) {
            consumer.subscribe(List.of(topic));
            pollUntil(consumer, () -> read.size() >= sent.size(), record -> {
                String codec = header(record, "codec");
                check(record.key().startsWith(codec + "-"), "header codec matches the key " + record.key());
                check(header(record, "index").equals(record.key().substring(codec.length() + 1)), "header index");
                check(read.put(record.key(), record.value()) == null, "read once: " + record.key());
            });
            consumer.commitSync();
        }
        check(read.equals(sent), "read what was sent");
        System.out.println("consumed " + read.size());

        try (KafkaConsumer<String, String> consumer = consumer(bootstrap, group, "range", null)) {
            consumer.subscribe(List.of(topic));
            int[] more = {0};
            long until = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (System.nanoTime() < until) {
                more[0] += consumer.poll(Duration.ofMillis(200)).count();
            }
            check(more[0] == 0, "nothing read again after the commit, got " + more[0]);
            Set<TopicPartition> assigned = consumer.assignment();
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(assigned);
            long total = committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            check(total == sent.size(), "committed offsets sum to " + sent.size() + ", got " + total);
        }
        System.out.println("resumed at the committed offsets");
    }

    /**
     * Two static members (group.instance.id) with the range assignor share
     * the partitions; one leaves and the other takes everything.
     */
    static void groups(String bootstrap) throws Exception {
        String topic = "java-shared";
        try (Admin admin = Admin.create(common(bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get();
        }
        String group = "java-static";
        try (KafkaConsumer<String, String> first = consumer(bootstrap, group, "range", "member-1");
             KafkaConsumer<String, String> second = consumer(bootstrap, group, "range", "member-2")) {
            first.subscribe(List.of(topic));
            second.subscribe(List.of(topic));
            waitFor(() -> {
                first.poll(Duration.ofMillis(100));
                second.poll(Duration.ofMillis(100));
                return first.assignment().size() == 2 && second.assignment().size() == 2;
            }, "two members with two partitions each");
            System.out.println("assigned 2 and 2");
            try (Admin admin = Admin.create(common(bootstrap))) {
                ConsumerGroupDescription described = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                Set<String> instances = described.members().stream()
                        .map(m -> m.groupInstanceId().orElse("")).collect(Collectors.toSet());
                check(instances.equals(Set.of("member-1", "member-2")), "static members " + instances);
                check(described.partitionAssignor().equals("range"), "assignor " + described.partitionAssignor());
            }
            second.unsubscribe();
            waitFor(() -> {
                first.poll(Duration.ofMillis(100));
                return first.assignment().size() == 4;
            }, "the remaining member takes all partitions");
            System.out.println("rebalanced to 4");
        }
    }

    /** The AdminClient calls operators and tools make. */
    static void admin(String bootstrap) throws Exception {
        try (Admin admin = Admin.create(common(bootstrap))) {
            var cluster = admin.describeCluster();
            check(cluster.nodes().get().size() >= 1 && cluster.controller().get() != null, "describeCluster");
            check(cluster.clusterId().get() != null, "cluster id");
            System.out.println("describeCluster ok");

            String topic = "java-admin";
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1)
                    .configs(Map.of("retention.ms", "3600000")))).all().get();
            check(admin.listTopics().names().get().contains(topic), "listTopics");
            TopicDescription described = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(described.partitions().size() == 2 && described.topicId() != null, "describeTopics");
            System.out.println("createTopics describeTopics ok");

            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET)))).all().get();
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            check(config.get("retention.ms").value().equals("7200000"), "retention.ms altered");
            ConfigResource brokers = new ConfigResource(ConfigResource.Type.BROKER,
                    Integer.toString(cluster.nodes().get().iterator().next().id()));
            check(!admin.describeConfigs(List.of(brokers)).all().get().get(brokers).entries().isEmpty(), "broker configs");
            System.out.println("configs ok");

            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all().get();
            waitFor(() -> admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size() == 3,
                    "three partitions");
            System.out.println("createPartitions ok");

            try (KafkaProducer<String, String> producer = new KafkaProducer<>(common(bootstrap), new StringSerializer(), new StringSerializer())) {
                for (int i = 0; i < 30; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
                }
            }
            TopicPartition p0 = new TopicPartition(topic, 0);
            check(admin.listOffsets(Map.of(p0, OffsetSpec.latest())).all().get().get(p0).offset() == 30, "latest offset 30");
            check(admin.listOffsets(Map.of(p0, OffsetSpec.earliest())).all().get().get(p0).offset() == 0, "earliest offset 0");
            check(admin.listOffsets(Map.of(p0, OffsetSpec.maxTimestamp())).all().get().get(p0).offset() == 29, "max timestamp offset 29");
            admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(10))).all().get();
            check(admin.listOffsets(Map.of(p0, OffsetSpec.earliest())).all().get().get(p0).offset() == 10, "earliest offset 10 after deleteRecords");
            System.out.println("listOffsets deleteRecords ok");

            var producers = admin.describeProducers(List.of(p0)).all().get().get(p0).activeProducers();
            check(producers.size() == 1, "one idempotent producer of partition 0, got " + producers.size());
            admin.listTransactions().all().get();
            System.out.println("describeProducers listTransactions ok");

            var logDirs = admin.describeLogDirs(cluster.nodes().get().stream().map(n -> n.id()).toList()).allDescriptions().get();
            long replicas = logDirs.values().stream().flatMap(dirs -> dirs.values().stream())
                    .flatMap(dir -> dir.replicaInfos().keySet().stream()).filter(tp -> tp.topic().equals(topic)).count();
            check(replicas == 3, "describeLogDirs lists the 3 partitions, got " + replicas);
            long size = logDirs.values().stream().flatMap(dirs -> dirs.values().stream())
                    .mapToLong(dir -> dir.replicaInfos().getOrDefault(p0, null) == null ? 0 : dir.replicaInfos().get(p0).size()).sum();
            check(size > 0, "partition 0 has a size");
            System.out.println("describeLogDirs ok");

            var elected = admin.electLeaders(ElectionType.PREFERRED, Set.of(p0)).partitions().get();
            check(elected.get(p0).filter(e -> e instanceof ElectionNotNeededException).isPresent(),
                    "no election needed: " + elected);
            System.out.println("electLeaders ok");

            String group = "java-admin-group";
            try (KafkaConsumer<String, String> consumer = consumer(bootstrap, group, "range", null)) {
                consumer.subscribe(List.of(topic));
                int[] read = {0};
                pollUntil(consumer, () -> read[0] >= 20, record -> read[0]++);
                consumer.commitSync();
            }
            check(admin.listConsumerGroups().all().get().stream().anyMatch(g -> g.groupId().equals(group)), "listConsumerGroups");
            var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            check(offsets.get(p0).offset() == 30, "committed offset 30 on partition 0");
            admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all().get();
            check(!admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().containsKey(p0), "offset deleted");
            admin.deleteConsumerGroups(List.of(group)).all().get();
            check(admin.listConsumerGroups().all().get().stream().noneMatch(g -> g.groupId().equals(group)), "group deleted");
            System.out.println("consumer groups ok");

            admin.deleteTopics(List.of(topic)).all().get();
            waitFor(() -> !admin.listTopics().names().get().contains(topic), "topic deleted");
            System.out.println("deleteTopics ok");
        }
    }

    /**
     * The errors a Java application meets, as the client surfaces Kafka's
     * error codes: each call fails with the exception it would against
     * Kafka, and nothing else breaks.
     */
    static void errors(String bootstrap) throws Exception {
        String topic = "java-errors";
        try (Admin admin = Admin.create(common(bootstrap))) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1)
                    .configs(Map.of("max.message.bytes", "2000")))).all().get();
            expect(TopicExistsException.class, () -> admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get());
            expect(InvalidPartitionsException.class, () -> admin.createTopics(List.of(new NewTopic("java-none", 0, (short) 1))).all().get());
            expect(InvalidConfigurationException.class, () -> admin.createTopics(List.of(new NewTopic("java-bad", 1, (short) 1)
                    .configs(Map.of("retention.ms", "soon")))).all().get());
            expect(UnknownTopicOrPartitionException.class, () -> admin.describeTopics(List.of("java-missing")).allTopicNames().get());
            expect(InvalidPartitionsException.class, () -> admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(1))).all().get());
            expect(GroupIdNotFoundException.class, () -> admin.deleteConsumerGroups(List.of("java-no-group")).all().get());
            System.out.println("admin errors ok");

            TopicPartition p0 = new TopicPartition(topic, 0);
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(common(bootstrap), new StringSerializer(), new StringSerializer())) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
                }
                expect(RecordTooLargeException.class, () -> producer.send(new ProducerRecord<>(topic, 0, "big", "x".repeat(5000))).get());
                check(producer.send(new ProducerRecord<>(topic, 0, "k10", "v10")).get().offset() == 10, "the producer goes on at offset 10");
            }
            System.out.println("record too large ok");

            admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(5))).all().get();
            Properties strict = common(bootstrap);
            strict.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(strict, new StringDeserializer(), new StringDeserializer())) {
                consumer.assign(List.of(p0));
                consumer.seek(p0, 2);
                expect(OffsetOutOfRangeException.class, () -> consumer.poll(Duration.ofSeconds(10)));
                consumer.seek(p0, 50);
                expect(OffsetOutOfRangeException.class, () -> consumer.poll(Duration.ofSeconds(10)));
                consumer.seek(p0, 5);
                List<Long> offsets = new ArrayList<>();
                pollUntil(consumer, () -> offsets.size() >= 6, record -> offsets.add(record.offset()));
                check(offsets.equals(List.of(5L, 6L, 7L, 8L, 9L, 10L)), "read from the log start: " + offsets);
            }
            System.out.println("offset out of range ok");

            String group = "java-errors-group";
            try (KafkaConsumer<String, String> member = consumer(bootstrap, group, "range", null)) {
                member.subscribe(List.of(topic));
                waitFor(() -> {
                    member.poll(Duration.ofMillis(100));
                    return member.assignment().size() == 2;
                }, "the member is assigned both partitions");
                Properties outsider = common(bootstrap);
                outsider.put(ConsumerConfig.GROUP_ID_CONFIG, group);
                try (KafkaConsumer<String, String> other = new KafkaConsumer<>(outsider, new StringDeserializer(), new StringDeserializer())) {
                    other.assign(List.of(p0));
                    expect(CommitFailedException.class, () -> {
                        other.commitSync(Map.of(p0, new OffsetAndMetadata(3)));
                        return null;
                    });
                }
                expect(GroupNotEmptyException.class, () -> admin.deleteConsumerGroups(List.of(group)).all().get());
                member.commitSync(Map.of(p0, new OffsetAndMetadata(7)));
                check(member.committed(Set.of(p0)).get(p0).offset() == 7, "the member commits");
            }
            System.out.println("group errors ok");

            // Deleted, then created again by the producer's metadata request
            // (auto.create.topics.enable, Kafka's default): the producer
            // finds the new topic (a new id, in Produce v13) and writes at 0.
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(common(bootstrap), new StringSerializer(), new StringSerializer())) {
                producer.send(new ProducerRecord<>(topic, 1, "before", "v")).get();
                admin.deleteTopics(List.of(topic)).all().get();
                waitFor(() -> !admin.listTopics().names().get().contains(topic), "topic deleted");
                long offset = producer.send(new ProducerRecord<>(topic, 0, "after", "v")).get().offset();
                check(offset == 0, "the re-created topic starts at 0, got " + offset);
            }
            System.out.println("deleted topic ok");
        }
    }

    /**
     * In a cluster of two brokers: an idempotent producer and an assigned
     * consumer keep working while the partition's leader moves to the other
     * broker (alterPartitionReassignments), through Kafka's
     * NOT_LEADER_OR_FOLLOWER and leader-epoch answers; every record is read
     * once, in order.
     */
    static void followLeader(String bootstrap) throws Exception {
        String topic = "java-moving";
        TopicPartition p0 = new TopicPartition(topic, 0);
        try (Admin admin = Admin.create(common(bootstrap));
             KafkaProducer<String, String> producer = new KafkaProducer<>(common(bootstrap), new StringSerializer(), new StringSerializer());
             KafkaConsumer<String, String> consumer = new KafkaConsumer<>(common(bootstrap), new StringDeserializer(), new StringDeserializer())) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            List<Long> offsets = new ArrayList<>();
            consumer.assign(List.of(p0));
            consumer.seekToBeginning(List.of(p0));
            for (int i = 0; i < 500; i++) {
                producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i));
            }
            producer.flush();
            pollUntil(consumer, () -> offsets.size() >= 500, record -> offsets.add(record.offset()));

            int from = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().get(0).leader().id();
            int to = admin.describeCluster().nodes().get().stream().mapToInt(n -> n.id()).filter(id -> id != from)
                    .findFirst().orElseThrow();
            admin.alterPartitionReassignments(Map.of(p0, Optional.of(new NewPartitionReassignment(List.of(to))))).all().get();
            waitFor(() -> admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().get(0).leader().id() == to,
                    "the leader moves to broker " + to);
            System.out.println("moved");

            List<java.util.concurrent.Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 500; i < 1000; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)));
            }
            producer.flush();
            for (var ack : acks) {
                ack.get();
            }
            pollUntil(consumer, () -> offsets.size() >= 1000, record -> offsets.add(record.offset()));
            for (int i = 0; i < offsets.size(); i++) {
                check(offsets.get(i) == i, "offset " + i + " read once, in order: got " + offsets.get(i));
            }
            check(offsets.size() == 1000, "1000 records, got " + offsets.size());
            System.out.println("followed the leader");
        }
    }

    interface Call {
        Object call() throws Exception;
    }

    /** Runs `call`, which must fail with `expected` (directly or as the cause of an ExecutionException). */
    static void expect(Class<? extends Throwable> expected, Call call) throws Exception {
        try {
            call.call();
        } catch (Exception e) {
            Throwable cause = e instanceof java.util.concurrent.ExecutionException ? e.getCause() : e;
            if (expected.isInstance(cause)) {
                return;
            }
            throw new AssertionError("expected " + expected.getSimpleName() + ", got " + cause, cause);
        }
        throw new AssertionError("expected " + expected.getSimpleName() + ", got success");
    }

    static Properties common(String bootstrap) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("client.id", "silt-java-test");
        return props;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group, String assignor, String instance) {
        Properties props = common(bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor.equals("range")
                ? "org.apache.kafka.clients.consumer.RangeAssignor"
                : "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
        if (instance != null) {
            props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instance);
        }
        return new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer());
    }

    interface Check {
        boolean holds() throws Exception;
    }

    static void waitFor(Check condition, String what) throws Exception {
        long until = System.nanoTime() + DEADLINE.toNanos();
        while (!condition.holds()) {
            if (System.nanoTime() > until) {
                throw new AssertionError("not within " + DEADLINE + ": " + what);
            }
            Thread.sleep(50);
        }
    }

    static void pollUntil(KafkaConsumer<String, String> consumer, Supplier<Boolean> done,
                          java.util.function.Consumer<ConsumerRecord<String, String>> each) {
        long until = System.nanoTime() + DEADLINE.toNanos();
        while (!done.get()) {
            if (System.nanoTime() > until) {
                throw new AssertionError("not everything read within " + DEADLINE);
            }
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
            records.forEach(each);
        }
    }

    static String header(ConsumerRecord<String, String> record, String key) {
        Header header = record.headers().lastHeader(key);
        check(header != null, "header " + key + " present");
        return new String(header.value(), StandardCharsets.UTF_8);
    }

    static void check(boolean holds, String what) {
        if (!holds) {
            throw new AssertionError("check failed: " + what);
        }
    }
}

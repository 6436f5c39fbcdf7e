// What Go services do with franz-go against the broker at the bootstrap
// address: `franz SCENARIO BOOTSTRAP`. Each scenario checks what a user
// would and prints one line per check; a mismatch exits 1 naming it.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	scenario, bootstrap := os.Args[1], os.Args[2]
	var err error
	switch scenario {
	case "produce-consume":
		err = produceConsume(ctx, bootstrap)
	case "admin":
		err = admin(ctx, bootstrap)
	default:
		err = fmt.Errorf("unknown scenario %s", scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "franz:", err)
		os.Exit(1)
	}
}

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// produceConsume: the idempotent producer (franz-go's default) in every
// codec, with keys and headers; a group consumer reads everything once and
// commits; the next member of the group resumes at the commits.
func produceConsume(ctx context.Context, bootstrap string) error {
	const topic = "franz-orders"
	adm, closeAdmin, err := newAdmin(bootstrap)
	if err != nil {
		return err
	}
	defer closeAdmin()
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	sent := map[string]string{}
	for name, codec := range codecs {
		client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
		if err != nil {
			return err
		}
		var records []*kgo.Record
		for i := 0; i < 200; i++ {
			key := fmt.Sprintf("%s-%d", name, i)
			value := "value " + key + " " + strings.Repeat("x", i)
			records = append(records, &kgo.Record{
				Key:     []byte(key),
				Value:   []byte(value),
				Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(name)}},
			})
			sent[key] = value
		}
		if err := client.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return fmt.Errorf("produce %s: %w", name, err)
		}
		client.Close()
		fmt.Println("produced 200", name)
	}

	read := map[string]string{}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup("franz-readers"),
		kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	for len(read) < len(sent) {
		fetches := consumer.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			return fmt.Errorf("poll: %v", errs)
		}
		var failed error
		fetches.EachRecord(func(r *kgo.Record) {
			key := string(r.Key)
			if len(r.Headers) != 1 || !strings.HasPrefix(key, string(r.Headers[0].Value)+"-") {
				failed = fmt.Errorf("headers of %s: %v", key, r.Headers)
			}
			if _, seen := read[key]; seen {
				failed = fmt.Errorf("read twice: %s", key)
			}
			read[key] = string(r.Value)
		})
		if failed != nil {
			return failed
		}
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	consumer.Close()
	for k, v := range sent {
		if read[k] != v {
			return fmt.Errorf("read %q for %s", read[k], k)
		}
	}
	fmt.Println("consumed", len(read))

	offsets, err := adm.FetchOffsets(ctx, "franz-readers")
	if err != nil {
		return fmt.Errorf("fetch offsets: %w", err)
	}
	var committed int64
	offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != int64(len(sent)) {
		return fmt.Errorf("committed offsets sum to %d, not %d", committed, len(sent))
	}
	fmt.Println("committed", committed)
	return nil
}

// admin: kadm's topic, config, partition, offset, record and group calls.
func admin(ctx context.Context, bootstrap string) error {
	adm, closeAdmin, err := newAdmin(bootstrap)
	if err != nil {
		return err
	}
	defer closeAdmin()
	const topic = "franz-admin"
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) == 0 {
		return fmt.Errorf("list brokers: %v %v", brokers, err)
	}
	retention := "3600000"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &retention}, topic); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil || len(topics[topic].Partitions) != 2 {
		return fmt.Errorf("list topics: %v %v", topics, err)
	}
	fmt.Println("topics ok")

	changed := "7200000"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &changed}}, topic); err != nil {
		return fmt.Errorf("alter configs: %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	config, err := configs.On(topic, nil)
	if err != nil {
		return err
	}
	found := false
	for _, c := range config.Configs {
		found = found || (c.Key == "retention.ms" && c.MaybeValue() == changed)
	}
	if !found {
		return fmt.Errorf("retention.ms not altered: %v", config.Configs)
	}
	if _, err := adm.CreatePartitions(ctx, 1, topic); err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	fmt.Println("configs and partitions ok")

	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	for i := 0; i < 30; i++ {
		if err := client.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	client.Close()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if end, _ := ends.Lookup(topic, 0); end.Offset != 30 {
		return fmt.Errorf("end offset %d, not 30", end.Offset)
	}
	deletion := kadm.Offsets{}
	deletion.Add(kadm.Offset{Topic: topic, Partition: 0, At: 10})
	if _, err := adm.DeleteRecords(ctx, deletion); err != nil {
		return fmt.Errorf("delete records: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if start, _ := starts.Lookup(topic, 0); start.Offset != 10 {
		return fmt.Errorf("start offset %d, not 10", start.Offset)
	}
	fmt.Println("offsets and records ok")

	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 20})
	if _, err := adm.CommitOffsets(ctx, "franz-admin-group", commit); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	lags, err := adm.Lag(ctx, "franz-admin-group")
	if err != nil {
		return fmt.Errorf("lag: %w", err)
	}
	if lag := lags["franz-admin-group"].Lag.TotalByTopic()[topic].Lag; lag != 10 {
		return fmt.Errorf("lag %d, not 10", lag)
	}
	if _, err := adm.DeleteGroup(ctx, "franz-admin-group"); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	fmt.Println("groups ok")

	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	fmt.Println("delete ok")
	return nil
}

func newAdmin(bootstrap string) (*kadm.Client, func(), error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(client), client.Close, nil
}

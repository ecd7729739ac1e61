// The franz-go tier: kgo and kadm, unmodified, against a running Chronik
// (CHRONIK_BOOTSTRAP). tests/integration/test_franz.py starts the broker,
// builds this package with GOPROXY=off and runs it.
package franz

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const deadline = 60 * time.Second

func bootstrap(t *testing.T) string {
	b := os.Getenv("CHRONIK_BOOTSTRAP")
	if b == "" {
		t.Fatal("CHRONIK_BOOTSTRAP is not set: run through tests/integration/test_franz.py")
	}
	return b
}

func client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ctxDeadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	ctx := ctxDeadline(t)
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// consumeN polls until n records arrived or the deadline passed.
func consumeN(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	ctx := ctxDeadline(t)
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(got), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

// Every codec, headers and keys survive a round trip with the default
// producer (idempotent, acks=all); offsets per partition are dense.
func TestProduceConsumeEveryCodec(t *testing.T) {
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	adm := kadm.NewClient(client(t))
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "franz-codec-" + name
			createTopic(t, adm, topic, 3)
			p := client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			const n = 600
			var recs []*kgo.Record
			for i := 0; i < n; i++ {
				recs = append(recs, &kgo.Record{
					Key:     []byte(fmt.Sprintf("k%d", i%17)),
					Value:   []byte(fmt.Sprintf("value-%d-%s", i, name)),
					Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}},
				})
			}
			if err := p.ProduceSync(ctxDeadline(t), recs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			c := client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := consumeN(t, c, n)
			if len(got) != n {
				t.Fatalf("got %d records, want %d", len(got), n)
			}
			next := map[int32]int64{}
			seen := map[string]bool{}
			for _, r := range got {
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
				if len(r.Headers) != 1 || r.Headers[0].Key != "i" {
					t.Fatalf("headers lost: %+v", r.Headers)
				}
				want := fmt.Sprintf("value-%s-%s", r.Headers[0].Value, name)
				if string(r.Value) != want {
					t.Fatalf("value %q, want %q", r.Value, want)
				}
				seen[string(r.Value)] = true
			}
			if len(seen) != n {
				t.Fatalf("%d distinct values, want %d", len(seen), n)
			}
		})
	}
}

// Two members with the cooperative-sticky balancer share the partitions,
// every record is consumed once, and commits are visible through kadm.
func TestCooperativeStickyGroup(t *testing.T) {
	const topic, group, n = "franz-coop", "franz-coop-group", 400
	adm := kadm.NewClient(client(t))
	createTopic(t, adm, topic, 4)
	p := client(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := p.ProduceSync(ctxDeadline(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	assigned := map[string]int{}
	member := func(name string) *kgo.Client {
		return client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ClientID(name),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				assigned[name] += len(m[topic])
				mu.Unlock()
			}))
	}
	a, b := member("a"), member("b")
	ctx := ctxDeadline(t)
	var wg sync.WaitGroup
	for _, c := range []*kgo.Client{a, b} {
		wg.Add(1)
		go func(c *kgo.Client) {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				done := len(seen) == n && assigned["a"] > 0 && assigned["b"] > 0
				mu.Unlock()
				if done {
					return
				}
				pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				fs := c.PollFetches(pctx)
				cancel()
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("consumed %d distinct records of %d", len(seen), n)
	}
	if assigned["a"] == 0 || assigned["b"] == 0 {
		t.Fatalf("both members should own partitions: %v", assigned)
	}
	for _, c := range []*kgo.Client{a, b} {
		if err := c.CommitUncommittedOffsets(ctxDeadline(t)); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	offs, err := adm.FetchOffsets(ctxDeadline(t), group)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != n {
		t.Fatalf("committed offsets sum to %d, want %d", total, n)
	}
	described, err := adm.DescribeGroups(ctxDeadline(t), group)
	if err != nil {
		t.Fatal(err)
	}
	g := described[group]
	if g.State != "Stable" || g.Protocol != "cooperative-sticky" || len(g.Members) != 2 {
		t.Fatalf("group %+v", g)
	}
}

// The admin calls franz-go users reach for: topics, partitions, configs,
// offsets, records, groups and producers.
func TestAdmin(t *testing.T) {
	const topic = "franz-admin"
	adm := kadm.NewClient(client(t))
	createTopic(t, adm, topic, 2)
	ctx := ctxDeadline(t)

	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) != 1 {
		t.Fatalf("brokers %v %v", brokers, err)
	}
	if _, err := adm.CreatePartitions(ctx, 1, topic); err != nil {
		t.Fatal(err)
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil || len(details[topic].Partitions) != 3 {
		t.Fatalf("after CreatePartitions: %+v %v", details[topic], err)
	}

	retention := "3600000"
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &retention}}, topic)
	if err != nil || alter[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, alter)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() == retention {
			found = true
		}
	}
	if !found {
		t.Fatalf("retention.ms not %s in %+v", retention, rc.Configs)
	}

	p := client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Partition: 0, Value: []byte(fmt.Sprint(i))})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets %v %v", err, ends.Error())
	}
	if e, _ := ends.Lookup(topic, 0); e.Offset != 10 {
		t.Fatalf("end offset %d, want 10", e.Offset)
	}
	var del kadm.Offsets
	del.AddOffset(topic, 0, 4, -1)
	if _, err := adm.DeleteRecords(ctx, del); err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup(topic, 0); s.Offset != 4 {
		t.Fatalf("start offset after DeleteRecords %d, want 4", s.Offset)
	}

	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int64
	producers.EachProducer(func(d kadm.DescribedProducer) { pids = append(pids, d.ProducerID) })
	if len(pids) != 1 {
		t.Fatalf("want the one idempotent producer, got %v", pids)
	}

	const group = "franz-admin-group"
	var commit kadm.Offsets
	commit.AddOffset(topic, 0, 7, -1)
	if err := adm.CommitAllOffsets(ctx, group, commit); err != nil {
		t.Fatal(err)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := listed.Groups()
	sort.Strings(names)
	if i := sort.SearchStrings(names, group); i == len(names) || names[i] != group {
		t.Fatalf("group %s not listed in %v", group, names)
	}
	lag, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := lag[group].Lag.Lookup(topic, 0); !ok || l.Lag != 3 {
		t.Fatalf("lag %+v, want 3", l)
	}
	if _, err := adm.DeleteGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	dt, err := adm.DeleteTopics(ctx, topic)
	if err != nil || dt.Error() != nil {
		t.Fatalf("delete topic %v %v", err, dt.Error())
	}
}

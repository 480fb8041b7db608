// geo-recon-native-worker: the "produce" role of a geo-recon worker, on pulsar-client-go.
//
// It reads the same worker config JSON as `geo-recon worker --config F --role produce`
// (written by the controller), sends on the same schedule (message i of a producer is
// due at start + i/rate, producers split the region's rate and are spread over topics
// round-robin), and writes the same history to RUN_DIR/history/<region>.jsonl or .arrows
// (workload.history_format: JSONL lines or Arrow record batches, see history.go):
// `invoke` before each send, then `ok` (with the message id), `fail` only when the client
// refused the message before it left the process, `info` when the outcome is unknown.
// The history is flushed and fsynced every 200 ms, as the Python writer does, so a crash
// loses at most the last interval (and may leave a torn last line or batch, which the
// reader reports). Progress and summary files have the Python worker's shape.
//
// Why it exists: the Python client calls back into Python (taking the GIL) for every
// acknowledgement, which caps a Python load generator far below what a region can take.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"
)

// The message property the checker's consumers read (geo_recon/workload/message.py): "producer seq sent_ns".
// One property, not three: pulsar-client-go v0.19.0 converts a batched message's properties twice.
const propID = "gr.id"

type workloadSpec struct {
	Rate           float64 `json:"rate"`
	DurationS      float64 `json:"duration_s"`
	MessageSize    int     `json:"message_size"`
	Keys           int     `json:"keys"`
	Producers      int     `json:"producers"`
	Topics         int     `json:"topics"`
	Batching       bool    `json:"batching"`
	ProducerDedup  bool    `json:"producer_dedup"`
	MaxOutstanding int     `json:"max_outstanding"`
	SendTimeoutMs  int     `json:"send_timeout_ms"`
	BatchDelayMs   float64 `json:"batch_delay_ms"`
	HistoryFormat  string  `json:"history_format"`
}

type workerConfig struct {
	RunID      string       `json:"run_id"`
	Region     string       `json:"region"`
	ServiceURL string       `json:"service_url"`
	TLSCA      *string      `json:"tls_ca"`
	Topics     []string     `json:"topics"`
	Workload   workloadSpec `json:"workload"`
	Seed       int64        `json:"seed"`
	StartAtNs  int64        `json:"start_at_ns"`
	RunDir     string       `json:"run_dir"`
	ClockRef   *string      `json:"clock_ref"`
	Part       int          `json:"part"`  // this process's share: producers i with i % parts == part
	Parts      int          `json:"parts"` // producer processes in the region (workload.processes)
}

// stem: the name this process's progress and summary files start with (as the Python worker's).
func (c workerConfig) stem() string {
	if c.Part == 0 {
		return c.Region + ".produce"
	}
	return fmt.Sprintf("%s.produce%d", c.Region, c.Part)
}

// historyFile: one history file per process, so no two processes share one.
func (c workerConfig) historyFile(suffix string) string {
	if c.Part == 0 {
		return c.Region + suffix
	}
	return fmt.Sprintf("%s.%d%s", c.Region, c.Part, suffix)
}

// myProducers: the producer indices this process runs.
func (c workerConfig) myProducers() []int {
	var out []int
	for i := 0; i < c.Workload.Producers; i++ {
		if i%c.Parts == c.Part {
			out = append(out, i)
		}
	}
	return out
}

// ------------------------------------------------------------------ outcomes

// definiteFailure: the client refused the message before it left this process.
// Anything else (timeouts, closed connections, a producer closed with the message in
// flight) may or may not have been stored: unknown.
func definiteFailure(err error) bool {
	for _, known := range []error{pulsar.ErrMessageTooLarge, pulsar.ErrMetaTooLarge, pulsar.ErrInvalidMessage,
		pulsar.ErrSchema, pulsar.ErrSendQueueIsFull, pulsar.ErrMemoryBufferIsFull, pulsar.ErrFailAddToBatch,
		pulsar.ErrProducerBlockedQuotaExceeded} {
		if errors.Is(err, known) {
			return true
		}
	}
	return false
}

// resultNames: the Python client's names for the results a send can end with.
var resultNames = map[pulsar.Result]string{
	pulsar.TimeoutError: "Timeout", pulsar.ProducerQueueIsFull: "ProducerQueueIsFull",
	pulsar.MessageTooBig: "MessageTooBig", pulsar.InvalidMessage: "InvalidMessage",
	pulsar.ProducerClosed: "AlreadyClosed", pulsar.ConnectError: "ConnectError",
	pulsar.TopicTerminated: "TopicTerminated", pulsar.ProducerFenced: "ProducerFenced",
	pulsar.ClientMemoryBufferIsFull: "MemoryBufferIsFull", pulsar.AddToBatchFailed: "AddToBatchFailed",
	pulsar.ProducerBlockedQuotaExceededException: "ProducerBlockedQuotaExceededException",
	pulsar.TopicNotFound:                         "TopicNotFound", pulsar.SchemaFailure: "SchemaFailure",
}

func errorName(err error) string {
	var perr *pulsar.Error
	if errors.As(err, &perr) {
		if name, ok := resultNames[perr.Result()]; ok {
			return name
		}
		return fmt.Sprintf("Result%d", perr.Result())
	}
	return strings.SplitN(err.Error(), ":", 2)[0]
}

// ------------------------------------------------------------------ counters

type counters struct {
	sent                   atomic.Int64
	_                      [56]byte // sent is counted by the producers, the rest by the client's receipt goroutines: apart
	acked, failed, unknown atomic.Int64
	mu                     sync.Mutex
	ackedBy                map[string]*atomic.Int64 // one counter a producer: no lock in the ack callback
}

// producerAcks: the counter of one producer's acknowledged sends, made before its first send.
func (c *counters) producerAcks(producer string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ackedBy[producer] == nil {
		c.ackedBy[producer] = new(atomic.Int64)
	}
	return c.ackedBy[producer]
}

func (c *counters) snapshot() map[string]any {
	c.mu.Lock()
	by := make(map[string]int64, len(c.ackedBy))
	for k, v := range c.ackedBy {
		by[k] = v.Load()
	}
	c.mu.Unlock()
	return map[string]any{
		"sent": c.sent.Load(), "acked": c.acked.Load(), "failed": c.failed.Load(), "unknown": c.unknown.Load(),
		"received": 0, "acked_by_producer": by, "distinct_by_producer": map[string]int64{},
		"lag_ms_p50": nil, "lag_ms_max": nil,
	}
}

// ------------------------------------------------------------------ schedule

func dueNs(start int64, rate float64, index int64) int64 {
	return start + int64(float64(index)*1e9/rate)
}

// keyStream: a deterministic key per seq for one producer (same seed, same keys). Not the
// Python driver's sequence (that one follows CPython's Random); keys only spread load.
type keyStream struct {
	state uint64
	keys  []string
}

func newKeyStream(seed int64, producer string, keys int) *keyStream {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d:%s", seed, producer)
	names := make([]string, keys)
	for i := range names {
		names[i] = "k" + strconv.Itoa(i)
	}
	return &keyStream{state: h.Sum64(), keys: names}
}

func (k *keyStream) next() string {
	k.state += 0x9e3779b97f4a7c15 // splitmix64
	z := k.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return k.keys[z%uint64(len(k.keys))]
}

// ------------------------------------------------------------------ worker

type worker struct {
	cfg      workerConfig
	hist     *historyWriter
	count    counters
	stopping chan struct{}
	stopped  atomic.Bool // set with stopping's close: read once a send, where a select would cost more
	phase    atomic.Value
	errMu    sync.Mutex
	errs     []string
	ratesMu  sync.Mutex
	rates    map[string]float64
}

func (w *worker) addError(msg string) {
	w.errMu.Lock()
	w.errs = append(w.errs, msg)
	w.errMu.Unlock()
}

// sendSlot: one place in a producer's window of sends in flight (see produce).
type sendSlot struct {
	msg      pulsar.ProducerMessage
	seq      int64
	callback func(pulsar.MessageID, *pulsar.ProducerMessage, error)
}

func (w *worker) produce(client pulsar.Client, index int, topic string, rate float64) {
	spec := w.cfg.Workload
	name := fmt.Sprintf("%s/p%d", w.cfg.Region, index)
	opts := pulsar.ProducerOptions{
		Topic:                   topic,
		SendTimeout:             time.Duration(spec.SendTimeoutMs) * time.Millisecond,
		DisableBatching:         !spec.Batching,
		BatchingMaxPublishDelay: batchDelay(spec.BatchDelayMs),
		MaxPendingMessages:      spec.MaxOutstanding, // and block when it is full (the default), as pulsar-perf
		// pulsar-perf's batch limits (-bm 1000, -bb 4 MiB): a batch closes at 1000 messages or the delay, as
		// pulsar-perf's do; at the client's default of 128 KiB our messages (a key and the identity property,
		// ~190 bytes on the wire) closed batches at ~690 messages, more entries a message for the broker.
		BatchingMaxMessages: 1000,
		BatchingMaxSize:     4 << 20,
	}
	if spec.ProducerDedup {
		opts.Name = fmt.Sprintf("%s-%s-p%d", w.cfg.RunID, w.cfg.Region, index)
	}
	producer, err := client.CreateProducer(opts)
	if err != nil { // the region is unreachable at start: nothing was invoked
		w.addError(fmt.Sprintf("%s: could not create a producer on %s: %v", name, topic, err))
		return
	}
	// pulsar-client-go closes a producer for good when a reconnect's lookup says "topic not found", as a
	// rebuilt region's broker does before its namespace is back (measured in region-disaster-20k: every
	// later send then failed at once). The Python client keeps retrying; so does this worker: it makes a
	// new producer, as an application would.
	var closed atomic.Bool
	payload := make([]byte, spec.MessageSize)
	for i := range payload {
		payload[i] = 'x'
	}
	total := int64(rate * spec.DurationS)
	if rate*spec.DurationS > math.MaxInt64/2 {
		total = math.MaxInt64 / 2
	}
	start := w.cfg.StartAtNs
	end := start + int64(spec.DurationS*1e9)
	keys := newKeyStream(w.cfg.Seed, name, spec.Keys)
	acks := w.count.producerAcks(name)
	src := w.hist.source(name, topic)
	var pending sync.WaitGroup
	// The window of sends in flight is its slots: a send takes one, its callback gives it back. A slot keeps
	// its message, properties map and callback from send to send (the client reads none of them once the
	// callback has run), so a send allocates neither.
	free := make(chan *sendSlot, spec.MaxOutstanding)
	made := 0
	newSlot := func() *sendSlot {
		slot := &sendSlot{msg: pulsar.ProducerMessage{Payload: payload, Properties: make(map[string]string, 1)}}
		slot.callback = func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if errors.Is(err, pulsar.ErrProducerClosed) {
				closed.Store(true)
			}
			w.complete(src, acks, slot.seq, id, err)
			free <- slot
			pending.Done()
		}
		made++
		return slot
	}
	var sent int64
	idBuf := make([]byte, 0, 64) // the gr.id property's bytes, reused from send to send
loop:
	for seq := int64(0); seq < total; seq++ {
		// a free slot first (without a select while one is free: the common case), then the clock once: the
		// send's time is read after any wait, right before its invoke is recorded
		var slot *sendSlot
		select {
		case slot = <-free:
		default:
			if made < spec.MaxOutstanding {
				slot = newSlot()
			} else {
				select {
				case <-w.stopping:
					break loop
				case slot = <-free:
				}
			}
		}
		if w.stopped.Load() {
			free <- slot
			break loop
		}
		sentNs := time.Now().UnixNano()
		if sentNs >= end {
			free <- slot
			break
		}
		if wait := dueNs(start, rate, seq) - sentNs; wait > 0 {
			select {
			case <-w.stopping:
				free <- slot
				break loop
			case <-time.After(time.Duration(wait)):
			}
			sentNs = time.Now().UnixNano()
		}
		if closed.Load() {
			if producer = w.reopen(client, opts, producer, name, end); producer == nil {
				free <- slot
				break loop
			}
			closed.Store(false)
			sentNs = time.Now().UnixNano()
		}
		key := keys.next()
		w.hist.append(sendEvent{src: src, kind: kindInvoke, time: sentNs, seq: seq, key: key})
		w.count.sent.Add(1)
		slot.seq = seq
		msg := &slot.msg
		msg.Key = key
		idBuf = strconv.AppendInt(append(strconv.AppendInt(append(append(idBuf[:0], name...), ' '), seq, 10), ' '),
			sentNs, 10)
		msg.Properties[propID] = string(idBuf)
		if spec.ProducerDedup {
			msg.SequenceID = &slot.seq
		}
		pending.Add(1)
		producer.SendAsync(context.Background(), msg, slot.callback)
		sent++
	}
	elapsed := float64(time.Now().UnixNano()-start) / 1e9
	if elapsed > spec.DurationS {
		elapsed = spec.DurationS
	}
	achieved := 0.0
	if sent > 0 && elapsed > 0 {
		achieved = math.Round(float64(sent)/elapsed*100) / 100
	}
	w.ratesMu.Lock()
	w.rates[name] = achieved
	w.ratesMu.Unlock()
	if producer != nil {
		w.finishSends(producer, &pending, name)
	} else {
		pending.Wait()
	}
}

// reopen: a new producer in place of one the client closed, tried every second until the load's end or
// a stop (nil then). Sends already given to the old one end on their own (ok, or info when closed).
func (w *worker) reopen(client pulsar.Client, opts pulsar.ProducerOptions, old pulsar.Producer, name string,
	end int64) pulsar.Producer {
	old.Close()
	for time.Now().UnixNano() < end {
		producer, err := client.CreateProducer(opts)
		if err == nil {
			fmt.Fprintf(os.Stderr, "%s: the client closed the producer; a new one was made\n", name)
			return producer
		}
		select {
		case <-w.stopping:
			return nil
		case <-time.After(time.Second):
		}
	}
	return nil
}

// finishSends: flush, wait for every callback (each send ends ok, fail or info; timeouts
// fire on their own), then close. Sends whose callback never came are named in errors.
func (w *worker) finishSends(producer pulsar.Producer, pending *sync.WaitGroup, name string) {
	_ = producer.Flush()
	done := make(chan struct{})
	go func() { pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Duration(w.cfg.Workload.SendTimeoutMs)*time.Millisecond + 30*time.Second):
		w.addError(fmt.Sprintf("%s: some sends never completed (no callback within the send timeout + 30 s)", name))
	}
	producer.Close()
}

func (w *worker) complete(src *eventSource, acks *atomic.Int64, seq int64, id pulsar.MessageID, err error) {
	now := time.Now().UnixNano()
	switch {
	case err == nil:
		w.hist.append(sendEvent{src: src, kind: kindOK, time: now, seq: seq,
			msgID: pulsarID{id.LedgerID(), id.EntryID(), id.PartitionIdx(), id.BatchIdx()}})
		w.count.acked.Add(1)
		acks.Add(1)
	default:
		kind := kindInfo
		if definiteFailure(err) {
			kind = kindFail
			w.count.failed.Add(1)
		} else {
			w.count.unknown.Add(1)
		}
		w.hist.append(sendEvent{src: src, kind: kind, time: now, seq: seq, errName: errorName(err)})
	}
}

// batchDelay: how long a batch may wait for more messages (workload.batch_delay_ms; pulsar-perf's 1 ms).
func batchDelay(ms float64) time.Duration {
	if ms <= 0 {
		ms = 1
	}
	return time.Duration(ms * float64(time.Millisecond))
}

func (w *worker) writeJSON(path string, data map[string]any) {
	raw, err := json.Marshal(data)
	if err != nil {
		return
	}
	tmp := strings.TrimSuffix(path, ".json") + ".tmp"
	if os.WriteFile(tmp, raw, 0o644) == nil {
		_ = os.Rename(tmp, path)
	}
}

func (w *worker) progress(path string) map[string]any {
	p := w.count.snapshot()
	p["region"] = w.cfg.Region
	p["phase"] = w.phase.Load()
	p["time_ns"] = time.Now().UnixNano()
	p["driver"] = "go"
	return p
}

// probeClock: the controller's clock minus ours, from the lowest-round-trip UDP probe.
func probeClock(ref *string, samples int) (int64, *int64) {
	if ref == nil || !strings.HasPrefix(*ref, "udp://") {
		return 0, nil
	}
	conn, err := net.Dial("udp", strings.TrimPrefix(*ref, "udp://"))
	if err != nil {
		return 0, nil
	}
	defer conn.Close()
	var bestOff int64
	var bestRTT int64 = -1
	buf := make([]byte, 64)
	for i := 0; i < samples; i++ {
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		t0 := time.Now().UnixNano()
		if _, err := conn.Write([]byte("t")); err != nil {
			continue
		}
		n, err := conn.Read(buf)
		t1 := time.Now().UnixNano()
		if err != nil {
			continue
		}
		remote, err := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
		if err != nil {
			continue
		}
		if rtt := t1 - t0; bestRTT < 0 || rtt < bestRTT {
			bestRTT, bestOff = rtt, remote-(t0+t1)/2
		}
	}
	if bestRTT < 0 {
		return 0, nil
	}
	return bestOff, &bestRTT
}

func run(cfg workerConfig) (map[string]any, error) {
	spec := cfg.Workload
	if spec.Producers < 1 || spec.Topics < 1 || len(cfg.Topics) < spec.Topics || spec.Rate <= 0 || spec.Keys < 1 {
		return nil, fmt.Errorf("config: producers, topics, rate and keys must be positive and topics listed")
	}
	if spec.MaxOutstanding < 1 {
		spec.MaxOutstanding = 1000
		cfg.Workload = spec
	}
	if cfg.Parts < 1 {
		cfg.Parts = 1
	}
	if cfg.Part < 0 || cfg.Part >= cfg.Parts {
		return nil, fmt.Errorf("config: part %d is not below parts %d", cfg.Part, cfg.Parts)
	}
	workers := filepath.Join(cfg.RunDir, "workers")
	if err := os.MkdirAll(workers, 0o755); err != nil {
		return nil, err
	}
	suffix, err := historySuffix(spec.HistoryFormat)
	if err != nil {
		return nil, err
	}
	hist, err := newHistoryWriter(filepath.Join(cfg.RunDir, "history", cfg.historyFile(suffix)), spec.HistoryFormat,
		cfg.Region, 200*time.Millisecond)
	if err != nil {
		return nil, err
	}
	w := &worker{cfg: cfg, hist: hist, stopping: make(chan struct{}), rates: map[string]float64{}}
	w.count.ackedBy = map[string]*atomic.Int64{}
	w.phase.Store("starting")
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		w.stopped.Store(true)
		close(w.stopping)
	}()

	progressPath := filepath.Join(workers, cfg.stem()+".progress.json")
	summaryPath := filepath.Join(workers, cfg.stem()+".summary.json")
	stopProgress := make(chan struct{})
	go func() {
		for {
			w.writeJSON(progressPath, w.progress(progressPath))
			select {
			case <-stopProgress:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()

	logFile, _ := os.OpenFile(filepath.Join(cfg.RunDir, "logs", "worker-"+cfg.stem()+"-client.log"),
		os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	logger := logrus.New()
	logger.SetLevel(logrus.WarnLevel)
	if logFile != nil {
		logger.SetOutput(logFile)
		defer logFile.Close()
	}
	options := pulsar.ClientOptions{URL: cfg.ServiceURL, OperationTimeout: 15 * time.Second,
		ConnectionTimeout: 10 * time.Second, Logger: plog.NewLoggerWithLogrus(logger)}
	if token := os.Getenv("GEO_RECON_TOKEN"); token != "" {
		options.Authentication = pulsar.NewAuthenticationToken(token)
	}
	if cfg.TLSCA != nil && *cfg.TLSCA != "" {
		options.TLSTrustCertsFilePath = *cfg.TLSCA
	}
	offset, rtt := probeClock(cfg.ClockRef, 15)
	client, err := pulsar.NewClient(options)
	if err != nil {
		w.addError(fmt.Sprintf("%s: could not create a client for %s: %v", cfg.Region, cfg.ServiceURL, err))
	} else {
		w.phase.Store("producing")
		var producers sync.WaitGroup
		per := spec.Rate / float64(spec.Producers)
		for _, i := range cfg.myProducers() {
			producers.Add(1)
			go func(index int) {
				defer producers.Done()
				w.produce(client, index, cfg.Topics[index%spec.Topics], per)
			}(i)
		}
		producers.Wait()
		client.Close()
	}
	w.phase.Store("done")
	if err := hist.close(); err != nil {
		w.addError(fmt.Sprintf("writing the history failed: %v", err))
	}
	close(stopProgress)
	w.writeJSON(progressPath, w.progress(progressPath))

	names := make([]string, 0, spec.Producers)
	for _, i := range cfg.myProducers() {
		names = append(names, fmt.Sprintf("%s/p%d", cfg.Region, i))
	}
	sort.Strings(names)
	summary := w.count.snapshot()
	w.errMu.Lock()
	errs := append([]string{}, w.errs...)
	w.errMu.Unlock()
	summary["region"], summary["run_id"], summary["role"] = cfg.Region, cfg.RunID, "produce"
	summary["clock_offset_ns"], summary["clock_rtt_ns"] = offset, rtt
	summary["achieved_rates"], summary["errors"], summary["processes"] = w.rates, errs, names
	summary["driver"] = "go"
	w.writeJSON(summaryPath, summary)
	return summary, nil
}

func main() {
	configPath := flag.String("config", "", "worker config JSON written by the controller")
	role := flag.String("role", "produce", "only produce is implemented natively")
	flag.Parse()
	if *configPath == "" || *role != "produce" {
		fmt.Fprintln(os.Stderr, "usage: geo-recon-native-worker --config FILE [--role produce]")
		os.Exit(2)
	}
	raw, err := os.ReadFile(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	// The GC's default (a collection each time the heap doubles) ran 96 collections in a 10 s unthrottled run
	// (about 100k sends a second), its assists landing on the client's send and receipt goroutines; at 400 it
	// ran 22, but peak RSS rose from 100 MB to 300-420 MB. A soft limit of 200 MiB on top held it at 212 MB at
	// the same rates (the live heap is a few tens of MB). GOGC and GOMEMLIMIT in the environment still win.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(200 << 20)
	}
	// where the time goes: a CPU profile of the whole run, for `go tool pprof` (measuring only)
	if path := os.Getenv("GEO_RECON_NATIVE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	var cfg workerConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "error: %s: not a worker config: %v\n", *configPath, err)
		os.Exit(2)
	}
	summary, err := run(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	out, _ := json.Marshal(summary)
	fmt.Println(string(out))
	if errs, _ := summary["errors"].([]string); len(errs) > 0 {
		os.Exit(1)
	}
}

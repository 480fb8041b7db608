// bareproducer: pulsar-client-go alone, nothing recorded, to see what the client can do on the lab
// next to pulsar-perf and the native worker (a measuring tool, not part of the worker's build).
//
//	ip netns exec gr-LAB-a ./bareproducer -url pulsar://IP:6650 -topic persistent://public/default/x -seconds 10
//
// Prints one JSON line: acked messages, the rate over the sending window, CPU-us a message.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func main() {
	url := flag.String("url", "", "service URL")
	topic := flag.String("topic", "", "topic")
	seconds := flag.Float64("seconds", 10, "sending window")
	size := flag.Int("size", 100, "payload bytes")
	identity := flag.Bool("identity", false, "send the worker's messages: a key and its identity property")
	pending := flag.Int("pending", 1000, "MaxPendingMessages (and the window of unacknowledged sends)")
	window := flag.Bool("window", true, "hold our own window of -pending sends, as the worker does")
	delay := flag.Duration("delay", time.Millisecond, "BatchingMaxPublishDelay")
	maxMsgs := flag.Uint("batch-messages", 0, "BatchingMaxMessages (0: the client's default)")
	maxBytes := flag.Uint("batch-bytes", 0, "BatchingMaxSize (0: the client's default)")
	producers := flag.Int("producers", 1, "producers (goroutines), each on its own topic suffix")
	profile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	logger := logrus.New()
	logger.SetLevel(logrus.WarnLevel)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: *url, Logger: plog.NewLoggerWithLogrus(logger)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	payload := make([]byte, *size)
	for i := range payload {
		payload[i] = 'x'
	}
	var acked, failed atomic.Int64
	var all sync.WaitGroup
	ready := make(chan struct{})
	var started sync.WaitGroup
	stopAt := make(chan time.Time, 1)
	_ = stopAt
	var end atomic.Int64
	for p := 0; p < *producers; p++ {
		opts := pulsar.ProducerOptions{Topic: *topic, SendTimeout: 10 * time.Second, BatchingMaxPublishDelay: *delay,
			MaxPendingMessages: *pending, BatchingMaxMessages: *maxMsgs, BatchingMaxSize: *maxBytes}
		if *producers > 1 {
			opts.Topic = *topic + "-" + strconv.Itoa(p)
		}
		producer, err := client.CreateProducer(opts)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		all.Add(1)
		started.Add(1)
		go func(p int) {
			defer all.Done()
			name := "a/p" + strconv.Itoa(p)
			outstanding := make(chan struct{}, *pending)
			var inflight sync.WaitGroup
			started.Done()
			<-ready
			for seq := int64(0); time.Now().UnixNano() < end.Load(); seq++ {
				if *window {
					outstanding <- struct{}{}
				}
				msg := &pulsar.ProducerMessage{Payload: payload}
				if *identity {
					now := time.Now().UnixNano()
					msg.Key = "k" + strconv.Itoa(int(seq%100))
					msg.Properties = map[string]string{"gr.id": name + " " + strconv.FormatInt(seq, 10) + " " +
						strconv.FormatInt(now, 10)}
				}
				inflight.Add(1)
				producer.SendAsync(context.Background(), msg, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err == nil {
						acked.Add(1)
					} else {
						failed.Add(1)
					}
					if *window {
						<-outstanding
					}
					inflight.Done()
				})
			}
			_ = producer.Flush()
			inflight.Wait()
			producer.Close()
		}(p)
	}
	started.Wait()
	cpu0, t0 := cpuSeconds(), time.Now()
	end.Store(t0.Add(time.Duration(*seconds * float64(time.Second))).UnixNano())
	close(ready)
	all.Wait()
	cpu := cpuSeconds() - cpu0
	n := acked.Load()
	out, _ := json.Marshal(map[string]any{"acked": n, "failed": failed.Load(), "rate": float64(n) / *seconds,
		"elapsed_s": time.Since(t0).Seconds(), "cpu_us_per_msg": cpu * 1e6 / float64(max(n, 1)),
		"identity": *identity, "producers": *producers, "pending": *pending})
	fmt.Println(string(out))
}

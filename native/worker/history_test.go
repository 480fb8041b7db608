package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The writer reuses its event buffer and its output bytes from flush to flush: what reaches the file
// must be what fresh buffers would have given, line for line.
func TestFlushesReuseTheirBuffersWithoutMixingEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	w, err := newHistoryWriter(path, "jsonl", "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var want []sendEvent
	src := w.source("a/p0", "persistent://t")
	for round := 0; round < 3; round++ {
		for i := 0; i < 5-round; i++ { // fewer events each round: leftovers of a longer flush must not leak
			e := sendEvent{src: src, kind: kindInvoke, time: int64(round*10 + i), seq: int64(round*10 + i),
				key: "k\"" + string(rune('0'+i))}
			if i%2 == 1 {
				e = sendEvent{src: src, kind: kindOK, time: e.time, seq: e.seq, msgID: pulsarID{7, int64(i), -1, int32(i)}}
			}
			w.append(e)
			want = append(want, e)
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := jsonlEncoder{}.encode(nil, "a", want)
	if !bytes.Equal(got, fresh) {
		t.Fatalf("the file differs from a fresh encoding:\n%s\nwant\n%s", got, fresh)
	}
	lines := bytes.Split(bytes.TrimSpace(got), []byte("\n"))
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	var first map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil || first["key"] != "k\"0" || first["region"] != "a" {
		t.Fatalf("first line %s: %v %v", lines[0], first, err)
	}
}

func TestStringsThatNeedNoEscapingAreCopiedAndTheOthersEscaped(t *testing.T) {
	for in, want := range map[string]string{"a/p0": `"a/p0"`, `k"1`: `"k\"1"`, "t\\x": `"t\\x"`, "\n": `"\u000a"`, "": `""`} {
		if got := string(appendJSONString(nil, in)); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

// One line of each kind, byte for byte as DESIGN.md's JSONL spec and the Python writer have them.
func TestEachKindsLineIsTheSpecsLine(t *testing.T) {
	src := newEventSource("a", "a/p0", "persistent://geo/recon/t0")
	events := []sendEvent{
		{src: src, kind: kindInvoke, time: 11, seq: 17, key: "k3"},
		{src: src, kind: kindOK, time: 12, seq: 17, msgID: pulsarID{12, 5, -1, 0}},
		{src: src, kind: kindFail, time: 13, seq: 18, errName: "MessageTooBig"},
		{src: src, kind: kindInfo, time: 14, seq: 19, errName: `Time"out`},
	}
	got, _ := jsonlEncoder{}.encode(nil, "a", events)
	want := `{"type":"invoke","f":"send","region":"a","process":"a/p0","producer":"a/p0","time":11,"seq":17,"key":"k3","topic":"persistent://geo/recon/t0"}
{"type":"ok","f":"send","region":"a","process":"a/p0","producer":"a/p0","time":12,"seq":17,"msg_id":"12:5:-1:0"}
{"type":"fail","f":"send","region":"a","process":"a/p0","producer":"a/p0","time":13,"seq":18,"error":"MessageTooBig"}
{"type":"info","f":"send","region":"a","process":"a/p0","producer":"a/p0","time":14,"seq":19,"error":"Time\"out"}
`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// The Arrow encoder builds its columns in place and its all-null columns over shared zeros: each flush's
// record batch must equal the one Arrow's own builders make from the same events, and flushes of different
// lengths must not leak into each other.
func TestArrowBatchesEqualTheBuildersBatches(t *testing.T) {
	a, b := newEventSource("a", "a/p0", "persistent://t0"), newEventSource("a", `a/"p1`, "persistent://t1")
	var flushes [][]sendEvent
	for round, n := range []int{7, 3, 12, 1} {
		var events []sendEvent
		for i := 0; i < n; i++ {
			src, seq := a, int64(round*100+i)
			if i%3 == 2 {
				src = b
			}
			e := sendEvent{src: src, kind: eventKind(i % 4), time: seq * 7, seq: seq}
			switch e.kind {
			case kindInvoke:
				e.key = "k" + string(rune('0'+i%10))
			case kindOK:
				e.msgID = pulsarID{int64(round), int64(i), -1, int32(i)}
			default:
				e.errName = "Timeout"
			}
			events = append(events, e)
		}
		flushes = append(flushes, events)
	}
	enc := newArrowEncoder()
	stream, err := enc.header()
	if err != nil {
		t.Fatal(err)
	}
	for _, events := range flushes {
		if stream, err = enc.encode(stream, "a", events); err != nil {
			t.Fatal(err)
		}
	}
	stream = append(stream, enc.footer()...)
	reader, err := ipc.NewReader(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Release()
	for i, events := range flushes {
		if !reader.Next() {
			t.Fatalf("batch %d missing: %v", i, reader.Err())
		}
		want := builtWithBuilders(enc.schema, "a", events)
		if !array.RecordEqual(reader.RecordBatch(), want) {
			t.Fatalf("batch %d:\n%v\nwant\n%v", i, reader.RecordBatch(), want)
		}
		want.Release()
	}
	if reader.Next() || reader.Err() != nil {
		t.Fatalf("a batch too many, or %v", reader.Err())
	}
}

func builtWithBuilders(schema *arrow.Schema, region string, events []sendEvent) arrow.RecordBatch {
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer rb.Release()
	str := func(name string, value string, ok bool) {
		f := rb.Field(schema.FieldIndices(name)[0]).(*array.StringBuilder)
		if ok {
			f.Append(value)
		} else {
			f.AppendNull()
		}
	}
	for _, e := range events {
		for i, f := range schema.Fields() {
			switch f.Name {
			case "type", "f", "region", "process", "producer", "key", "topic", "msg_id", "error", "time", "seq":
			default:
				rb.Field(i).AppendNull()
			}
		}
		str("type", kindNames[e.kind], true)
		str("f", "send", true)
		str("region", region, true)
		str("process", e.src.producer, true)
		str("producer", e.src.producer, true)
		rb.Field(schema.FieldIndices("time")[0]).(*array.Int64Builder).Append(e.time)
		rb.Field(schema.FieldIndices("seq")[0]).(*array.Int64Builder).Append(e.seq)
		str("key", e.key, e.kind == kindInvoke)
		str("topic", e.src.topic, e.kind == kindInvoke)
		str("msg_id", string(e.msgID.appendTo(nil)), e.kind == kindOK)
		str("error", e.errName, e.kind == kindFail || e.kind == kindInfo)
	}
	return rb.NewRecordBatch()
}

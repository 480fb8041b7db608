package main

// The worker's history file: JSONL lines or an Arrow IPC stream, written as geo_recon/history.py does.
//
// Events are buffered as structs; every interval the buffer is encoded (one JSONL line per event,
// or one Arrow record batch per flush), written with one write call and fsynced. A crash loses at
// most the last interval and may leave a torn last line or batch at the end, which the reader
// reports while keeping everything before it. An Arrow file starts with its schema (on disk before
// the first event) and a clean close appends the end-of-stream marker.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// eventKind: which of a send's events (the JSONL "type").
type eventKind uint8

const (
	kindInvoke eventKind = iota
	kindOK
	kindFail
	kindInfo
)

var kindNames = [...]string{kindInvoke: "invoke", kindOK: "ok", kindFail: "fail", kindInfo: "info"}

// eventSource: what every event of one producer shares, and the JSONL bytes that follow from it, made once
// per producer rather than formatted for each of its events.
type eventSource struct {
	producer string // also the process
	topic    string
	// lineStart[kind]: `{"type":K,"f":"send","region":R,"process":P,"producer":P,"time":`
	lineStart [len(kindNames)][]byte
	topicEnd  []byte // `,"topic":T}` and the newline: an invoke line's end
}

func newEventSource(region, producer, topic string) *eventSource {
	src := &eventSource{producer: producer, topic: topic}
	for kind, name := range kindNames {
		b := append([]byte(`{"type":`), appendJSONString(nil, name)...)
		b = append(b, `,"f":"send","region":`...)
		b = appendJSONString(b, region)
		b = append(b, `,"process":`...)
		b = appendJSONString(b, producer)
		b = append(b, `,"producer":`...)
		b = appendJSONString(b, producer)
		src.lineStart[kind] = append(b, `,"time":`...)
	}
	src.topicEnd = append(appendJSONString([]byte(`,"topic":`), topic), "}\n"...)
	return src
}

// sendEvent: one send's invoke, ok, fail or info line. The region is the writer's.
type sendEvent struct {
	src     *eventSource
	kind    eventKind
	time    int64
	seq     int64
	key     string   // invoke
	msgID   pulsarID // ok
	errName string   // fail, info
}

type pulsarID struct {
	ledger, entry    int64
	partition, batch int32
}

// appendTo: ledger:entry:partition:batch, appended to b (digits and colons: nothing to escape in JSON).
func (id pulsarID) appendTo(b []byte) []byte {
	b = strconv.AppendInt(b, id.ledger, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, id.entry, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(id.partition), 10)
	b = append(b, ':')
	return strconv.AppendInt(b, int64(id.batch), 10)
}

// historyEncoder: the bytes a file starts with, one flush appends, and a clean close appends.
type historyEncoder interface {
	header() ([]byte, error)
	encode(b []byte, region string, events []sendEvent) ([]byte, error) // appends to b
	footer() []byte
}

type historyWriter struct {
	mu     sync.Mutex
	events []sendEvent
	spare  []sendEvent // the buffer the last flush emptied, reused: at 100k sends a second a fresh one a flush fed the GC
	out    []byte      // the last flush's bytes, reused likewise (only the flushing goroutine touches it)
	region string
	enc    historyEncoder
	file   *os.File
	err    error
	stop   chan struct{}
	done   chan struct{}
}

// historySuffix: the file name ending of a history format (geo_recon/history.py's).
func historySuffix(format string) (string, error) {
	switch format {
	case "", "jsonl":
		return ".jsonl", nil
	case "arrow":
		return ".arrows", nil
	}
	return "", fmt.Errorf("config: workload.history_format %q is not arrow or jsonl", format)
}

func newHistoryWriter(path, format, region string, interval time.Duration) (*historyWriter, error) {
	var enc historyEncoder = jsonlEncoder{}
	if format == "arrow" {
		enc = newArrowEncoder()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if format == "arrow" {
		flags |= os.O_EXCL // an Arrow history is written by one writer, once
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	head, err := enc.header()
	if err == nil && len(head) > 0 {
		if _, err = f.Write(head); err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &historyWriter{file: f, enc: enc, region: region, events: make([]sendEvent, 0, 4096),
		spare: make([]sendEvent, 0, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				w.flush()
			case <-w.stop:
				return
			}
		}
	}()
	return w, nil
}

// source: the events of one producer on one topic.
func (w *historyWriter) source(producer, topic string) *eventSource {
	return newEventSource(w.region, producer, topic)
}

func (w *historyWriter) append(e sendEvent) {
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
}

func (w *historyWriter) flush() error {
	w.mu.Lock()
	events := w.events
	w.events, w.spare = w.spare, nil
	w.mu.Unlock()
	if len(events) > 0 && w.err == nil {
		data, err := w.enc.encode(w.out[:0], w.region, events)
		if err == nil {
			_, err = w.file.Write(data) // one write: a crash tears at most this batch
			w.out = data
		}
		if err != nil {
			w.err = err
		}
	}
	clear(events) // drop the strings they hold before the buffer is filled again
	w.mu.Lock()
	w.spare = events[:0]
	w.mu.Unlock()
	if err := w.file.Sync(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *historyWriter) close() error {
	close(w.stop)
	<-w.done
	err := w.flush()
	if tail := w.enc.footer(); err == nil && len(tail) > 0 {
		if _, err = w.file.Write(tail); err == nil {
			err = w.file.Sync()
		}
	}
	if cerr := w.file.Close(); err == nil {
		err = cerr
	}
	return err
}

// ------------------------------------------------------------------ JSONL

type jsonlEncoder struct{}

func (jsonlEncoder) header() ([]byte, error) { return nil, nil }
func (jsonlEncoder) footer() []byte          { return nil }

// encode: {"type":T,"f":"send","region":R,"process":P,"producer":P,"time":N,"seq":S,...} per event.
func (jsonlEncoder) encode(b []byte, _ string, events []sendEvent) ([]byte, error) {
	b = slices.Grow(b, len(events)*200)
	for i := range events {
		e := &events[i]
		b = append(b, e.src.lineStart[e.kind]...)
		b = strconv.AppendInt(b, e.time, 10)
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, e.seq, 10)
		switch e.kind {
		case kindInvoke:
			b = append(b, `,"key":`...)
			b = appendJSONString(b, e.key)
			b = append(b, e.src.topicEnd...)
		case kindOK:
			b = append(b, `,"msg_id":"`...)
			b = append(e.msgID.appendTo(b), "\"}\n"...)
		default:
			b = append(b, `,"error":`...)
			b = appendJSONString(b, e.errName)
			b = append(b, "}\n"...)
		}
	}
	return b, nil
}

// plainJSON: s needs no escaping in a JSON string.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	if plainJSON(s) { // names, keys and topics: copied whole
		b = append(b, s...)
		return append(b, '"')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// ------------------------------------------------------------------ Arrow

// eventFields: geo_recon/history_arrow.py's FIELDS, in order, then "extra" (JSON of anything else).
// The Python reader compares the schema field by field; test_workload runs both on the lab.
var eventFields = []struct {
	name string
	typ  arrow.DataType
}{
	{"type", arrow.BinaryTypes.String}, {"time", arrow.PrimitiveTypes.Int64}, {"f", arrow.BinaryTypes.String},
	{"region", arrow.BinaryTypes.String}, {"process", arrow.BinaryTypes.String},
	{"producer", arrow.BinaryTypes.String}, {"seq", arrow.PrimitiveTypes.Int64}, {"key", arrow.BinaryTypes.String},
	{"topic", arrow.BinaryTypes.String}, {"msg_id", arrow.BinaryTypes.String}, {"via", arrow.BinaryTypes.String},
	{"subscription_type", arrow.BinaryTypes.String}, {"subscription", arrow.BinaryTypes.String},
	{"cluster", arrow.BinaryTypes.String}, {"redelivery", arrow.PrimitiveTypes.Int64},
	{"error", arrow.BinaryTypes.String},
	{"phase", arrow.BinaryTypes.String}, {"fault", arrow.BinaryTypes.String}, {"target", arrow.BinaryTypes.String},
	{"id", arrow.BinaryTypes.String}, {"regions", arrow.ListOf(arrow.BinaryTypes.String)},
	{"region_loss", arrow.FixedWidthTypes.Boolean}, {"rebuilt", arrow.FixedWidthTypes.Boolean},
	{"client", arrow.BinaryTypes.String}, {"role", arrow.BinaryTypes.String}, {"from", arrow.BinaryTypes.String},
	{"to", arrow.BinaryTypes.String}, {"mode", arrow.BinaryTypes.String},
	{"extra", arrow.BinaryTypes.String},
}

func eventSchema() *arrow.Schema {
	fields := make([]arrow.Field, len(eventFields))
	for i, f := range eventFields {
		fields[i] = arrow.Field{Name: f.name, Type: f.typ, Nullable: true}
	}
	meta := arrow.NewMetadata([]string{"geo-recon"}, []string{"history events, format 1"})
	return arrow.NewSchema(fields, &meta)
}

type arrowEncoder struct {
	schema *arrow.Schema
	mem    memory.Allocator
	column map[string]int
	// reused from flush to flush (one flushing goroutine): the columns' bytes, and zeros that every
	// all-null column's buffers are a prefix of (nothing writes them)
	strs  [len(arrowStringColumns)]stringColumn
	ints  [2][]byte
	zeros []byte
}

// the string columns a send fills, in stringColumn order
var arrowStringColumns = [...]string{"type", "f", "region", "process", "producer", "key", "topic", "msg_id", "error"}

const (
	colType = iota
	colF
	colRegion
	colProcess
	colProducer
	colKey
	colTopic
	colMsgID
	colError
)

// stringColumn: an Arrow string column built in place: offsets, bytes, validity (a set bit a value).
type stringColumn struct {
	offsets, data, valid []byte
	nulls                int
}

func (c *stringColumn) reset(n int) {
	c.offsets = binary.LittleEndian.AppendUint32(slices.Grow(c.offsets[:0], 4*(n+1)), 0)
	c.data = c.data[:0]
	c.valid = slices.Grow(c.valid[:0], (n+7)/8)[:(n+7)/8]
	clear(c.valid)
	c.nulls = 0
}

func (c *stringColumn) end(i int) { // closes value i, whose bytes were appended to data
	bitutil.SetBit(c.valid, i)
	c.offsets = binary.LittleEndian.AppendUint32(c.offsets, uint32(len(c.data)))
}

func (c *stringColumn) add(i int, s string) {
	c.data = append(c.data, s...)
	c.end(i)
}

func (c *stringColumn) null() {
	c.nulls++
	c.offsets = binary.LittleEndian.AppendUint32(c.offsets, uint32(len(c.data)))
}

func (c *stringColumn) array(n int) arrow.Array {
	var valid *memory.Buffer
	if c.nulls > 0 {
		valid = memory.NewBufferBytes(c.valid)
	}
	data := array.NewData(arrow.BinaryTypes.String, n,
		[]*memory.Buffer{valid, memory.NewBufferBytes(c.offsets), memory.NewBufferBytes(c.data)}, nil, c.nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

func newArrowEncoder() *arrowEncoder {
	schema := eventSchema()
	column := map[string]int{}
	for i, f := range eventFields {
		column[f.name] = i
	}
	return &arrowEncoder{schema: schema, mem: memory.NewGoAllocator(), column: column}
}

func (a *arrowEncoder) header() ([]byte, error) {
	var buf bytes.Buffer
	payload := ipc.GetSchemaPayload(a.schema, a.mem)
	defer payload.Release()
	if _, err := payload.WritePayload(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// footer: the IPC stream's end-of-stream marker.
func (a *arrowEncoder) footer() []byte { return []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0} }

// encode: the events as one record batch message; the columns a send does not use are all null.
func (a *arrowEncoder) encode(b []byte, region string, events []sendEvent) ([]byte, error) {
	n := len(events)
	for i := range a.strs {
		a.strs[i].reset(n)
	}
	times := slices.Grow(a.ints[0][:0], 8*n)
	seqs := slices.Grow(a.ints[1][:0], 8*n)
	s := &a.strs
	for i := range events {
		e := &events[i]
		s[colType].add(i, kindNames[e.kind])
		s[colF].add(i, "send")
		s[colRegion].add(i, region)
		s[colProcess].add(i, e.src.producer)
		s[colProducer].add(i, e.src.producer)
		times = binary.LittleEndian.AppendUint64(times, uint64(e.time))
		seqs = binary.LittleEndian.AppendUint64(seqs, uint64(e.seq))
		if e.kind == kindInvoke {
			s[colKey].add(i, e.key)
			s[colTopic].add(i, e.src.topic)
		} else {
			s[colKey].null()
			s[colTopic].null()
		}
		if e.kind == kindOK {
			s[colMsgID].data = e.msgID.appendTo(s[colMsgID].data)
			s[colMsgID].end(i)
		} else {
			s[colMsgID].null()
		}
		if e.kind == kindFail || e.kind == kindInfo {
			s[colError].add(i, e.errName)
		} else {
			s[colError].null()
		}
	}
	a.ints[0], a.ints[1] = times, seqs
	cols := make([]arrow.Array, len(eventFields))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, name := range arrowStringColumns {
		cols[a.column[name]] = s[i].array(n)
	}
	for name, values := range map[string][]byte{"time": times, "seq": seqs} {
		data := array.NewData(arrow.PrimitiveTypes.Int64, n, []*memory.Buffer{nil, memory.NewBufferBytes(values)}, nil, 0, 0)
		cols[a.column[name]] = array.MakeFromData(data)
		data.Release()
	}
	for i, f := range eventFields {
		if cols[i] == nil {
			cols[i] = a.nullArray(f.typ, n)
		}
	}
	batch := array.NewRecordBatch(a.schema, cols, int64(n))
	defer batch.Release()
	payload, err := ipc.GetRecordBatchPayload(batch, ipc.WithAllocator(a.mem))
	if err != nil {
		return nil, err
	}
	defer payload.Release()
	buf := bytes.NewBuffer(b)
	if _, err := payload.WritePayload(buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// nullArray: n nulls of a column's type, every buffer a prefix of the encoder's zeros (MakeArrayOfNull made
// fresh zeroed buffers a column a flush).
func (a *arrowEncoder) nullArray(typ arrow.DataType, n int) arrow.Array {
	if need := 8 * (n + 1); len(a.zeros) < need {
		a.zeros = make([]byte, 2*need)
	}
	zeros := func(size int) *memory.Buffer { return memory.NewBufferBytes(a.zeros[:size]) }
	valid := zeros((n + 7) / 8)
	var data *array.Data
	switch typ.ID() {
	case arrow.STRING:
		data = array.NewData(typ, n, []*memory.Buffer{valid, zeros(4 * (n + 1)), zeros(0)}, nil, n, 0)
	case arrow.INT64:
		data = array.NewData(typ, n, []*memory.Buffer{valid, zeros(8 * n)}, nil, n, 0)
	case arrow.BOOL:
		data = array.NewData(typ, n, []*memory.Buffer{valid, zeros((n + 7) / 8)}, nil, n, 0)
	default: // the list of strings, each empty
		return array.MakeArrayOfNull(a.mem, typ, n)
	}
	defer data.Release()
	return array.MakeFromData(data)
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	for round := 0; round < 3; round++ {
		for i := 0; i < 5-round; i++ { // fewer events each round: leftovers of a longer flush must not leak
			e := sendEvent{kind: "invoke", producer: "a/p0", time: int64(round*10 + i), seq: int64(round*10 + i),
				key: "k\"" + string(rune('0'+i)), topic: "persistent://t"}
			if i%2 == 1 {
				e = sendEvent{kind: "ok", producer: "a/p0", time: e.time, seq: e.seq, hasID: true,
					msgID: pulsarID{7, int64(i), -1, int32(i)}}
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

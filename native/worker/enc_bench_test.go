package main

// What a flush's encoding costs an event, without a broker (measuring only):
//
//	go test -run X -bench . -benchtime 20x -count 3 .

import "testing"

func events(n int) []sendEvent {
	ev := make([]sendEvent, 0, n)
	src := newEventSource("a", "a/p0", "persistent://geo/recon/bench-native-1796029286-1")
	for i := 0; i < n/2; i++ {
		ev = append(ev, sendEvent{src: src, kind: kindInvoke, time: 1796029286123456789 + int64(i), seq: int64(i), key: "k12"})
		ev = append(ev, sendEvent{src: src, kind: kindOK, time: 1796029286123456789 + int64(i), seq: int64(i), msgID: pulsarID{123, int64(i / 1000), -1, int32(i % 1000)}})
	}
	return ev
}

func BenchmarkJSONL(b *testing.B) {
	ev := events(60000)
	var out []byte
	for i := 0; i < b.N; i++ {
		out, _ = jsonlEncoder{}.encode(out[:0], "a", ev)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/60000, "ns/event")
}

func BenchmarkArrow(b *testing.B) {
	ev := events(60000)
	enc := newArrowEncoder()
	var out []byte
	for i := 0; i < b.N; i++ {
		out, _ = enc.encode(out[:0], "a", ev)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/60000, "ns/event")
}

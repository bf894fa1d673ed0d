package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks for the figures in README's "Performance" section that can be
// measured inside one process. Whole-process latency, memory and idle CPU
// are measured by bench/latency.sh and bench/memory.sh (`make bench`).
//
//	go test -run '^$' -bench . -benchtime 20000x

// benchToken is a 2 KB access token, the size bench/memory.sh stores.
var benchToken = strings.Repeat("t", 2048)

// benchServer starts a real server in this process, with its own runtime
// directory, whose account "bench" holds benchToken (adopted through the
// same restore path `pizauth restore` takes). It returns the socket path.
func benchServer(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("", "pzb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "pizauth.conf")
	err = os.WriteFile(conf, []byte(`http_listen = "127.0.0.1:0";
https_listen = none;
account "bench" {
    auth_uri = "https://example.com/authorize";
    token_uri = "https://example.com/token";
    client_id = "bench-client";
}
`), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "r"))
	s, err := startServer(conf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.shutdown)
	entries := s.st.snapshot()
	now := time.Now()
	for i := range entries {
		entries[i].Active = true
		entries[i].AccessToken = benchToken
		entries[i].Obtained, entries[i].Expiry = now, now.Add(24*time.Hour)
	}
	if n := s.st.restore(entries); n != 1 {
		b.Fatalf("restore adopted %d tokens, want 1", n)
	}
	return s.sockPath
}

// BenchmarkShowConcurrent64 is `pizauth show` over the socket with 64
// clients at once, each a fresh connection as the real client makes. b.N is
// the total number of requests; it reports throughput and the 99th
// percentile of the per-request latency the clients saw.
func BenchmarkShowConcurrent64(b *testing.B) {
	const clients = 64
	sock := benchServer(b)
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				vals, err := roundTripTo(sock, clientTimeout, []byte("show"), nil, []byte("bench"))
				lat[i] = time.Since(t0)
				if err == nil && (len(vals) != 1 || string(vals[0]) != benchToken) {
					err = fmt.Errorf("show returned %d values, not the token", len(vals))
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed; the first: %v", n, b.N, firstErr.Load())
	}
	slices.Sort(lat)
	p99 := lat[(len(lat)*99+99)/100-1]
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
}

// TestWriteMemoryBenchFiles is not a test but the generator bench/memory.sh
// runs: with PIZAUTH_BENCH_DIR set it writes there a configuration of
// PIZAUTH_BENCH_ACCOUNTS accounts (pizauth.conf) and a dump (pizauth.dump)
// that gives every one of them an access token of PIZAUTH_BENCH_ACCESS bytes
// and a refresh token of PIZAUTH_BENCH_REFRESH bytes, obtained now and valid
// for a day, so that the server the script measures does no refresh while
// it idles.
func TestWriteMemoryBenchFiles(t *testing.T) {
	dir := os.Getenv("PIZAUTH_BENCH_DIR")
	if dir == "" {
		t.Skip("a generator for bench/memory.sh, which sets PIZAUTH_BENCH_DIR")
	}
	num := func(name string, least int) int {
		n, err := strconv.Atoi(os.Getenv(name))
		if err != nil || n < least {
			t.Fatalf("%s=%q: want a number, at least %d", name, os.Getenv(name), least)
		}
		return n
	}
	n := num("PIZAUTH_BENCH_ACCOUNTS", 1)
	access, refresh := num("PIZAUTH_BENCH_ACCESS", 1), num("PIZAUTH_BENCH_REFRESH", 0)
	src := genConfig(n)
	conf, err := parseConfig(src)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	entries := make([]dumpEntry, len(conf.Accounts))
	for i, acct := range conf.Accounts {
		entries[i] = dumpEntry{
			Name:         acct.Name,
			SecureKey:    acct.secureKey(),
			Active:       true,
			AccessToken:  fmt.Sprintf("%0*d", access, i),
			RefreshToken: fmt.Sprintf("%0*d", refresh, i)[:refresh],
			Obtained:     now,
			Expiry:       now.Add(24 * time.Hour),
		}
	}
	dump, err := encodeDump(entries)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pizauth.conf"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pizauth.dump"), dump, 0o600); err != nil {
		t.Fatal(err)
	}
}

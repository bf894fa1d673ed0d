package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// Benchmarks for the figures in HACKING.md's "Performance" section that can be
// measured inside one process. Whole-process latency, memory and idle CPU
// are measured by bench/latency.sh and bench/memory.sh (`make bench`).
//
//	go test -run '^$' -bench . -benchtime 20000x

// showBenchToken is a 2 KB access token, the size bench/memory.sh stores.
var showBenchToken = strings.Repeat("t", 2048)

// benchServer starts a real server in this process from conf, with its own
// runtime directory, and stops it when the benchmark ends.
func benchServer(b *testing.B, conf string) *server {
	b.Helper()
	dir, err := os.MkdirTemp("", "pzb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "pizauth.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "r"))
	s, err := startServer(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.shutdown)
	return s
}

// benchRestore gives the server's accounts the tokens of entries through the
// path `pizauth restore` takes, filling in names and secure keys.
func benchRestore(b *testing.B, s *server, fill func(i int, e *dumpEntry)) {
	b.Helper()
	entries := s.st.snapshot()
	for i := range entries {
		entries[i].Active = true
		fill(i, &entries[i])
	}
	if n, _ := s.st.restore(entries); n != len(entries) {
		b.Fatalf("restore adopted %d tokens, want %d", n, len(entries))
	}
}

// BenchmarkShowConcurrent64 is `pizauth show` over the socket with 64
// clients at once, each a fresh connection as the real client makes. b.N is
// the total number of requests; it reports throughput and the 99th
// percentile of the per-request latency the clients saw.
func BenchmarkShowConcurrent64(b *testing.B) {
	const clients = 64
	s := benchServer(b, `https_listen = none;
account "bench" {
    auth_uri = "https://example.com/authorize";
    token_uri = "https://example.com/token";
    client_id = "bench-client";
}
`)
	now := time.Now().Round(0)
	benchRestore(b, s, func(_ int, e *dumpEntry) {
		e.AccessToken, e.Obtained, e.Expiry = showBenchToken, now, now.Add(24*time.Hour)
	})
	sock := s.sockPath
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
				if err == nil && (len(vals) != 1 || string(vals[0]) != showBenchToken) {
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

// BenchmarkRefreshPunctuality measures how late the refresher asks for a
// new token compared with when it is due. Each iteration restores tokens for
// 20 accounts falling due 100 ms apart (expiry minus refresh_before_expiry)
// and records when a local token endpoint receives each refresh; it reports
// the median and the largest lateness over all iterations.
func BenchmarkRefreshPunctuality(b *testing.B) {
	const accounts = 20
	var mu sync.Mutex
	received := map[string]time.Time{}
	arrived := make(chan struct{}, accounts)
	tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		rt := r.PostFormValue("refresh_token")
		mu.Lock()
		_, dup := received[rt]
		if !dup {
			received[rt] = at
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"fresh","token_type":"Bearer","expires_in":86400}`)
		if !dup {
			arrived <- struct{}{}
		}
	}))
	b.Cleanup(tokenEndpoint.Close)

	var conf strings.Builder
	// refresh_retry is also the shortest time between obtaining a token and
	// refreshing it; keep it below the 1 s the first account has to wait.
	conf.WriteString("https_listen = none;\nrefresh_before_expiry = 1s;\nrefresh_retry = 1s;\n")
	for i := range accounts {
		fmt.Fprintf(&conf, `account "a%d" {
    auth_uri = "https://example.com/authorize";
    token_uri = "%s/token";
    client_id = "bench-client";
}
`, i, tokenEndpoint.URL)
	}
	s := benchServer(b, conf.String())

	var late []time.Duration
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		mu.Lock()
		clear(received)
		mu.Unlock()
		due := make(map[string]time.Time, accounts)
		now := time.Now().Round(0)
		benchRestore(b, s, func(i int, e *dumpEntry) {
			rt := fmt.Sprintf("rt-%d-%d", iter, i)
			// Due 1 s from now and then every 100 ms: the refresher must
			// sleep in between, which is what is being measured.
			expiry := now.Add(2*time.Second + time.Duration(i)*100*time.Millisecond)
			e.AccessToken, e.RefreshToken, e.Obtained, e.Expiry = "old", rt, now, expiry
			due[rt] = expiry.Add(-time.Second)
		})
		deadline := time.After(30 * time.Second)
		for range accounts {
			select {
			case <-arrived:
			case <-deadline:
				b.Fatalf("only %d of %d refreshes arrived within 30 s", len(received), accounts)
			}
		}
		mu.Lock()
		for rt, at := range received {
			late = append(late, at.Sub(due[rt]))
		}
		mu.Unlock()
		// Empty the accounts so the next iteration's restore adopts.
		for i := range accounts {
			if err := s.st.revoke(fmt.Sprintf("a%d", i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	slices.Sort(late)
	b.ReportMetric(float64(late[len(late)/2])/float64(time.Millisecond), "median-late-ms")
	b.ReportMetric(float64(late[len(late)-1])/float64(time.Millisecond), "max-late-ms")
	b.ReportMetric(float64(late[0])/float64(time.Millisecond), "min-late-ms")
}

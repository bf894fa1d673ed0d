package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadShowDuringRefreshAndReload: 64 clients share at least 10,000
// `show` requests over the socket while every account's 3 s token is
// refreshed each second and `pizauth reload` (the real client binary) runs
// again and again. Not one request may fail or return anything but a token
// the provider issued. The server runs in this process so that -race
// watches both sides.
func TestLoadShowDuringRefreshAndReload(t *testing.T) {
	const (
		clients  = 64
		requests = 10000
		accounts = 4
		// The load goes on until at least this much else has happened.
		minReloads, minRefreshes = 3, 4
	)
	p := newFakeProvider(t)
	p.setExpiresIn(3) // due 2 s before expiry (e2eConf): a refresh a second
	var blocks []string
	names := make([]string, accounts)
	ids := map[string]string{}
	for i := range names {
		names[i] = fmt.Sprintf("acct%d", i)
		c := p.addClient(fakeClient{})
		ids[names[i]] = c.ID
		blocks = append(blocks, p.account(names[i], c, ""))
	}
	// Reloads alternate a setting that leaves every account's token alone.
	conf := func(n int) string {
		return e2eConf(map[string]string{"auth_notify_interval": fmt.Sprintf("%ds", 1+n%2)}, blocks...)
	}
	srv, sock, confPath := inprocServer(t, conf(0))
	for _, name := range names {
		inprocAuthorise(t, sock, name)
	}

	refreshesBefore := p.count("refresh_token")
	var reloads atomic.Int32
	stop := make(chan struct{})
	reloadErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := confPath + ".new"
			if err := os.WriteFile(tmp, []byte(conf(n)), 0o600); err != nil {
				reloadErr <- err
				return
			}
			if err := os.Rename(tmp, confPath); err != nil {
				reloadErr <- err
				return
			}
			cmd := exec.Command(e2eBin, "reload")
			cmd.Env = os.Environ() // XDG_RUNTIME_DIR names the in-process server
			if out, err := cmd.CombinedOutput(); err != nil {
				reloadErr <- fmt.Errorf("pizauth reload: %v: %s", err, out)
				return
			}
			reloads.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}()

	var sent, failed atomic.Int64
	var errMu sync.Mutex
	var firstErrs []string
	fail := func(format string, args ...any) {
		failed.Add(1)
		errMu.Lock()
		if len(firstErrs) < 5 {
			firstErrs = append(firstErrs, fmt.Sprintf(format, args...))
		}
		errMu.Unlock()
	}
	enough := func() bool {
		return sent.Load() >= requests && reloads.Load() >= minReloads && p.count("refresh_token")-refreshesBefore >= minRefreshes
	}
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	var cwg sync.WaitGroup
	for range clients {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for !enough() && time.Now().Before(deadline) {
				n := sent.Add(1)
				name := names[n%accounts]
				tok, err := inprocShow(sock, name)
				if err != nil {
					fail("show %s: %v", name, err)
				} else if !strings.HasPrefix(tok, prefixAccess) {
					fail("show %s printed %q", name, tok)
				}
			}
		}()
	}
	cwg.Wait()
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	select {
	case err := <-reloadErr:
		t.Fatal(err)
	default:
	}
	n, refreshes := sent.Load(), p.count("refresh_token")-refreshesBefore
	t.Logf("%d show requests from %d clients in %v (%.0f/s) with %d refreshes and %d reloads",
		n, clients, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), refreshes, reloads.Load())
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d requests failed, e.g.:\n%s", f, n, strings.Join(firstErrs, "\n"))
	}
	if !enough() {
		t.Fatalf("after 60 s only %d requests, %d refreshes and %d reloads", n, refreshes, reloads.Load())
	}
	// Every account still holds the token the provider issued last.
	for _, name := range names {
		tok, err := inprocShow(sock, name)
		if err != nil {
			t.Errorf("show %s after the load: %v", name, err)
			continue
		}
		issued := p.tokens(ids[name])
		if i := indexOf(issued, tok); i < len(issued)-2 {
			t.Errorf("%s shows token %d of %d issued: refreshes were lost", name, i+1, len(issued))
		}
	}
	if st := srv.st.statusText(); strings.Count(st, "Active access token") != accounts {
		t.Errorf("status after the load:\n%s", st)
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// TestE2EIdleRedirectConnections: 200 connections to the redirect port that
// send nothing or stop half-way through a request line do not keep a real
// browser's redirect from completing.
func TestE2EIdleRedirectConnections(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	u := s.pendingURL(t, "a")
	port := s.info(t).ServerInfo.HTTPPort
	for i := range 200 {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		defer c.Close()
		if i%2 == 1 {
			c.Write([]byte("GET /?state=" + e2eURLState(t, u)))
		}
	}
	_, r := s.follow(t, u)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, processingPage) {
		t.Fatalf("the real redirect behind 200 idle connections: %d %q", r.Status, r.Body)
	}
	s.waitToken(t, "a", "")
}

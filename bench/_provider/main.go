// Command provider is the stand-in OAuth2 provider bench/latency.sh points
// pizauth at: GET /authorize redirects straight back to the redirect URI
// with a code, and any POST to /token issues a long-lived token. It prints
// its address on stdout once listening and exits by itself after -lifetime
// so that an interrupted benchmark leaves nothing running.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	lifetime := flag.Duration("lifetime", 30*time.Minute, "exit after this long")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "provider:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		to, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || to.Scheme == "" {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		v := to.Query()
		v.Set("code", "bench-code")
		v.Set("state", q.Get("state"))
		to.RawQuery = v.Encode()
		http.Redirect(w, r, to.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"bench-access-token","token_type":"Bearer","expires_in":86400,"refresh_token":"bench-refresh-token"}`)
	})
	fmt.Println(ln.Addr().String())
	go func() {
		time.Sleep(*lifetime)
		os.Exit(0)
	}()
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, "provider:", err)
		os.Exit(1)
	}
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"
)

// The issue asks for dump and restore of 10,000 accounts holding 2 KB
// tokens (real Microsoft tokens are that large) in under 100 ms each.
const (
	benchAccounts  = 10000
	benchTokenSize = 2048
)

// benchConfig is a config of n accounts whose settings are as long as a
// real Microsoft account's, so that secureKey costs what it would in use.
func benchConfig(n int) *Config {
	c := &Config{}
	for i := range n {
		a := schedAccount(fmt.Sprintf("account-%05d", i))
		a.AuthURI = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
		a.TokenURI = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
		a.ClientID = fmt.Sprintf("%08x-1f0e-4d3c-9b8a-7a6b5c4d3e2f", i)
		a.ClientSecret = "s3cr3t~abcdefghijklmnopqrstuvwxyz012345"
		a.Scopes = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access"}
		a.AuthURIFields = []KV{{"login_hint", fmt.Sprintf("user%d@example.com", i)}}
		c.Accounts = append(c.Accounts, a)
	}
	return c
}

func benchToken(prefix string) string {
	b := make([]byte, benchTokenSize*3/4)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)[:benchTokenSize-len(prefix)]
}

// benchState is a state for conf with every account Empty. Nothing runs
// its refresher or hooks.
func benchState(conf *Config) *state {
	return newState(context.Background(), conf, newProvider())
}

// benchActiveState is a state in which every account holds a 2 KB access
// token and a 2 KB refresh token.
func benchActiveState(conf *Config) *state {
	s := benchState(conf)
	now := realClock()
	for name, a := range s.accts {
		a.kind, a.version = kindActive, s.bump()
		a.access, a.refresh = benchToken("at-"+name), benchToken("rt-"+name)
		a.obtained, a.lifetime, a.expiry = now, time.Hour, now.wall.Add(time.Hour)
	}
	return s
}

func BenchmarkDump(b *testing.B) {
	s := benchActiveState(benchConfig(benchAccounts))
	b.ReportAllocs()
	var size int
	b.ResetTimer()
	for range b.N {
		d, err := encodeDump(s.snapshot())
		if err != nil {
			b.Fatal(err)
		}
		size = len(d)
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB/dump")
}

func BenchmarkRestore(b *testing.B) {
	conf := benchConfig(benchAccounts)
	d, err := encodeDump(benchActiveState(conf).snapshot())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// Every iteration restores into accounts that are all Empty, so
		// that every entry is compared and adopted.
		b.StopTimer()
		s := benchState(conf)
		b.StartTimer()
		entries, err := decodeDump(d)
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := s.restore(entries); n != benchAccounts {
			b.Fatalf("restored %d tokens, want %d", n, benchAccounts)
		}
	}
}

// BenchmarkRestoreMerge is the part of BenchmarkRestore that holds the
// state's lock: comparing and adopting decoded entries.
func BenchmarkRestoreMerge(b *testing.B) {
	conf := benchConfig(benchAccounts)
	entries := benchActiveState(conf).snapshot()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := benchState(conf)
		b.StartTimer()
		if n, _ := s.restore(entries); n != benchAccounts {
			b.Fatalf("restored %d tokens, want %d", n, benchAccounts)
		}
	}
}

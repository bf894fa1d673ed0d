package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// hostname is os.Hostname; tests replace it.
var hostname = os.Hostname

// selfSignedCert makes the HTTPS listener's certificate, new at every
// start, its key never on disk; `pizauth info` shows its fingerprint and,
// as the original does, its public key (an uncompressed P-256 point).
func selfSignedCert() (tls.Certificate, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", "", fmt.Errorf("Can't make the HTTPS certificate: %v", err)
	}
	ek, _ := key.PublicKey.ECDH() // cannot fail for a P-256 key
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, "", "", fmt.Errorf("Can't make the HTTPS certificate: %v", err)
	}
	names := []string{"localhost"}
	// A non-ASCII host name would fail the start; nobody types it anyway.
	if h, err := hostname(); err == nil && h != "" && h != "localhost" &&
		!strings.ContainsFunc(h, func(r rune) bool { return r >= utf8.RuneSelf }) {
		names = append(names, h)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "pizauth"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", "", fmt.Errorf("Can't make the HTTPS certificate: %v", err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hexColons(sum[:]), hexColons(ek.Bytes()), nil
}

// hexColons is b as browsers show a fingerprint: upper-case hex, colons.
func hexColons(b []byte) string {
	return strings.ReplaceAll(fmt.Sprintf("% X", b), " ", ":")
}

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

// selfSignedCert makes the HTTPS redirect listener's certificate. It is new
// at every start and its key never leaves memory, so there is nothing on
// disk to steal; the user can check the fingerprint `pizauth info` shows
// against the one their browser displays.
func selfSignedCert() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("Can't make the HTTPS certificate: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("Can't make the HTTPS certificate: %v", err)
	}
	names := []string{"localhost"}
	// A certificate holds only ASCII names, so a host name in another
	// script is left out rather than failing the start (it would need IDNA
	// encoding, and nobody types it for a redirect anyway).
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
		return tls.Certificate{}, "", fmt.Errorf("Can't make the HTTPS certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, fingerprint(der), nil
}

// fingerprint formats the SHA-256 of a DER certificate as browsers show it:
// upper-case hex bytes separated by colons.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return strings.ReplaceAll(fmt.Sprintf("% X", sum[:]), " ", ":")
}

package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeTestCert(t *testing.T, path, cn string, notAfter time.Time, ca bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter, IsCA: ca, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The certificates of the cert directories are read as root in the one
// round trip and parsed here: expiry, CA or not; a file that holds no
// certificate says so; keys and other files are not read.
func TestFactsCerts(t *testing.T) {
	dir := t.TempDir()
	tls := filepath.Join(dir, "server tls")
	if err := os.Mkdir(tls, 0o700); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(20 * 24 * time.Hour).UTC().Truncate(time.Second)
	later := time.Now().Add(3650 * 24 * time.Hour).UTC().Truncate(time.Second)
	writeTestCert(t, filepath.Join(tls, "client-admin.crt"), "system:admin", soon, false)
	writeTestCert(t, filepath.Join(tls, "client-ca.crt"), "k3s-client-ca", later, true)
	if err := os.WriteFile(filepath.Join(tls, "broken.crt"), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tls, "client-admin.key"), []byte("-----BEGIN EC PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &localConn{}
	f, err := GatherFacts(context.Background(), c, FactsOptions{CertDirs: []string{tls, filepath.Join(dir, "missing")}})
	if err != nil {
		t.Fatal(err)
	}
	if c.runs != 1 {
		t.Errorf("%d commands, want 1", c.runs)
	}
	got := map[string]Cert{}
	for _, cert := range f.Certs {
		got[filepath.Base(cert.Path)] = cert
	}
	if len(got) != 3 {
		t.Fatalf("certs %+v, want client-admin, client-ca and broken", f.Certs)
	}
	if a := got["client-admin.crt"]; !a.NotAfter.Equal(soon) || a.CA || a.Subject != "system:admin" || a.Err != "" || a.Path != filepath.Join(tls, "client-admin.crt") {
		t.Errorf("client-admin.crt: %+v, want NotAfter %s", a, soon)
	}
	if ca := got["client-ca.crt"]; !ca.CA || !ca.NotAfter.Equal(later) {
		t.Errorf("client-ca.crt: %+v", ca)
	}
	if b := got["broken.crt"]; b.Err == "" {
		t.Errorf("broken.crt read as a certificate: %+v", b)
	}
}

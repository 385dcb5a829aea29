package main

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertificatesValidity: client and server certificates under
// server/tls last 365 days, CAs ten years; a restart keeps them, and renews
// one that expires within 120 days.
func TestCertificatesValidity(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	root := t.TempDir()
	args := l.serverArgs(1, "--cluster-init")
	s := startSim(t, simOpt{root: root, hostname: "certs", notify: true}, args...)
	s.waitReady(30 * time.Second)
	tlsDir := filepath.Join(root, "/var/lib/rancher/k3s/server/tls")
	serials := map[string]string{}
	want := []string{"client-admin.crt", "client-controller.crt", "client-supervisor.crt", "client-auth-proxy.crt",
		"serving-kube-apiserver.crt", "etcd/client.crt", "etcd/server-client.crt", "etcd/peer-server-client.crt"}
	for _, name := range want {
		c := readCert(t, filepath.Join(tlsDir, name))
		if d := time.Until(c.NotAfter) - 365*24*time.Hour; d > time.Minute || d < -time.Minute {
			t.Errorf("%s expires %s, want 365 days from now", name, c.NotAfter)
		}
		serials[name] = c.SerialNumber.String()
	}
	for _, name := range []string{"server-ca.crt", "client-ca.crt", "etcd/peer-ca.crt"} {
		c := readCert(t, filepath.Join(tlsDir, name))
		if !c.IsCA || time.Until(c.NotAfter) < 9*365*24*time.Hour {
			t.Errorf("%s: CA %v, expires %s", name, c.IsCA, c.NotAfter)
		}
	}
	s.stop()

	// client-controller.crt with 30 days left.
	ca, err := loadPair(filepath.Join(tlsDir, "client-ca.crt"), filepath.Join(tlsDir, "client-ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM := newKey()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "system:kube-controller-manager"},
		NotBefore: time.Now().Add(-300 * 24 * time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "client-controller.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "client-controller.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := startSim(t, simOpt{root: root, hostname: "certs", notify: true}, args...)
	s2.waitReady(30 * time.Second)
	for _, name := range want {
		c := readCert(t, filepath.Join(tlsDir, name))
		kept := c.SerialNumber.String() == serials[name]
		if name == "client-controller.crt" {
			if time.Until(c.NotAfter) < 364*24*time.Hour {
				t.Errorf("expiring %s not renewed: %s", name, c.NotAfter)
			}
			if k, err := loadPair(filepath.Join(tlsDir, name), filepath.Join(tlsDir, "client-controller.key")); err != nil || string(k.keyPEM) != string(keyPEM) {
				t.Errorf("renewal did not keep the key: %v", err)
			}
			continue
		}
		if !kept {
			t.Errorf("%s reissued on restart", name)
		}
	}
	if !strings.Contains(s2.logs(), "client-controller.crt will expire at") {
		t.Errorf("renewal not logged:\n%s", s2.logs())
	}
}

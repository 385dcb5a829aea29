package ssh

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fleetFiles writes an ssh config with one Host block per host and a
// known_hosts with three lines per host (name, address and address with a
// port), as a fleet of n hosts would have.
func fleetFiles(tb testing.TB, dir string, n int) (config, knownHosts string, keys []ssh.PublicKey) {
	tb.Helper()
	var cfg, kh strings.Builder
	for i := 0; i < n; i++ {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1] = byte(i), byte(i>>8)
		key, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed).Public())
		if err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, key)
		addr := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		fmt.Fprintf(&cfg, "Host node-%d\n  HostName %s\n  User ubuntu\n  IdentityFile ~/.ssh/id_node_%d\n  ServerAliveInterval 10\n\n", i, addr, i)
		kh.WriteString(knownhosts.Line([]string{fmt.Sprintf("node-%d.example", i)}, key) + "\n")
		kh.WriteString(knownhosts.Line([]string{addr}, key) + "\n")
		kh.WriteString(knownhosts.Line([]string{"[" + addr + "]:2222"}, key) + "\n")
	}
	config = filepath.Join(dir, "config")
	knownHosts = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return config, knownHosts, keys
}

// resolveAndCheck does what a dial does before and during the handshake
// without the network: resolve the options, order the host key algorithms
// and check the key the host offers.
func resolveAndCheck(o Options, key ssh.PublicKey) error {
	r, err := resolve(&o)
	if err != nil {
		return err
	}
	hk := newHostKeys(r.target, o.warnf)
	addr := r.target.addr()
	hk.algorithms(addr)
	return hk.check(addr, &net.TCPAddr{IP: net.ParseIP(r.target.hostName), Port: r.target.port}, key)
}

// BenchmarkResolve300 is one op per fleet: 300 hosts resolved against a
// 300-block ssh config and their keys checked against a 900-line
// known_hosts, in strict mode so that nothing is recorded.
func BenchmarkResolve300(b *testing.B) {
	home := b.TempDir()
	b.Setenv("HOME", home)
	const n = 300
	config, kh, keys := fleetFiles(b, home, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for h := 0; h < n; h++ {
			o := Options{Address: fmt.Sprintf("node-%d", h), ConfigFile: config, KnownHostsFile: kh, HostKeyChecking: HostKeyStrict}
			if err := resolveAndCheck(o, keys[h]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

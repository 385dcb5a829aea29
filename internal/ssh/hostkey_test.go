package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestFirstContactRecordsKeyInOpenSSHFormat(t *testing.T) {
	ts := newTestSetup(t)
	var warnings []string
	ts.opts.Warnf = func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }
	c := dialTest(t, ts.opts)
	c.Close()
	data, err := os.ReadFile(ts.opts.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[127.0.0.1]:%d %s", ts.srv.port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ts.srv.hostKey.PublicKey()))))
	if strings.TrimSpace(string(data)) != want {
		t.Errorf("known_hosts:\n got %s\nwant %s", data, want)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "recorded new host key") {
		t.Errorf("warnings %q", warnings)
	}
	dialTest(t, ts.opts)
	if again, _ := os.ReadFile(ts.opts.KnownHostsFile); string(again) != string(data) {
		t.Errorf("second contact changed known_hosts:\n%s", again)
	}
}

func TestChangedKeyIsRefusedWithBothFingerprintsAndTheFix(t *testing.T) {
	ts := newTestSetup(t)
	old := newSigner(t)
	kh := ts.opts.KnownHostsFile
	line := knownhosts.Line([]string{knownhosts.Normalize(ts.srv.addr)}, old.PublicKey())
	if err := os.WriteFile(kh, []byte("# comment\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.opts.ConnectRetry = 0 // retries allowed, but never for this
	_, err := Dial(context.Background(), ts.opts)
	var changed *HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"127.0.0.1: connect: host key for [127.0.0.1]:",
		ssh.FingerprintSHA256(old.PublicKey()),
		ssh.FingerprintSHA256(ts.srv.hostKey.PublicKey()),
		kh + ":2",
		fmt.Sprintf("\nhint: if the host was re-installed, remove the old key with: ssh-keygen -R '[127.0.0.1]:%d' -f %s", ts.srv.port, kh),
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if ts.srv.conns != 1 {
		t.Errorf("%d connections: a changed key must not be retried", ts.srv.conns)
	}
}

func TestHashedKnownHostsEntriesAreRecognised(t *testing.T) {
	ts := newTestSetup(t)
	line := knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize(ts.srv.addr))}, ts.srv.hostKey.PublicKey())
	if err := os.WriteFile(ts.opts.KnownHostsFile, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.opts.HostKeyChecking = HostKeyStrict
	dialTest(t, ts.opts)
}

func TestStrictRefusesUnknownAndOffWarnsEachTime(t *testing.T) {
	ts := newTestSetup(t)
	o := ts.opts
	o.HostKeyChecking = HostKeyStrict
	_, err := Dial(context.Background(), o)
	var unknown *HostKeyUnknownError
	if !errors.As(err, &unknown) || HintOf(err) == "" {
		t.Fatalf("strict: %v", err)
	}
	o.HostKeyChecking = HostKeyOff
	var warnings []string
	o.Warnf = func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }
	dialTest(t, o)
	dialTest(t, o)
	if len(warnings) != 2 {
		t.Errorf("off: warnings %q, want one per connection", warnings)
	}
	if _, err := os.Stat(o.KnownHostsFile); !errors.Is(err, os.ErrNotExist) {
		t.Error("off recorded a key")
	}
}

// A host with a known ECDSA key that also has ed25519 is not a changed
// host: the known type is negotiated first, as ssh does.
func TestKnownKeyTypeIsNegotiatedFirst(t *testing.T) {
	isolate(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	ecdsaLine := "[127.0.0.1]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKGnq/rigvrpTbJGnGFwzQSVoize4KC/o3mlImZgM+5HviHZjI1zRz6NtCkCRitLzfVJxNtau/dJDlv5cwKDxxY="
	if err := os.WriteFile(kh, []byte(ecdsaLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &hostKeys{mode: HostKeyAcceptNew, files: []string{kh}, warnf: func(string, ...any) {}}
	algos := h.algorithms("127.0.0.1:2222")
	if len(algos) == 0 || algos[0] != ssh.KeyAlgoECDSA256 {
		t.Errorf("known host: %q, want ecdsa first", algos)
	}
	algos = h.algorithms("127.0.0.1:22")
	if len(algos) == 0 || algos[0] != ssh.CertAlgoED25519v01 && algos[0] != ssh.KeyAlgoED25519 {
		t.Errorf("unknown host: %q, want ed25519 first like OpenSSH", algos)
	}
}

const recordHelperEnv = "K3SCTL_TEST_RECORD_HELPER"

// TestRecordHelper is run as a separate process by the concurrency test.
func TestRecordHelper(t *testing.T) {
	spec := os.Getenv(recordHelperEnv)
	if spec == "" {
		t.Skip("helper process only")
	}
	file, prefix, _ := strings.Cut(spec, "|")
	recordMany(t, file, prefix, 20)
}

func recordMany(t *testing.T, file, prefix string, n int) {
	h := &hostKeys{mode: HostKeyAcceptNew, files: []string{file}, warnf: func(string, ...any) {}}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := newSigner(t).PublicKey()
			addr := fmt.Sprintf("%s-%d.example:22", prefix, i)
			if err := h.check(addr, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 22}, key); err != nil {
				t.Error(err)
			}
			// The same host again, concurrently with the others: known now.
			if err := h.check(addr, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 22}, key); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentRecordingKeepsKnownHostsWhole(t *testing.T) {
	isolate(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	// No trailing newline: the first append must add one.
	if err := os.WriteFile(file, []byte("# mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	var procs []*exec.Cmd
	for p := 0; p < 3; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRecordHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|proc%d", recordHelperEnv, file, p))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	recordMany(t, file, "goroutine", 30)
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 1+30+3*20 || lines[0] != "# mine" {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), 1+30+60, data)
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		host, _, _ := strings.Cut(l, " ")
		if seen[host] {
			t.Errorf("%s recorded twice", host)
		}
		seen[host] = true
	}
	if _, err := knownhosts.New(file); err != nil {
		t.Errorf("known_hosts no longer parses: %v", err)
	}
}

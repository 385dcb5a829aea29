package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/ui"
)

// lastEvent parses stdout's lines as events and returns the last one.
func lastEvent(t *testing.T, stdout string) errorEvent {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var e errorEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		t.Fatalf("last line of stdout is no JSON event: %v\n%s", err, stdout)
	}
	if e.Schema != ui.Schema || e.Time.IsZero() {
		t.Errorf("event lacks schema or time: %+v", e)
	}
	return e
}

func TestJSONUsageErrorEndsWithErrorEvent(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "-o", "json"}, "which inventory?"},
		{[]string{"apply", "-o", "json", "-f", "x.yaml", "--concurrency", "0"}, "--concurrency must be at least 1"},
		{[]string{"install", "--output", "json"}, "which host?"},
		{[]string{"join", "-o", "json", "--ip", "10.0.0.11"}, "which server?"},
		{[]string{"facts", "-o", "json", "--ip", "10.0.0.5", "--host", "pi"}, "not both"},
		{[]string{"plan", "-o", "json", "-f", "x.yaml", "surplus"}, "unknown command"},
	} {
		ios, _, out, errb := TestIO()
		code := Execute(context.Background(), ios, tc.args)
		if code != ExitUsage {
			t.Fatalf("%q: exit %d: %s", tc.args, code, errb.String())
		}
		e := lastEvent(t, out.String())
		help := fmt.Sprintf("Run 'k3sctl %s --help' for usage.", tc.args[0])
		if e.Type != EventError || !strings.Contains(e.Error, tc.want) || e.Hint != help {
			t.Errorf("%q: event %+v", tc.args, e)
		}
		if !strings.Contains(errb.String(), "Error: ") || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: stderr lacks the human message: %s", tc.args, errb.String())
		}
	}
}

func TestJSONBadInventoryEndsWithErrorEvent(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(inv, []byte("apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\nclusters:\n  - name: a\n    servers: []\n    colour: blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "apply"} {
		ios, _, out, errb := TestIO()
		code := Execute(context.Background(), ios, []string{cmd, "-f", inv, "-o", "json"})
		if code != ExitUsage {
			t.Fatalf("%s: exit %d: %s", cmd, code, errb.String())
		}
		e := lastEvent(t, out.String())
		if e.Type != EventError || !strings.Contains(e.Error, inv+":") {
			t.Errorf("%s: event %+v", cmd, e)
		}
		// Problems stay in file:line:col form for editors.
		if !strings.HasPrefix(errb.String(), inv+":") {
			t.Errorf("%s: stderr: %s", cmd, errb.String())
		}
	}
}

func TestNoErrorEventWithoutJSON(t *testing.T) {
	for _, args := range [][]string{
		{"plan"},
		{"plan", "-o", "text"},
		// The flags were not understood, so -o json cannot be trusted.
		{"plan", "-o", "json", "--bogus"},
		{"apply", "-f", "x.yaml", "-o", "json", "--concurrency", "many"},
	} {
		ios, _, out, errb := TestIO()
		if code := Execute(context.Background(), ios, args); code != ExitUsage {
			t.Errorf("%q: exit %d", args, code)
		}
		if out.Len() != 0 {
			t.Errorf("%q: stdout %q", args, out.String())
		}
		if !strings.Contains(errb.String(), "Error: ") {
			t.Errorf("%q: stderr %q", args, errb.String())
		}
	}
}

// fakeSSHServer accepts connections and answers with a banner followed by
// garbage, a host that no SSH client can talk to: the connection fails at
// once, without retries.
func fakeSSHServer(t *testing.T) (host, port string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte("SSH-2.0-broken\r\n"))
				_, _ = bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte(strings.Repeat("\xff", 64)))
				time.Sleep(time.Second)
			}()
		}
	}()
	host, port, _ = net.SplitHostPort(ln.Addr().String())
	return host, port
}

func TestJSONNoReachableHostEndsWithErrorEvent(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	host, port := fakeSSHServer(t)
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(inv, []byte("apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  version: v1.31.4+k3s1\n  ssh: {user: pi, port: "+port+"}\nclusters:\n  - name: home\n    servers: ["+host+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ios, _, out, errb := TestIO()
	code := Execute(ctx, ios, []string{"apply", "-f", inv, "-o", "json", "--kubeconfig", filepath.Join(dir, "kubeconfig")})
	if code != ExitHostsFailed {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	e := lastEvent(t, out.String())
	if e.Type != EventError || !strings.Contains(e.Error, "no host can be worked on") || !strings.Contains(e.Error, host) || !strings.Contains(e.Hint, "k3sctl facts --ip "+host) {
		t.Errorf("event %+v", e)
	}
	t.Logf("stdout: %s\nstderr: %s", out.String(), errb.String())
	if !strings.Contains(errb.String(), "Error: no host can be worked on") {
		t.Errorf("stderr: %s", errb.String())
	}
}

func TestSplitHint(t *testing.T) {
	for _, tc := range []struct{ in, msg, hint string }{
		{"10.0.0.5: read token: denied\n  hint: is K3s installed as a server there?", "10.0.0.5: read token: denied", "is K3s installed as a server there?"},
		{"10.0.0.5: connect: refused\nhint: is sshd running?", "10.0.0.5: connect: refused", "is sshd running?"},
		{"plain", "plain", ""},
	} {
		msg, hint := splitHint(errString(tc.in))
		if msg != tc.msg || hint != tc.hint {
			t.Errorf("%q: %q, %q", tc.in, msg, hint)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

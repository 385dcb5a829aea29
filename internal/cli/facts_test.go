package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

func TestFactsFlagMistakesAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"facts"},
		{"facts", "--ip", "10.0.0.5", "--ssh-host-key-checking", "maybe"},
		{"facts", "--ip", "10.0.0.5", "--ssh-port", "70000"},
		{"facts", "--ip", "10.0.0.5", "--output", "yaml"},
		{"facts", "--ip", "10.0.0.5", "--host", "pi"},
	} {
		var out, errb bytes.Buffer
		code := Execute(context.Background(), &IO{In: strings.NewReader(""), Out: &out, Err: &errb}, args)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d: %s", args, code, ExitUsage, errb.String())
		}
	}
}

func TestFactsUnreachableHostNamesIt(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	var out, errb bytes.Buffer
	// Port 1 on loopback refuses at once; retries would take a minute, so
	// the short connect timeout and a cancelled context bound the test.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code := Execute(ctx, &IO{In: strings.NewReader(""), Out: &out, Err: &errb},
		[]string{"facts", "--ip", "127.0.0.1", "--ssh-port", "1"})
	if code == ExitOK || !strings.Contains(errb.String(), "127.0.0.1") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

func TestPrintFacts(t *testing.T) {
	var b bytes.Buffer
	printFacts(&b, &node.Facts{Host: "10.0.0.5", Hostname: "pi-1", Machine: "aarch64", Arch: "arm64", User: "pi", Sudo: ssh.SudoNoPassword,
		InitSystem: "systemd", K3sVersion: "v1.31.4+k3s1", Services: node.Services{K3s: node.ServiceState{Installed: true, Active: true}},
		MemTotalBytes: 4 << 30, DiskFreeBytes: 3 << 29, DiskFreePath: "/var/lib", Privileged: true, ServerTokenExists: true})
	out := b.String()
	for _, want := range []string{"Host               10.0.0.5\n", "Architecture       aarch64 (K3s: arm64)\n", "User               pi (sudo: nopasswd)\n",
		"k3s service        installed, running\n", "k3s-agent service  not installed\n", "Server token       yes\n",
		"Memory             4.0 GiB\n", "Disk free          1.5 GiB (/var/lib)\n", "Memory cgroup      disabled\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}

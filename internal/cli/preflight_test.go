package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Problems found before any change end the run with the preflight exit
// code, all in one block on stderr and, with -o json, in the error event,
// one entry per problem; the token itself never shows.
func TestPreflightProblemsTogether(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("K3S_TOKEN", "")
	host, port := fakeSSHServer(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("clusters: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(dir, "read-only")
	if err := os.WriteFile(readOnly, []byte("apiVersion: v1\nkind: Config\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	const token = "K10abc::server:pw-not-shown"
	for _, tc := range []struct {
		name, kubeconfig string
		want             []string // kind: message
	}{
		{"broken kubeconfig and token", broken, []string{
			"kubeconfig: kubeconfig " + broken + ": is not a valid kubeconfig: yaml: line 1: did not find expected node content",
			"token: --token: the token's CA hash has 3 characters, not 64",
		}},
		{"read-only kubeconfig", readOnly, []string{
			"kubeconfig: kubeconfig " + readOnly + ": is read-only (mode 0400); k3sctl does not replace a read-only kubeconfig",
			"token: --token: the token's CA hash has 3 characters, not 64",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ios, _, out, errb := TestIO()
			code := Execute(ctx, ios, []string{"install", "--ip", host, "--ssh-port", port, "--user", "pi",
				"--k3s-version", "v1.31.4+k3s1", "--token", token, "--kubeconfig", tc.kubeconfig, "-o", "json"})
			if code != ExitPreflight {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
			e := lastEvent(t, out.String())
			if e.Type != EventError || e.Error != "preflight: 2 problems, nothing was changed" {
				t.Errorf("event %+v", e)
			}
			var got []string
			for _, p := range e.Problems {
				if p.Host != "" || p.Hint == "" {
					t.Errorf("problem %+v: a local problem with a fix", p)
				}
				got = append(got, p.Kind+": "+p.Error)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !strings.HasPrefix(errb.String(), "preflight: 2 problems, nothing was changed:\n") {
				t.Errorf("stderr: %s", errb.String())
			}
			for _, w := range tc.want {
				_, msg, _ := strings.Cut(w, ": ")
				if !strings.Contains(errb.String(), msg) {
					t.Errorf("stderr lacks %q:\n%s", msg, errb.String())
				}
			}
			if strings.Contains(out.String()+errb.String(), "pw-not-shown") {
				t.Error("the token is shown")
			}
			if data, _ := os.ReadFile(broken); string(data) != "clusters: [\n" {
				t.Errorf("the broken kubeconfig was changed: %q", data)
			}
		})
	}
}

// An address that is no IP is refused with its position before anything
// runs.
func TestInventoryAddressOutOfRange(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(inv, []byte("apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\nclusters:\n  - name: shop\n    servers: [10.79.0.300]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "apply"} {
		ios, _, _, errb := TestIO()
		code := Execute(context.Background(), ios, []string{cmd, "-f", inv})
		want := inv + `:5:15: address "10.79.0.300" is not a valid IP address: part 300 is more than 255`
		if code != ExitUsage || !strings.Contains(errb.String(), want) {
			t.Errorf("%s: exit %d: %s\nwant %s", cmd, code, errb.String(), want)
		}
	}
}

// join checks --node-token, and plan the kubeconfig apply would write.
func TestPreflightNodeTokenAndPlanKubeconfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	host, port := fakeSSHServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ios, _, _, errb := TestIO()
	code := Execute(ctx, ios, []string{"join", "--host", "localhost", "--server-ip", host, "--ssh-port", port, "--user", "pi",
		"--node-token", "K10abc::server:pw-not-shown"})
	want := "--node-token: the token's CA hash has 3 characters, not 64"
	if code != ExitPreflight || !strings.Contains(errb.String(), want) || strings.Contains(errb.String(), "pw-not-shown") {
		t.Errorf("join: exit %d\n%s\nwant %q", code, errb.String(), want)
	}

	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	if err := os.WriteFile(kc, []byte("clusters: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	inv := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(inv, []byte("apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  version: v1.31.4+k3s1\n  ssh: {user: pi, port: "+port+"}\nclusters:\n  - name: home\n    servers: ["+host+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ios, _, out, errb := TestIO()
	code = Execute(ctx, ios, []string{"plan", "-f", inv})
	want = "kubeconfig " + kc + ": is not a valid kubeconfig"
	if code != ExitPreflight || !strings.Contains(errb.String(), want) || out.Len() != 0 {
		t.Errorf("plan: exit %d\nstdout: %s\nstderr: %s\nwant %q", code, out.String(), errb.String(), want)
	}
}

// Names the ssh config maps to another host, or reaches through a jump
// host, are not looked up on this machine.
func TestSSHAliasesAreNotLookedUp(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte("Host shop-pi\n  HostName 127.0.0.1\nHost behind\n  ProxyJump gw.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ios, _, _, _ := TestIO()
	sf := sshFlags{config: cfg}
	r := &rolloutRun{io: ios, sshFunc: sf.resolver(&Factory{IO: ios}).options}
	for addr, want := range map[string]bool{"shop-pi": true, "behind": true, "pi.lan": false, "10.0.0.5": false} {
		if got := r.sshAlias(addr); got != want {
			t.Errorf("%s: alias %v, want %v", addr, got, want)
		}
	}
}

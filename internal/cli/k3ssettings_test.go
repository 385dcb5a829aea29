package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// K3s settings that break the node model stop install and join before any
// host is contacted, as usage errors that name the flag and the fix.
func TestK3sSettingsMistakesAreUsageErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := file("token.yaml", "disable: [traefik]\ntoken: supersecretvalue\n")
	typoFile := file("typo.yaml", "node-lable: [a=b]\n")
	boolFile := file("bool.yaml", "secrets-encryption: maybe\n")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"install", "--ip", "10.0.0.5", "--k3s-extra-args", "--token supersecretvalue"},
			[]string{"--k3s-extra-args", "--token is set by k3sctl", "--token flag or $K3S_TOKEN"}},
		{[]string{"join", "--ip", "10.0.0.6", "--server-ip", "10.0.0.5", "--k3s-extra-args", "--disable traefik --token=supersecretvalue"},
			[]string{"--token is set by k3sctl", "$K3S_TOKEN"}},
		{[]string{"install", "--ip", "10.0.0.5", "--k3s-extra-args", "--cluster-init"},
			[]string{"--cluster-init is set by k3sctl", "install --cluster"}},
		{[]string{"install", "--ip", "10.0.0.5", "--k3s-extra-args", "--tls-sans k3s.lan"},
			[]string{"--tls-sans is not a K3s server or agent flag", "did you mean --tls-san?"}},
		{[]string{"install", "--ip", "10.0.0.5", "--k3s-extra-args", "--secrets-encryption=maybe"},
			[]string{"--secrets-encryption is true or false"}},
		{[]string{"install", "--ip", "10.0.0.5", "--k3s-config", tokenFile},
			[]string{"--k3s-config " + tokenFile + ": line 2: token: is set by k3sctl", "$K3S_TOKEN"}},
		{[]string{"install", "--ip", "10.0.0.5", "--k3s-config", typoFile},
			[]string{"line 1: node-lable: is not a K3s", `did you mean "node-label"?`}},
		{[]string{"install", "--ip", "10.0.0.5", "--k3s-config", boolFile},
			[]string{"line 1: secrets-encryption: is true or false, not \"maybe\""}},
	} {
		io, _, out, errb := TestIO()
		code := Execute(context.Background(), io, tc.args)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d: %s", tc.args, code, ExitUsage, errb.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, errb.String())
			}
		}
		if strings.Contains(out.String()+errb.String(), "supersecretvalue") {
			t.Errorf("%q: output shows the token:\n%s%s", tc.args, out.String(), errb.String())
		}
	}
}

package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// runWithStdin is runWith with text on stdin.
func runWithStdin(t *testing.T, stdin string, add func(f *Factory) *cobra.Command, args ...string) (int, string) {
	t.Helper()
	ios, in, _, errb := TestIO()
	in.WriteString(stdin)
	f := &Factory{IO: ios, Prompter: func() ssh.Prompter { return nil }}
	root := newRootCmd(f)
	root.AddCommand(add(f))
	return run(context.Background(), ios, root, args), errb.String()
}

func TestTokenFile(t *testing.T) {
	const tok = "K10abc::server:s3cret-from-file"
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two")
	if err := os.WriteFile(two, []byte("a b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var join *JoinOptions
	joinCmd := func(f *Factory) *cobra.Command {
		return NewCmdJoin(f, func(o *JoinOptions) error { join = o; return nil })
	}
	var install *InstallOptions
	installCmd := func(f *Factory) *cobra.Command {
		return NewCmdInstall(f, func(o *InstallOptions) error { install = o; return nil })
	}

	if code, stderr := runWithStdin(t, "", joinCmd, "join", "--ip", "10.0.0.20", "--server-ip", "10.0.0.10", "--token-file", file); code != ExitOK {
		t.Fatalf("join --token-file: exit %d\n%s", code, stderr)
	}
	if join.K3s.tokenValue().Reveal() != tok {
		t.Errorf("join: token from the file not used")
	}
	if code, stderr := runWithStdin(t, tok+"\n", installCmd, "install", "--ip", "10.0.0.10", "--token-file", "-"); code != ExitOK {
		t.Fatalf("install --token-file -: exit %d\n%s", code, stderr)
	}
	if install.K3s.tokenValue().Reveal() != tok {
		t.Errorf("install: token from stdin not used")
	}

	for _, tc := range []struct {
		name  string
		stdin string
		add   func(f *Factory) *cobra.Command
		args  []string
		want  string
	}{
		{"with --token", "", installCmd, []string{"install", "--ip", "a", "--token-file", file, "--token", "x"}, "--token and --token-file both"},
		{"with --node-token", "", joinCmd, []string{"join", "--ip", "a", "--server-ip", "b", "--token-file", file, "--node-token", "x"}, "--node-token and --token-file both"},
		{"missing", "", installCmd, []string{"install", "--ip", "a", "--token-file", filepath.Join(dir, "nope")}, "no such file"},
		{"empty", "", installCmd, []string{"install", "--ip", "a", "--token-file", empty}, "is empty"},
		{"empty stdin", "", installCmd, []string{"install", "--ip", "a", "--token-file", "-"}, "stdin is empty"},
		{"two words", "", joinCmd, []string{"join", "--ip", "a", "--server-ip", "b", "--token-file", two}, "more than one word"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runWithStdin(t, tc.stdin, tc.add, tc.args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d and %q:\n%s", code, ExitUsage, tc.want, stderr)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("the token is shown:\n%s", stderr)
			}
		})
	}
}

func TestInstallClusterWithDatastore(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "k3s.yaml")
	if err := os.WriteFile(cfg, []byte("datastore-endpoint: postgres://k3s:pw-s3cret@db/k3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	called := false
	installCmd := func(f *Factory) *cobra.Command {
		return NewCmdInstall(f, func(o *InstallOptions) error { called = true; return nil })
	}
	code, stderr := runWithStdin(t, "", installCmd, "install", "--ip", "a", "--cluster", "--k3s-config", cfg)
	if code != ExitUsage || called || !strings.Contains(stderr, "needs no --cluster") || strings.Contains(stderr, "pw-s3cret") {
		t.Errorf("exit %d, ran %v:\n%s", code, called, stderr)
	}
	if code, stderr := runWithStdin(t, "", installCmd, "install", "--ip", "a", "--k3s-config", cfg); code != ExitOK || !called {
		t.Errorf("without --cluster: exit %d\n%s", code, stderr)
	}
}

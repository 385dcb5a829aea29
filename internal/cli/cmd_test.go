package cli

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// runWith runs one command under a bare root, as Execute would, and
// returns the exit code with what was written.
func runWith(t *testing.T, add func(f *Factory) *cobra.Command, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ios, _, out, errb := TestIO()
	f := &Factory{IO: ios, Prompter: func() ssh.Prompter {
		t.Error("a terminal prompter was opened")
		return nil
	}}
	root := newRootCmd(f)
	root.AddCommand(add(f))
	code = run(context.Background(), ios, root, args)
	return code, out.String(), errb.String()
}

func TestInstallFlagsToOptions(t *testing.T) {
	var got *InstallOptions
	capture := func(f *Factory) *cobra.Command {
		return NewCmdInstall(f, func(o *InstallOptions) error { got = o; return nil })
	}
	code, _, stderr := runWith(t, capture, "install", "--ip", "10.0.0.10", "--user", "ubuntu", "--cluster",
		"--tls-san", "k3s.example.lan", "--tls-san", "10.0.0.100", "--k3s-version", "v1.31.4+k3s1",
		"--k3s-extra-args", "--disable traefik", "--dry-run", "-o", "json", "--ssh-port", "2222",
		"--context", "edge", "--no-switch-context", "--timeout", "90s")
	if code != ExitOK || got == nil {
		t.Fatalf("exit %d, runF called: %v\n%s", code, got != nil, stderr)
	}
	if got.Address != "10.0.0.10" || !got.Cluster || got.SSH.user != "ubuntu" || got.SSH.port != 2222 {
		t.Errorf("host options: %+v", got)
	}
	k := got.K3s
	if k.version != "v1.31.4+k3s1" || !k.dryRun || k.output != "json" || k.context != "edge" || !k.noSwitchContext || k.timeout != 90*time.Second {
		t.Errorf("k3s options: %+v", k)
	}
	if !slices.Equal(k.tlsSANs, []string{"k3s.example.lan", "10.0.0.100"}) {
		t.Errorf("tls-san: %q", k.tlsSANs)
	}
	if !reflect.DeepEqual(got.Config["disable"], []any{"traefik"}) {
		t.Errorf("config from --k3s-extra-args: %#v", got.Config)
	}

	got = nil
	if code, _, stderr := runWith(t, capture, "install", "--host", "pi-kitchen"); code != ExitOK || got == nil || got.Address != "pi-kitchen" {
		t.Errorf("--host: exit %d, options %+v\n%s", code, got, stderr)
	}
	if got.K3s.channel != "stable" || got.K3s.output != "" || got.Cluster {
		t.Errorf("defaults: %+v", got)
	}
}

func TestJoinFlagsToOptions(t *testing.T) {
	var got *JoinOptions
	capture := func(f *Factory) *cobra.Command {
		return NewCmdJoin(f, func(o *JoinOptions) error { got = o; return nil })
	}
	code, _, stderr := runWith(t, capture, "join", "--ip", "10.0.0.11", "--server-ip", "10.0.0.10", "--server",
		"--server-user", "admin", "--node-token", "K10abc::server:s3cret", "--user", "pi")
	if code != ExitOK || got == nil {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got.Address != "10.0.0.11" || got.Server != "10.0.0.10" || !got.AsServer || got.ServerUser != "admin" || got.SSH.user != "pi" {
		t.Errorf("options: %+v", got)
	}
	if got.NodeToken.Reveal() != "K10abc::server:s3cret" {
		t.Errorf("node token not kept")
	}
	if got.Version != "" {
		t.Errorf("without --k3s-version or --k3s-channel the node follows its server, got version %q", got.Version)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--k3s-channel", "latest"}, "latest"},
		{[]string{"--k3s-version", "v1.31.5+k3s1", "--k3s-channel", "latest"}, "v1.31.5+k3s1"},
	} {
		got = nil
		args := append([]string{"join", "--host", "w1", "--server-host", "s1"}, tc.args...)
		if code, _, stderr := runWith(t, capture, args...); code != ExitOK || got == nil {
			t.Fatalf("%q: exit %d\n%s", args, code, stderr)
		}
		if got.Version != tc.want || got.Address != "w1" || got.Server != "s1" || got.AsServer {
			t.Errorf("%q: options %+v", args, got)
		}
	}
}

func TestPlanFlagsToOptions(t *testing.T) {
	var got *PlanOptions
	capture := func(f *Factory) *cobra.Command {
		return NewCmdPlan(f, func(o *PlanOptions) error { got = o; return nil })
	}
	code, _, stderr := runWith(t, capture, "plan", "-f", "fleet.yaml", "--detailed-exitcode", "-o", "json", "--force",
		"--allow-downgrade", "--download-url", "http://127.0.0.1:8080/releases", "--channel-url", "http://127.0.0.1:8080/channels",
		"--ssh-jump", "ops@bastion:2222")
	if code != ExitOK || got == nil {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got.File != "fleet.yaml" || !got.DetailedExitCode || !got.Force || got.SSH.jump != "ops@bastion:2222" {
		t.Errorf("options: %+v", got)
	}
	k := got.K3s
	if k.output != "json" || !k.allowDowngrade || k.downloadURL != "http://127.0.0.1:8080/releases" || k.channelURL != "http://127.0.0.1:8080/channels" {
		t.Errorf("planning flags: %+v", k)
	}
}

// TestPlanTakesOnlyPlanningFlags: what only apply uses is no flag of plan.
func TestPlanTakesOnlyPlanningFlags(t *testing.T) {
	called := false
	capture := func(f *Factory) *cobra.Command {
		return NewCmdPlan(f, func(*PlanOptions) error { called = true; return nil })
	}
	for _, flag := range [][]string{
		{"--concurrency", "5"}, {"--max-unavailable", "2"}, {"--timeout", "1m"}, {"--concurrent-uploads", "2"},
		{"--plain"}, {"--dry-run"}, {"--kubeconfig", "k"}, {"--no-kubeconfig"}, {"--yes"},
		{"--context", "c"}, {"--no-switch-context"}, {"--token", "t"}, {"--k3s-version", "v1.31.4+k3s1"},
	} {
		code, stdout, stderr := runWith(t, capture, append([]string{"plan", "-f", "fleet.yaml"}, flag...)...)
		if code != ExitUsage || called || !strings.Contains(stderr, "unknown flag: "+flag[0]) {
			t.Errorf("plan %s: exit %d, ran %v\n%s", flag[0], code, called, stderr)
		}
		if stdout != "" {
			t.Errorf("plan %s: stdout %q", flag[0], stdout)
		}
	}
}

func TestApplyFlagsToOptions(t *testing.T) {
	var got *ApplyOptions
	capture := func(f *Factory) *cobra.Command {
		return NewCmdApply(f, func(o *ApplyOptions) error { got = o; return nil })
	}
	code, _, stderr := runWith(t, capture, "apply", "-f", "fleet.yaml", "--concurrency", "3", "--max-unavailable", "2",
		"--timeout", "90s", "--concurrent-uploads", "1", "--no-kubeconfig", "--plain", "--dry-run", "--kubeconfig", "k.yaml", "--force")
	if code != ExitOK || got == nil {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got.File != "fleet.yaml" || got.Concurrency != 3 || got.MaxUnavailable != 2 || !got.NoKubeconfig || !got.Force {
		t.Errorf("options: %+v", got)
	}
	k := got.K3s
	if k.timeout != 90*time.Second || k.concurrentUploads != 1 || !k.plain || !k.dryRun || k.kubeconfigPath != "k.yaml" {
		t.Errorf("k3s options: %+v", k)
	}
	got = nil
	if code, _, _ := runWith(t, capture, "apply", "-f", "fleet.yaml"); code != ExitOK || got.Concurrency != 20 || got.MaxUnavailable != 1 || got.K3s.concurrentUploads != 5 {
		t.Errorf("defaults: exit %d, %+v", code, got)
	}
}

// TestFlagMistakes: each is a usage error, reported before anything runs.
func TestFlagMistakes(t *testing.T) {
	never := func(t *testing.T) (func(*InstallOptions) error, func(*JoinOptions) error, func(*PlanOptions) error, func(*ApplyOptions) error) {
		fail := func() error { t.Error("the command ran despite a flag mistake"); return nil }
		return func(*InstallOptions) error { return fail() }, func(*JoinOptions) error { return fail() },
			func(*PlanOptions) error { return fail() }, func(*ApplyOptions) error { return fail() }
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install"}, "which host?"},
		{[]string{"install", "--ip", "10.0.0.10", "--host", "pi"}, "not both"},
		{[]string{"install", "--ip", "10.0.0.10", "--k3s-version", "1.31"}, "--k3s-version"},
		{[]string{"install", "--ip", "10.0.0.10", "-o", "yaml"}, "--output must be json or text"},
		{[]string{"install", "--ip", "10.0.0.10", "--k3s-binary", "/nonexistent/k3s"}, "--k3s-binary"},
		{[]string{"install", "--ip", "10.0.0.10", "extra"}, "unknown command"},
		{[]string{"install", "--ip", "10.0.0.10", "--ssh-port", "0"}, "--ssh-port"},
		{[]string{"join", "--ip", "10.0.0.11"}, "which server?"},
		{[]string{"join", "--ip", "10.0.0.10", "--server-ip", "10.0.0.10"}, "same host"},
		{[]string{"join", "--ip", "10.0.0.11", "--server-ip", "10.0.0.10", "--airgap-images", "/nonexistent.tar"}, "--airgap-images"},
		{[]string{"plan"}, "which inventory?"},
		{[]string{"plan", "-f", "fleet.yaml", "-o", "yaml"}, "--output must be json or text"},
		{[]string{"apply"}, "which inventory?"},
		{[]string{"apply", "-f", "fleet.yaml", "--concurrency", "0"}, "--concurrency must be at least 1"},
		{[]string{"apply", "-f", "fleet.yaml", "--max-unavailable", "0"}, "--max-unavailable must be at least 1"},
		{[]string{"apply", "-f", "fleet.yaml", "--concurrent-uploads", "0"}, "--concurrent-uploads must be at least 1"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			inst, join, pl, ap := never(t)
			add := map[string]func(f *Factory) *cobra.Command{
				"install": func(f *Factory) *cobra.Command { return NewCmdInstall(f, inst) },
				"join":    func(f *Factory) *cobra.Command { return NewCmdJoin(f, join) },
				"plan":    func(f *Factory) *cobra.Command { return NewCmdPlan(f, pl) },
				"apply":   func(f *Factory) *cobra.Command { return NewCmdApply(f, ap) },
			}[tc.args[0]]
			code, stdout, stderr := runWith(t, add, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "--help' for usage") {
				t.Errorf("stderr lacks %q and the usage pointer:\n%s", tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout without -o json: %q", stdout)
			}
		})
	}
}

// TestNewRootListsEveryCommand: the tree is what NewRoot lists, and every
// command's RunE exists (no command is only a group).
func TestNewRootListsEveryCommand(t *testing.T) {
	ios, _, _, _ := TestIO()
	root := NewRoot(&Factory{IO: ios})
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
		if c.RunE == nil {
			t.Errorf("%s has no RunE", c.Name())
		}
	}
	want := []string{"apply", "backup", "facts", "gen-docs", "init", "install", "join", "kubeconfig", "node-remove", "node-token", "plan", "reset", "restore", "status", "uninstall", "version"}
	if !slices.Equal(names, want) {
		t.Errorf("commands %q, want %q", names, want)
	}
}

func TestExecuteMapsErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New("boom"), ExitError},
		{flagErrorf("bad"), ExitUsage},
		{&SilentError{Code: ExitHostsFailed}, ExitHostsFailed},
		{&SilentError{Code: ExitChangesPending}, ExitChangesPending},
		{&CodeError{Code: ExitUsage, Err: errors.New("inv.yaml:1:1: bad")}, ExitUsage},
	} {
		code, _, _ := runWith(t, func(f *Factory) *cobra.Command {
			return &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return tc.err }}
		}, "x")
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.err, code, tc.code)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ios, _, _, errb := TestIO()
	root := newRootCmd(&Factory{IO: ios})
	root.AddCommand(&cobra.Command{Use: "x", RunE: func(c *cobra.Command, _ []string) error { return c.Context().Err() }})
	if code := run(ctx, ios, root, []string{"x"}); code != ExitInterrupted || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("cancelled: exit %d: %s", code, errb.String())
	}
}

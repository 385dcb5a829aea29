package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Addresses on loopback: every case here stops before connecting.
const opsInventory = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
rollout:
  canary: [shop-01]
  waves: [1, "50%"]
  failureBudget: 1
  pause: 1m
clusters:
  - name: shop-01
    labels: {tier: canary}
    servers: [127.0.0.11]
  - name: shop-02
    servers: [127.0.0.12]
  - name: lab-01
    servers: [127.0.0.13]
`

func writeOpsInventory(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(p, []byte(opsInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSubsetAndRolloutUsageErrors(t *testing.T) {
	inv := writeOpsInventory(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", "-f", inv, "--cluster", "shop-1"}, `--cluster "shop-1" matches no cluster; did you mean "shop-01"`},
		{[]string{"apply", "-f", inv, "--cluster", "shop-[a"}, "not a valid glob"},
		{[]string{"plan", "-f", inv, "--selector", "tier=canry"}, `did you mean "tier=canary"?`},
		{[]string{"plan", "-f", inv, "--selector", "a=b=c"}, `--selector: selector term "a=b=c"`},
		{[]string{"reset", "-f", inv, "--cluster", "lab", "--yes"}, `did you mean "lab-01"?`},
		{[]string{"kubeconfig", "--ip", "127.0.0.11", "--cluster", "shop-01"}, "give -f <inventory>"},
		{[]string{"apply", "-f", inv, "--canary", "shop-3"}, `--canary "shop-3" matches no cluster; did you mean "shop-01" or "shop-02"?`},
		{[]string{"apply", "-f", inv, "--wave-size", "0"}, `--wave-size: "0" must be at least 1`},
		{[]string{"apply", "-f", inv, "--failure-budget", "lots"}, "--failure-budget:"},
		{[]string{"apply", "-f", inv, "--pause", "soon"}, "--pause:"},
		{[]string{"apply", "-f", inv, "--max-clusters", "0"}, "--max-clusters must be at least 1"},
		// Asking needs a terminal; the test's stdin is none.
		{[]string{"apply", "-f", inv, "--confirm"}, "stdin is not a terminal; pass --yes"},
		{[]string{"apply", "-f", inv, "--pause", "confirm"}, "stdin is not a terminal; pass --yes"},
		// reset counts the chosen clusters' hosts only.
		{[]string{"reset", "-f", inv, "--cluster", "shop-*"}, "from 2 host(s)"},
		{[]string{"reset", "-f", inv, "--selector", "!tier"}, "from 2 host(s)"},
		{[]string{"reset", "-f", inv, "--selector", "tier=canary"}, "from 1 host(s)"},
	} {
		code, stdout, stderr := runWith(t, func(f *Factory) *cobra.Command {
			switch tc.args[0] {
			case "plan":
				return NewCmdPlan(f, nil)
			case "reset":
				return NewCmdReset(f)
			case "kubeconfig":
				return NewCmdKubeconfig(f)
			}
			return NewCmdApply(f, nil)
		}, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", strings.Join(tc.args[3:], " "), code, ExitUsage, tc.want, stdout, stderr)
		}
	}

	// With -o json the reason is the last line, as an error event.
	code, stdout, _ := runWith(t, func(f *Factory) *cobra.Command { return NewCmdApply(f, nil) }, "apply", "-f", inv, "--cluster", "shpo-*", "-o", "json")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != ExitUsage || !strings.Contains(lines[len(lines)-1], `"type":"error"`) || !strings.Contains(lines[len(lines)-1], "did you mean") {
		t.Errorf("-o json: exit %d\n%s", code, stdout)
	}
}

func TestRolloutFlagsReplaceInventoryKeys(t *testing.T) {
	path := writeOpsInventory(t)
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	policy := func(args ...string) *inventory.Rollout {
		t.Helper()
		var got *ApplyOptions
		code, _, stderr := runWith(t, func(f *Factory) *cobra.Command {
			return NewCmdApply(f, func(o *ApplyOptions) error { got = o; return nil })
		}, append([]string{"apply", "-f", path}, args...)...)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		p, err := got.Rollout.policy(got.flags, inv)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := policy()
	if !reflect.DeepEqual(p.Canary.Clusters, []string{"shop-01"}) || len(p.Waves) != 2 || p.FailureBudget != (inventory.Amount{N: 1}) || p.Pause != time.Minute {
		t.Errorf("inventory's rollout: %+v", p)
	}
	p = policy("--canary-selector", "tier=canary", "--wave-size", "25%", "--failure-budget", "0", "--confirm", "--yes", "--max-clusters", "3")
	if len(p.Canary.Clusters) != 0 || p.Canary.Selector.String() != "tier=canary" || !reflect.DeepEqual(p.Waves, []inventory.Amount{{N: 25, Percent: true}}) ||
		p.FailureBudget != (inventory.Amount{}) || !p.Confirm || p.MaxClustersInFlight != 3 {
		t.Errorf("flags over the inventory: %+v", p)
	}

	// No rollout: section and no flag: no rollout.
	plain := filepath.Join(t.TempDir(), "plain.yaml")
	body := opsInventory[:strings.Index(opsInventory, "rollout:")] + opsInventory[strings.Index(opsInventory, "clusters:"):]
	if err := os.WriteFile(plain, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	inv2, err := inventory.Load(plain)
	if err != nil {
		t.Fatal(err)
	}
	var got *ApplyOptions
	runWith(t, func(f *Factory) *cobra.Command {
		return NewCmdApply(f, func(o *ApplyOptions) error { got = o; return nil })
	}, "apply", "-f", plain)
	if p, err := got.Rollout.policy(got.flags, inv2); p != nil || err != nil {
		t.Errorf("no rollout asked for: %+v, %v", p, err)
	}
}

// fakeSSHD accepts connections on loopback and answers with an SSH
// version no client speaks, so that a dial fails at once; it counts the
// connections.
func fakeSSHD(t *testing.T, addr string) (port int, conns func() int) {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_, _ = c.Write([]byte("SSH-1.0-refusing\r\n"))
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, func() int { return int(n.Load()) }
}

// A rollout whose canary fails starts nothing else, and --yes lets a
// rollout that asks run without a terminal.
func TestRolloutStopsAtAFailedCanary(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	var ports []int
	var counts []func() int
	for i := range 3 {
		p, c := fakeSSHD(t, fmt.Sprintf("127.0.0.%d", 21+i))
		ports, counts = append(ports, p), append(counts, c)
	}
	inv := filepath.Join(t.TempDir(), "fleet.yaml")
	body := fmt.Sprintf(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults: {version: v1.31.4+k3s1, ssh: {user: pi}}
rollout: {canary: [shop-01], waveSize: 1, pause: confirm}
clusters:
  - {name: shop-01, servers: [{address: 127.0.0.21, ssh: {port: %d}}]}
  - {name: shop-02, servers: [{address: 127.0.0.22, ssh: {port: %d}}]}
  - {name: lab-01, servers: [{address: 127.0.0.23, ssh: {port: %d}}]}
`, ports[0], ports[1], ports[2])
	if err := os.WriteFile(inv, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ios, _, out, errb := TestIO()
	// Nobody to ask for a password: the test has no terminal.
	f := &Factory{IO: ios, Prompter: func() ssh.Prompter { return nil }}
	root := newRootCmd(f)
	root.AddCommand(NewCmdApply(f, nil))
	code := run(context.Background(), ios, root, []string{"apply", "-f", inv, "--yes", "--no-kubeconfig", "-o", "json"})
	stdout, stderr := out.String(), errb.String()
	t.Logf("stderr:\n%s", stderr)
	if code != ExitHostsFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, ExitHostsFailed, stdout, stderr)
	}
	for _, want := range []string{"Rollout stopped after canary: canary cluster shop-01 failed", "failed:      shop-01", "not started: shop-02, lab-01"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report lacks %q:\n%s", want, stderr)
		}
	}
	if counts[0]() == 0 || counts[1]() != 0 || counts[2]() != 0 {
		t.Errorf("connections: canary %d, shop-02 %d, lab-01 %d; want only the canary's", counts[0](), counts[1](), counts[2]())
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var types []string
	for _, l := range lines {
		var e struct {
			Type, Wave, Host string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if e.Host != "" && e.Wave != "canary" {
			t.Errorf("host event outside the canary wave: %s", l)
		}
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); !strings.HasPrefix(got, "wave_start ") || !strings.HasSuffix(got, "wave_done rollout_stopped summary") {
		t.Errorf("event types: %s", got)
	}
	if !strings.Contains(lines[len(lines)-1], `"status":"not_started"`) {
		t.Errorf("summary: %s", lines[len(lines)-1])
	}
}

func TestClusterFlagRepeatsAndSplits(t *testing.T) {
	var got *PlanOptions
	code, _, stderr := runWith(t, func(f *Factory) *cobra.Command {
		return NewCmdPlan(f, func(o *PlanOptions) error { got = o; return nil })
	}, "plan", "-f", "fleet.yaml", "--cluster", "shop-*", "--cluster", "lab-01,lab-02", "-l", "tier=canary,!old")
	if code != ExitOK || got == nil {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !reflect.DeepEqual(got.Subset.clusters, []string{"shop-*", "lab-01", "lab-02"}) || got.Subset.selector != "tier=canary,!old" {
		t.Errorf("subset flags: %+v", got.Subset)
	}
}

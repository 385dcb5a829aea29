package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
	"github.com/k3sctl/k3sctl/test/mirror"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

func k3sctl(b *testing.B) string {
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "k3sctl-bench-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "k3sctl")
		if out, err := exec.Command("go", "build", "-o", cliPath, "github.com/k3sctl/k3sctl/cmd/k3sctl").CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if cliErr != nil {
		b.Fatal(cliErr)
	}
	return cliPath
}

// fleetInventory groups hosts into sites of up to three nodes (one server,
// up to two agents), the shape of an edge fleet.
func fleetInventory(key string, hosts []*world.Host) string {
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  ssh:\n    user: pi\n    keyFile: %s\n  version: %s\nclusters:\n", key, benchVersion)
	for i := 0; i < len(hosts); i += 3 {
		end := min(i+3, len(hosts))
		fmt.Fprintf(&s, "  - name: site-%d\n    servers: [%s]\n", i/3+1, hosts[i].IP)
		if end > i+1 {
			var agents []string
			for _, h := range hosts[i+1 : end] {
				agents = append(agents, h.IP)
			}
			fmt.Fprintf(&s, "    agents: [%s]\n", strings.Join(agents, ", "))
		}
	}
	return s.String()
}

// BenchmarkApply times whole `k3sctl apply` runs against the test world:
// a fresh install of 1, 10 and 30 hosts, and a re-apply of 30 hosts that
// are already right. Hosts are reset between install iterations (not timed).
func BenchmarkApply(b *testing.B) {
	w := world.New(b)
	dir := b.TempDir()
	mirror.Build(b, dir, []string{benchVersion}, []string{"amd64"})
	m := mirror.Start(b, dir)
	names := make([]string, 30)
	for i := range names {
		names[i] = fmt.Sprintf("h%02d", i+1)
	}
	start := time.Now()
	hosts := w.Start(b, names...)
	b.Logf("30 hosts up in %s", time.Since(start).Round(time.Second))
	home := b.TempDir()
	env := append(os.Environ(), "HOME="+home, "KUBECONFIG="+filepath.Join(home, "kubeconfig"), "XDG_CACHE_HOME="+filepath.Join(home, "cache"), "CI=true")
	run := func(b *testing.B, args ...string) {
		cmd := exec.Command(k3sctl(b), args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("k3sctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	flags := []string{"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL, "--timeout", "3m"}
	write := func(n int) string {
		p := filepath.Join(dir, fmt.Sprintf("fleet-%d.yaml", n))
		if err := os.WriteFile(p, []byte(fleetInventory(w.Key, hosts[:n])), 0o644); err != nil {
			b.Fatal(err)
		}
		return p
	}
	for _, n := range []int{1, 10, 30} {
		inv := write(n)
		b.Run(fmt.Sprintf("install/hosts=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				run(b, "reset", "-f", write(30), "--yes")
				b.StartTimer()
				run(b, append([]string{"apply", "-f", inv}, flags...)...)
			}
		})
	}
	inv := write(30)
	b.Run("no-change/hosts=30", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run(b, append([]string{"apply", "-f", inv}, flags...)...)
		}
	})
}

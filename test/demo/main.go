// Command demo lets someone try k3sctl with no hardware: it starts three
// test hosts on this machine (containers with systemd and OpenSSH, the same
// as the end-to-end tests use), applies an inventory to them and shows
// `kubectl get nodes`. The K3s it installs is the project's simulator, not
// real K3s, and it says so. Run it with `make demo`.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/term"

	"github.com/k3sctl/k3sctl/test/e2e/world"
	"github.com/k3sctl/k3sctl/test/mirror"
)

const version = "v1.31.4+k3s1"

var hostNames = []string{"node-1", "node-2", "node-3"}

func main() {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Int("keep", 0, "keep the hosts this many minutes before removing them (Enter ends it sooner)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./test/demo [--keep <minutes>]\n\n"+
			"Starts three simulated hosts on this machine, applies an inventory to them\n"+
			"with k3sctl and shows kubectl get nodes. Needs Docker (make deps).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	// The test world asks testing.Short(), which needs the testing flags
	// registered and parsed; none is given, so Short() is false.
	testing.Init()
	_ = flag.CommandLine.Parse(nil)

	d := &demo{tb: newTB()}
	defer d.tb.finish()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		say("Interrupted: removing the demo hosts.")
		d.tb.finish()
		os.Exit(130)
	}()
	d.run(time.Duration(*keep) * time.Minute)
}

type demo struct {
	tb    *demoTB
	dir   string // everything the demo writes on this machine
	home  string // HOME of the k3sctl runs: ssh config, known_hosts, kubeconfig, cache
	bin   string
	inv   string
	env   []string
	hosts []*world.Host
}

func (d *demo) run(keep time.Duration) {
	banner(
		"k3sctl demo: a SIMULATION, not real K3s.",
		"",
		"Three Debian containers on this machine play the hosts (systemd, OpenSSH).",
		"What k3sctl installs on them is k3sctl's K3s simulator (test/k3s-sim): it",
		"answers like K3s (service, API, kubectl, tokens) but runs no workloads.",
		"Everything k3sctl itself does is real: SSH, host keys, uploads, config",
		"files, systemd units, the join token, the kubeconfig merge.",
	)

	start := time.Now()
	say("Starting Docker hosts (the first run builds the host image: a few minutes)...")
	w := world.New(d.tb)
	d.hosts = w.Start(d.tb, hostNames...)
	say("Building the simulator, served as K3s %s by a local release mirror...", version)
	releases := d.tb.TempDir()
	mirror.Build(d.tb, releases, []string{version}, []string{"amd64"})
	m := mirror.Start(d.tb, releases)
	d.dir = d.tb.TempDir()
	d.home = filepath.Join(d.dir, "home")
	d.bin = filepath.Join(d.dir, "k3sctl")
	say("Building k3sctl...")
	if out, err := exec.Command("go", "build", "-o", d.bin, "github.com/k3sctl/k3sctl/cmd/k3sctl").CombinedOutput(); err != nil {
		d.tb.Fatalf("go build k3sctl: %v\n%s", err, out)
	}
	d.writeHome(w.Key)
	d.writeInventory()
	d.env = append(os.Environ(),
		"HOME="+d.home,
		// The simulator must never land in your real download cache.
		"XDG_CACHE_HOME="+filepath.Join(d.home, ".cache"),
		"KUBECONFIG="+filepath.Join(d.home, ".kube", "config"),
		"K3SCTL_DOWNLOAD_URL="+m.DownloadURL,
		"K3SCTL_CHANNEL_URL="+m.ChannelURL,
		"SSH_AUTH_SOCK=",
	)
	say("Ready in %s.", time.Since(start).Round(time.Second))

	fmt.Printf("\nThe inventory, %s:\n\n", d.inv)
	inv, _ := os.ReadFile(d.inv)
	fmt.Print(indent(string(inv)))

	d.k3sctl("plan", "-f", d.inv)
	d.k3sctl("apply", "-f", d.inv)
	d.showNodes()

	banner(
		"That was a simulation: real k3sctl, simulated K3s on containers.",
		"On real hosts, the same inventory with your addresses does the same.",
		"Next: README.md (Install) and docs/quickstart.md.",
	)
	d.wait(keep)
}

// writeHome gives the k3sctl runs a home of their own, so the demo leaves
// your ~/.ssh/known_hosts, ~/.kube/config and download cache alone.
func (d *demo) writeHome(key string) {
	ssh := filepath.Join(d.home, ".ssh")
	if err := os.MkdirAll(ssh, 0o700); err != nil {
		d.tb.Fatal(err)
	}
	cfg := fmt.Sprintf("# The demo hosts: user pi, the test world's key.\nHost *\n  User pi\n  IdentityFile %s\n", key)
	if err := os.WriteFile(filepath.Join(ssh, "config"), []byte(cfg), 0o600); err != nil {
		d.tb.Fatal(err)
	}
}

func (d *demo) writeInventory() {
	var agents []string
	for _, h := range d.hosts[1:] {
		agents = append(agents, h.IP)
	}
	inv := fmt.Sprintf(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
# One cluster: a server and two agents, on the simulated hosts %s.
name: demo
version: %s
servers: [%s]
agents: [%s]
`, strings.Join(hostNames, ", "), version, d.hosts[0].IP, strings.Join(agents, ", "))
	d.inv = filepath.Join(d.dir, "demo.yaml")
	if err := os.WriteFile(d.inv, []byte(inv), 0o644); err != nil {
		d.tb.Fatal(err)
	}
}

// k3sctl runs k3sctl on this terminal, so a terminal shows its live view.
func (d *demo) k3sctl(args ...string) {
	fmt.Printf("\n$ k3sctl %s\n", strings.Join(args, " "))
	cmd := exec.Command(d.bin, args...)
	cmd.Env = d.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		d.tb.Fatalf("k3sctl %s: %v", strings.Join(args, " "), err)
	}
}

// showNodes prints kubectl get nodes once every node is Ready (an agent
// reports Ready a moment after its service is up).
func (d *demo) showNodes() {
	args := []string{"--context", "demo", "get", "nodes", "-o", "wide"}
	fmt.Printf("\n$ kubectl %s\n", strings.Join(args, " "))
	if _, err := exec.LookPath("kubectl"); err != nil {
		say("kubectl is not installed (Debian: apt-get install kubernetes-client); skipping.")
		return
	}
	var out []byte
	var err error
	for deadline := time.Now().Add(90 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--request-timeout", "10s"}, args...)...)
		cmd.Env = d.env
		out, err = cmd.CombinedOutput()
		cancel()
		if err == nil && strings.Count(string(out), " Ready ") == len(d.hosts) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	os.Stdout.Write(out)
	if err != nil {
		d.tb.Fatalf("kubectl: %v", err)
	}
}

// wait keeps the hosts for keep, or until Enter on a terminal; without a
// terminal and without keep it returns at once.
func (d *demo) wait(keep time.Duration) {
	interactive := term.IsTerminal(int(os.Stdin.Fd()))
	if keep == 0 && !interactive {
		say("No terminal: removing the demo hosts now (use --keep <minutes> to keep them).")
		return
	}
	fmt.Println()
	fmt.Println("The hosts keep running; in another terminal, for example:")
	fmt.Printf("  kubectl --kubeconfig %s get nodes\n", filepath.Join(d.home, ".kube", "config"))
	fmt.Printf("  HOME=%s %s facts --ip %s\n", d.home, d.bin, d.hosts[0].IP)
	fmt.Printf("  HOME=%s %s plan -f %s\n", d.home, d.bin, d.inv)
	fmt.Printf("  docker exec -it %s bash\n", d.hosts[0].Container)
	fmt.Println()
	enter := make(chan struct{})
	if interactive {
		go func() {
			_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
			close(enter)
		}()
	}
	var timeout <-chan time.Time
	switch {
	case keep > 0 && interactive:
		say("Press Enter to remove them, or they are removed in %s.", keep)
		timeout = time.After(keep)
	case keep > 0:
		say("They are removed in %s.", keep)
		timeout = time.After(keep)
	default:
		say("Press Enter to remove them.")
	}
	select {
	case <-enter:
	case <-timeout:
	}
	say("Removing the demo hosts.")
}

func say(format string, a ...any) {
	fmt.Printf("==> "+format+"\n", a...)
}

func banner(lines ...string) {
	rule := strings.Repeat("=", 78)
	fmt.Println()
	fmt.Println(rule)
	for _, l := range lines {
		fmt.Println("  " + l)
	}
	fmt.Println(rule)
	fmt.Println()
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("    " + l)
		}
	}
	return b.String()
}

// demoTB is what the test world and the mirror need of a test: temporary
// directories, cleanups, and a way to fail. A failure removes everything
// the demo started and exits.
type demoTB struct {
	// testing.TB is embedded only for its unexported method; world and
	// mirror call the methods below and nothing else.
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	once     sync.Once
	tmp      string
}

var _ testing.TB = (*demoTB)(nil)

func newTB() *demoTB {
	dir, err := os.MkdirTemp("", "k3sctl-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	t := &demoTB{tmp: dir}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return t
}

func (t *demoTB) Helper()      {}
func (t *demoTB) Name() string { return "demo" }

func (t *demoTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *demoTB) TempDir() string {
	dir, err := os.MkdirTemp(t.tmp, "")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func (t *demoTB) Logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
func (t *demoTB) Log(a ...any)                 { fmt.Fprintln(os.Stderr, a...) }

func (t *demoTB) Fatalf(format string, a ...any) { t.fail(fmt.Sprintf(format, a...)) }
func (t *demoTB) Fatal(a ...any)                 { t.fail(fmt.Sprint(a...)) }

// The world skips when Docker is missing; for the demo that is a failure.
func (t *demoTB) Skipf(format string, a ...any) { t.fail(fmt.Sprintf(format, a...)) }
func (t *demoTB) Skip(a ...any)                 { t.fail(fmt.Sprint(a...)) }

func (t *demoTB) fail(msg string) {
	fmt.Fprintf(os.Stderr, "\ndemo failed: %s\n", msg)
	fmt.Fprintln(os.Stderr, "(make deps sets up Docker and the tools the demo needs, as root on Debian)")
	t.finish()
	os.Exit(1)
}

// finish runs the cleanups once, newest first; an interrupt and the end
// of main may both ask.
func (t *demoTB) finish() {
	t.once.Do(func() {
		t.mu.Lock()
		fs := t.cleanups
		t.mu.Unlock()
		for i := len(fs) - 1; i >= 0; i-- {
			fs[i]()
		}
	})
}

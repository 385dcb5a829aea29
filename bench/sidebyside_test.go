package bench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
	"github.com/k3sctl/k3sctl/test/mirror"
)

// Settings of BenchmarkSideBySide, from the environment (see the Makefile):
//
//	BENCH_SIZES    agents per cluster, comma-separated (default "2"): 2,8,20 is the full table
//	BENCH_RUNS     runs of every case; the fastest is reported (default 1)
//	BENCH_PAD_MB   size of the padded simulator binary in MB (default 70)
//	BENCH_RESULTS  where the markdown table is written (default results/<date>.md)
//	BENCH_BASELINE another k3sctl binary (e.g. built from main) whose `apply -f` runs
//	               as one more case beside this one, on the same hosts in the same run
//	BENCH_CASES    the cases to run, comma-separated (default all; see cases.go):
//	               floor, floor-serial, apply, no-change, baseline, install-join,
//	               site-floor, site-direct, site-site, many-plan; groups sizes, site, many
//	BENCH_SITE     0 skips the site behind a slow uplink
//	BENCH_UPLINK_MBIT  the site's uplink in Mbit/s, each way (default 80)
//	BENCH_UPLINK_MS    latency the uplink adds, each way, in ms (default 20)
//	BENCH_MANY_HOSTS   hosts of the memory case (default 300; 0 skips it)
//	BENCH_MANY_CONTAINERS containers they are spread over, one sshd per host (default 10)
type sideConfig struct {
	sizes    []int
	runs     int
	padSize  int64
	out      string
	baseline string
	cases    Cases

	uplinkMbit     float64
	uplinkMS       int
	manyHosts      int
	manyContainers int
}

func loadSideConfig(b *testing.B) sideConfig {
	b.Helper()
	c := sideConfig{runs: 1, padSize: 70e6}
	var err error
	if c.sizes, err = ParseSizes(envOr("BENCH_SIZES", "2")); err != nil {
		b.Fatalf("BENCH_SIZES: %v", err)
	}
	// Smallest first: then every host a case leaves K3s on is among the
	// hosts the next size recreates, and no idle cluster runs beside a case.
	slices.Sort(c.sizes)
	c.sizes = slices.Compact(c.sizes)
	if c.runs, err = strconv.Atoi(envOr("BENCH_RUNS", "1")); err != nil || c.runs < 1 {
		b.Fatalf("BENCH_RUNS=%q: want a number of runs of at least 1", os.Getenv("BENCH_RUNS"))
	}
	mb, err := strconv.ParseFloat(envOr("BENCH_PAD_MB", "70"), 64)
	if err != nil || mb < 0 {
		b.Fatalf("BENCH_PAD_MB=%q: want a size in MB, e.g. 70", os.Getenv("BENCH_PAD_MB"))
	}
	c.padSize = int64(mb * 1e6)
	c.baseline = os.Getenv("BENCH_BASELINE")
	if c.baseline != "" {
		if _, err := os.Stat(c.baseline); err != nil {
			b.Fatalf("BENCH_BASELINE: %v", err)
		}
	}
	if c.cases, err = ParseCases(os.Getenv("BENCH_CASES")); err != nil {
		b.Fatalf("BENCH_CASES: %v", err)
	}
	if c.baseline == "" {
		c.cases.Without(CaseBaseline)
	}
	if os.Getenv("BENCH_SITE") == "0" {
		c.cases.Without(SiteCases...)
	}
	if c.uplinkMbit, err = strconv.ParseFloat(envOr("BENCH_UPLINK_MBIT", "80"), 64); err != nil || c.uplinkMbit <= 0 {
		b.Fatalf("BENCH_UPLINK_MBIT=%q: want a rate in Mbit/s above 0, e.g. 80", os.Getenv("BENCH_UPLINK_MBIT"))
	}
	if c.uplinkMS, err = strconv.Atoi(envOr("BENCH_UPLINK_MS", "20")); err != nil || c.uplinkMS < 0 {
		b.Fatalf("BENCH_UPLINK_MS=%q: want milliseconds, 0 or more", os.Getenv("BENCH_UPLINK_MS"))
	}
	if c.manyHosts, err = strconv.Atoi(envOr("BENCH_MANY_HOSTS", "300")); err != nil || c.manyHosts < 0 {
		b.Fatalf("BENCH_MANY_HOSTS=%q: want a number of hosts (0 skips the case)", os.Getenv("BENCH_MANY_HOSTS"))
	}
	if c.manyHosts == 0 {
		c.cases.Without(ManyCases...)
	}
	if len(c.cases) == 0 {
		b.Fatalf("BENCH_CASES=%q leaves no case to run (BENCH_SITE=0, BENCH_MANY_HOSTS=0 and an unset BENCH_BASELINE take theirs away)", os.Getenv("BENCH_CASES"))
	}
	if c.manyContainers, err = strconv.Atoi(envOr("BENCH_MANY_CONTAINERS", "10")); err != nil || c.manyContainers < 1 {
		b.Fatalf("BENCH_MANY_CONTAINERS=%q: want a number of containers, at least 1", os.Getenv("BENCH_MANY_CONTAINERS"))
	}
	c.out = os.Getenv("BENCH_RESULTS")
	if c.out == "" {
		c.out = filepath.Join("results", time.Now().UTC().Format("2006-01-02")+".md")
		if _, err := os.Stat(c.out); err == nil {
			c.out = filepath.Join("results", time.Now().UTC().Format("2006-01-02-1504")+".md")
		}
	}
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// side is the state of one side-by-side run.
type side struct {
	b       *testing.B
	w       *world.World
	hosts   []*world.Host
	dirty   []bool              // K3s may be on the host: recreate it before the next case
	pubs    map[string]string   // host IP → its ssh_host_*_key.pub files
	names   map[string][]string // host IP → more known_hosts names: [127.0.0.1]:port, [ip]:port
	aliases []Alias             // ssh config Host blocks, before `Host *`
	home    string
	env     []string
	known   string
	sshCfg  string
	binary  string
	flags   []string // k3sctl flags every command gets
	// planFlags are those of flags that `plan` takes too.
	planFlags []string
	// uplink is the site's, while a site case runs.
	uplink  *Uplink
	bridge  string
	cli     string
	floorSh string
	logs    string // every command's output, one file per case and run
	label   string
	lastOut []byte // the last command's output
}

// BenchmarkSideBySide prints (and writes as markdown) one table: k3sctl
// `apply -f` and k3sctl `install` + `join` one host at a time against
// floor.sh, the least work that installs a cluster over ssh/scp, run on all
// hosts at once (the floor) and one host at a time (the way k3sup works);
// and a no-change re-apply against one parallel `ssh host true` round. Every
// install case starts on freshly created hosts. Timings are reported, never
// asserted.
func BenchmarkSideBySide(b *testing.B) {
	if _, err := exec.LookPath("scp"); err != nil {
		b.Skip("OpenSSH scp not installed")
	}
	cfg := loadSideConfig(b)
	w := world.New(b)
	s := &side{b: b, w: w, pubs: map[string]string{}, names: map[string][]string{}, cli: k3sctl(b)}
	var err error
	if s.floorSh, err = filepath.Abs("floor.sh"); err != nil {
		b.Fatal(err)
	}

	dir := b.TempDir()
	mirror.Build(b, dir, []string{benchVersion}, []string{"amd64"})
	s.binary = mirror.BinaryPath(dir, benchVersion, "amd64")
	sum, err := PadFile(s.binary, cfg.padSize)
	if err != nil {
		b.Fatal(err)
	}
	if err := SetChecksum(filepath.Join(dir, benchVersion, mirror.ChecksumAsset("amd64")), mirror.Asset("amd64"), sum); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(s.binary)
	if err != nil {
		b.Fatal(err)
	}
	m := mirror.Start(b, dir)

	sizeCases := cfg.cases.Any(SizeCases...)
	if !sizeCases {
		cfg.sizes = nil
	}
	most := 0
	for _, n := range cfg.sizes {
		most = max(most, n)
	}
	if cfg.cases.Any(SiteCases...) {
		most = max(most, len(siteRoles)-1)
	}
	names := make([]string, most+1)
	for i := range names {
		names[i] = fmt.Sprintf("n%02d", i)
	}
	s.hosts = w.Start(b, names...)
	s.dirty = make([]bool, len(s.hosts))
	s.settle(s.hosts)
	s.bridge = bridgeOf(s.hosts[0].IP)

	s.home = b.TempDir()
	if err := os.MkdirAll(filepath.Join(s.home, ".ssh"), 0o700); err != nil {
		b.Fatal(err)
	}
	s.known = filepath.Join(s.home, ".ssh", "known_hosts")
	s.sshCfg = filepath.Join(s.home, ".ssh", "config")
	s.writeSSHConfig()
	s.env = append(os.Environ(), "HOME="+s.home, "KUBECONFIG="+filepath.Join(s.home, "kubeconfig"),
		"XDG_CACHE_HOME="+filepath.Join(s.home, "cache"), "CI=true")
	s.planFlags = []string{"--ssh-config", s.sshCfg, "--ssh-host-key-checking", "strict",
		"--download-url", m.DownloadURL, "--channel-url", m.ChannelURL}
	s.flags = append(slices.Clone(s.planFlags), "--timeout", "5m")
	s.refreshKnownHosts(s.hosts)
	if s.logs, err = os.MkdirTemp("", "k3sctl-bench-logs-"); err != nil {
		b.Fatal(err)
	}
	b.Logf("output of every command: %s", s.logs)
	s.label = "warm-up"

	// One untimed apply to a single host fills k3sctl's download cache, as
	// on any workstation after its first run; the floor gets the file
	// directly.
	s.apply(s.hosts[:1])
	download := "/download/" + benchVersion + "/" + mirror.Asset("amd64")
	warm := m.Requests(download)

	floor := &Case{Name: "floor: parallel ssh/scp (floor.sh)", Samples: map[int][]Sample{}}
	serial := &Case{Name: "floor.sh one host at a time (like k3sup)", Samples: map[int][]Sample{}}
	apply := &Case{Name: "k3sctl `apply -f`", Samples: map[int][]Sample{}}
	joins := &Case{Name: "k3sctl `install` + `join`, one host at a time", Samples: map[int][]Sample{}}
	base := &Case{Name: "baseline k3sctl `apply -f` (" + filepath.Base(cfg.baseline) + ")", Samples: map[int][]Sample{}}
	var cases []*Case
	for _, c := range []struct {
		name string
		c    *Case
	}{{CaseFloor, floor}, {CaseFloorSerial, serial}, {CaseApply, apply}, {CaseInstallJoin, joins}, {CaseBaseline, base}} {
		if cfg.cases[c.name] {
			cases = append(cases, c.c)
		}
	}
	want := func(name string) bool { return cfg.cases[name] }
	load0, _ := os.ReadFile("/proc/loadavg")
	t := &Table{
		Title:     "k3sctl side by side, " + time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Sizes:     cfg.sizes,
		Floor:     floor,
		Cases:     cases,
		NoChange:  map[int][]Sample{},
		SSHRound:  map[int][]Sample{},
		BinaryLen: st.Size(),
	}
	for range b.N {
		for _, n := range cfg.sizes {
			hs := s.hosts[:n+1]
			for run := 1; run <= cfg.runs; run++ {
				b.Logf("1+%d, run %d of %d", n, run, cfg.runs)
				at := func(c string) { s.label = fmt.Sprintf("1+%d-run%d-%s", n, run, c) }
				if want(CaseFloor) {
					s.fresh(hs)
					at("floor")
					floor.Samples[n] = append(floor.Samples[n], s.measure(func() []*os.ProcessState {
						return []*os.ProcessState{s.floor(hs, false)}
					}))
				}
				if want(CaseFloorSerial) {
					s.fresh(hs)
					at("floor-serial")
					serial.Samples[n] = append(serial.Samples[n], s.measure(func() []*os.ProcessState {
						return []*os.ProcessState{s.floor(hs, true)}
					}))
				}
				if want(CaseApply) {
					s.fresh(hs)
					at("apply")
					sm := s.measure(func() []*os.ProcessState {
						return []*os.ProcessState{s.applyJSON(s.cli, hs)}
					})
					bd := ParseBreakdown(bytes.NewReader(s.lastOut))
					sm.Breakdown = &bd
					apply.Samples[n] = append(apply.Samples[n], sm)
				}
				if want(CaseNoChange) {
					if !want(CaseApply) {
						// The cluster the no-change run finds, untimed.
						s.fresh(hs)
						at("apply-untimed")
						s.apply(hs)
					}
					at("apply-no-change")
					t.NoChange[n] = append(t.NoChange[n], s.measure(func() []*os.ProcessState {
						return []*os.ProcessState{s.apply(hs)}
					}))
					at("ssh-true-round")
					t.SSHRound[n] = append(t.SSHRound[n], s.measure(func() []*os.ProcessState {
						return []*os.ProcessState{s.sshRound(hs)}
					}))
				}
				if want(CaseBaseline) {
					s.fresh(hs)
					at("apply-baseline")
					sm := s.measure(func() []*os.ProcessState {
						return []*os.ProcessState{s.applyJSON(cfg.baseline, hs)}
					})
					bd := ParseBreakdown(bytes.NewReader(s.lastOut))
					sm.Breakdown = &bd
					base.Samples[n] = append(base.Samples[n], sm)
				}
				if want(CaseInstallJoin) {
					s.fresh(hs)
					at("install-join")
					joins.Samples[n] = append(joins.Samples[n], s.measure(func() []*os.ProcessState {
						return s.installJoin(hs)
					}))
				}
			}
		}
		if cfg.cases.Any(SiteCases...) {
			t.Site = s.site(cfg, s.hosts[:len(siteRoles)])
		}
		if cfg.cases.Any(ManyCases...) {
			t.Many = s.many(cfg)
		}
	}
	b.StopTimer()

	commit, _ := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	load1, _ := os.ReadFile("/proc/loadavg")
	t.Notes = []string{
		fmt.Sprintf("load average (1, 5, 15 min) at the start: %s; at the end: %s", loadavg(load0), loadavg(load1)),
		fmt.Sprintf("hosts: test-world containers on this machine (%d CPUs, shared with the hosts' sshd and K3s), fresh ones for every install case", runtime.NumCPU()),
		fmt.Sprintf("binary: the K3s simulator %s padded to %.1f MB; k3sctl downloads it from a local mirror (cache warm), floor.sh copies the file", benchVersion, float64(st.Size())/1e6),
		fmt.Sprintf("runs per case: %d, the fastest shown (its CPU and bytes too); k3sctl %s; cases: %s", cfg.runs, strings.TrimSpace(string(commit)), cfg.cases),
		"CPU: processes started here = user+sys of the command and its waited-for children (rusage); machine = non-idle time of all CPUs from /proc/stat over the run, which also counts the containers and anything else running",
		fmt.Sprintf("k3sctl downloads of the binary from the mirror during the timed runs: %d (warm-up: %d)", m.Requests(download)-warm, warm),
		"each command's output: " + s.logs,
		"bytes: transmit counter of the hosts' docker bridge (" + orUnknown(s.bridge) + ") in /proc/net/dev",
	}
	md := t.Markdown()
	fmt.Print("\n" + md)
	if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("table written to %s", cfg.out)
}

func orUnknown(s string) string {
	if s == "" {
		return "not found"
	}
	return s
}

// measure times run and collects what it cost: rusage of the processes it
// returns, machine-wide CPU time and bytes sent to the hosts.
func (s *side) measure(run func() []*os.ProcessState) Sample {
	s.b.Helper()
	busy0, err := readBusy()
	if err != nil {
		s.b.Fatal(err)
	}
	tx0 := readTx(s.bridge)
	var up0 int64
	if s.uplink != nil {
		up0, _ = s.uplink.Bytes()
	}
	start := time.Now()
	states := run()
	wall := time.Since(start)
	busy1, err := readBusy()
	if err != nil {
		s.b.Fatal(err)
	}
	tx1 := readTx(s.bridge)
	sm := Sample{Wall: wall, MachineCPU: time.Duration(busy1-busy0) * time.Second / clockTicks, TxBytes: -1, UplinkBytes: -1}
	if tx0 >= 0 && tx1 >= tx0 {
		sm.TxBytes = tx1 - tx0
	}
	if s.uplink != nil {
		up1, _ := s.uplink.Bytes()
		sm.UplinkBytes = up1 - up0
	}
	for _, st := range states {
		if st == nil {
			continue
		}
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			sm.LocalCPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			// Linux reports maxrss in KiB.
			sm.MaxRSS = max(sm.MaxRSS, ru.Maxrss*1024)
		}
	}
	return sm
}

// run starts a command and fails the benchmark, with its output, when it fails.
// Its output goes to <logs>/<label>.log, to see afterwards where time went.
func (s *side) run(name string, args ...string) *os.ProcessState {
	s.b.Helper()
	st, err := s.try(name, args...)
	if err != nil {
		s.b.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, s.lastOut)
	}
	return st
}

// try is run that returns the command's error (and leaves its output in
// lastOut) instead of failing the benchmark.
func (s *side) try(name string, args ...string) (*os.ProcessState, error) {
	s.b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = s.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	s.lastOut = out.Bytes()
	if f, ferr := os.OpenFile(filepath.Join(s.logs, s.label+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); ferr == nil {
		fmt.Fprintf(f, "$ %s %s\n%s(exit %v after %s)\n\n", filepath.Base(name), strings.Join(args, " "), out.String(), err, time.Since(start).Round(time.Millisecond))
		f.Close()
	}
	return cmd.ProcessState, err
}

func (s *side) floor(hs []*world.Host, serial bool) *os.ProcessState {
	args := []string{"-k", s.w.Key, "-K", s.known, "-b", s.binary, "-u", "pi"}
	if serial {
		args = append(args, "-s")
	}
	for _, h := range hs {
		args = append(args, h.IP)
	}
	defer s.touched(hs)
	return s.run("bash", append([]string{s.floorSh}, args...)...)
}

func (s *side) sshRound(hs []*world.Host) *os.ProcessState {
	args := []string{s.floorSh, "-k", s.w.Key, "-K", s.known, "-u", "pi", "-r"}
	for _, h := range hs {
		args = append(args, h.IP)
	}
	return s.run("bash", args...)
}

func (s *side) apply(hs []*world.Host) *os.ProcessState {
	inv := filepath.Join(s.home, fmt.Sprintf("cluster-%d.yaml", len(hs)))
	if err := os.WriteFile(inv, []byte(clusterInventory(s.w.Key, hs)), 0o644); err != nil {
		s.b.Fatal(err)
	}
	defer s.touched(hs)
	return s.run(s.cli, append([]string{"apply", "-f", inv}, s.flags...)...)
}

// applyJSON runs cli's `apply -f` with JSON events, from which the
// breakdown of its time is read.
func (s *side) applyJSON(cli string, hs []*world.Host) *os.ProcessState {
	inv := filepath.Join(s.home, fmt.Sprintf("cluster-%d.yaml", len(hs)))
	if err := os.WriteFile(inv, []byte(clusterInventory(s.w.Key, hs)), 0o644); err != nil {
		s.b.Fatal(err)
	}
	defer s.touched(hs)
	return s.run(cli, append([]string{"apply", "-f", inv, "-o", "json"}, s.flags...)...)
}

func loadavg(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (s *side) installJoin(hs []*world.Host) []*os.ProcessState {
	defer s.touched(hs)
	common := append([]string{"-u", "pi", "--ssh-key", s.w.Key, "--k3s-version", benchVersion}, s.flags...)
	states := []*os.ProcessState{s.run(s.cli, append([]string{"install", "--ip", hs[0].IP, "--context", "bench"}, common...)...)}
	for _, h := range hs[1:] {
		states = append(states, s.run(s.cli, append([]string{"join", "--ip", h.IP, "--server-ip", hs[0].IP}, common...)...))
	}
	return states
}

func (s *side) touched(hs []*world.Host) {
	for i := range hs {
		s.dirty[i] = true
	}
}

// clusterInventory is one cluster: the first host as its server, the rest
// as agents.
func clusterInventory(key string, hs []*world.Host) string {
	ips := make([]string, len(hs))
	for i, h := range hs {
		ips[i] = h.IP
	}
	return clusterInventoryIPs(key, ips)
}

func clusterInventoryIPs(key string, ips []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  ssh:\n    user: pi\n    keyFile: %s\n  version: %s\nclusters:\n  - name: bench\n    servers: [%s]\n", key, benchVersion, ips[0])
	if len(ips) > 1 {
		fmt.Fprintf(&b, "    agents: [%s]\n", strings.Join(ips[1:], ", "))
	}
	return b.String()
}

// fresh recreates every host of hs that may have K3s on it (new container,
// new host keys, nothing installed), a few at a time, and records the new
// host keys in known_hosts. Not timed.
func (s *side) fresh(hs []*world.Host) {
	s.b.Helper()
	var redo []*world.Host
	for i, h := range hs {
		if s.dirty[i] {
			redo = append(redo, h)
		}
	}
	if len(redo) == 0 {
		return
	}
	s.b.StopTimer()
	defer s.b.StartTimer()
	errs := make([]error, len(redo))
	limit := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for i, h := range redo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limit <- struct{}{}
			defer func() { <-limit }()
			g := &goroutineTB{TB: s.b}
			defer func() { errs[i] = g.err }()
			h.Recreate(g)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			s.b.Fatal(err)
		}
	}
	for i := range hs {
		s.dirty[i] = false
	}
	s.refreshKnownHosts(redo)
	s.settle(redo)
	// Nothing of K3s may be left: a fresh host has neither binary nor unit.
	for _, h := range redo {
		if out := h.Exec(s.b, "ls /usr/local/bin/k3s /etc/systemd/system/k3s*.service 2>/dev/null || true"); strings.TrimSpace(out) != "" {
			s.b.Fatalf("host %s was recreated but still has K3s files: %s", h.Name, out)
		}
	}
}

// settle waits until systemd on every host has finished booting, so that
// no case pays for the boot of the hosts it runs on.
func (s *side) settle(hs []*world.Host) {
	s.b.Helper()
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// "degraded" (some unit failed) exits non-zero but has booted too.
			_, _ = h.ExecErr(ctx, "systemctl is-system-running --wait")
		}()
	}
	wg.Wait()
}

// refreshKnownHosts reads each host's public host keys inside the
// container (not over the network) and writes known_hosts for all hosts,
// under their IPs and every other name in s.names.
func (s *side) refreshKnownHosts(hs []*world.Host) {
	s.b.Helper()
	for _, h := range hs {
		s.pubs[h.IP] = h.Exec(s.b, "cat /etc/ssh/ssh_host_*_key.pub")
	}
	var b strings.Builder
	for _, ip := range slices.Sorted(maps.Keys(s.pubs)) {
		for _, name := range append([]string{ip}, s.names[ip]...) {
			b.WriteString(KnownHostsLines(name, s.pubs[ip]))
		}
	}
	if err := os.WriteFile(s.known, []byte(b.String()), 0o600); err != nil {
		s.b.Fatal(err)
	}
}

// writeSSHConfig writes the ssh config k3sctl (and floor.sh with -F)
// reads: the aliases, then what every host shares.
func (s *side) writeSSHConfig() {
	s.b.Helper()
	conf := SSHConfigHosts(s.aliases) + fmt.Sprintf("Host *\n  User pi\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n", s.w.Key, s.known)
	if err := os.WriteFile(s.sshCfg, []byte(conf), 0o600); err != nil {
		s.b.Fatal(err)
	}
}

// KnownHostsLines turns the contents of a host's ssh_host_*_key.pub files
// into known_hosts lines for addr.
func KnownHostsLines(addr, pubs string) string {
	var b strings.Builder
	for _, line := range strings.Split(pubs, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		fmt.Fprintf(&b, "%s %s %s\n", addr, f[0], f[1])
	}
	return b.String()
}

// bridgeOf finds the local interface on the hosts' subnet (the docker
// bridge), or "" when there is none.
func bridgeOf(ip string) string {
	addr := net.ParseIP(ip)
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.Contains(addr) {
				return i.Name
			}
		}
	}
	return ""
}

// goroutineTB lets a world helper that fails through testing.TB run in a
// goroutine of its own: a failure is kept and ends only that goroutine.
type goroutineTB struct {
	testing.TB
	err error
}

func (g *goroutineTB) Helper() {}

func (g *goroutineTB) Fatalf(format string, args ...any) {
	g.err = fmt.Errorf(format, args...)
	runtime.Goexit()
}

func (g *goroutineTB) Fatal(args ...any) {
	g.err = fmt.Errorf("%s", fmt.Sprint(args...))
	runtime.Goexit()
}

func (g *goroutineTB) Logf(format string, args ...any) {}

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// siteRoles are the site's hosts: one server and two agents.
var siteRoles = []string{"server", "agent", "agent"}

// site runs the cases of a site behind a slow uplink: floor.sh, k3sctl
// with `upload: direct` and with `upload: site`, every run on fresh hosts,
// all SSH traffic from here through one shared, rate-limited uplink (the
// hosts still reach each other directly, as on a site's LAN).
func (s *side) site(cfg sideConfig, hs []*world.Host) *SiteTable {
	s.b.Helper()
	want := func(name string) bool { return cfg.cases[name] }
	u := NewUplink(cfg.uplinkMbit*1e6, time.Duration(cfg.uplinkMS)*time.Millisecond)
	defer u.Close()
	aliases := make([]string, len(hs))
	for i, h := range hs {
		addr, err := u.Forward(net.JoinHostPort(h.IP, "22"))
		if err != nil {
			s.b.Fatal(err)
		}
		host, portStr, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portStr)
		aliases[i] = "site-" + h.Name
		s.aliases = append(s.aliases, Alias{Name: aliases[i], Host: host, Port: port})
		s.names[h.IP] = append(s.names[h.IP], fmt.Sprintf("[%s]:%d", host, port))
	}
	s.writeSSHConfig()
	s.refreshKnownHosts(nil)
	s.uplink = u
	defer func() { s.uplink = nil }()

	st := &SiteTable{
		Hosts:  fmt.Sprintf("1 server + %d agents", len(hs)-1),
		Uplink: fmt.Sprintf("one uplink of %g Mbit/s each way, +%d ms each way, shared by every SSH connection from the workstation", cfg.uplinkMbit, cfg.uplinkMS),
	}
	floor := &Row{Name: "floor.sh parallel through the uplink (uploads once per node)"}
	direct := &Row{Name: "k3sctl `apply -f`, `upload: direct`"}
	fanout := &Row{Name: "k3sctl `apply -f`, `upload: site`"}
	for _, r := range []struct {
		name string
		row  *Row
	}{{CaseSiteFloor, floor}, {CaseSiteDirect, direct}, {CaseSiteSite, fanout}} {
		if want(r.name) {
			st.Rows = append(st.Rows, r.row)
		}
	}
	directKey := "direct"
	for run := 1; run <= cfg.runs; run++ {
		at := func(c string) { s.label = fmt.Sprintf("site-run%d-%s", run, c) }
		if want(CaseSiteFloor) {
			s.fresh(hs)
			at("floor")
			floor.Samples = append(floor.Samples, s.measure(func() []*os.ProcessState {
				args := []string{s.floorSh, "-k", s.w.Key, "-K", s.known, "-b", s.binary, "-u", "pi", "-F", s.sshCfg, "-a", hs[0].IP}
				defer s.touched(hs)
				return []*os.ProcessState{s.run("bash", append(args, aliases...)...)}
			}))
		}
		if want(CaseSiteDirect) {
			s.fresh(hs)
			at("apply-direct")
			sm, ok := s.siteApply(hs, aliases, directKey)
			if !ok {
				// A k3sctl without the key uploads to every host directly.
				directKey = ""
				direct.Name = "k3sctl `apply -f` (this binary has no `upload:` key; every upload is direct)"
				s.fresh(hs)
				at("apply-no-upload-key")
				sm, _ = s.siteApply(hs, aliases, directKey)
			}
			direct.Samples = append(direct.Samples, sm)
		}
		if want(CaseSiteSite) && fanout.NA == "" {
			s.fresh(hs)
			at("apply-site")
			sm, ok := s.siteApply(hs, aliases, "site")
			if !ok {
				fanout.NA = "n/a (upload: site not supported by this binary)"
				continue
			}
			fanout.Samples = append(fanout.Samples, sm)
		}
	}
	return st
}

// siteApply runs `apply -f` with JSON events on the site through its
// aliases, with `upload:` set to upload unless "". It returns false when
// this k3sctl rejects the `upload:` key (exit 2, unknown key); any other
// failure fails the benchmark.
func (s *side) siteApply(hs []*world.Host, aliases []string, upload string) (Sample, bool) {
	s.b.Helper()
	inv := filepath.Join(s.home, "site-"+upload+".yaml")
	privs := make([]string, len(hs))
	for i, h := range hs {
		privs[i] = h.IP
	}
	if err := os.WriteFile(inv, []byte(SiteInventory(s.w.Key, aliases, privs, upload)), 0o644); err != nil {
		s.b.Fatal(err)
	}
	args := append([]string{"apply", "-f", inv, "-o", "json"}, s.flags...)
	var err error
	sm := s.measure(func() []*os.ProcessState {
		defer s.touched(hs)
		var st *os.ProcessState
		st, err = s.try(s.cli, args...)
		return []*os.ProcessState{st}
	})
	if err != nil {
		var ee *exec.ExitError
		if upload != "" && errors.As(err, &ee) && ee.ExitCode() == 2 && UnknownKey(string(s.lastOut), "upload") {
			return sm, false
		}
		s.b.Fatalf("k3sctl %s: %v\n%s", strings.Join(args, " "), err, s.lastOut)
	}
	return sm, true
}

// manyPort is the first sshd port of the many-host case in each container.
const manyPort = 2201

// many measures k3sctl against many hosts: cfg.manyHosts sshd, each on a
// port of its own, spread over cfg.manyContainers containers. Each port is
// one host in the inventory (its own alias and node name); the hosts of a
// container share its host keys, file system and machine-id, so only what
// changes nothing is measured. The hosts are ssh config aliases, not
// address and port: k3sctl's rollout tells hosts apart by address alone.
func (s *side) many(cfg sideConfig) *ManyTable {
	s.b.Helper()
	nc := min(cfg.manyContainers, cfg.manyHosts)
	names := make([]string, nc)
	for i := range names {
		names[i] = fmt.Sprintf("m%02d", i)
	}
	s.b.StopTimer()
	cs := s.w.Start(s.b, names...)
	s.settle(cs)
	// Host i is port manyPort+i/nc of container i%nc: a cluster's three
	// hosts are in three containers (when there are three), so that they
	// do not share a machine-id.
	aliases := make([]string, cfg.manyHosts)
	ports := make([]int, nc)
	for i := range aliases {
		c := cs[i%nc]
		p := manyPort + i/nc
		ports[i%nc]++
		aliases[i] = fmt.Sprintf("%s-%d", c.Name, p)
		s.aliases = append(s.aliases, Alias{Name: aliases[i], Host: c.IP, Port: p})
		s.names[c.IP] = append(s.names[c.IP], fmt.Sprintf("[%s]:%d", c.IP, p))
	}
	var wg sync.WaitGroup
	errs := make([]error, nc)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = startSSHDs(c, manyPort, ports[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			s.b.Fatal(err)
		}
	}
	s.writeSSHConfig()
	s.refreshKnownHosts(cs)
	s.b.StartTimer()

	inv := filepath.Join(s.home, fmt.Sprintf("many-%d.yaml", len(aliases)))
	if err := os.WriteFile(inv, []byte(ManyInventory(s.w.Key, aliases)), 0o644); err != nil {
		s.b.Fatal(err)
	}
	mt := &ManyTable{
		Hosts: len(aliases),
		Setup: fmt.Sprintf("one sshd per host, %d containers with up to %d each, in clusters of 1 server + 2 agents", nc, ports[0]),
		Notes: []string{
			"`apply` is not measured here: the hosts of one container share its file system and systemd, so an install would write the same files once per port",
		},
	}
	plan := &Row{Name: "k3sctl `plan -f` (connect, facts, plan; nothing installed)"}
	mt.Rows = append(mt.Rows, plan)
	for run := 1; run <= cfg.runs; run++ {
		s.label = fmt.Sprintf("many-%d-run%d-plan", len(aliases), run)
		var err error
		sm := s.measure(func() []*os.ProcessState {
			var st *os.ProcessState
			st, err = s.try(s.cli, append([]string{"plan", "-f", inv}, s.planFlags...)...)
			return []*os.ProcessState{st}
		})
		if err != nil {
			// Which hosts failed, and how, is the finding: keep going.
			plan.NA = fmt.Sprintf("failed (%v) after %s, peak RSS %s MB: %s", err, secs(sm.Wall), mb(sm.MaxRSS), firstError(string(s.lastOut)))
			plan.Samples = nil
			break
		}
		plan.Samples = append(plan.Samples, sm)
	}
	return mt
}

// startSSHDs starts n more sshd in the container, on ports first…, each
// its own daemon with the container's host keys and settings, and waits
// until every one answers.
func startSSHDs(h *world.Host, first, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := fmt.Sprintf("mkdir -p /run/sshd && for p in $(seq %d %d); do /usr/sbin/sshd -p $p -o PidFile=/run/sshd-$p.pid || exit 1; done", first, first+n-1)
	if _, err := h.ExecErr(ctx, script); err != nil {
		return err
	}
	for p := first; p < first+n; p++ {
		for {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(h.IP, strconv.Itoa(p)), 2*time.Second)
			if err == nil {
				c.Close()
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("host %s: sshd on port %d not answering: %v", h.Name, p, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// firstError is the first line of out that says what went wrong, for the
// table; the whole output is in the logs.
func firstError(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "error") || strings.Contains(l, "failed") || strings.Contains(l, "unreachable") {
			return strings.TrimSpace(l)
		}
	}
	return "see the log"
}

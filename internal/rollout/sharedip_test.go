package rollout

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Three Pis behind one public IP (port forwards), and two shops with the
// same private address behind their own jump hosts.
const sharedIP = `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  version: v1.31.4+k3s1
clusters:
  - name: nat
    servers:
      - {address: 203.0.113.7, ssh: {port: 2201}, privateAddress: 10.1.0.1}
    agents:
      - {address: 203.0.113.7, ssh: {port: 2202}}
      - {address: 203.0.113.7, ssh: {port: 2203}}
  - name: shop-a
    ssh: {jump: ops@jump-a}
    servers: [192.168.1.10]
  - name: shop-b
    ssh: {jump: ops@jump-b}
    servers: [192.168.1.10]
  - name: plain
    servers: [10.0.0.1]
`

func sharedIPSpec(t *testing.T) (*plan.Spec, func(string) ssh.Options) {
	t.Helper()
	inv, err := inventory.Parse("shared.yaml", []byte(sharedIP), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	spec, _, sshFor := FromInventory(inv, func(addr string) ssh.Options { return ssh.Options{Address: addr, User: "pi"} })
	return spec, sshFor
}

func TestFromInventoryKeepsHostsThatShareAnAddressApart(t *testing.T) {
	spec, sshFor := sharedIPSpec(t)
	var keys []string
	for _, c := range spec.Clusters {
		for _, h := range clusterHosts(c) {
			keys = append(keys, h.Address+"="+h.NetworkAddress())
		}
	}
	want := "[203.0.113.7:2201=203.0.113.7 203.0.113.7:2202=203.0.113.7 203.0.113.7:2203=203.0.113.7 " +
		"192.168.1.10 via ops@jump-a=192.168.1.10 192.168.1.10 via ops@jump-b=192.168.1.10 10.0.0.1=10.0.0.1]"
	if fmt.Sprint(keys) != want {
		t.Errorf("host keys = %v\nwant %s", keys, want)
	}
	if h := spec.Clusters[3].Servers[0]; h.NetAddress != "" {
		t.Errorf("a host whose address no other host shares keeps it as is: %+v", h)
	}
	for key, want := range map[string]ssh.Options{
		"203.0.113.7:2201":            {Address: "203.0.113.7", Port: 2201},
		"203.0.113.7:2202":            {Address: "203.0.113.7", Port: 2202},
		"203.0.113.7:2203":            {Address: "203.0.113.7", Port: 2203},
		"192.168.1.10 via ops@jump-a": {Address: "192.168.1.10", Jump: "ops@jump-a"},
		"192.168.1.10 via ops@jump-b": {Address: "192.168.1.10", Jump: "ops@jump-b"},
		"10.0.0.1":                    {Address: "10.0.0.1"},
	} {
		o := sshFor(key)
		if o.Address != want.Address || o.Port != want.Port || o.Jump != want.Jump || o.User != "pi" {
			t.Errorf("ssh options of %s = address %q port %d jump %q user %q, want %+v", key, o.Address, o.Port, o.Jump, o.User, want)
		}
	}
}

func TestHostsThatShareAnAddressAreEachDialledAndPlanned(t *testing.T) {
	spec, sshFor := sharedIPSpec(t)
	spec.Clusters = spec.Clusters[:1] // the three hosts behind 203.0.113.7
	w := newFakeHosts()
	var mu sync.Mutex
	var dialled []string
	o := options(w, &fakeFetcher{dir: t.TempDir()}, spec)
	o.VersionOrChannel = map[string]string{"nat": "v1.31.4+k3s1"}
	o.Dial = func(ctx context.Context, addr string) (Conn, error) {
		so := sshFor(addr)
		mu.Lock()
		dialled = append(dialled, fmt.Sprintf("%s:%d", so.Address, so.Port))
		mu.Unlock()
		return w.dial(ctx, addr)
	}
	var progress []string
	o.Progress = func(format string, a ...any) { progress = append(progress, fmt.Sprintf(format, a...)) }
	p, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sort.Strings(dialled)
	if fmt.Sprint(dialled) != "[203.0.113.7:2201 203.0.113.7:2202 203.0.113.7:2203]" {
		t.Errorf("dialled %v, want each port once", dialled)
	}
	if !strings.Contains(strings.Join(progress, "\n"), "gathering facts from 3 host(s)") {
		t.Errorf("progress: %q", progress)
	}
	cp := p.Plan.Clusters[0]
	var hosts []string
	for _, h := range cp.Hosts {
		hosts = append(hosts, h.Address+" "+string(h.Action))
	}
	if len(cp.Hosts) != 3 {
		t.Fatalf("planned hosts %v, want 3", hosts)
	}
	for _, h := range cp.Hosts {
		if h.Action != plan.ActionInstall {
			t.Errorf("planned hosts %v: each is installed", hosts)
		}
	}
	if cp.JoinURL != "https://10.1.0.1:6443" || cp.APIAddress != "203.0.113.7" {
		t.Errorf("join URL %s, API address %s: network addresses, not host keys", cp.JoinURL, cp.APIAddress)
	}
}

// reset reaches each host that shares an address on its own port, and
// reports it by its key.
func TestResetTellsHostsThatShareAnAddressApart(t *testing.T) {
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close() // nothing listens there now: the dial is refused at once
	}
	inv, err := inventory.Parse("nat.yaml", []byte(fmt.Sprintf(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
servers: [{address: 127.0.0.1, ssh: {port: %d}}]
agents: [{address: 127.0.0.1, ssh: {port: %d}}]
`, ports[0], ports[1])), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	_, _, sshFor := FromInventory(inv, func(addr string) ssh.Options {
		return ssh.Options{Address: addr, User: "pi", ConnectRetry: -1, KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts")}
	})
	var mu sync.Mutex
	var reported []string
	failed, err := Reset(context.Background(), inv, sshFor, nil, func(host string, removed bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			reported = append(reported, host)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(reported)
	want := []string{fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])}
	sort.Strings(want)
	if failed != 2 || fmt.Sprint(reported) != fmt.Sprint(want) {
		t.Errorf("failed %d, reported %v, want both hosts %v", failed, reported, want)
	}
}

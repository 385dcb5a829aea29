package rollout

import (
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// FromInventory turns a loaded inventory into a Spec, the version or
// channel of each cluster, and each host's SSH options laid over base.
// Hosts are keyed by address (plan.Host.Address), except hosts that share
// an address with another host of the inventory on another SSH port or
// behind another jump host: see hostKeys. The returned options function
// takes such keys.
func FromInventory(inv *inventory.Inventory, base func(address string) ssh.Options) (*plan.Spec, map[string]string, func(address string) ssh.Options) {
	spec := &plan.Spec{}
	versions := map[string]string{}
	type hostSSH struct {
		address string
		ssh     inventory.SSHSettings
		// byPort, byJump: the key holds the port, the jump host.
		byPort, byJump bool
	}
	perHost := map[string]hostSSH{}
	keyOf := hostKeys(inv)
	for _, c := range inv.Clusters {
		pc := plan.Cluster{
			Name:      c.Name,
			Token:     c.Token,
			Datastore: c.Datastore,
			// Several servers share embedded etcd, unless they share an
			// external datastore.
			HA:           len(c.Servers) > 1 && c.Datastore.IsZero(),
			APIAddress:   c.APIAddress,
			Airgap:       c.Airgap,
			FixBoot:      c.FixBoot,
			Upload:       plan.UploadMode(c.Upload),
			Registries:   c.Registries,
			ServerConfig: inventory.RevealConfig(c.ServerConfig),
			AgentConfig:  inventory.RevealConfig(c.AgentConfig),
			Proxy:        planProxy(c.Proxy),
		}
		versions[c.Name] = c.Version
		if c.Version == "" {
			versions[c.Name] = c.Channel
		}
		for _, h := range c.Hosts() {
			key, byPort, byJump := keyOf(h)
			ph := plan.Host{Address: key, Role: k3s.Role(h.Role), NodeName: h.Name,
				Labels: h.Labels, Taints: h.Taints, Config: inventory.RevealConfig(h.Config),
				PrivateAddress: h.PrivateAddress, Interface: h.Interface, Proxy: planProxy(h.Proxy), FixBoot: h.FixBoot}
			if ph.Proxy == nil && pc.Proxy != nil {
				// The host's settings removed the cluster's proxy.
				ph.Proxy = &plan.Proxy{}
			}
			if key != h.Address {
				ph.NetAddress = h.Address
			}
			if ph.Role == k3s.Server {
				pc.Servers = append(pc.Servers, ph)
			} else {
				pc.Agents = append(pc.Agents, ph)
			}
			perHost[key] = hostSSH{h.Address, h.SSH, byPort, byJump}
		}
		for _, f := range c.Files {
			pc.Files = append(pc.Files, plan.File{Kind: plan.FileKind(f.Kind), Source: f.Src, Name: filepath.Base(f.Dst), Path: f.Dst, Secret: f.Secret})
		}
		spec.Clusters = append(spec.Clusters, pc)
	}
	resolve := func(address string) ssh.Options {
		hs, ok := perHost[address]
		if !ok {
			return base(address)
		}
		o, s := base(hs.address), hs.ssh
		// Another host shares the address: the port and jump host that
		// tell them apart win over the flags and ~/.ssh/config.
		if hs.byPort {
			o.Port = s.Port
		}
		if hs.byJump {
			o.Jump = s.Jump
		}
		if s.User != "" && o.User == "" {
			o.User = s.User
		}
		if s.KeyFile != "" {
			o.KeyFiles = append([]string{s.KeyFile}, o.KeyFiles...)
		}
		// 22 is the inventory's default: leave the port to ~/.ssh/config then.
		if s.Port != 0 && s.Port != 22 && o.Port == 0 {
			o.Port = s.Port
		}
		if s.Jump != "" && o.Jump == "" {
			o.Jump = s.Jump
		}
		if s.ConfigFile != "" && o.ConfigFile == "" {
			o.ConfigFile = s.ConfigFile
		}
		if s.HostKeyChecking != "" && o.HostKeyChecking == "" {
			o.HostKeyChecking = ssh.HostKeyChecking(s.HostKeyChecking)
		}
		return o
	}
	return spec, versions, resolve
}

// hostKeys returns the key of each host of inv: its address, unless
// other hosts of the inventory have the same address on another SSH port
// or behind another jump host (different machines, as the inventory
// tells them apart). Those keys add what differs: the port
// ("203.0.113.7:2202") and the jump host ("192.168.1.10 via jump-b");
// byPort and byJump say which the key holds.
func hostKeys(inv *inventory.Inventory) func(h inventory.Host) (key string, byPort, byJump bool) {
	norm := func(a string) string {
		if ip, err := netip.ParseAddr(a); err == nil {
			return ip.Unmap().String()
		}
		return strings.ToLower(a)
	}
	type group struct{ ports, jumps map[string]bool }
	groups := map[string]*group{}
	for _, c := range inv.Clusters {
		for _, h := range c.Hosts() {
			g := groups[norm(h.Address)]
			if g == nil {
				g = &group{ports: map[string]bool{}, jumps: map[string]bool{}}
				groups[norm(h.Address)] = g
			}
			g.ports[strconv.Itoa(h.SSH.Port)] = true
			g.jumps[strings.ToLower(h.SSH.Jump)] = true
		}
	}
	return func(h inventory.Host) (string, bool, bool) {
		g := groups[norm(h.Address)]
		if g == nil || h.Address == "" {
			return h.Address, false, false
		}
		key := h.Address
		byPort := len(g.ports) > 1 && h.SSH.Port != 0
		if byPort {
			key = net.JoinHostPort(h.Address, strconv.Itoa(h.SSH.Port))
		}
		byJump := len(g.jumps) > 1 && h.SSH.Jump != ""
		if byJump {
			key += " via " + h.SSH.Jump
		}
		return key, byPort, byJump
	}
}

func planProxy(p *inventory.Proxy) *plan.Proxy {
	if p == nil {
		return nil
	}
	return &plan.Proxy{HTTP: p.HTTP, HTTPS: p.HTTPS, NoProxy: p.NoProxy,
		ContainerdHTTP: p.ContainerdHTTP, ContainerdHTTPS: p.ContainerdHTTPS, ContainerdNoProxy: p.ContainerdNoProxy}
}

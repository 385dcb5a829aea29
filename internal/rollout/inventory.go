package rollout

import (
	"path/filepath"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// FromInventory turns a loaded inventory into a Spec, the version or
// channel of each cluster, and each host's SSH options laid over base.
func FromInventory(inv *inventory.Inventory, base func(address string) ssh.Options) (*plan.Spec, map[string]string, func(address string) ssh.Options) {
	spec := &plan.Spec{}
	versions := map[string]string{}
	perHost := map[string]inventory.SSHSettings{}
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
			ph := plan.Host{Address: h.Address, Role: k3s.Role(h.Role), NodeName: h.Name,
				Labels: h.Labels, Taints: h.Taints, Config: inventory.RevealConfig(h.Config),
				PrivateAddress: h.PrivateAddress, Interface: h.Interface, Proxy: planProxy(h.Proxy), FixBoot: h.FixBoot}
			if ph.Proxy == nil && pc.Proxy != nil {
				// The host's settings removed the cluster's proxy.
				ph.Proxy = &plan.Proxy{}
			}
			if ph.Role == k3s.Server {
				pc.Servers = append(pc.Servers, ph)
			} else {
				pc.Agents = append(pc.Agents, ph)
			}
			perHost[h.Address] = h.SSH
		}
		for _, f := range c.Files {
			pc.Files = append(pc.Files, plan.File{Kind: plan.FileKind(f.Kind), Source: f.Src, Name: filepath.Base(f.Dst), Path: f.Dst, Secret: f.Secret})
		}
		spec.Clusters = append(spec.Clusters, pc)
	}
	resolve := func(address string) ssh.Options {
		o := base(address)
		s, ok := perHost[address]
		if !ok {
			return o
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

func planProxy(p *inventory.Proxy) *plan.Proxy {
	if p == nil {
		return nil
	}
	return &plan.Proxy{HTTP: p.HTTP, HTTPS: p.HTTPS, NoProxy: p.NoProxy,
		ContainerdHTTP: p.ContainerdHTTP, ContainerdHTTPS: p.ContainerdHTTPS, ContainerdNoProxy: p.ContainerdNoProxy}
}

package rollout

import (
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
)

// hostFacts keeps what planning needs of a host's facts.
func hostFacts(f *node.Facts) *plan.HostFacts {
	hf := &plan.HostFacts{
		Hostname:     f.Hostname,
		Arch:         f.Arch,
		ArchErr:      f.ArchError,
		InitSystem:   f.InitSystem,
		K3sVersion:   f.K3sVersion,
		K3sSHA256:    f.K3sBinarySHA256,
		Installed:    map[k3s.Role]bool{k3s.Server: f.Services.K3s.Installed, k3s.Agent: f.Services.K3sAgent.Installed},
		Active:       map[k3s.Role]bool{k3s.Server: f.Services.K3s.Active, k3s.Agent: f.Services.K3sAgent.Active},
		FileHashes:   f.FileHashes,
		MemoryCgroup: f.MemoryCgroup,
		BootCmdline:  f.BootCmdline,
	}
	if hf.FileHashes == nil {
		hf.FileHashes = map[string]string{}
	}
	if f.ServerTokenExists && hf.FileHashes[k3s.TokenPath] == "" {
		hf.FileHashes[k3s.TokenPath] = "present"
	}
	if !f.Privileged {
		hf.Err = "cannot read root-only files: user " + f.User + " has no usable sudo (log in as root, or give the sudo password)"
	}
	return hf
}

package rollout

import (
	"fmt"

	cryptossh "golang.org/x/crypto/ssh"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// sshFacts is how the run reached the host (what c says of its login)
// and what the host's facts say of SSH on it.
func sshFacts(f *node.Facts, c any) plan.SSHFacts {
	s := plan.SSHFacts{User: f.User, ServerAddress: f.SSHServerAddress, ServerPort: f.SSHServerPort, Client: f.SSHClient,
		Sudo: f.Sudo == ssh.SudoRoot || f.Sudo == ssh.SudoNoPassword}
	if lc, ok := c.(interface{ Login() ssh.Login }); ok {
		l := lc.Login()
		if len(l.Signers) > 0 {
			s.Key = cryptossh.FingerprintSHA256(l.Signers[0].PublicKey())
		}
		s.HostKey = l.HostKey != nil
	}
	return s
}

// hostFacts keeps what planning needs of a host's facts. A record of
// delivered files that cannot be read is an error: without it k3sctl
// cannot tell which files it delivered.
func hostFacts(f *node.Facts) (*plan.HostFacts, error) {
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
		Stale:        f.Stale,
	}
	hf.DefaultInterface = f.DefaultInterface
	for _, ifc := range f.Interfaces {
		hf.Interfaces = append(hf.Interfaces, plan.Interface{Name: ifc.Name, Addresses: ifc.Addresses})
	}
	if hf.FileHashes == nil {
		hf.FileHashes = map[string]string{}
	}
	if f.ServerTokenExists && hf.FileHashes[k3s.TokenPath] == "" {
		hf.FileHashes[k3s.TokenPath] = "present"
	}
	if len(f.FileStats) > 0 {
		hf.FileStats = map[string]plan.FileStat{}
		for p, st := range f.FileStats {
			hf.FileStats[p] = plan.FileStat{Size: st.Size, Mode: uint32(st.Mode.Perm())}
		}
	}
	if rec, ok := f.FileContents[plan.DeliveredRecordPath]; ok {
		d, err := plan.ParseDeliveredRecord([]byte(rec))
		if err != nil {
			return nil, fmt.Errorf("%w (k3sctl writes this file; remove it to start the record afresh)", err)
		}
		hf.Delivered = d
	}
	// A host without usable sudo is a preflight problem (checkHosts), so no
	// plan is built for it.
	return hf, nil
}

package plan

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// UploadMode says where a cluster's nodes get the k3s binary and the
// images archive from (the inventory's upload: key).
type UploadMode string

// Upload modes.
const (
	// UploadAuto (also "") sends each file once per cluster to its first
	// host (the seed); the other hosts that can copy it from the seed
	// over their network do, the rest get it from the workstation.
	UploadAuto UploadMode = "auto"
	// UploadSite is UploadAuto asked for: the plan says why a host
	// cannot copy from the seed.
	UploadSite UploadMode = "site"
	// UploadDirect sends every host its files from the workstation.
	UploadDirect UploadMode = "direct"
)

// UploadModes lists the modes, for messages.
func UploadModes() []UploadMode { return []UploadMode{UploadAuto, UploadSite, UploadDirect} }

func (m UploadMode) orAuto() UploadMode {
	if m == "" {
		return UploadAuto
	}
	return m
}

// SSHFacts is how the workstation reached a host, and what the host can
// do over SSH itself.
type SSHFacts struct {
	User string // the login user
	// Key is the SHA256 fingerprint of the key the host accepted; "" when
	// the login used none, and then no key is forwarded for this host.
	Key string
	// HostKey: the workstation checked the host's key, so a copy from
	// the host can pin it.
	HostKey bool
	// ServerAddress and ServerPort are where the host's sshd got the
	// connection ($SSH_CONNECTION): its own address on its network.
	ServerAddress string
	ServerPort    int
	// Client: OpenSSH's ssh client is installed.
	Client bool
	// Sudo: the login user is root or has sudo without a password, so
	// another host can read root's files through it.
	Sudo bool
}

// SiteSource is the host a file is copied from over the LAN, and the
// address and port the receiving host reaches its sshd on.
type SiteSource struct {
	Host    string `json:"host"`
	Address string `json:"address"`
	Port    int    `json:"port"`
}

// String is address:port.
func (s SiteSource) String() string { return net.JoinHostPort(s.Address, strconv.Itoa(s.Port)) }

// siteFile is one of the two files a host can copy from a seed.
type siteFile struct {
	kind StepKind
	// rootOnly: only root reads the file on the seed.
	rootOnly bool
	// needs: the host's plan sends it the file.
	needs func(hp *HostPlan) bool
	// has: the host has it already (its facts say so).
	has func(hp *HostPlan, f *HostFacts) bool
	set func(hp *HostPlan, src *SiteSource)
}

// assignSites decides, for each host that gets the binary or the images
// archive, whether it copies them from the cluster's seed for its
// architecture: the first host, in the cluster's order, that has the
// file or is sent it first.
func assignSites(in Input, c *Cluster, cp *ClusterPlan) {
	mode := c.Upload.orAuto()
	if mode == UploadDirect {
		return
	}
	files := []siteFile{{
		kind:  StepUploadBinary,
		needs: func(hp *HostPlan) bool { return hp.Upload },
		has: func(hp *HostPlan, f *HostFacts) bool {
			bin, ok := in.Binaries[BinaryKey{Version: c.Version, Arch: hp.Arch}]
			return ok && bin.SHA256 != "" && f.K3sSHA256 == bin.SHA256
		},
		set: func(hp *HostPlan, src *SiteSource) { hp.UploadFrom = src },
	}}
	if c.Airgap {
		files = append(files, siteFile{
			kind:     StepUploadImages,
			rootOnly: true,
			needs:    func(hp *HostPlan) bool { return hp.Images != "" },
			has: func(hp *HostPlan, f *HostFacts) bool {
				img, ok := in.Images[BinaryKey{Version: c.Version, Arch: hp.Arch}]
				return ok && f.FileHashes[img.Dest()] == img.SHA256
			},
			set: func(hp *HostPlan, src *SiteSource) { hp.ImagesFrom = src },
		})
	}
	for _, sf := range files {
		seeds := map[string]int{} // arch → index of the seed in cp.Hosts
		for i := range cp.Hosts {
			hp := &cp.Hosts[i]
			f := in.Facts[hp.Address]
			if !planned(hp) || f == nil || hp.Arch == "" {
				continue
			}
			si, ok := seeds[string(hp.Arch)]
			if !ok {
				if sf.needs(hp) || sf.has(hp, f) {
					seeds[string(hp.Arch)] = i
				}
				continue
			}
			if !sf.needs(hp) {
				continue
			}
			seed := &cp.Hosts[si]
			src, why := siteSource(seed, in.Facts[seed.Address], hp, f, sf.needs(seed), sf.rootOnly)
			if src != nil {
				sf.set(hp, src)
				noteStep(hp, sf.kind, siteReason(*src, mode))
				continue
			}
			if mode == UploadSite {
				noteStep(hp, sf.kind, "from the workstation: "+why+" (upload: site)")
			}
		}
	}
}

// planned: the host runs steps of its own.
func planned(hp *HostPlan) bool {
	switch hp.Action {
	case ActionRefuse, ActionUnreachable, ActionJoinSource:
		return false
	}
	return true
}

func siteReason(src SiteSource, mode UploadMode) string {
	from := src.Host
	if src.Host != src.Address {
		from += " (" + src.Address + ")"
	}
	return "copy from " + from + " over the LAN (upload: " + string(mode) + ")"
}

// noteStep adds to the reason of hp's step of kind.
func noteStep(hp *HostPlan, kind StepKind, note string) {
	for i := range hp.Steps {
		if hp.Steps[i].Kind == kind {
			hp.Steps[i].Reason += ": " + note
		}
	}
}

// siteSource is where peer copies a file of seed's from, or nil and why
// it cannot. seedSends: the seed is sent the file in this run (the peer
// waits for that); rootOnly: only root reads it on the seed.
func siteSource(seed *HostPlan, sf *HostFacts, peer *HostPlan, pf *HostFacts, seedSends, rootOnly bool) (*SiteSource, string) {
	name := seed.Address
	switch {
	case sf.SSH.Key == "":
		return nil, name + " was not reached with a key, and only a key is forwarded"
	case !sf.SSH.HostKey:
		return nil, "the host key of " + name + " was not checked, so a copy could not pin it"
	case rootOnly && !sf.SSH.Sudo:
		return nil, "only root reads the file on " + name + ", and its sudo asks for a password"
	case !pf.SSH.Client:
		return nil, "no ssh client on the host (install openssh-client)"
	case pf.SSH.User != sf.SSH.User:
		return nil, fmt.Sprintf("logs in as %s, not as %s like %s", orNone(pf.SSH.User), orNone(sf.SSH.User), name)
	case pf.SSH.Key != sf.SSH.Key:
		return nil, "logs in with another key than " + name
	case seedSends && !(seed.Step < peer.Step || seed.Action == ActionInstall && peer.Action == ActionInstall):
		// Both would hold their turn while the one waits for the other.
		return nil, "it is changed at the same time as " + name
	}
	port := sf.SSH.ServerPort
	if port == 0 {
		port = 22
	}
	if a, err := netip.ParseAddr(sf.SSH.ServerAddress); err == nil && onLink(a, pf.Interfaces) {
		return &SiteSource{Host: name, Address: a.String(), Port: port}, ""
	}
	for _, ifc := range sf.Interfaces {
		for _, cidr := range ifc.Addresses {
			p, err := netip.ParsePrefix(cidr)
			if err == nil && onLink(p.Addr(), pf.Interfaces) {
				return &SiteSource{Host: name, Address: p.Addr().String(), Port: port}, ""
			}
		}
	}
	return nil, "shares no subnet with " + name
}

// onLink reports whether a is in the subnet of one of ifaces' addresses.
func onLink(a netip.Addr, ifaces []Interface) bool {
	if a.IsLoopback() || !a.IsValid() {
		return false
	}
	for _, ifc := range ifaces {
		for _, cidr := range ifc.Addresses {
			p, err := netip.ParsePrefix(cidr)
			if err != nil || p.Addr() == a {
				continue
			}
			if p.Masked().Contains(a) {
				return true
			}
		}
	}
	return false
}

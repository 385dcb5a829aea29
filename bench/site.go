package bench

import (
	"fmt"
	"strings"
)

// benchVersion is the K3s version every case installs (the simulator's).
const benchVersion = "v1.31.4+k3s1"

// Alias is an SSH config host alias for an address and port, as the site
// and many-host cases reach their hosts: a forwarded port on 127.0.0.1, or
// one of several sshd ports of a container.
type Alias struct {
	Name string
	Host string // HostName
	Port int
}

// SSHConfigHosts renders one Host block per alias. OpenSSH (and k3sctl)
// take the first value of each setting, so these blocks go before any
// `Host *`. Host keys are looked up as [Host]:Port.
func SSHConfigHosts(aliases []Alias) string {
	var b strings.Builder
	for _, a := range aliases {
		fmt.Fprintf(&b, "Host %s\n  HostName %s\n  Port %d\n", a.Name, a.Host, a.Port)
	}
	return b.String()
}

// SiteInventory is one cluster, the first host its server and the rest its
// agents, with the cluster's `upload:` set to upload unless it is "". The
// workstation reaches each host at addrs[i]; the nodes reach each other at
// privs[i] (privateAddress), the site's own network.
func SiteInventory(key string, addrs, privs []string, upload string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  ssh:\n    user: pi\n    keyFile: %s\n  version: %s\nclusters:\n  - name: site\n", key, benchVersion)
	if upload != "" {
		fmt.Fprintf(&b, "    upload: %s\n", upload)
	}
	for i := range addrs {
		switch i {
		case 0:
			b.WriteString("    servers:\n")
		case 1:
			b.WriteString("    agents:\n")
		}
		fmt.Fprintf(&b, "      - {address: %s, privateAddress: %s}\n", addrs[i], privs[i])
	}
	return b.String()
}

// ManyInventory puts the aliases in clusters of three (a server and two
// agents, a small site each), every host named after its alias.
func ManyInventory(key string, aliases []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: k3sctl.io/v1alpha1\nkind: Inventory\ndefaults:\n  ssh:\n    user: pi\n    keyFile: %s\n  version: %s\nclusters:\n", key, benchVersion)
	for i := 0; i < len(aliases); i += 3 {
		fmt.Fprintf(&b, "  - name: site-%03d\n    servers:\n      - {address: %s, name: %s}\n", i/3, aliases[i], aliases[i])
		if i+1 < len(aliases) {
			b.WriteString("    agents:\n")
			for _, a := range aliases[i+1 : min(i+3, len(aliases))] {
				fmt.Fprintf(&b, "      - {address: %s, name: %s}\n", a, a)
			}
		}
	}
	return b.String()
}

// UnknownKey says whether k3sctl's output rejects key as an unknown
// inventory key: a k3sctl built before the key existed.
func UnknownKey(out, key string) bool {
	return strings.Contains(out, fmt.Sprintf("unknown key %q", key))
}

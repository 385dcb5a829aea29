package k3s

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// NodeSettings is what k3sctl itself decides for one node's config.yaml.
type NodeSettings struct {
	Role Role
	// Token joins the node, or, on the first server, becomes the cluster's
	// token. A re-run must pass the cluster's existing token: K3s refuses
	// to start on data encrypted with another one.
	Token secret.Value
	// Server is the URL of a running server to join; empty on the first
	// server.
	Server string
	// ClusterInit starts embedded etcd on the first of several servers.
	ClusterInit    bool
	NodeName       string
	NodeIP         []string
	NodeExternalIP []string
	// TLSSANs are extra names and addresses for the API certificate, such as
	// the address the user reaches the cluster by. Servers only.
	TLSSANs    []string
	NodeLabels []string
	NodeTaints []string
}

// managedKeys are set only by k3sctl: the order of joins and the token's
// lifecycle depend on them, so a user file or extra args must not change
// them behind k3sctl's back. The value says where to set it instead.
var managedKeys = map[string]string{
	"token":        "k3sctl passes the cluster token itself; use its token setting",
	"token-file":   "k3sctl passes the cluster token itself; use its token setting",
	"server":       "k3sctl points joining nodes at a server itself",
	"cluster-init": "k3sctl sets it on the first server when the cluster has several",
	"config":       "k3sctl writes config.yaml itself; put these settings in the k3s config file",
}

// BuildConfig assembles a node's config.yaml from three layers: what k3sctl
// sets (s), the user's config file, then the user's extra args. A later
// layer replaces single values of an earlier one and adds to its lists, so
// the API certificate keeps k3sctl's names and gains the user's. The keys
// k3sctl manages (token, server, cluster-init) may not come from the user.
func BuildConfig(s NodeSettings, userFile, extraArgs Config) (Config, error) {
	c, err := s.config()
	if err != nil {
		return Config{}, err
	}
	for _, layer := range []struct {
		name string
		c    Config
	}{{"k3s config file", userFile}, {"k3s extra args", extraArgs}} {
		for _, k := range layer.c.Keys() {
			if why, ok := managedKeys[k]; ok {
				return Config{}, fmt.Errorf("%s sets %q: %s", layer.name, k, why)
			}
		}
		c.Merge(layer.c)
	}
	return c, nil
}

func (s NodeSettings) config() (Config, error) {
	var c Config
	if !s.Role.Valid() {
		return c, fmt.Errorf("node role %q: want %q or %q", s.Role, Server, Agent)
	}
	if s.Server != "" {
		u, err := url.Parse(s.Server)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return c, fmt.Errorf("server URL %q: want https://<address>:%d", s.Server, APIPort)
		}
	}
	switch {
	case s.Role == Agent && s.Server == "":
		return c, fmt.Errorf("an agent needs the URL of a server to join")
	case s.Role == Agent && s.Token.IsZero():
		return c, fmt.Errorf("an agent needs the cluster token to join")
	case s.Role == Agent && s.ClusterInit:
		return c, fmt.Errorf("cluster-init applies to servers only")
	case s.Role == Agent && len(s.TLSSANs) > 0:
		return c, fmt.Errorf("tls-san applies to servers only")
	case s.Server != "" && s.ClusterInit:
		return c, fmt.Errorf("a server either starts the cluster (cluster-init) or joins %s, not both", s.Server)
	case s.Server != "" && s.Token.IsZero():
		return c, fmt.Errorf("a joining server needs the cluster token")
	}
	if !s.Token.IsZero() {
		c.SetSecret("token", s.Token)
	}
	if s.Server != "" {
		c.SetString("server", strings.TrimRight(s.Server, "/"))
	}
	if s.ClusterInit {
		c.SetBool("cluster-init", true)
	}
	if s.NodeName != "" {
		c.SetString("node-name", s.NodeName)
	}
	for _, l := range []struct {
		key string
		vs  []string
	}{
		{"node-ip", s.NodeIP},
		{"node-external-ip", s.NodeExternalIP},
		{"tls-san", s.TLSSANs},
		{"node-label", s.NodeLabels},
		{"node-taint", s.NodeTaints},
	} {
		if len(l.vs) > 0 {
			c.AddToList(l.key, l.vs...)
		}
	}
	return c, nil
}

// criticalDefaults are the values K3s assumes for the critical keys that
// are not booleans, so that an unset key equals its default written out.
var criticalDefaults = map[string]string{
	"cluster-cidr":                "10.42.0.0/16",
	"service-cidr":                "10.43.0.0/16",
	"cluster-dns":                 "10.43.0.10",
	"cluster-domain":              "cluster.local",
	"flannel-backend":             "vxlan",
	"egress-selector-mode":        "agent",
	"secrets-encryption-provider": "aescbc",
	"agent-token":                 "",
	"disable":                     "",
}

// CriticalKeys are the settings every server of a cluster must share; a
// server joining with a different value is refused with "critical
// configuration value mismatch between servers". Of "disable", only
// whether servicelb is disabled counts.
func CriticalKeys() []string {
	return []string{
		"agent-token", "cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain",
		"flannel-backend", "disable-network-policy", "disable-helm-controller", "disable",
		"egress-selector-mode", "embedded-registry", "secrets-encryption",
		// Also compared by K3s's own check (CriticalControlArgs).
		"disable-cloud-controller", "flannel-ipv6-masq", "flannel-external-ip",
		"flannel-ip-masq-disable-random-fully", "secrets-encryption-provider",
		"supervisor-metrics",
	}
}

// CriticalDiff lists the critical keys on which two servers' configs differ,
// unset keys taking K3s's defaults. It names keys only, never values: one
// of them is a token.
func CriticalDiff(a, b Config) []string {
	var diff []string
	for _, k := range CriticalKeys() {
		if criticalValue(a, k) != criticalValue(b, k) {
			diff = append(diff, k)
		}
	}
	return diff
}

func criticalValue(c Config, key string) string {
	switch {
	case key == "disable":
		for _, v := range c.List(key) {
			for _, part := range strings.Split(v, ",") {
				if strings.TrimSpace(part) == "servicelb" {
					return "servicelb"
				}
			}
		}
		return ""
	case IsSecretKey(key):
		return c.Secret(key).Reveal()
	case IsBoolKey(key):
		return fmt.Sprint(c.Bool(key))
	}
	vs := c.List(key)
	if len(vs) == 0 {
		return criticalDefaults[key]
	}
	// Dual-stack values come as a comma list or as a YAML list; both mean
	// the same.
	var parts []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
	}
	return strings.Join(parts, ",")
}

package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/k3sctl/k3sctl/internal/secret"
	"gopkg.in/yaml.v3"
)

// Proxy is the proxy K3s uses on a node: HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY in its service environment, and the CONTAINERD_ forms, which
// only containerd reads. The URLs are secrets: they may carry a user and
// password. k3sctl completes NO_PROXY with the cluster's own addresses.
type Proxy struct {
	HTTP, HTTPS                     secret.Value
	NoProxy                         []string
	ContainerdHTTP, ContainerdHTTPS secret.Value
	ContainerdNoProxy               []string
}

// proxyPatch is a proxy: block as written: a host's replaces the cluster's
// key by key, and an empty URL removes one.
type proxyPatch struct {
	http, https, cHTTP, cHTTPS *secret.Value
	noProxy, cNoProxy          *[]string
}

// applyTo lays p over base (nil: no proxy yet); the result is nil when it
// sets nothing.
func (p proxyPatch) applyTo(base *Proxy) *Proxy {
	var out Proxy
	if base != nil {
		out = *base
	}
	for _, f := range []struct {
		dst *secret.Value
		src *secret.Value
	}{{&out.HTTP, p.http}, {&out.HTTPS, p.https}, {&out.ContainerdHTTP, p.cHTTP}, {&out.ContainerdHTTPS, p.cHTTPS}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if p.noProxy != nil {
		out.NoProxy = *p.noProxy
	}
	if p.cNoProxy != nil {
		out.ContainerdNoProxy = *p.cNoProxy
	}
	if out.HTTP.IsZero() && out.HTTPS.IsZero() && out.ContainerdHTTP.IsZero() && out.ContainerdHTTPS.IsZero() && len(out.NoProxy) == 0 && len(out.ContainerdNoProxy) == 0 {
		return nil
	}
	return &out
}

const proxyExample = "proxy: {http: http://proxy.example.com:3128, https: http://proxy.example.com:3128, noProxy: [10.0.0.0/8]}"

func (d *decoder) proxy(n *yaml.Node) proxyPatch {
	var p proxyPatch
	if n == nil {
		return p
	}
	f, ok := d.fields(n, objProxy, "proxy", proxyExample)
	if !ok {
		return p
	}
	p.http = d.proxyURL(f.val["http"], "http")
	p.https = d.proxyURL(f.val["https"], "https")
	p.noProxy = d.noProxy(f.val["noProxy"], "noProxy")
	if v := f.val["containerd"]; v != nil {
		cf, ok := d.fields(v, objContainerdProxy, "proxy containerd", "containerd: {https: http://proxy.example.com:3128}")
		if ok {
			p.cHTTP = d.proxyURL(cf.val["http"], "containerd http")
			p.cHTTPS = d.proxyURL(cf.val["https"], "containerd https")
			p.cNoProxy = d.noProxy(cf.val["noProxy"], "containerd noProxy")
		}
	}
	return p
}

// proxyURL decodes a proxy URL; ${VAR} may give it (or its password). An
// empty value is kept: on a host it removes the cluster's.
func (d *decoder) proxyURL(n *yaml.Node, key string) *secret.Value {
	if n == nil {
		return nil
	}
	s, ok := d.text(n, "proxy "+key, "http: http://proxy.example.com:3128", true)
	if !ok {
		return nil
	}
	if s != "" {
		if msg, hint := checkProxyURL(key, s); msg != "" {
			d.report(n, msg, hint)
			return nil
		}
	}
	v := secret.New(s)
	return &v
}

// CheckProxyURL checks a proxy URL given outside an inventory (a flag
// named key); the error never repeats a password.
func CheckProxyURL(key, s string) error {
	if msg, _ := checkProxyURL(key, s); msg != "" {
		return fmt.Errorf("%s; write e.g. %s http://proxy.example.com:3128 (with a user: http://user:password@proxy.example.com:3128)", msg, key)
	}
	return nil
}

// checkProxyURL returns why s is not a proxy URL, and the fix. Messages
// never repeat a password.
func checkProxyURL(key, s string) (msg, hint string) {
	hint = "write " + firstWord(key) + ": http://proxy.example.com:3128 (user and password, if any: http://user:password@proxy.example.com:3128)"
	if strings.ContainsAny(s, "'\"\n\r\t ") {
		return fmt.Sprintf("proxy %s holds a space or a quote", key), hint
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if strings.Contains(s, "@") {
			// The parser's message may quote part of the password.
			return fmt.Sprintf("proxy %s is not a URL", key), hint
		}
		return fmt.Sprintf("proxy %s is not a URL: %v", key, err), hint
	}
	shown := u.Redacted()
	switch {
	case u.Scheme == "" || u.Host == "" && u.Opaque != "":
		return fmt.Sprintf("proxy %s %q has no scheme", key, redactLoose(s)), "write it with http://, e.g. " + firstWord(key) + ": http://" + redactLoose(s)
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5":
		return fmt.Sprintf("proxy %s %q: scheme %q is not a proxy scheme", key, shown, u.Scheme), "use http://, https:// or socks5://"
	case u.Hostname() == "":
		return fmt.Sprintf("proxy %s %q has no host", key, shown), hint
	case u.Port() != "" && !isPort(u.Port()):
		return fmt.Sprintf("proxy %s %q: port %q is not a port", key, shown, u.Port()), hint
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("proxy %s %q has a path", key, shown), "a proxy is scheme://host:port; remove what follows the port"
	}
	return "", ""
}

func firstWord(key string) string {
	w := strings.Fields(key)
	return w[len(w)-1]
}

// redactLoose hides what looks like a password in text that is not a
// URL: everything before an @.
func redactLoose(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "xxxxx@" + s[i+1:]
	}
	return s
}

func isPort(p string) bool {
	var n int
	if _, err := fmt.Sscan(p, &n); err != nil || fmt.Sprint(n) != p {
		return false
	}
	return n >= 1 && n <= 65535
}

// noProxy decodes a list of hosts, domains and CIDRs, or one
// comma-separated text.
func (d *decoder) noProxy(n *yaml.Node, key string) *[]string {
	nn := deref(n)
	if nn == nil {
		return nil
	}
	var items []*yaml.Node
	if nn.Kind == yaml.ScalarNode {
		items = []*yaml.Node{nn}
	} else {
		var ok bool
		if items, ok = d.list(n, key, key+": [10.0.0.0/8, .example.com]"); !ok {
			return nil
		}
	}
	out := []string{}
	for _, it := range items {
		s, ok := d.str(it, key, key+": [10.0.0.0/8, .example.com]")
		if !ok {
			continue
		}
		for _, e := range strings.Split(s, ",") {
			e = strings.TrimSpace(e)
			switch {
			case e == "":
			case strings.ContainsAny(e, " '\"\t/") && !isPrefix(e):
				d.report(it, fmt.Sprintf("%s entry %q is not a host, domain, IP or CIDR", key, e), "write e.g. "+key+": [10.0.0.0/8, .example.com, registry.local]")
			default:
				out = append(out, e)
			}
		}
	}
	return &out
}

func isPrefix(s string) bool {
	_, err := netip.ParsePrefix(s)
	return err == nil
}

var interfaceRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,15}$`)

// privateAddress decodes a host's privateAddress: an IP address of the
// host that K3s advertises.
func (d *decoder) privateAddress(n *yaml.Node) string {
	s, ok := d.str(n, "privateAddress", "privateAddress: 10.0.0.5")
	if !ok {
		return ""
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		d.report(n, fmt.Sprintf("privateAddress %q is not an IP address", s), "K3s advertises an IP address (node-ip): write privateAddress: 10.0.0.5")
		return ""
	case a.IsLoopback() || a.IsUnspecified() || a.IsMulticast():
		d.report(n, fmt.Sprintf("privateAddress %s cannot be reached from other nodes", s), "write an address of one of the host's network interfaces (k3sctl facts lists them)")
		return ""
	}
	return a.String()
}

func (d *decoder) iface(n *yaml.Node) string {
	s, ok := d.str(n, "interface", "interface: eth1")
	if !ok {
		return ""
	}
	if !interfaceRe.MatchString(s) {
		d.report(n, fmt.Sprintf("interface %q is not a network interface name", s), "write the name `ip addr` shows, e.g. interface: eth1 (k3sctl facts lists them)")
		return ""
	}
	return s
}

// checkSiteSettings refuses a host's privateAddress or interface when K3s
// settings already choose the same thing (node-ip, advertise-address,
// flannel-iface): two places would disagree.
func (d *decoder) checkSiteSettings(rc *rawCluster, c *Cluster) {
	for i, h := range c.Hosts() {
		raw := rc.host(i)
		cfg := c.NodeConfig(h)
		for _, x := range []struct {
			set        bool
			at         *yaml.Node
			keys       []string
			name, what string
		}{
			{h.PrivateAddress != "", raw.privNode, []string{"node-ip", "advertise-address"}, "privateAddress", "the address K3s advertises"},
			{h.Interface != "", raw.ifaceNode, []string{"flannel-iface"}, "interface", "flannel's interface"},
		} {
			if !x.set {
				continue
			}
			for _, k := range x.keys {
				_, plain := cfg[k]
				_, add := cfg[k+"+"]
				if plain || add {
					d.report(x.at, fmt.Sprintf("%s and the K3s setting %s both choose %s", x.name, k, x.what),
						fmt.Sprintf("keep %s: k3sctl sets %s from it; remove %s from config:", x.name, k, k))
				}
			}
		}
	}
}

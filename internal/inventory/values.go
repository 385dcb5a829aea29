package inventory

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

var (
	releaseRe   = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-rc[1-9][0-9]*)?\+k3s[1-9][0-9]*$`)
	minorChanRe = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)$`)
	// A version written without its v or its +k3sN, to suggest the fix.
	nearReleaseRe = regexp.MustCompile(`^[vV]?1\.([0-9]+)\.([0-9]+)(-rc[0-9]+)?([-+_.]?k3s([0-9]+))?$`)
	// Label and taint syntax as Kubernetes checks it.
	qualifiedNameRe = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValueRe    = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
	dnsSubdomainRe  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	clusterNameRe   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	fullTokenRe     = regexp.MustCompile(`^K10[0-9a-f]{64}::server:.+$`)
)

// channels are the K3s release channels besides v1.NN.
var channels = []string{"stable", "latest", "testing"}

func isRelease(s string) bool { return releaseRe.MatchString(s) }

func isChannel(s string) bool {
	return containsString(channels, s) || minorChanRe.MatchString(s)
}

// versionHint suggests the release or channel s most likely meant.
func versionHint(s string) string {
	if m := nearReleaseRe.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		k3s := m[5]
		if k3s == "" || k3s == "0" {
			k3s = "1"
		}
		return fmt.Sprintf("did you mean %q? K3s releases look like v1.31.4+k3s1", "v1."+m[1]+"."+m[2]+m[3]+"+k3s"+k3s)
	}
	lower := strings.ToLower(strings.TrimSpace(s))
	if isChannel(lower) && lower != s {
		return fmt.Sprintf("did you mean %q?", lower)
	}
	if strings.HasPrefix(lower, "1.") && isChannel("v"+lower) {
		return fmt.Sprintf("did you mean %q?", "v"+lower)
	}
	return "write a release such as v1.31.4+k3s1 or v1.32.4-rc1+k3s1, or a channel: stable, latest, testing or v1.NN"
}

func channelHint(s string) string {
	if isRelease(s) {
		return fmt.Sprintf("%s is a release, not a channel: write version: %s", s, s)
	}
	lower := strings.ToLower(strings.TrimSpace(s))
	if isChannel(lower) {
		return fmt.Sprintf("did you mean %q?", lower)
	}
	if isChannel("v" + lower) {
		return fmt.Sprintf("did you mean %q?", "v"+lower)
	}
	if c := closest(lower, channels); c != "" {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return "channels are stable, latest, testing and v1.NN (the newest patch of that minor), e.g. channel: v1.31"
}

// checkLabelKey returns why k is not a valid label or taint key, or "".
func checkLabelKey(k string) string {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		name, prefix = prefix, ""
	}
	switch {
	case k == "":
		return "is empty"
	case hasPrefix && (len(prefix) > 253 || !dnsSubdomainRe.MatchString(prefix)):
		return "has a prefix that is not a lower-case DNS name"
	case !qualifiedNameRe.MatchString(name):
		return "must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, after an optional DNS prefix/"
	}
	return ""
}

func checkLabelValue(v string) string {
	if !labelValueRe.MatchString(v) {
		return "must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	}
	return ""
}

var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

// checkTaint returns why t is not key[=value]:Effect, and a fix.
func checkTaint(t string) (msg, hint string) {
	kv, effect, ok := cutLast(t, ":")
	if !ok {
		return fmt.Sprintf("taint %q has no effect", t), fmt.Sprintf("write %s:NoSchedule, or PreferNoSchedule or NoExecute", t)
	}
	if !containsString(taintEffects, effect) {
		hint := "the effect is NoSchedule, PreferNoSchedule or NoExecute"
		if c := closest(effect, taintEffects); c != "" {
			hint = fmt.Sprintf("did you mean %s:%s?", kv, c)
		}
		return fmt.Sprintf("taint %q has an unknown effect %q", t, effect), hint
	}
	key, value, _ := strings.Cut(kv, "=")
	if why := checkLabelKey(key); why != "" {
		return fmt.Sprintf("taint %q: the key %s", t, why), "write key=value:Effect, e.g. dedicated=edge:NoSchedule"
	}
	if why := checkLabelValue(value); why != "" {
		return fmt.Sprintf("taint %q: the value %s", t, why), "write key=value:Effect, e.g. dedicated=edge:NoSchedule"
	}
	return "", ""
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// checkNodeName returns why n cannot be a Kubernetes node name, and a fix.
func checkNodeName(n string) (msg, hint string) {
	if len(n) <= 253 && dnsSubdomainRe.MatchString(n) {
		return "", ""
	}
	msg = fmt.Sprintf("node name %q is not a lower-case DNS name", n)
	fixed := strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '-'
	}, n), "-.")
	if fixed != "" && dnsSubdomainRe.MatchString(fixed) {
		return msg, fmt.Sprintf("did you mean %q?", fixed)
	}
	return msg, "use lower-case letters, digits, '-' and '.', e.g. name: pi-1"
}

// checkAddress returns why a is not something ssh can connect to, and a fix.
// Names are not looked up: an ~/.ssh/config alias is a fine address.
func checkAddress(a string) (msg, hint string) {
	if _, err := netip.ParseAddr(a); err == nil {
		return "", ""
	}
	switch {
	case a == "":
		return "address is empty", "write address: 10.0.0.5; an IP, a DNS name or an ssh config alias"
	case strings.Contains(a, "://"):
		_, rest, _ := strings.Cut(a, "://")
		return fmt.Sprintf("address %q is a URL", a), fmt.Sprintf("write the host only: address: %s", strings.TrimSuffix(rest, "/"))
	case strings.ContainsAny(a, " \t\r\n"):
		return fmt.Sprintf("address %q contains spaces", a), "write one host per address"
	case strings.Contains(a, "@"):
		user, host, _ := strings.Cut(a, "@")
		return fmt.Sprintf("address %q includes a user", a), fmt.Sprintf("write address: %s and ssh: {user: %s}", host, user)
	case strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]"):
		return fmt.Sprintf("address %q has brackets", a), fmt.Sprintf("write address: %s", strings.Trim(a, "[]"))
	case strings.Contains(a, ":"):
		if ap, err := netip.ParseAddrPort(a); err == nil {
			return fmt.Sprintf("address %q includes a port", a), fmt.Sprintf("write address: %s and ssh: {port: %d}", ap.Addr(), ap.Port())
		}
		host, port, _ := cutLast(a, ":")
		return fmt.Sprintf("address %q includes a port", a), fmt.Sprintf("write address: %s and ssh: {port: %s}", host, port)
	case strings.ContainsAny(a, "/\\,;'\"`$*?"):
		return fmt.Sprintf("address %q is not a host name or IP", a), "write an IP, a DNS name or an ssh config alias"
	case isNumericDotted(a):
		// Not a name either (a DNS name's last label is never all digits),
		// and not to be looked up in DNS.
		return fmt.Sprintf("address %q is not a valid IP address: %s", a, ipv4Fault(a)), "an IPv4 address is four numbers from 0 to 255, e.g. address: 10.0.0.5"
	case strings.HasPrefix(a, ".") || strings.Contains(a, ".."):
		return fmt.Sprintf("address %q is not a host name or IP: it has an empty label", a), "write an IP, a DNS name or an ssh config alias"
	}
	return "", ""
}

// isNumericDotted is a string of digits and dots with at least one dot.
func isNumericDotted(a string) bool {
	return strings.Contains(a, ".") && strings.Trim(a, "0123456789.") == ""
}

// ipv4Fault says what is wrong with a numeric dotted string that is not an
// IPv4 address.
func ipv4Fault(a string) string {
	parts := strings.Split(a, ".")
	if len(parts) != 4 {
		return fmt.Sprintf("it has %d parts, not 4", len(parts))
	}
	for _, p := range parts {
		switch {
		case p == "":
			return "a part is empty"
		case len(p) > 1 && p[0] == '0':
			return fmt.Sprintf("part %s has a leading zero", p)
		case len(p) > 3 || p > "255" && len(p) == 3:
			return fmt.Sprintf("part %s is more than 255", p)
		}
	}
	return "it does not parse"
}

// addressKey is how a host is told apart from others: the same address
// behind another jump host or on another ssh port is another machine (edge
// sites often share private subnets; port forwards share an IP).
func addressKey(address, jump string, port int) string {
	a := strings.ToLower(address)
	if ip, err := netip.ParseAddr(address); err == nil {
		a = ip.Unmap().String()
	}
	return fmt.Sprintf("%s|%s|%d", strings.ToLower(jump), a, port)
}

// checkAPIAddress returns why a cannot go into a kubeconfig and tls-san.
func checkAPIAddress(a string) (msg, hint string) {
	msg, hint = checkAddress(a)
	if msg == "" {
		return "", ""
	}
	msg = "apiA" + strings.TrimPrefix(msg, "a")
	switch {
	case strings.Contains(a, "://"):
		_, rest, _ := strings.Cut(a, "://")
		host, _, _ := strings.Cut(rest, "/")
		if h, _, ok := cutLast(host, ":"); ok && !strings.Contains(h, ":") {
			host = h
		}
		return msg, "write the address only, e.g. apiAddress: " + host
	case strings.Contains(msg, "includes a port"):
		host, _, _ := cutLast(a, ":")
		return msg, fmt.Sprintf("write apiAddress: %s; the API is always on port 6443", strings.Trim(host, "[]"))
	}
	return msg, strings.Replace(hint, "address:", "apiAddress:", 1)
}

// checkToken returns why t cannot be a K3s server token. The token is
// never quoted: messages end up in logs.
func checkToken(t string) (msg, hint string) {
	switch {
	case strings.ContainsAny(t, " \t\r\n"):
		return "token contains whitespace", "check the variable or file it comes from; a token is one word"
	case strings.HasPrefix(t, "K10") && strings.Contains(t, "::node:"):
		return "token is an agent token, K10…::node:…, which cannot join servers", "use the server token from /var/lib/rancher/k3s/server/token"
	case strings.HasPrefix(t, "K10") && strings.Contains(t, "::") && !fullTokenRe.MatchString(t):
		return "token looks like a full K3s token but is not K10<64 hex>::server:<password>", "copy it again from /var/lib/rancher/k3s/server/token, or use a short token, which is just a password"
	}
	return "", ""
}

// checkFileName returns why n cannot be a file name inside a K3s directory.
func checkFileName(n string) string {
	switch {
	case n == "" || n == "." || n == "..":
		return "is not a file name"
	case strings.ContainsAny(n, `/\`):
		return "must be a file name, not a path: the directory is fixed by kind"
	}
	return ""
}

func checkClusterName(n string) (msg, hint string) {
	if clusterNameRe.MatchString(n) {
		return "", ""
	}
	return fmt.Sprintf("cluster name %q is not a simple name", n), "use letters, digits, '-', '_' and '.', at most 63, e.g. name: edge-1"
}

// checkSSHWord returns why v, a user or jump host, would break an ssh command line.
func checkSSHWord(what, v string) (msg, hint string) {
	switch {
	case v == "":
		return what + " is empty", "remove the key to use the ssh config and the current user"
	case strings.ContainsAny(v, " \t\r\n'\"`$;|&<>()\\"):
		return fmt.Sprintf("%s %q contains spaces or shell characters", what, v), "write a plain name"
	}
	return "", ""
}

package k3s

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// OwnedKey is a config.yaml key k3sctl writes itself. The order of joins,
// the token's lifecycle and the names k3sctl waits for depend on these, so
// a user setting must not change them behind k3sctl's back.
type OwnedKey struct {
	Key string
	// Why k3sctl sets it.
	Why string
	// Instead says how a user of the commands' flags gets what the key
	// would have done; InventoryInstead says it for an inventory file.
	Instead, InventoryInstead string
	// PerHost keys are owned only where k3sctl names each host (the
	// inventory's name:); elsewhere a user may set them.
	PerHost bool
}

// ownedKeys is the one table of the keys k3sctl owns.
var ownedKeys = []OwnedKey{
	{Key: "token", Why: "k3sctl gives every node the cluster's token and keeps it across runs",
		Instead:          "give the token with k3sctl's --token flag or $K3S_TOKEN",
		InventoryInstead: "set token: on the cluster instead; it may be ${VAR}"},
	{Key: "token-file", Why: "k3sctl gives every node the cluster's token itself, in config.yaml (mode 0600)",
		Instead:          "give the token with k3sctl's --token flag or $K3S_TOKEN",
		InventoryInstead: "set token: on the cluster instead; it may be ${VAR}"},
	{Key: "server", Why: "k3sctl points each joining node at a server of its cluster",
		Instead:          "k3sctl join --server-ip <address> names the server to join",
		InventoryInstead: "joining nodes go to the cluster's first server; remove it"},
	{Key: "cluster-init", Why: "k3sctl sets it on the first server when a cluster has several",
		Instead:          "use k3sctl install --cluster",
		InventoryInstead: "list the servers; remove it"},
	{Key: "node-name", Why: "k3sctl names the node after the host and waits for it by that name",
		InventoryInstead: "set name: on the host instead", PerHost: true},
	{Key: "config", Why: "k3sctl writes /etc/rancher/k3s/config.yaml and K3s reads one config file",
		Instead:          "put K3s settings in --k3s-config or --k3s-extra-args",
		InventoryInstead: "put K3s settings under config: in the inventory"},
}

// OwnedKeys lists the config.yaml keys k3sctl owns.
func OwnedKeys() []OwnedKey { return append([]OwnedKey(nil), ownedKeys...) }

// Owned looks key up in the owned keys; a trailing "+" (append) is ignored.
func Owned(key string) (OwnedKey, bool) {
	key = strings.TrimSuffix(key, "+")
	for _, o := range ownedKeys {
		if o.Key == key {
			return o, true
		}
	}
	return OwnedKey{}, false
}

// Scope is where a user's K3s settings come from and apply.
type Scope struct {
	// Role of the nodes; the zero Role is every node.
	Role Role
	// Inventory: the settings are in an inventory file, where k3sctl names
	// the hosts (so PerHost keys are owned) and hints point at its fields.
	Inventory bool
}

// SettingError is a user setting the node model refuses: a key k3sctl
// owns, a flag K3s does not have, or a value of the wrong kind. Key is as
// the user wrote it, without dashes.
type SettingError struct {
	Key     string
	Message string // what is wrong, without the key
	Hint    string // what to write instead; may be empty
	// Flag: the user wrote it as a command-line flag (--k3s-extra-args),
	// so the error names --key.
	Flag bool
	// Suggestion is the flag the user probably meant, for an unknown one.
	Suggestion string
}

func (e *SettingError) Error() string {
	s := e.Key + ": " + e.Message
	if e.Flag {
		s = "--" + e.Key + " " + e.Message
	}
	if h := e.HintText(); h != "" {
		s += "; " + h
	}
	return s
}

// HintText is what to write instead, naming a suggested flag the way the
// user wrote the setting (--name or name:).
func (e *SettingError) HintText() string {
	switch {
	case e.Suggestion != "" && e.Flag:
		return "did you mean --" + e.Suggestion + "?"
	case e.Suggestion != "":
		return fmt.Sprintf("did you mean %q?", e.Suggestion)
	}
	return e.Hint
}

// CheckKey says whether a user may set key in scope s: not a key k3sctl
// owns, and a flag the nodes' K3s command takes. key may end in "+"
// (append to a list).
func CheckKey(key string, s Scope) error {
	bare, appendTo := strings.CutSuffix(key, "+")
	if o, ok := Owned(bare); ok && (!o.PerHost || s.Inventory) {
		hint := o.Instead
		if s.Inventory {
			hint = o.InventoryInstead
		}
		return &SettingError{Key: key, Message: "is set by k3sctl: " + o.Why, Hint: hint}
	}
	f, ok := LookupFlag(bare)
	if !ok {
		hint := "see `k3s server --help` and `k3s agent --help` for the flags K3s takes"
		if what, ok := strings.CutPrefix(bare, "disable-"); ok && what != "" {
			// --disable-traefik for --disable traefik.
			hint = "to turn off a packaged component, list it under disable: --disable " + what
			if s.Inventory {
				hint = "to turn off a packaged component, list it under disable: disable: [" + what + "]"
			}
		}
		return &SettingError{Key: key, Message: "is not a K3s " + roleWord(s.Role) + " flag", Hint: hint,
			Suggestion: SuggestFlag(bare, s.Role)}
	}
	if !f.For(s.Role) {
		other := Server
		if s.Role == Server {
			other = Agent
		}
		hint := fmt.Sprintf("set it for %ss only", other)
		if s.Inventory {
			hint = fmt.Sprintf("set it under config: %s: or on a %s", other, other)
		}
		return &SettingError{Key: key, Message: fmt.Sprintf("is a K3s %s flag; k3s %s does not take it", other, s.Role), Hint: hint}
	}
	if appendTo && f.Kind != ListFlag && !f.Joined {
		return &SettingError{Key: key, Message: "appends to a list, and " + bare + " takes a single value", Hint: "write " + bare + ":"}
	}
	return nil
}

func roleWord(r Role) string {
	if r == "" {
		return "server or agent"
	}
	return string(r)
}

// CheckSetting is CheckKey and a check of the value's kind, for a value
// decoded from YAML (string, bool, number, list, mapping, secret.Value).
func CheckSetting(key string, v any, s Scope) error {
	if err := CheckKey(key, s); err != nil {
		return err
	}
	bare, appendTo := strings.CutSuffix(key, "+")
	f, _ := LookupFlag(bare)
	bad := func(msg, hint string) error { return &SettingError{Key: key, Message: msg, Hint: hint} }
	if _, isMap := v.(map[string]any); isMap {
		return bad("takes "+kindWord(f)+", not a mapping", "write "+example(f))
	}
	if list, isList := v.([]any); isList {
		if f.Kind != ListFlag && !f.Joined && !appendTo {
			return bad("takes "+kindWord(f)+", not a list", "write "+example(f))
		}
		for _, it := range list {
			if !isScalar(it) {
				return bad("takes a list of plain values", "write "+example(f))
			}
			if _, isBool := it.(bool); isBool {
				return bad(fmt.Sprintf("takes a list of values, not %v", it), "write "+example(f))
			}
		}
		return nil
	}
	switch f.Kind {
	case BoolFlag:
		if _, isBool := v.(bool); isBool {
			return nil
		}
		if str, isStr := v.(string); isStr && (strings.EqualFold(str, "true") || strings.EqualFold(str, "false")) {
			return nil
		}
		return bad(fmt.Sprintf("is true or false, not %s", show(f, v)), "write "+example(f))
	case IntFlag:
		if isWhole(v) {
			return nil
		}
		return bad(fmt.Sprintf("is a whole number, not %s", show(f, v)), "write "+example(f))
	}
	if _, isBool := v.(bool); isBool {
		return bad(fmt.Sprintf("takes %s, not %v", kindWord(f), v), "write "+example(f))
	}
	return nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, bool, int, int64, uint64, float64, secret.Value:
		return true
	}
	return false
}

func isWhole(v any) bool {
	switch n := v.(type) {
	case int, int64, uint64:
		return true
	case float64:
		return n == math.Trunc(n) && !math.IsInf(n, 0)
	case string:
		_, err := strconv.Atoi(n)
		return err == nil
	}
	return false
}

func show(f Flag, v any) string {
	if f.Secret {
		return "this value"
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func kindWord(f Flag) string {
	switch {
	case f.Kind == BoolFlag:
		return "true or false"
	case f.Kind == IntFlag:
		return "a whole number"
	case f.Kind == ListFlag:
		return "a list of values"
	case f.Joined:
		return "one value or a list"
	}
	return "a single value"
}

func example(f Flag) string {
	switch f.Kind {
	case BoolFlag:
		return f.Name + ": true"
	case IntFlag:
		return f.Name + ": 10"
	case ListFlag:
		return f.Name + ": [a, b]"
	}
	return f.Name + ": <value>"
}

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
	ClusterInit bool
	// Datastore is the external SQL datastore every server of the cluster
	// shares (datastore-endpoint: postgres://…, mysql://…, or https:// for
	// an external etcd). It usually holds a password. Servers only; with
	// it, no server gets cluster-init or server: every server reads the
	// cluster from the datastore, and each needs the cluster's token
	// except the first, which may generate it.
	Datastore secret.Value
	// NodeName is the host's name: in the inventory; empty lets K3s use
	// the hostname.
	NodeName string
	// NodeIP is the address K3s advertises for the node (node-ip);
	// AdvertiseAddress the one the API server advertises to the cluster
	// (servers only); FlannelIface the interface flannel's overlay uses.
	// Empty: K3s takes the default route's interface and its address.
	NodeIP           string
	AdvertiseAddress string
	FlannelIface     string
	// TLSSANs are names and addresses for the API certificate, such as the
	// address the user reaches the cluster by. Servers only.
	TLSSANs    []string
	NodeLabels []string
	NodeTaints []string
}

// CheckOwned refuses user settings of keys k3sctl owns; namedHost says
// k3sctl names the node, so node-name is owned too.
func CheckOwned(user Config, namedHost bool) error {
	for _, k := range user.Keys() {
		if o, ok := Owned(k); ok && (!o.PerHost || namedHost) {
			return &SettingError{Key: k, Message: "is set by k3sctl: " + o.Why, Hint: o.InventoryInstead}
		}
	}
	return nil
}

// joinedKeys are lists that both k3sctl and the user fill: k3sctl's items
// come first, the user's are added after them.
var joinedKeys = []string{"tls-san", "node-label", "node-taint"}

// BuildConfig assembles a node's config.yaml: first what k3sctl sets (s),
// in a fixed order (cluster-init, server, datastore-endpoint, token,
// node-name, node-ip, advertise-address, flannel-iface, tls-san, node-label,
// node-taint), then the user's settings in their order. The
// lists k3sctl and the user both fill (tls-san on servers, node-label,
// node-taint) keep k3sctl's items first and gain the user's, without
// repeats. A user setting of a key k3sctl owns is an error, never dropped.
func BuildConfig(s NodeSettings, user Config) (Config, error) {
	c, err := s.config()
	if err != nil {
		return Config{}, err
	}
	if err := CheckOwned(user, s.NodeName != ""); err != nil {
		return Config{}, err
	}
	if !s.Datastore.IsZero() && user.find(DatastoreKey) >= 0 {
		return Config{}, &SettingError{Key: DatastoreKey, Message: "is set twice: by the cluster's datastore and in the K3s settings",
			Hint: "keep one of the two"}
	}
	for _, a := range []struct{ key, val, field string }{
		{"node-ip", s.NodeIP, "privateAddress:"},
		{"advertise-address", s.AdvertiseAddress, "privateAddress:"},
		{"flannel-iface", s.FlannelIface, "interface:"},
	} {
		if a.val != "" && (user.find(a.key) >= 0 || user.find(a.key+"+") >= 0) {
			return Config{}, &SettingError{Key: a.key, Message: "is set by k3sctl from the host's " + a.field,
				Hint: "set it in one place: remove " + a.key + " from the K3s settings or " + a.field + " from the host"}
		}
	}
	joined := map[string]bool{}
	for _, k := range joinedKeys {
		if k == "tls-san" && s.Role != Server {
			continue
		}
		joined[k] = true
		var vs []string
		if i := c.find(k); i >= 0 {
			vs = scalars(c.entries[i].val)
			c.Delete(k)
		}
		vs = append(vs, user.List(k)...)
		vs = dedupe(vs)
		if len(vs) > 0 {
			c.SetList(k, vs...)
		}
	}
	for _, e := range user.entries {
		if joined[e.key] {
			continue
		}
		c.put(configEntry{key: e.key, val: cloneNode(e.val), sec: e.sec})
	}
	return c, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
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
	case s.Role == Agent && s.AdvertiseAddress != "":
		return c, fmt.Errorf("advertise-address applies to servers only")
	case s.Server != "" && s.ClusterInit:
		return c, fmt.Errorf("a server either starts the cluster (cluster-init) or joins %s, not both", s.Server)
	case s.Server != "" && s.Token.IsZero():
		return c, fmt.Errorf("a joining server needs the cluster token")
	case !s.Datastore.IsZero() && s.Role != Server:
		return c, fmt.Errorf("an external datastore applies to servers only")
	case !s.Datastore.IsZero() && s.ClusterInit:
		return c, fmt.Errorf("a server on an external datastore does not start embedded etcd (cluster-init)")
	case !s.Datastore.IsZero() && s.Server != "":
		return c, fmt.Errorf("a server on an external datastore joins through the datastore, not %s", s.Server)
	}
	if !s.Datastore.IsZero() {
		if err := CheckDatastore(s.Datastore.Reveal()); err != nil {
			return c, err
		}
	}
	if s.ClusterInit {
		c.SetBool("cluster-init", true)
	}
	if s.Server != "" {
		c.SetString("server", strings.TrimRight(s.Server, "/"))
	}
	if !s.Datastore.IsZero() {
		c.SetSecret(DatastoreKey, s.Datastore)
	}
	if !s.Token.IsZero() {
		c.SetSecret("token", s.Token)
	}
	if s.NodeName != "" {
		c.SetString("node-name", s.NodeName)
	}
	if s.NodeIP != "" {
		c.SetString("node-ip", s.NodeIP)
	}
	if s.AdvertiseAddress != "" {
		c.SetString("advertise-address", s.AdvertiseAddress)
	}
	if s.FlannelIface != "" {
		c.SetString("flannel-iface", s.FlannelIface)
	}
	for _, l := range []struct {
		key string
		vs  []string
	}{
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

// SetValue sets key to a value decoded from YAML or built in Go (string,
// bool, number, list, mapping, secret.Value). Credentials (IsSecretKey)
// are stored as secrets. It does not judge the value; see CheckSetting.
func (c *Config) SetValue(key string, v any) error {
	switch t := v.(type) {
	case secret.Value:
		c.SetSecret(key, t)
		return nil
	case string:
		if IsSecretKey(strings.TrimSuffix(key, "+")) {
			c.SetSecret(key, secret.New(t))
			return nil
		}
	}
	var n yaml.Node
	if err := n.Encode(revealAll(v)); err != nil {
		return &SettingError{Key: key, Message: fmt.Sprintf("cannot be written to config.yaml: %v", err)}
	}
	c.put(configEntry{key: key, val: &n})
	return nil
}

func revealAll(v any) any {
	switch t := v.(type) {
	case secret.Value:
		return t.Reveal()
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = revealAll(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = revealAll(x)
		}
		return out
	}
	return v
}

// ConfigFromMap turns user settings (inventory config: maps, a parsed
// --k3s-config) into a Config, keys sorted so that the same settings give
// the same bytes.
func ConfigFromMap(m map[string]any) (Config, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var c Config
	for _, k := range keys {
		if err := c.SetValue(k, m[k]); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// CriticalKey is a setting every server of a cluster must share; a server
// joining with a different value is refused with "critical configuration
// value mismatch between servers".
type CriticalKey struct {
	Key string
	// Default is what K3s uses when the key is unset, in the form
	// CriticalValue returns.
	Default string
}

// criticalKeys is the one table of critical settings.
var criticalKeys = []CriticalKey{
	{"agent-token", ""},
	{"cluster-cidr", "10.42.0.0/16"},
	{"service-cidr", "10.43.0.0/16"},
	{"cluster-dns", "10.43.0.10"},
	{"cluster-domain", "cluster.local"},
	{"flannel-backend", "vxlan"},
	{"disable-network-policy", "false"},
	{"disable-helm-controller", "false"},
	// Of disable, only whether servicelb is disabled counts.
	{"disable", ""},
	{"egress-selector-mode", "agent"},
	{"embedded-registry", "false"},
	{"secrets-encryption", "false"},
	// Also compared by K3s's own check (CriticalControlArgs).
	{"disable-cloud-controller", "false"},
	{"flannel-ipv6-masq", "false"},
	{"flannel-external-ip", "false"},
	{"flannel-ip-masq-disable-random-fully", "false"},
	{"secrets-encryption-provider", "aescbc"},
	{"supervisor-metrics", "false"},
}

// CriticalKeys lists the settings every server of a cluster must share.
func CriticalKeys() []CriticalKey { return append([]CriticalKey(nil), criticalKeys...) }

// IsCritical reports whether key must be identical on every server.
func IsCritical(key string) bool {
	for _, ck := range criticalKeys {
		if ck.Key == key {
			return true
		}
	}
	return false
}

// CriticalValue puts a setting's value (as decoded from YAML; nil when
// unset) in the form K3s compares: lists and comma-separated text alike,
// booleans as true/false, for disable only whether servicelb is in it, and
// unset as K3s's default. Secrets come back revealed: compare them, never
// show them.
func CriticalValue(key string, v any) string {
	var parts []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case nil:
		case []any:
			for _, x := range v {
				walk(x)
			}
		case []string:
			for _, x := range v {
				walk(x)
			}
		case secret.Value:
			parts = append(parts, v.Reveal())
		case string:
			if IsBoolKey(key) {
				parts = append(parts, strings.ToLower(strings.TrimSpace(v)))
				return
			}
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
		case bool:
			parts = append(parts, strconv.FormatBool(v))
		default:
			parts = append(parts, fmt.Sprint(v))
		}
	}
	walk(v)
	if key == "disable" {
		for _, p := range parts {
			if p == "servicelb" {
				return "servicelb"
			}
		}
		return ""
	}
	if len(parts) == 0 {
		for _, ck := range criticalKeys {
			if ck.Key == key {
				return ck.Default
			}
		}
		return ""
	}
	return strings.Join(parts, ",")
}

// CriticalDiff lists the critical keys on which two servers' configs differ,
// unset keys taking K3s's defaults. It names keys only, never values: one
// of them is a token.
func CriticalDiff(a, b Config) []string {
	var diff []string
	for _, ck := range criticalKeys {
		if CriticalValue(ck.Key, a.value(ck.Key)) != CriticalValue(ck.Key, b.value(ck.Key)) {
			diff = append(diff, ck.Key)
		}
	}
	return diff
}

// value is a key's value in the form CriticalValue takes.
func (c Config) value(key string) any {
	i := c.find(key)
	if i < 0 {
		return nil
	}
	e := c.entries[i]
	if e.val == nil {
		return e.sec
	}
	if e.val.Kind == yaml.ScalarNode {
		return e.val.Value
	}
	return scalars(e.val)
}

package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
	"gopkg.in/yaml.v3"
)

// The decoded file before defaults are applied: settings written at one
// level must be told apart from settings not written at all.

type sshPatch struct {
	user, keyFile, jump, configFile, hostKeyChecking *string
	port                                             *int
}

func (p sshPatch) applyTo(s *SSHSettings) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&s.User, p.user)
	set(&s.KeyFile, p.keyFile)
	set(&s.Jump, p.jump)
	set(&s.ConfigFile, p.configFile)
	set(&s.HostKeyChecking, p.hostKeyChecking)
	if p.port != nil {
		s.Port = *p.port
	}
}

type versionChoice struct {
	version, channel string
	set              bool
}

type configMap struct {
	values map[string]any
	keys   map[string]*yaml.Node
}

type configParts struct{ all, server, agent configMap }

type rawDefaults struct {
	ssh    sshPatch
	ver    versionChoice
	config configParts
	upload string
}

type rawHost struct {
	Host
	ssh        sshPatch
	proxy      proxyPatch
	node       *yaml.Node
	addrNode   *yaml.Node
	privNode   *yaml.Node
	ifaceNode  *yaml.Node
	nameNode   *yaml.Node
	configKeys map[string]*yaml.Node
}

type rawFile struct {
	File
	node *yaml.Node
}

type rawCluster struct {
	node       *yaml.Node
	name       string
	nameNode   *yaml.Node
	labels     map[string]string
	apiAddress string
	ver        versionChoice
	token      secret.Value
	datastore  secret.Value
	// datastoreNode is the datastore: key; nil when it is not written.
	datastoreNode *yaml.Node
	ssh           sshPatch
	proxy         proxyPatch
	config        configParts
	servers       []rawHost
	agents        []rawHost
	serversKey    *yaml.Node
	serversOK     bool
	files         []rawFile
	airgap        bool
	fixBoot       bool
	upload        string
	registries    *k3s.Registries
}

func (d *decoder) inventory() *Inventory {
	root := d.parse()
	if root == nil {
		return nil
	}
	f, ok := d.fields(root, objInventory, "the inventory", "apiVersion: "+APIVersion+", kind: "+Kind+" and clusters: at the top level")
	if !ok {
		return nil
	}
	d.header(f)
	var def rawDefaults
	if f.has("defaults") {
		def = d.defaults(f.val["defaults"])
	}
	var topLevel []string
	for _, k := range clusterKeys {
		if f.has(k) {
			topLevel = append(topLevel, k)
		}
	}
	var raws []*rawCluster
	switch {
	case f.has("clusters"):
		for _, k := range topLevel {
			d.report(f.key[k], fmt.Sprintf("%s at the top level cannot be combined with clusters:", k),
				"move it into one of the clusters, or remove clusters: and describe a single cluster at the top level")
		}
		var listed bool
		raws, listed = d.clusters(f.val["clusters"])
		if listed && len(raws) == 0 {
			d.report(f.key["clusters"], "clusters: is empty", "add a cluster, e.g. - {name: edge-1, servers: [10.0.0.5]}")
		}
	case len(topLevel) > 0:
		raws = []*rawCluster{d.cluster(f)}
	default:
		d.report(f.node, "the inventory describes no cluster", "add servers: for a single cluster, or clusters: for several")
	}
	inv := d.resolve(def, raws)
	if f.has("rollout") {
		inv.Rollout = d.rollout(f.val["rollout"], inv.Clusters)
	}
	return inv
}

func (d *decoder) header(f fields) {
	if !f.has("apiVersion") {
		d.report(f.node, "missing apiVersion", "add apiVersion: "+APIVersion+" at the top")
	} else if v, ok := d.str(f.val["apiVersion"], "apiVersion", "apiVersion: "+APIVersion); ok && v != APIVersion {
		d.report(f.val["apiVersion"], fmt.Sprintf("apiVersion %q is not supported", v), "write apiVersion: "+APIVersion)
	}
	if !f.has("kind") {
		d.report(f.node, "missing kind", "add kind: "+Kind+" at the top")
	} else if v, ok := d.str(f.val["kind"], "kind", "kind: "+Kind); ok && v != Kind {
		d.report(f.val["kind"], fmt.Sprintf("kind %q is not supported", v), "write kind: "+Kind)
	}
}

func (d *decoder) defaults(n *yaml.Node) rawDefaults {
	var def rawDefaults
	f, ok := d.fields(n, objDefaults, "defaults", "defaults: {ssh: {user: pi}, channel: stable}")
	if !ok {
		return def
	}
	def.ssh = d.ssh(f.val["ssh"])
	def.ver = d.version(f)
	def.config = d.configParts(f.val["config"])
	if n := f.val["upload"]; n != nil {
		def.upload = d.uploadMode(n)
	}
	return def
}

// clusters decodes the clusters: list; listed is false when it is not a list.
func (d *decoder) clusters(n *yaml.Node) (raws []*rawCluster, listed bool) {
	items, ok := d.list(n, "clusters", "clusters: [{name: edge-1, servers: [{address: 10.0.0.5}]}]")
	if !ok {
		return nil, false
	}
	for _, it := range items {
		f, ok := d.fields(it, objCluster, "a cluster", "- {name: edge-1, servers: [10.0.0.5]}")
		if !ok {
			continue
		}
		if f.node.Kind != yaml.MappingNode {
			d.report(f.node, "empty cluster", "write - {name: edge-1, servers: [10.0.0.5]}")
			continue
		}
		raws = append(raws, d.cluster(f))
	}
	return raws, true
}

// cluster decodes the cluster keys of f, a clusters: item or the top level.
func (d *decoder) cluster(f fields) *rawCluster {
	c := &rawCluster{node: f.node, serversOK: true}
	if n := f.val["name"]; n != nil {
		c.nameNode = n
		if s, ok := d.str(n, "name", "name: edge-1"); ok {
			if msg, hint := checkClusterName(s); msg != "" {
				d.report(n, msg, hint)
			} else {
				c.name = s
			}
		}
	}
	if n := f.val["labels"]; n != nil {
		c.labels = d.labels(n)
		if len(c.labels) == 0 {
			c.labels = nil
		}
	}
	if n := f.val["apiAddress"]; n != nil {
		if s, ok := d.str(n, "apiAddress", "apiAddress: 10.0.0.100"); ok {
			if msg, hint := checkAPIAddress(s); msg != "" {
				d.report(n, msg, hint)
			} else {
				c.apiAddress = s
			}
		}
	}
	c.ver = d.version(f)
	if n := f.val["airgap"]; n != nil {
		c.airgap, _ = d.boolean(n, "airgap", "airgap: true")
	}
	if n := f.val["fixBoot"]; n != nil {
		c.fixBoot, _ = d.boolean(n, "fixBoot", "fixBoot: true")
	}
	if n := f.val["upload"]; n != nil {
		c.upload = d.uploadMode(n)
	}
	if n := f.val["registries"]; n != nil {
		c.registries = d.registries(n)
	}
	if n := f.val["token"]; n != nil {
		if s, ok := d.text(n, "token", "token: ${K3S_TOKEN}", true); ok {
			if msg, hint := checkToken(s); msg != "" {
				d.report(n, msg, hint)
			} else {
				c.token = secret.New(s)
			}
		}
	}
	if n := f.val["datastore"]; n != nil {
		c.datastoreNode = f.key["datastore"]
		c.datastore = d.datastore(n)
	}
	c.ssh = d.ssh(f.val["ssh"])
	c.proxy = d.proxy(f.val["proxy"])
	c.config = d.configParts(f.val["config"])
	c.serversKey = f.key["servers"]
	if c.serversKey == nil {
		c.serversKey = f.node
	}
	c.servers, c.serversOK = d.hosts(f.val["servers"], RoleServer)
	c.agents, _ = d.hosts(f.val["agents"], RoleAgent)
	c.files = d.files(f.val["files"])
	if c.registries != nil {
		for _, rf := range c.files {
			if rf.Kind == FileRegistries {
				d.report(rf.node, "a files entry of kind registries and registries: both write /etc/rancher/k3s/registries.yaml",
					"keep one: move the file's settings into registries:, or remove registries:")
			}
		}
	}
	return c
}

const datastoreExample = "datastore: postgres://k3s:${K3S_DB_PASSWORD}@db.lan:5432/k3s"

// datastore reads datastore:, an endpoint or {endpoint: ...}. The endpoint
// is a secret: messages never quote it.
func (d *decoder) datastore(n *yaml.Node) secret.Value {
	nn := deref(n)
	if nn != nil && nn.Kind == yaml.MappingNode {
		f, ok := d.fields(nn, objDatastore, "datastore", "datastore: {endpoint: postgres://k3s:${K3S_DB_PASSWORD}@db.lan:5432/k3s}")
		if !ok {
			return secret.Value{}
		}
		if f.missing("endpoint") {
			d.report(nn, "datastore has no endpoint", "write datastore: {endpoint: postgres://k3s:${K3S_DB_PASSWORD}@db.lan:5432/k3s}")
		}
		if f.val["endpoint"] == nil {
			return secret.Value{}
		}
		nn = f.val["endpoint"]
	}
	s, ok := d.text(nn, "datastore", datastoreExample, true)
	if !ok {
		return secret.Value{}
	}
	if err := k3s.CheckDatastore(s); err != nil {
		var de *k3s.DatastoreError
		if errors.As(err, &de) {
			d.report(nn, "datastore endpoint "+de.Message, de.Hint)
		} else {
			d.report(nn, "datastore endpoint is not valid", "write "+datastoreExample)
		}
		return secret.Value{}
	}
	return secret.New(s)
}

// version reads version: and channel:. A channel name under version: is
// taken as the channel, since "which K3s" is one question to the user.
func (d *decoder) version(f fields) versionChoice {
	var vc versionChoice
	if n := f.val["version"]; n != nil {
		if s, ok := d.str(n, "version", "version: v1.31.4+k3s1"); ok {
			switch {
			case isRelease(s):
				vc = versionChoice{version: s, set: true}
			case isChannel(s):
				vc = versionChoice{channel: s, set: true}
			default:
				d.report(n, fmt.Sprintf("version %q is not a K3s release or channel", s), versionHint(s))
			}
		}
	}
	if n := f.val["channel"]; n != nil {
		if f.has("version") {
			d.report(f.key["channel"], "version and channel are both set", "keep one: version pins a release, channel follows the newest release of a channel")
			return vc
		}
		if s, ok := d.str(n, "channel", "channel: stable"); ok {
			if isChannel(s) {
				vc = versionChoice{channel: s, set: true}
			} else {
				d.report(n, fmt.Sprintf("channel %q is not a K3s channel", s), channelHint(s))
			}
		}
	}
	return vc
}

func (d *decoder) ssh(n *yaml.Node) sshPatch {
	var p sshPatch
	if n == nil {
		return p
	}
	f, ok := d.fields(n, objSSH, "ssh", "ssh: {user: pi, keyFile: ~/.ssh/id_ed25519}")
	if !ok {
		return p
	}
	word := func(key, example string) *string {
		v := f.val[key]
		if v == nil {
			return nil
		}
		s, ok := d.str(v, key, example)
		if !ok {
			return nil
		}
		if msg, hint := checkSSHWord(key, s); msg != "" {
			d.report(v, msg, hint)
			return nil
		}
		return &s
	}
	file := func(key, example string) *string {
		v := f.val[key]
		if v == nil {
			return nil
		}
		s, ok := d.str(v, key, example)
		if !ok {
			return nil
		}
		if s == "" {
			d.report(v, key+" is empty", "write "+example+", or remove the key")
			return nil
		}
		s = d.localPath(s)
		return &s
	}
	p.user = word("user", "user: pi")
	p.jump = word("jump", "jump: admin@bastion.example.com:22")
	p.keyFile = file("keyFile", "keyFile: ~/.ssh/id_ed25519")
	p.configFile = file("configFile", "configFile: ~/.ssh/config")
	if v := f.val["port"]; v != nil {
		if port, ok := d.int(v, "port", "port: 22"); ok {
			if port < 1 || port > 65535 {
				d.report(v, fmt.Sprintf("port %d is out of range", port), "write a port from 1 to 65535, e.g. port: 22")
			} else {
				p.port = &port
			}
		}
	}
	if v := f.val["hostKeyChecking"]; v != nil {
		if s, ok := d.str(v, "hostKeyChecking", "hostKeyChecking: accept-new"); ok {
			switch strings.ToLower(s) {
			case HostKeyAcceptNew, HostKeyStrict:
				s = strings.ToLower(s)
				p.hostKeyChecking = &s
			case "yes", "true":
				d.report(v, fmt.Sprintf("hostKeyChecking %q is not a policy", s), "write hostKeyChecking: strict")
			case "no", "off", "false", "ask", "ignore", "none", "insecure":
				d.report(v, fmt.Sprintf("hostKeyChecking %q: k3sctl always checks host keys", s),
					"write accept-new to record unknown keys on first contact and refuse changed ones, or strict to accept only keys already in known_hosts")
			default:
				d.report(v, fmt.Sprintf("hostKeyChecking %q is not a policy", s), "write hostKeyChecking: accept-new or strict")
			}
		}
	}
	return p
}

// localPath makes a relative path relative to the inventory's directory, so
// an inventory works from wherever it is run. "~/" is the SSH layer's to expand.
func (d *decoder) localPath(p string) string {
	if filepath.IsAbs(p) || strings.HasPrefix(p, "~") {
		return p
	}
	return filepath.Join(d.dir, p)
}

func (d *decoder) configParts(n *yaml.Node) configParts {
	var c configParts
	if n == nil {
		return c
	}
	f, ok := d.fields(n, objConfig, "config", "config: {server: {cluster-cidr: 10.42.0.0/16}, agent: {...}, all: {...}}")
	if !ok {
		return c
	}
	c.all = d.configMap(f.val["all"], "", "config all", "all: {node-label: [site=home]}")
	c.server = d.configMap(f.val["server"], k3s.Server, "config server", "server: {cluster-cidr: 10.42.0.0/16}; k3sctl sets the K3s server URL itself")
	c.agent = d.configMap(f.val["agent"], k3s.Agent, "config agent", "agent: {node-label: [role=worker]}")
	return c
}

// configMap decodes K3s settings for nodes of role (the zero Role: every
// node) and checks each against the node model in internal/k3s: keys
// k3sctl owns, flags K3s does not have and malformed values are reported
// where they are written.
func (d *decoder) configMap(n *yaml.Node, role k3s.Role, what, example string) configMap {
	m := configMap{values: map[string]any{}, keys: map[string]*yaml.Node{}}
	nn := deref(n)
	if nn == nil || isNull(nn) {
		return m
	}
	if nn.Kind != yaml.MappingNode {
		d.report(n, fmt.Sprintf("%s must be a mapping of K3s settings, not %s", what, describe(nn)), "write "+example)
		return m
	}
	for _, p := range d.pairs(nn) {
		k := p.key.Value
		switch bare := strings.TrimSuffix(k, "+"); {
		case strings.HasPrefix(k, "-"):
			d.report(p.key, fmt.Sprintf("K3s setting %q is written as a flag", k), fmt.Sprintf("write it without the dashes: %s:", strings.TrimLeft(k, "-")))
			continue
		case bare == "":
			d.report(p.key, "empty K3s setting name", "write a config.yaml key such as cluster-cidr:")
			continue
		}
		scope := k3s.Scope{Role: role, Inventory: true}
		if err := k3s.CheckKey(k, scope); err != nil {
			d.reportSetting(p.key, err)
			continue
		}
		if v, ok := d.value(p.val, k); ok {
			if err := k3s.CheckSetting(k, v, scope); err != nil {
				d.reportSetting(p.val, err)
				continue
			}
			m.values[k] = v
			m.keys[k] = p.key
		}
	}
	return m
}

func (d *decoder) reportSetting(at *yaml.Node, err error) {
	var se *k3s.SettingError
	if !errors.As(err, &se) {
		d.report(at, err.Error(), "")
		return
	}
	d.report(at, fmt.Sprintf("K3s setting %q %s", se.Key, se.Message), se.HintText())
}

// hosts decodes servers: or agents:; ok is false when it is not a list.
func (d *decoder) hosts(n *yaml.Node, role string) (hosts []rawHost, ok bool) {
	key := role + "s"
	items, ok := d.list(n, key, key+": [{address: 10.0.0.5}]")
	for _, it := range items {
		if h, ok := d.host(it, role); ok {
			hosts = append(hosts, h)
		}
	}
	return hosts, ok
}

func (d *decoder) host(n *yaml.Node, role string) (rawHost, bool) {
	nn := deref(n)
	if nn == nil {
		return rawHost{}, false
	}
	h := rawHost{node: nn, Host: Host{Role: role, Pos: d.pos(nn)}}
	// A bare item is just an address: servers: [10.0.0.1, 10.0.0.2, 10.0.0.3].
	if nn.Kind == yaml.ScalarNode && !isNull(nn) {
		h.addrNode = nn
		h.Address = d.address(nn)
		return h, true
	}
	f, ok := d.fields(nn, objHost, "a host", "- address: 10.0.0.5")
	if !ok {
		return h, false
	}
	if v := f.val["address"]; v != nil {
		h.addrNode = v
		h.Address = d.address(v)
	} else if f.missing("address") {
		d.report(nn, "host has no address", "write address: 10.0.0.5; an IP, a DNS name or an ssh config alias")
	}
	if v := f.val["name"]; v != nil {
		h.nameNode = v
		if s, ok := d.str(v, "name", "name: pi-1"); ok {
			if msg, hint := checkNodeName(s); msg != "" {
				d.report(v, msg, hint)
			} else {
				h.Name = s
			}
		}
	}
	if v := f.val["privateAddress"]; v != nil {
		h.privNode = v
		h.PrivateAddress = d.privateAddress(v)
	}
	if v := f.val["interface"]; v != nil {
		h.ifaceNode = v
		h.Interface = d.iface(v)
	}
	h.ssh = d.ssh(f.val["ssh"])
	h.proxy = d.proxy(f.val["proxy"])
	if v := f.val["fixBoot"]; v != nil {
		h.FixBoot, _ = d.boolean(v, "fixBoot", "fixBoot: true")
	}
	h.Labels = d.labels(f.val["labels"])
	h.Taints = d.taints(f.val["taints"])
	if v := f.val["config"]; v != nil {
		cm := d.configMap(v, k3s.Role(role), "host config", "config: {node-ip: 10.0.0.5}")
		h.Config, h.configKeys = cm.values, cm.keys
	}
	// Nothing written and an empty value mean the same; keep one form.
	if len(h.Labels) == 0 {
		h.Labels = nil
	}
	if len(h.Taints) == 0 {
		h.Taints = nil
	}
	if len(h.Config) == 0 {
		h.Config = nil
	}
	return h, true
}

func (d *decoder) address(n *yaml.Node) string {
	s, ok := d.str(n, "address", "address: 10.0.0.5")
	if !ok {
		return ""
	}
	if msg, hint := checkAddress(s); msg != "" {
		d.report(n, msg, hint)
		return ""
	}
	return s
}

func (d *decoder) labels(n *yaml.Node) map[string]string {
	nn := deref(n)
	switch {
	case nn == nil:
		return nil
	case isNull(nn):
		return nil
	case nn.Kind == yaml.SequenceNode:
		d.report(n, "labels must be a mapping, not a list", "write key: value pairs, e.g. labels: {disk: ssd}")
		return nil
	case nn.Kind != yaml.MappingNode:
		d.report(n, fmt.Sprintf("labels must be a mapping, not %s", describe(nn)), "write labels: {disk: ssd}")
		return nil
	}
	out := map[string]string{}
	for _, p := range d.pairs(nn) {
		k := p.key.Value
		if why := checkLabelKey(k); why != "" {
			d.report(p.key, fmt.Sprintf("label key %q %s", k, why), "e.g. disk: ssd or example.com/site: home")
			continue
		}
		v, ok := d.str(p.val, "label "+k, k+": value")
		if !ok {
			continue
		}
		if why := checkLabelValue(v); why != "" {
			d.report(p.val, fmt.Sprintf("label %s: the value %q %s", k, v, why), "quote nothing special, e.g. "+k+": ssd")
			continue
		}
		out[k] = v
	}
	return out
}

func (d *decoder) taints(n *yaml.Node) []string {
	items, ok := d.list(n, "taints", "taints: [dedicated=edge:NoSchedule]")
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := d.str(it, "taint", "- dedicated=edge:NoSchedule")
		if !ok {
			continue
		}
		if msg, hint := checkTaint(s); msg != "" {
			d.report(it, msg, hint)
			continue
		}
		out = append(out, s)
	}
	return out
}

var fileKinds = []string{FileManifest, FileImages, FileRegistries}

func (d *decoder) files(n *yaml.Node) []rawFile {
	items, _ := d.list(n, "files", "files: [{src: manifests/app.yaml, kind: manifest}]")
	var out []rawFile
	for _, it := range items {
		f, ok := d.fields(it, objFile, "a files entry", "- {src: manifests/app.yaml, kind: manifest}")
		if !ok {
			continue
		}
		rf := rawFile{node: f.node, File: File{Pos: d.pos(f.node)}}
		ok = true
		if v := f.val["kind"]; v == nil {
			if f.missing("kind") {
				d.report(f.node, "files entry has no kind", "write kind: manifest, images or registries")
			}
			ok = false
		} else if s, good := d.str(v, "kind", "kind: manifest"); good {
			if containsString(fileKinds, s) {
				rf.Kind = s
			} else {
				hint := "write kind: manifest, images or registries"
				if c := closest(s, fileKinds); c != "" {
					hint = fmt.Sprintf("did you mean %q?", c)
				}
				d.report(v, fmt.Sprintf("unknown file kind %q", s), hint)
				ok = false
			}
		} else {
			ok = false
		}
		if v := f.val["src"]; v == nil {
			if f.missing("src") {
				d.report(f.node, "files entry has no src", "write src: with a path relative to the inventory file")
			}
			ok = false
		} else if s, good := d.str(v, "src", "src: manifests/app.yaml"); good {
			rf.Src, good = d.checkSrc(v, s)
			ok = ok && good
		} else {
			ok = false
		}
		name := filepath.Base(rf.Src)
		if v := f.val["dst"]; v != nil {
			if s, good := d.str(v, "dst", "dst: app.yaml"); !good {
				ok = false
			} else if rf.Kind == FileRegistries {
				d.report(v, "registries.yaml always goes to "+RegistriesPath, "remove dst")
				ok = false
			} else if why := checkFileName(s); why != "" {
				d.report(v, fmt.Sprintf("dst %q %s", s, why), "write dst: app.yaml")
				ok = false
			} else {
				name = s
			}
		}
		rf.Secret = rf.Kind == FileRegistries
		if v := f.val["secret"]; v != nil {
			if b, good := d.boolean(v, "secret", "secret: true"); good {
				rf.Secret = b
			} else {
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch rf.Kind {
		case FileManifest:
			rf.Dst = path.Join(ManifestsDir, name)
		case FileImages:
			rf.Dst = path.Join(ImagesDir, name)
		case FileRegistries:
			rf.Dst = RegistriesPath
		}
		out = append(out, rf)
	}
	return out
}

// checkSrc resolves a files: src against the inventory's directory and
// checks that it is a file that can be read.
func (d *decoder) checkSrc(n *yaml.Node, src string) (string, bool) {
	if src == "" {
		d.report(n, "src is empty", "write src: with a path relative to the inventory file")
		return "", false
	}
	if strings.HasPrefix(src, "~") {
		d.report(n, fmt.Sprintf("src %q starts with ~, which is not expanded here", src), "write the full path, or one relative to the inventory file")
		return "", false
	}
	p := d.localPath(src)
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hint := "src is relative to the inventory file's directory"
		if p != src {
			hint += "; looked for " + p
		}
		d.report(n, fmt.Sprintf("src %q does not exist", src), hint)
		return "", false
	case err != nil:
		d.report(n, fmt.Sprintf("src %q cannot be read: %v", src, err), "check the path and its permissions")
		return "", false
	case st.IsDir():
		d.report(n, fmt.Sprintf("src %q is a directory", src), "list each file as its own entry")
		return "", false
	}
	return p, true
}

// uploadModes are the values of upload:.
var uploadModes = []string{UploadAuto, UploadSite, UploadDirect}

// uploadMode decodes upload:; "" when it is wrong (and reported).
func (d *decoder) uploadMode(n *yaml.Node) string {
	s, ok := d.str(n, "upload", "upload: auto")
	if !ok {
		return ""
	}
	if containsString(uploadModes, s) {
		return s
	}
	hint := "write upload: auto, site or direct"
	if c := closest(s, uploadModes); c != "" {
		hint = fmt.Sprintf("did you mean %q?", c)
	}
	d.report(n, fmt.Sprintf("upload %q is not a mode", s), hint)
	return ""
}

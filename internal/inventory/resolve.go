package inventory

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
	"gopkg.in/yaml.v3"
)

// resolve applies defaults and checks what involves more than one value:
// names and addresses that repeat, server counts, critical settings.
func (d *decoder) resolve(def rawDefaults, raws []*rawCluster) *Inventory {
	inv := &Inventory{}
	d.nameClusters(raws)
	type firstUse struct {
		cluster int
		line    int
	}
	seen := map[string]firstUse{}
	datastores := map[string]int{} // endpoint -> cluster
	for ci, rc := range raws {
		c := d.resolveCluster(def, rc)
		if !c.Datastore.IsZero() {
			if first, dup := datastores[c.Datastore.Reveal()]; dup {
				at := rc.datastoreNode
				if at == nil {
					at = rc.node
				}
				d.report(at, fmt.Sprintf("cluster %q uses the same datastore as cluster %q", c.Name, raws[first].name),
					"give each cluster its own database: K3s refuses a second cluster's servers with \"bootstrap data already found and encrypted with different token\"")
			} else {
				datastores[c.Datastore.Reveal()] = ci
			}
		}
		for i, h := range c.Hosts() {
			if h.Address == "" {
				continue
			}
			raw := rc.host(i)
			k := addressKey(h.Address, h.SSH.Jump, h.SSH.Port)
			if first, dup := seen[k]; dup && first.cluster != ci {
				d.report(raw.addrNode, fmt.Sprintf("address %s is already in cluster %q (line %d)", h.Address, raws[first.cluster].name, first.line),
					"a host belongs to one cluster; if these are different machines behind different jump hosts, set ssh: {jump: ...} on each cluster")
				continue
			}
			if _, dup := seen[k]; !dup {
				seen[k] = firstUse{ci, raw.addrNode.Line}
			}
		}
		inv.Clusters = append(inv.Clusters, c)
	}
	return inv
}

// host is the i-th host of rc, servers first, as Cluster.Hosts orders them.
func (rc *rawCluster) host(i int) rawHost {
	if i < len(rc.servers) {
		return rc.servers[i]
	}
	return rc.agents[i-len(rc.servers)]
}

func (d *decoder) nameClusters(raws []*rawCluster) {
	firstLine := map[string]int{}
	for _, rc := range raws {
		if rc.nameNode == nil {
			if len(raws) > 1 {
				d.report(rc.node, "cluster has no name", "add name: edge-1; every cluster needs one when there are several")
				continue
			}
			rc.name = defaultClusterName(d.file)
			if msg, _ := checkClusterName(rc.name); msg != "" {
				d.report(rc.node, fmt.Sprintf("cluster has no name, and the file name %q is not a valid one", rc.name), "add name: edge-1")
				rc.name = ""
			}
			continue
		}
		if rc.name == "" {
			continue
		}
		if line, dup := firstLine[rc.name]; dup {
			d.report(rc.nameNode, fmt.Sprintf("cluster name %q is used twice (first at line %d)", rc.name, line), "give each cluster its own name")
			continue
		}
		firstLine[rc.name] = rc.nameNode.Line
	}
}

func (d *decoder) resolveCluster(def rawDefaults, rc *rawCluster) Cluster {
	c := Cluster{
		Name:       rc.name,
		Labels:     rc.labels,
		APIAddress: rc.apiAddress,
		Token:      rc.token,
		Airgap:     rc.airgap,
		FixBoot:    rc.fixBoot,
		Upload:     firstOf(rc.upload, def.upload),
		Registries: rc.registries,
		Pos:        d.pos(rc.node),
	}
	switch {
	case rc.ver.set:
		c.Version, c.Channel = rc.ver.version, rc.ver.channel
	case def.ver.set:
		c.Version, c.Channel = def.ver.version, def.ver.channel
	default:
		c.Channel = DefaultChannel
	}
	// A more specific scope wins: cluster over defaults, then role over all.
	c.ServerConfig = mergeConfig(def.config.all, def.config.server, rc.config.all, rc.config.server)
	c.AgentConfig = mergeConfig(def.config.all, def.config.agent, rc.config.all, rc.config.agent)
	if c.APIAddress != "" {
		c.ServerConfig["tls-san"] = withTLSSAN(c.ServerConfig["tls-san"], c.APIAddress)
	}
	d.resolveDatastore(def, rc, &c)

	base := SSHSettings{Port: DefaultSSHPort, HostKeyChecking: DefaultHostKeyChecking}
	def.ssh.applyTo(&base)
	rc.ssh.applyTo(&base)
	c.Proxy = rc.proxy.applyTo(nil)
	finish := func(raws []rawHost) []Host {
		hosts := make([]Host, len(raws))
		for i := range raws {
			raws[i].SSH = base
			raws[i].ssh.applyTo(&raws[i].SSH)
			raws[i].Proxy = raws[i].proxy.applyTo(c.Proxy)
			hosts[i] = raws[i].Host
		}
		return hosts
	}
	c.Servers = finish(rc.servers)
	c.Agents = finish(rc.agents)
	for _, f := range rc.files {
		c.Files = append(c.Files, f.File)
	}

	d.checkServerCount(rc, &c)
	d.checkDuplicateHosts(rc, &c)
	d.checkCritical(rc, &c)
	d.checkSiteSettings(rc, &c)
	d.checkFileTargets(rc)
	return c
}

func mergeConfig(layers ...configMap) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		for k, v := range l.values {
			out[k] = deepCopy(v)
		}
	}
	return out
}

// deepCopy keeps clusters that share defaults from sharing slices and maps,
// so changing one cluster's settings cannot change another's.
func deepCopy(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = deepCopy(x)
		}
		return out
	}
	return v
}

// withTLSSAN adds addr to a tls-san value, so the serving certificate is
// valid for the address the kubeconfig will use.
func withTLSSAN(v any, addr string) []any {
	var sans []any
	switch v := v.(type) {
	case nil:
	case []any:
		sans = append(sans, v...)
	default:
		sans = append(sans, v)
	}
	for _, s := range sans {
		for part := range strings.SplitSeq(fmt.Sprint(s), ",") {
			if strings.EqualFold(strings.TrimSpace(part), addr) {
				return sans
			}
		}
	}
	return append(sans, addr)
}

func (d *decoder) checkServerCount(rc *rawCluster, c *Cluster) {
	n := len(rc.servers)
	switch {
	case n == 0 && rc.serversOK:
		d.report(rc.serversKey, fmt.Sprintf("cluster %q has no servers", c.Name), "add servers: with at least one host, e.g. servers: [{address: 10.0.0.5}]")
	case n > 0 && n%2 == 0 && c.Datastore.IsZero():
		survive := "no server failure"
		if f := (n - 1) / 2; f > 0 {
			survive = fmt.Sprintf("%d failure%s", f, plural(f))
		}
		better := n + 1
		d.report(rc.serversKey,
			fmt.Sprintf("cluster %q has %d servers: embedded etcd needs a majority (quorum) of servers up, so %d servers survive %s, no more than %d would",
				c.Name, n, n, survive, n-1),
			fmt.Sprintf("use %d or %d servers, %d survive %d failure%s; with an external datastore: any number works",
				n-1, better, better, better/2, plural(better/2)))
	}
}

// resolveDatastore sets c.Datastore from datastore: or from a
// datastore-endpoint under config:, which is taken out of the K3s
// settings: plan writes it on every server and on no agent. Both at once,
// a bad endpoint, or one on a single host is a problem.
func (d *decoder) resolveDatastore(def rawDefaults, rc *rawCluster, c *Cluster) {
	const key = k3s.DatastoreKey
	c.Datastore = rc.datastore
	var cfgKey *yaml.Node
	for _, cm := range []configMap{rc.config.server, rc.config.all, def.config.server, def.config.all} {
		if k := cm.keys[key]; k != nil {
			cfgKey = k
			break
		}
	}
	if v, ok := c.ServerConfig[key]; ok {
		ep := configText(v)
		switch {
		case rc.datastoreNode != nil:
			d.report(cfgKey, fmt.Sprintf("the datastore is set twice: datastore: (line %d) and %s under config:", rc.datastoreNode.Line, key),
				"keep one: datastore: is the cluster's external datastore")
		default:
			if err := k3s.CheckDatastore(ep.Reveal()); err != nil {
				var de *k3s.DatastoreError
				if errors.As(err, &de) {
					d.report(cfgKey, fmt.Sprintf("K3s setting %q: datastore endpoint %s", key, de.Message), de.Hint)
				}
			} else {
				c.Datastore = ep
			}
		}
	}
	delete(c.ServerConfig, key)
	delete(c.AgentConfig, key)
	for i := range rc.servers {
		h := &rc.servers[i]
		if k := h.configKeys[key]; k != nil {
			d.report(k, fmt.Sprintf("K3s setting %q on one server: every server of a cluster shares its datastore", key),
				"set datastore: on the cluster instead")
		}
	}
}

// configText is a config value as a secret, whatever YAML made of it.
func configText(v any) secret.Value {
	switch v := v.(type) {
	case secret.Value:
		return v
	case string:
		return secret.New(v)
	}
	return secret.New(fmt.Sprint(v))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (d *decoder) checkDuplicateHosts(rc *rawCluster, c *Cluster) {
	byAddr := map[string]rawHost{}
	byName := map[string]rawHost{}
	for i, h := range c.Hosts() {
		raw := rc.host(i)
		if h.Address != "" {
			k := addressKey(h.Address, h.SSH.Jump, h.SSH.Port)
			if first, dup := byAddr[k]; dup {
				hint := "remove one of them"
				if first.Role != h.Role {
					hint = "list each host once: a server also runs workloads, so it need not be an agent too"
				}
				d.report(raw.addrNode, fmt.Sprintf("address %s is listed twice in cluster %q (first at line %d)", h.Address, c.Name, first.addrNode.Line), hint)
			} else {
				byAddr[k] = raw
			}
		}
		if h.Name != "" {
			if first, dup := byName[h.Name]; dup {
				d.report(raw.nameNode, fmt.Sprintf("node name %q is used twice in cluster %q (first at line %d)", h.Name, c.Name, first.nameNode.Line),
					"K3s refuses a second node with the same name; give each host its own name")
			} else {
				byName[h.Name] = raw
			}
		}
	}
}

func (d *decoder) checkCritical(rc *rawCluster, c *Cluster) {
	if len(rc.servers) < 2 {
		return
	}
	// The settings every server must share are K3s's: see k3s.CriticalKeys.
	for _, ck := range k3s.CriticalKeys() {
		overridden := false
		for _, h := range rc.servers {
			if _, ok := h.Config[ck.Key]; ok {
				overridden = true
			}
		}
		if !overridden {
			continue
		}
		values := make([]string, len(rc.servers))
		count := map[string]int{}
		for i, h := range rc.servers {
			v, ok := h.Config[ck.Key]
			if !ok {
				v = c.ServerConfig[ck.Key]
			}
			values[i] = k3s.CriticalValue(ck.Key, v)
			count[values[i]]++
		}
		// The value most servers have is taken as intended; ties go to the
		// first server, which bootstraps the cluster.
		ref := 0
		for i := range values {
			if count[values[i]] > count[values[ref]] {
				ref = i
			}
		}
		for i, h := range rc.servers {
			if values[i] == values[ref] {
				continue
			}
			at := h.node
			if k := h.configKeys[ck.Key]; k != nil {
				at = k
			}
			other := hostLabel(rc.servers[ref])
			differs := fmt.Sprintf("%s here, %s on %s", showCritical(ck.Key, values[i]), showCritical(ck.Key, values[ref]), other)
			if k3s.IsSecretKey(ck.Key) || isSecretKey(ck.Key) {
				differs = fmt.Sprintf("the value here differs from the one on %s", other)
			}
			d.report(at,
				fmt.Sprintf("servers disagree on %s, which must be identical on every server: %s", ck.Key, differs),
				fmt.Sprintf("K3s refuses such a join with \"critical configuration value mismatch\"; set %s once under the cluster's config: server: and not per host", ck.Key))
		}
	}
}

func showCritical(key, norm string) string {
	switch {
	case key == "disable" && norm == "":
		return "servicelb enabled"
	case key == "disable":
		return "servicelb disabled"
	case norm == "":
		return "unset"
	}
	return strconv.Quote(norm)
}

func hostLabel(h rawHost) string {
	if h.Address != "" {
		return h.Address
	}
	return fmt.Sprintf("the server at line %d", h.node.Line)
}

func (d *decoder) checkFileTargets(rc *rawCluster) {
	first := map[string]*yaml.Node{}
	for _, f := range rc.files {
		if prev, dup := first[f.Dst]; dup {
			hint := "give one of them another dst: name"
			if f.Kind == FileRegistries {
				hint = "a node has one registries.yaml; merge them into one file"
			}
			d.report(f.node, fmt.Sprintf("two files go to %s (first at line %d)", f.Dst, prev.Line), hint)
			continue
		}
		first[f.Dst] = f.node
	}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

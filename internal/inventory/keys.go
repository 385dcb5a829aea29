package inventory

import (
	"fmt"
	"slices"
	"strings"

	"github.com/k3sctl/k3sctl/internal/suggest"
)

// object names a kind of YAML mapping in the format.
type object string

const (
	objInventory object = "inventory"
	objDefaults  object = "defaults"
	objCluster   object = "cluster"
	objHost      object = "host"
	objSSH       object = "ssh"
	objConfig    object = "config"
	objFile      object = "file"
	objRollout   object = "rollout"
	objCanary    object = "canary"
	objDatastore object = "datastore"
	objProxy     object = "proxy"
	// objContainerdProxy is proxy: containerd:.
	objContainerdProxy object = "containerd proxy"
)

// clusterKeys may appear in a cluster and, for a single-cluster file, at the
// top level.
var clusterKeys = []string{"name", "labels", "apiAddress", "version", "channel", "token", "datastore", "ssh", "config", "proxy", "servers", "agents", "files", "airgap", "upload", "fixBoot", "registries"}

// objectKeys is every key the loader accepts, per kind of mapping. The
// decoder refuses anything else, and a test holds docs/inventory-schema.json
// to the same list.
var objectKeys = map[object][]string{
	objInventory: append([]string{"apiVersion", "kind", "defaults", "clusters", "rollout"}, clusterKeys...),
	objDefaults:  {"ssh", "version", "channel", "upload", "config"},
	objCluster:   clusterKeys,
	objHost:      {"address", "privateAddress", "interface", "name", "ssh", "labels", "taints", "config", "proxy", "fixBoot"},
	objSSH:       {"user", "keyFile", "port", "jump", "configFile", "hostKeyChecking"},
	objConfig:    {"all", "server", "agent"},
	objFile:      {"src", "kind", "dst", "secret"},
	objRollout:   {"canary", "waves", "waveSize", "failureBudget", "pause", "maxClustersInFlight"},
	objCanary:    {"clusters", "selector"},
	objDatastore: {"endpoint"},
	objProxy:     {"http", "https", "noProxy", "containerd"},
	// containerd: takes the proxy keys for containerd alone.
	objContainerdProxy: {"http", "https", "noProxy"},
}

// extensionPrefix marks top-level keys the loader ignores, as in Compose
// files: a place to define YAML anchors (x-pi: &pi {...}) for use below.
const extensionPrefix = "x-"

// where names a kind of mapping inside a message: `unknown key "x" in host`.
var where = map[object]string{
	objInventory:       "at the top level",
	objDefaults:        "in defaults",
	objCluster:         "in cluster",
	objHost:            "in host",
	objSSH:             "in ssh",
	objConfig:          "in config",
	objFile:            "in files entry",
	objRollout:         "in rollout",
	objCanary:          "in canary",
	objDatastore:       "in datastore",
	objProxy:           "in proxy",
	objContainerdProxy: "in proxy containerd",
}

// home describes where a key belongs when it was written somewhere else.
var home = []struct {
	obj  object
	text string
}{
	{objCluster, "a cluster"},
	{objHost, "a host, an item of servers: or agents:"},
	{objSSH, "an ssh: block"},
	{objFile, "an item of files:"},
	{objProxy, "a proxy: block"},
	{objConfig, "config:"},
	{objDefaults, "defaults:"},
	{objInventory, "the top level"},
}

// aliases are names people reach for that are too far from ours for edit
// distance to find.
var aliases = map[string]string{
	"key":                   "keyFile",
	"identity":              "keyFile",
	"identityfile":          "keyFile",
	"sshkey":                "keyFile",
	"privatekey":            "keyFile",
	"host":                  "address",
	"hostname":              "address",
	"ip":                    "address",
	"addr":                  "address",
	"username":              "user",
	"login":                 "user",
	"proxyjump":             "jump",
	"bastion":               "jump",
	"sshconfig":             "configFile",
	"vip":                   "apiAddress",
	"loadbalancer":          "apiAddress",
	"endpoint":              "apiAddress",
	"k3sversion":            "version",
	"masters":               "servers",
	"master":                "servers",
	"controlplane":          "servers",
	"workers":               "agents",
	"worker":                "agents",
	"nodes":                 "agents",
	"manifests":             "files",
	"path":                  "src",
	"source":                "src",
	"dest":                  "dst",
	"destination":           "dst",
	"type":                  "kind",
	"k3s":                   "config",
	"common":                "all",
	"servers":               "server",
	"agents":                "agent",
	"stricthostkeychecking": "hostKeyChecking",
	"datastoreendpoint":     "datastore",
	"database":              "datastore",
	"db":                    "datastore",
	"url":                   "endpoint",
	"dsn":                   "endpoint",
	"iface":                 "interface",
	"nodeip":                "privateAddress",
	"internaladdress":       "privateAddress",
	"internalip":            "privateAddress",
	"httpproxy":             "http",
	"httpsproxy":            "https",
}

// unknownKeyHint says what to write instead of key, found in obj.
func unknownKeyHint(obj object, key string) string {
	valid := objectKeys[obj]
	if s := closest(key, valid); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	for _, h := range home {
		if h.obj != obj && slices.Contains(objectKeys[h.obj], key) {
			if key == "token" && obj == objDefaults {
				return "token belongs in a cluster: give each cluster its own"
			}
			return fmt.Sprintf("%s belongs in %s", key, h.text)
		}
	}
	switch {
	case obj == objConfig:
		return fmt.Sprintf("K3s settings go one level down, under server: for servers, agent: for agents or all: for every node, e.g. server: {%s: ...}", key)
	case strings.Contains(key, "-") && (obj == objCluster || obj == objInventory || obj == objDefaults):
		return fmt.Sprintf("K3s settings go under config:, e.g. config: {server: {%s: ...}}", key)
	}
	return "valid keys: " + strings.Join(valid, ", ")
}

// closest finds the valid key that key most likely meant, or "".
func closest(key string, valid []string) string {
	norm := normalizeKey(key)
	if a, ok := aliases[norm]; ok && slices.Contains(valid, a) && a != key {
		return a
	}
	for _, v := range valid {
		if normalizeKey(v) == norm {
			return v
		}
	}
	best, bestDist := "", suggest.Budget(key)+1
	for _, v := range valid {
		if d := suggest.Distance(strings.ToLower(key), strings.ToLower(v)); d < bestDist {
			best, bestDist = v, d
		}
	}
	return best
}

// normalizeKey makes apiAddress, api_address, API-Address and apiaddress equal.
func normalizeKey(k string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(k))
}

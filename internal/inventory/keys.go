package inventory

import (
	"fmt"
	"slices"
	"strings"
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
)

// clusterKeys may appear in a cluster and, for a single-cluster file, at the
// top level.
var clusterKeys = []string{"name", "apiAddress", "version", "channel", "token", "ssh", "config", "servers", "agents", "files", "airgap", "fixBoot", "registries"}

// objectKeys is every key the loader accepts, per kind of mapping. The
// decoder refuses anything else, and a test holds docs/inventory-schema.json
// to the same list.
var objectKeys = map[object][]string{
	objInventory: append([]string{"apiVersion", "kind", "defaults", "clusters"}, clusterKeys...),
	objDefaults:  {"ssh", "version", "channel", "config"},
	objCluster:   clusterKeys,
	objHost:      {"address", "name", "ssh", "labels", "taints", "config", "fixBoot"},
	objSSH:       {"user", "keyFile", "port", "jump", "configFile", "hostKeyChecking"},
	objConfig:    {"all", "server", "agent"},
	objFile:      {"src", "kind", "dst"},
}

// extensionPrefix marks top-level keys the loader ignores, as in Compose
// files: a place to define YAML anchors (x-pi: &pi {...}) for use below.
const extensionPrefix = "x-"

// where names a kind of mapping inside a message: `unknown key "x" in host`.
var where = map[object]string{
	objInventory: "at the top level",
	objDefaults:  "in defaults",
	objCluster:   "in cluster",
	objHost:      "in host",
	objSSH:       "in ssh",
	objConfig:    "in config",
	objFile:      "in files entry",
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
	best, bestDist := "", maxTypoDistance(key)+1
	for _, v := range valid {
		if d := editDistance(strings.ToLower(key), strings.ToLower(v)); d < bestDist {
			best, bestDist = v, d
		}
	}
	return best
}

func maxTypoDistance(key string) int {
	switch n := len(key); {
	case n <= 3:
		return 1
	case n <= 9:
		return 2
	}
	return 3
}

// normalizeKey makes apiAddress, api_address, API-Address and apiaddress equal.
func normalizeKey(k string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(k))
}

// editDistance is the Levenshtein distance, counting an adjacent swap as one
// edit because that is the commonest typo.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return max(len(ra), len(rb))
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

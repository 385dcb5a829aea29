package inventory

import (
	"github.com/k3sctl/k3sctl/internal/k3s"

	"encoding/json"
	"iter"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// schemaObjects maps each kind of mapping the loader reads to where
// docs/inventory-schema.json describes it ("" is the root).
var schemaObjects = map[object]string{
	objInventory: "",
	objDefaults:  "defaults",
	objCluster:   "cluster",
	objHost:      "host",
	objSSH:       "ssh",
	objConfig:    "config",
	objFile:      "file",
	objRollout:   "rollout",
	objCanary:    "canary",
	objDatastore: "datastoreMapping",
}

type schemaNode struct {
	Ref                  string                 `json:"$ref"`
	Properties           map[string]*schemaNode `json:"properties"`
	PatternProperties    map[string]*schemaNode `json:"patternProperties"`
	AdditionalProperties any                    `json:"additionalProperties"`
	Defs                 map[string]*schemaNode `json:"$defs"`
	Enum                 []string               `json:"enum"`
	Pattern              string                 `json:"pattern"`
	AnyOf                []*schemaNode          `json:"anyOf"`
	Not                  *schemaNode            `json:"not"`
	PropertyNames        *schemaNode            `json:"propertyNames"`
	DependentSchemas     map[string]*schemaNode `json:"dependentSchemas"`
}

func loadSchema(t *testing.T) (*schemaNode, []byte) {
	t.Helper()
	data, err := os.ReadFile("../../docs/inventory-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schemaNode
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("docs/inventory-schema.json: %v", err)
	}
	return &s, data
}

// TestSchemaMatchesLoader keeps docs/inventory-schema.json and the loader
// from drifting apart: the same keys in every mapping, the same closed lists.
func TestSchemaMatchesLoader(t *testing.T) {
	root, raw := loadSchema(t)
	for obj, def := range schemaObjects {
		n := root
		if def != "" {
			n = root.Defs[def]
		}
		if n == nil {
			t.Errorf("schema has no $defs/%s for %s", def, obj)
			continue
		}
		got := slices.Sorted(mapKeys(n.Properties))
		want := slices.Sorted(slices.Values(objectKeys[obj]))
		if !slices.Equal(got, want) {
			t.Errorf("schema %q properties = %v, loader accepts %v", def, got, want)
		}
		if n.AdditionalProperties != false {
			t.Errorf("schema %q must set additionalProperties: false, as the loader refuses unknown keys", def)
		}
	}
	if _, ok := root.PatternProperties["^"+extensionPrefix]; !ok {
		t.Errorf("schema root does not allow %s keys", extensionPrefix)
	}
	if got := root.DependentSchemas["clusters"].PropertyNames.Not.Enum; !slices.Equal(got, clusterKeys) {
		t.Errorf("keys refused beside clusters: = %v, want %v", got, clusterKeys)
	}
	if got := root.Defs["file"].Properties["kind"].Enum; !slices.Equal(got, fileKinds) {
		t.Errorf("file kinds = %v, want %v", got, fileKinds)
	}
	if got := root.Defs["ssh"].Properties["hostKeyChecking"].Enum; !slices.Equal(got, []string{HostKeyAcceptNew, HostKeyStrict}) {
		t.Errorf("hostKeyChecking = %v", got)
	}
	refused := root.Defs["k3sConfig"].PropertyNames.Not.Enum
	owned := k3s.OwnedKeys()
	for _, o := range owned {
		if !slices.Contains(refused, o.Key) || !slices.Contains(refused, o.Key+"+") {
			t.Errorf("schema k3sConfig does not refuse %s and %s+", o.Key, o.Key)
		}
	}
	if len(refused) != 2*len(owned) {
		t.Errorf("schema k3sConfig refuses %v, k3s.OwnedKeys %v", refused, owned)
	}

	// Every reference resolves.
	for _, m := range regexp.MustCompile(`"\$ref":\s*"#/\$defs/([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		if root.Defs[m[1]] == nil {
			t.Errorf("$ref to missing $defs/%s", m[1])
		}
	}

	// The version patterns accept what the loader accepts.
	release := regexp.MustCompile(root.Defs["version"].AnyOf[0].Pattern)
	channel := regexp.MustCompile(root.Defs["channel"].AnyOf[0].Pattern)
	for _, s := range []string{"v1.31.4+k3s1", "v1.32.4-rc1+k3s1", "v1.31.4", "stable", "latest", "testing", "v1.31", "v1", "Stable", "v1.31.4+k3s0", "1.31.4+k3s1"} {
		if release.MatchString(s) != isRelease(s) || channel.MatchString(s) != isChannel(s) {
			t.Errorf("schema and loader disagree about %q", s)
		}
	}
	// So does the env reference pattern.
	env := regexp.MustCompile(root.Defs["envRef"].Pattern)
	for _, s := range []string{"${A}", "x${A_1:-d}y", "${A"} {
		_, errs := expandEnv(s, func(string) (string, bool) { return "", true }, false)
		if env.MatchString(s) != (len(errs) == 0 && strings.Contains(s, "${")) {
			t.Errorf("schema and loader disagree about the reference %q", s)
		}
	}
}

func mapKeys[V any](m map[string]V) iter.Seq[string] { return maps.Keys(m) }

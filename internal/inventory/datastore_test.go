package inventory

import (
	"fmt"
	"strings"
	"testing"
)

const dbPassword = "db-hunter2"

func TestDatastoreForms(t *testing.T) {
	env := map[string]string{"DB_PASSWORD": dbPassword}
	want := "postgres://k3s:" + dbPassword + "@10.0.0.5:5432/k3s"
	for name, src := range map[string]string{
		"string":  "datastore: postgres://k3s:${DB_PASSWORD}@10.0.0.5:5432/k3s\n",
		"mapping": "datastore: {endpoint: \"postgres://k3s:${DB_PASSWORD}@10.0.0.5:5432/k3s\"}\n",
		"config":  "config:\n  server: {datastore-endpoint: \"postgres://k3s:${DB_PASSWORD}@10.0.0.5:5432/k3s\"}\n",
		"all":     "config:\n  all: {datastore-endpoint: \"postgres://k3s:${DB_PASSWORD}@10.0.0.5:5432/k3s\"}\n",
	} {
		t.Run(name, func(t *testing.T) {
			// Two servers: an even count is fine on an external datastore.
			inv := parseOK(t, header+src+"servers: [10.0.0.1, 10.0.0.2]\nagents: [10.0.0.3]\n", env)
			c := inv.Clusters[0]
			if c.Datastore.Reveal() != want {
				t.Errorf("datastore = %q", c.Datastore.Reveal())
			}
			if _, ok := c.ServerConfig["datastore-endpoint"]; ok {
				t.Error("datastore-endpoint left in the servers' settings")
			}
			if _, ok := c.AgentConfig["datastore-endpoint"]; ok {
				t.Error("datastore-endpoint left in the agents' settings")
			}
			if out := fmt.Sprintf("%v %+v %#v", inv, inv, inv); strings.Contains(out, dbPassword) {
				t.Errorf("datastore password printed: %s", out)
			}
		})
	}
}

func TestDatastoreProblems(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      string // file:line:col and message
	}{
		{"scheme", "datastore: sqlite://k3s:" + dbPassword + "@x/y\nservers: [10.0.0.1]\n",
			`test.yaml:3:12: datastore endpoint has the scheme "sqlite", which k3sctl does not set up`},
		{"no host", "datastore:\n  endpoint: postgres://k3s:" + dbPassword + "@/k3s\nservers: [10.0.0.1]\n",
			"test.yaml:4:13: datastore endpoint names no database host"},
		{"no endpoint", "datastore: {url: x}\nservers: [10.0.0.1]\n",
			`test.yaml:3:13: unknown key "url" in datastore (did you mean "endpoint"?)`},
		{"unset variable", "datastore: postgres://k3s:${NOPE}@db/k3s\nservers: [10.0.0.1]\n",
			"test.yaml:3:12: environment variable NOPE is not set"},
		{"not text", "datastore: [a, b]\nservers: [10.0.0.1]\n",
			"test.yaml:3:12: datastore must be text, not a list"},
		{"both", "datastore: postgres://k3s:" + dbPassword + "@db/k3s\nconfig:\n  server:\n    datastore-endpoint: postgres://k3s:" + dbPassword + "@db/k3s\nservers: [10.0.0.1]\n",
			"test.yaml:6:5: the datastore is set twice: datastore: (line 3) and datastore-endpoint under config:"},
		{"bad config endpoint", "config:\n  server:\n    datastore-endpoint: mongodb://k3s:" + dbPassword + "@db/k3s\nservers: [10.0.0.1]\n",
			`test.yaml:5:5: K3s setting "datastore-endpoint": datastore endpoint has the scheme "mongodb"`},
		{"one host", "datastore: postgres://k3s:" + dbPassword + "@db/k3s\nservers:\n  - 10.0.0.1\n  - {address: 10.0.0.2, config: {datastore-endpoint: postgres://k3s:" + dbPassword + "@db/k3s}}\n",
			`test.yaml:6:34: K3s setting "datastore-endpoint" on one server: every server of a cluster shares its datastore (set datastore: on the cluster instead)`},
		{"shared", "clusters:\n  - {name: a, servers: [10.0.0.1], datastore: postgres://k3s:" + dbPassword + "@db/k3s}\n  - {name: b, servers: [10.0.0.2], datastore: postgres://k3s:" + dbPassword + "@db/k3s}\n",
			`test.yaml:5:36: cluster "b" uses the same datastore as cluster "a"`},
		{"even without", "servers: [10.0.0.1, 10.0.0.2]\n",
			"with an external datastore: any number works"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(header+tc.src), func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %q", err, tc.want)
			}
			if strings.Contains(err.Error(), dbPassword) {
				t.Errorf("problem shows the password: %v", err)
			}
		})
	}
}

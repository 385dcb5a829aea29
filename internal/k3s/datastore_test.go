package k3s

import (
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/secret"
)

func TestCheckDatastore(t *testing.T) {
	const pw = "pa55word"
	for _, ep := range []string{
		"postgres://k3s:" + pw + "@db.lan:5432/k3s",
		"postgresql://k3s:" + pw + "@10.0.0.5/k3s?sslmode=disable",
		"mysql://k3s:" + pw + "@tcp(db.lan:3306)/k3s",
		"https://etcd-1.lan:2379,https://etcd-2.lan:2379",
	} {
		if err := CheckDatastore(ep); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
	for _, tc := range []struct{ ep, want string }{
		{"", "is empty"},
		{"k3s:" + pw + "@db.lan/k3s", "is not a URL"},
		{"sqlite:///var/lib/db", `scheme "sqlite"`},
		{"http://etcd.lan:2379", `scheme "http"`},
		{"postgres://k3s:" + pw + "@/k3s", "names no database host"},
		{"postgres://k3s:" + pw + "@db:5432/k3s extra", "whitespace"},
		{"postgres://k3s:p%zz" + pw + "@db/k3s", "percent-encoded"},
		{"mysql://k3s:" + pw + "@tcp()/k3s", "names no database host"},
		{"https://etcd.lan:2379,etcd2:2379", "https://host:port"},
	} {
		err := CheckDatastore(tc.ep)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.ep, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%q: the error shows the password: %v", tc.ep, err)
		}
	}
}

func TestNodeSettingsDatastore(t *testing.T) {
	ds := secret.New("postgres://k3s:pa55word@db.lan/k3s")
	c, err := BuildConfig(NodeSettings{Role: Server, Datastore: ds, Token: secret.New("tok"), TLSSANs: []string{"10.0.0.10"}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Keys(); strings.Join(got, ",") != "datastore-endpoint,token,tls-san" {
		t.Errorf("keys %v", got)
	}
	if c.Secret(DatastoreKey).Reveal() != ds.Reveal() {
		t.Error("datastore-endpoint not stored as the secret given")
	}
	if strings.Contains(string(c.Redacted()), "pa55word") {
		t.Error("redacted config shows the datastore password")
	}
	for _, tc := range []struct {
		s    NodeSettings
		want string
	}{
		{NodeSettings{Role: Agent, Datastore: ds, Server: "https://10.0.0.10:6443", Token: secret.New("t")}, "servers only"},
		{NodeSettings{Role: Server, Datastore: ds, ClusterInit: true}, "cluster-init"},
		{NodeSettings{Role: Server, Datastore: ds, Server: "https://10.0.0.10:6443", Token: secret.New("t")}, "joins through the datastore"},
		{NodeSettings{Role: Server, Datastore: secret.New("redis://x")}, `scheme "redis"`},
	} {
		if _, err := BuildConfig(tc.s, Config{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.s.Role, err, tc.want)
		}
	}
	var user Config
	user.SetSecret(DatastoreKey, ds)
	if _, err := BuildConfig(NodeSettings{Role: Server, Datastore: ds}, user); err == nil || !strings.Contains(err.Error(), "set twice") {
		t.Errorf("datastore in both: err = %v", err)
	}
}

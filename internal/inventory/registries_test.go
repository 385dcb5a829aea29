package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistriesKey(t *testing.T) {
	inv := parseOK(t, header+`
servers: [10.0.0.5]
registries:
  mirrors:
    docker.io:
      endpoint: ["https://mirror.lan:5000"]
      rewrite: {"^rancher/(.*)": "mirror/rancher/$1"}
  configs:
    "mirror.lan:5000":
      auth: {username: k3s, password: "${REG_PASS}"}
      tls: {ca_file: /etc/ssl/mirror-ca.crt, insecure_skip_verify: false}
`, map[string]string{"REG_PASS": "s3cret-registry-pw"})
	r := inv.Clusters[0].Registries
	if r == nil {
		t.Fatal("registries not read")
	}
	if m := r.Mirrors["docker.io"]; len(m.Endpoints) != 1 || m.Endpoints[0] != "https://mirror.lan:5000" || m.Rewrite["^rancher/(.*)"] != "mirror/rancher/$1" {
		t.Errorf("mirror %+v", m)
	}
	c := r.Configs["mirror.lan:5000"]
	if c.Username != "k3s" || c.Password.Reveal() != "s3cret-registry-pw" || c.CAFile != "/etc/ssl/mirror-ca.crt" {
		t.Errorf("config %+v", c)
	}
	if s := c.Password.String(); strings.Contains(s, "s3cret") {
		t.Errorf("password prints as %q", s)
	}

	for _, tc := range []struct{ src, want string }{
		{"registries: {mirors: {}}", `unknown key "mirors" in registries`},
		{"registries: {configs: {r: {auth: {user: x}}}}", `unknown key "user" in registry r auth`},
		{"registries: [docker.io]", "registries must be a mapping"},
	} {
		_, err := Parse("test.yaml", []byte(header+"servers: [10.0.0.5]\n"+tc.src+"\n"), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.want)
		}
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "registries.yaml"), []byte("mirrors: {}\n"), 0o600)
	inventory := filepath.Join(dir, "site.yaml")
	os.WriteFile(inventory, []byte(header+"servers: [10.0.0.5]\nregistries: {mirrors: {docker.io: {}}}\nfiles: [{src: registries.yaml, kind: registries}]\n"), 0o600)
	if _, err := Load(inventory); err == nil || !strings.Contains(err.Error(), "both write /etc/rancher/k3s/registries.yaml") {
		t.Errorf("registries: and a registries file: %v", err)
	}
}

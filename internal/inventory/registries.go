package inventory

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/secret"
)

// registriesExample is shown with every problem of a registries: block.
const registriesExample = `registries: {mirrors: {docker.io: {endpoint: ["https://mirror.lan:5000"]}}, configs: {"mirror.lan:5000": {auth: {username: k3s, password: "${REGISTRY_PASSWORD}"}}}}`

// mapping returns the entries of a mapping named what, with only the keys
// allowed (nil: any key); it reports anything else.
func (d *decoder) mapping(n *yaml.Node, what string, allowed []string) []pair {
	nn := deref(n)
	switch {
	case nn == nil || isNull(nn):
		return nil
	case nn.Kind != yaml.MappingNode:
		d.report(n, fmt.Sprintf("%s must be a mapping, not %s", what, describe(nn)), "write "+registriesExample)
		return nil
	}
	var out []pair
	for _, p := range d.pairs(nn) {
		if allowed != nil && !slices.Contains(allowed, p.key.Value) {
			d.report(p.key, fmt.Sprintf("unknown key %q in %s", p.key.Value, what), "valid keys: "+strings.Join(allowed, ", "))
			continue
		}
		out = append(out, p)
	}
	return out
}

// registries decodes K3s's registries.yaml settings; passwords, auth
// strings and identity tokens are secrets.
func (d *decoder) registries(n *yaml.Node) *k3s.Registries {
	r := &k3s.Registries{}
	for _, top := range d.mapping(n, "registries", []string{"mirrors", "configs"}) {
		switch top.key.Value {
		case "mirrors":
			for _, m := range d.mapping(top.val, "registries.mirrors", nil) {
				what := "mirror " + m.key.Value
				var mirror k3s.RegistryMirror
				for _, f := range d.mapping(m.val, what, []string{"endpoint", "rewrite"}) {
					switch f.key.Value {
					case "endpoint":
						items, _ := d.list(f.val, what+" endpoint", `endpoint: ["https://mirror.lan:5000"]`)
						for _, it := range items {
							if s, ok := d.str(it, what+" endpoint", `endpoint: ["https://mirror.lan:5000"]`); ok {
								mirror.Endpoints = append(mirror.Endpoints, s)
							}
						}
					case "rewrite":
						mirror.Rewrite = map[string]string{}
						for _, rw := range d.mapping(f.val, what+" rewrite", nil) {
							if s, ok := d.str(rw.val, what+" rewrite", `rewrite: {"^rancher/(.*)": "mirror/rancher/$1"}`); ok {
								mirror.Rewrite[rw.key.Value] = s
							}
						}
					}
				}
				if r.Mirrors == nil {
					r.Mirrors = map[string]k3s.RegistryMirror{}
				}
				r.Mirrors[m.key.Value] = mirror
			}
		case "configs":
			for _, c := range d.mapping(top.val, "registries.configs", nil) {
				what := "registry " + c.key.Value
				var cfg k3s.RegistryConfig
				for _, part := range d.mapping(c.val, what, []string{"auth", "tls"}) {
					switch part.key.Value {
					case "auth":
						for _, f := range d.mapping(part.val, what+" auth", []string{"username", "password", "auth", "identity_token"}) {
							secretKey := f.key.Value != "username"
							s, ok := d.text(f.val, what+" auth "+f.key.Value, f.key.Value+`: "${REGISTRY_PASSWORD}"`, secretKey)
							if !ok {
								continue
							}
							switch f.key.Value {
							case "username":
								cfg.Username = s
							case "password":
								cfg.Password = secret.New(s)
							case "auth":
								cfg.Auth = secret.New(s)
							case "identity_token":
								cfg.IdentityToken = secret.New(s)
							}
						}
					case "tls":
						for _, f := range d.mapping(part.val, what+" tls", []string{"ca_file", "cert_file", "key_file", "insecure_skip_verify"}) {
							if f.key.Value == "insecure_skip_verify" {
								cfg.Insecure, _ = d.boolean(f.val, what+" tls insecure_skip_verify", "insecure_skip_verify: true")
								continue
							}
							s, ok := d.str(f.val, what+" tls "+f.key.Value, f.key.Value+": /etc/ssl/mirror-ca.crt")
							if !ok {
								continue
							}
							switch f.key.Value {
							case "ca_file":
								cfg.CAFile = s
							case "cert_file":
								cfg.CertFile = s
							case "key_file":
								cfg.KeyFile = s
							}
						}
					}
				}
				if r.Configs == nil {
					r.Configs = map[string]k3s.RegistryConfig{}
				}
				r.Configs[c.key.Value] = cfg
			}
		}
	}
	return r
}

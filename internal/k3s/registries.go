package k3s

import (
	"gopkg.in/yaml.v3"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// Registries is K3s's registries.yaml: where containerd pulls images from
// (mirrors) and how it logs in and checks certificates (configs). The
// credentials are secrets; Render is the only place they are revealed.
type Registries struct {
	Mirrors map[string]RegistryMirror
	Configs map[string]RegistryConfig
}

// RegistryMirror is one registry's mirror endpoints.
type RegistryMirror struct {
	Endpoints []string
	Rewrite   map[string]string
}

// RegistryConfig is how to talk to one registry.
type RegistryConfig struct {
	Username      string
	Password      secret.Value
	Auth          secret.Value
	IdentityToken secret.Value
	CAFile        string
	CertFile      string
	KeyFile       string
	Insecure      bool
}

// RegistriesMode is the mode of registries.yaml: it may hold passwords.
const RegistriesMode = SecretFileMode

// Render is the file's content, the same bytes for the same settings.
func (r *Registries) Render() []byte {
	type mirror struct {
		Endpoint []string          `yaml:"endpoint,omitempty"`
		Rewrite  map[string]string `yaml:"rewrite,omitempty"`
	}
	type auth struct {
		Username      string `yaml:"username,omitempty"`
		Password      string `yaml:"password,omitempty"`
		Auth          string `yaml:"auth,omitempty"`
		IdentityToken string `yaml:"identity_token,omitempty"`
	}
	type tls struct {
		CAFile   string `yaml:"ca_file,omitempty"`
		CertFile string `yaml:"cert_file,omitempty"`
		KeyFile  string `yaml:"key_file,omitempty"`
		Insecure bool   `yaml:"insecure_skip_verify,omitempty"`
	}
	type config struct {
		Auth *auth `yaml:"auth,omitempty"`
		TLS  *tls  `yaml:"tls,omitempty"`
	}
	var out struct {
		Mirrors map[string]mirror `yaml:"mirrors,omitempty"`
		Configs map[string]config `yaml:"configs,omitempty"`
	}
	if len(r.Mirrors) > 0 {
		out.Mirrors = map[string]mirror{}
		for k, m := range r.Mirrors {
			out.Mirrors[k] = mirror{Endpoint: m.Endpoints, Rewrite: m.Rewrite}
		}
	}
	if len(r.Configs) > 0 {
		out.Configs = map[string]config{}
		for k, c := range r.Configs {
			var cc config
			a := auth{Username: c.Username, Password: c.Password.Reveal(), Auth: c.Auth.Reveal(), IdentityToken: c.IdentityToken.Reveal()}
			if a != (auth{}) {
				cc.Auth = &a
			}
			t := tls{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, Insecure: c.Insecure}
			if t != (tls{}) {
				cc.TLS = &t
			}
			out.Configs[k] = cc
		}
	}
	data, err := yaml.Marshal(out)
	if err != nil {
		panic(err) // plain maps, strings and bools always marshal
	}
	return data
}

package k3s

import (
	"testing"

	"github.com/k3sctl/k3sctl/internal/secret"
)

func TestRegistriesRender(t *testing.T) {
	r := &Registries{
		Mirrors: map[string]RegistryMirror{
			"docker.io": {Endpoints: []string{"https://mirror.lan:5000"}},
			"ghcr.io":   {Endpoints: []string{"https://mirror.lan:5001"}, Rewrite: map[string]string{"^(.*)": "ghcr/$1"}},
		},
		Configs: map[string]RegistryConfig{
			"mirror.lan:5000": {Username: "k3s", Password: secret.New("pw"), CAFile: "/etc/ssl/ca.crt", Insecure: true},
			"mirror.lan:5001": {},
		},
	}
	want := `mirrors:
    docker.io:
        endpoint:
            - https://mirror.lan:5000
    ghcr.io:
        endpoint:
            - https://mirror.lan:5001
        rewrite:
            ^(.*): ghcr/$1
configs:
    mirror.lan:5000:
        auth:
            username: k3s
            password: pw
        tls:
            ca_file: /etc/ssl/ca.crt
            insecure_skip_verify: true
    mirror.lan:5001: {}
`
	for i := 0; i < 3; i++ {
		if got := string(r.Render()); got != want {
			t.Fatalf("render %d:\n%s\nwant\n%s", i, got, want)
		}
	}
	if got := string((&Registries{}).Render()); got != "{}\n" {
		t.Errorf("empty: %q", got)
	}
}

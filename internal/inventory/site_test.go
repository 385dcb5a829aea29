package inventory

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestProxyAndAddresses(t *testing.T) {
	data := `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
name: site
proxy:
  http: http://proxy.example.com:3128
  https: http://ops:${PROXY_PASSWORD}@proxy.example.com:3128
  noProxy: 10.0.0.0/8, .corp.example.com
  containerd:
    https: http://mirror-proxy:3128
servers:
  - address: 192.168.1.10
    privateAddress: 10.0.0.10
    interface: eth1
agents:
  - address: 192.168.1.11
    proxy: {https: "", noProxy: [registry.local]}
  - 192.168.1.12
`
	env := func(k string) (string, bool) { return "s3cret", k == "PROXY_PASSWORD" }
	inv, err := Parse("site.yaml", []byte(data), env)
	if err != nil {
		t.Fatal(err)
	}
	c := inv.Clusters[0]
	if c.Proxy == nil || c.Proxy.HTTP.Reveal() != "http://proxy.example.com:3128" ||
		c.Proxy.HTTPS.Reveal() != "http://ops:s3cret@proxy.example.com:3128" ||
		!reflect.DeepEqual(c.Proxy.NoProxy, []string{"10.0.0.0/8", ".corp.example.com"}) ||
		c.Proxy.ContainerdHTTPS.Reveal() != "http://mirror-proxy:3128" {
		t.Fatalf("cluster proxy: %+v", c.Proxy)
	}
	s := c.Servers[0]
	if s.PrivateAddress != "10.0.0.10" || s.Interface != "eth1" || s.Proxy == nil || s.Proxy.HTTPS.Reveal() != c.Proxy.HTTPS.Reveal() {
		t.Fatalf("server: %+v", s)
	}
	a := c.Agents[0].Proxy
	if a == nil || a.HTTP.Reveal() != "http://proxy.example.com:3128" || !a.HTTPS.IsZero() || !reflect.DeepEqual(a.NoProxy, []string{"registry.local"}) {
		t.Fatalf("agent override: %+v", a)
	}
	if b := c.Agents[1].Proxy; b == nil || b.HTTPS.Reveal() != c.Proxy.HTTPS.Reveal() {
		t.Fatalf("agent without its own proxy: %+v", b)
	}
	// The password never shows when the settings are printed.
	if strings.Contains(fmtAll(c), "s3cret") {
		t.Fatal("proxy password printed")
	}
}

func TestProxyAndAddressErrors(t *testing.T) {
	data := `apiVersion: k3sctl.io/v1alpha1
kind: Inventory
proxy:
  http: "http://user:pa ss@proxy:3128"
  https: proxy.example.com:3128
  noProxy: [a b]
  socks: x
  containerd:
    http: "http://user:p%zz@proxy:3128"
servers:
  - address: 192.168.1.10
    privateAddress: 10.0.0.300
    interface: "eth 1"
  - address: 192.168.1.11
    privateAddress: 10.0.0.11
    config: {node-ip: 10.0.0.12}
  - address: 192.168.1.12
    proxy: {http: "ftp://proxy:21/x"}
`
	_, err := Parse("bad.yaml", []byte(data), nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	got := err.Error()
	for _, want := range []string{
		`bad.yaml:4:9: proxy http holds a space or a quote`,
		`bad.yaml:5:10: proxy https "proxy.example.com:3128"`,
		`bad.yaml:6:13: noProxy entry "a b" is not a host, domain, IP or CIDR`,
		`bad.yaml:7:3: unknown key "socks" in proxy`,
		`bad.yaml:9:11: proxy containerd http is not a URL (write http: http://proxy.example.com:3128`,
		`bad.yaml:12:21: privateAddress "10.0.0.300" is not an IP address`,
		`bad.yaml:13:16: interface "eth 1" is not a network interface name`,
		`bad.yaml:15:21: privateAddress and the K3s setting node-ip both choose the address K3s advertises`,
		`bad.yaml:18:19: proxy http "ftp://proxy:21/x": scheme "ftp" is not a proxy scheme`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "pa ss") || strings.Contains(got, "zz") {
		t.Errorf("a proxy password is in the message:\n%s", got)
	}
}

// fmtAll prints v the way a log line or an error message would.
func fmtAll(v any) string { return fmt.Sprintf("%v %+v %#v", v, v, v) }

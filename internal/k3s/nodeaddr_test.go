package k3s

import (
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/secret"
)

func TestBuildConfigAddresses(t *testing.T) {
	s := NodeSettings{Role: Server, NodeName: "s1", NodeIP: "10.0.0.10", AdvertiseAddress: "10.0.0.10", FlannelIface: "eth1", TLSSANs: []string{"192.168.1.10", "10.0.0.10"}}
	c, err := BuildConfig(s, Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := "node-name: s1\nnode-ip: 10.0.0.10\nadvertise-address: 10.0.0.10\nflannel-iface: eth1\ntls-san:\n  - 192.168.1.10\n  - 10.0.0.10\n"
	if got := string(c.Render()); !strings.HasSuffix(got, want) {
		t.Errorf("config:\n%s\nwant it to end in:\n%s", got, want)
	}
	agent := NodeSettings{Role: Agent, Token: secret.New("pw"), Server: "https://10.0.0.10:6443", AdvertiseAddress: "10.0.0.11"}
	if _, err := BuildConfig(agent, Config{}); err == nil || !strings.Contains(err.Error(), "advertise-address applies to servers only") {
		t.Errorf("agent with advertise-address: %v", err)
	}
	for _, key := range []string{"node-ip", "node-ip+", "advertise-address"} {
		var user Config
		user.SetString(key, "10.9.9.9")
		if _, err := BuildConfig(s, user); err == nil || !strings.Contains(err.Error(), "privateAddress:") {
			t.Errorf("user %s beside the host's address: %v", key, err)
		}
	}
	var user Config
	user.SetString("node-ip", "10.9.9.9")
	if c, err := BuildConfig(NodeSettings{Role: Server}, user); err != nil || !strings.Contains(string(c.Render()), "node-ip: 10.9.9.9") {
		t.Errorf("user node-ip without privateAddress: %v", err)
	}
}

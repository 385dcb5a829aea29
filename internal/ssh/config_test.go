package ssh

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const sampleConfig = `
Host pi-*
  User pi
  IdentityFile ~/.ssh/pi_%h
  IdentitiesOnly yes
  ServerAliveInterval 7

Host pi-kitchen
  HostName 192.168.1.50
  Port 2222
  ProxyJump ops@bastion:2200,gate
  StrictHostKeyChecking yes
  UserKnownHostsFile ~/kh/one ~/kh/two
  ConnectTimeout 4

Host !pi-attic *.lan
  User lanuser

Host bastion
  HostName 10.9.9.9
  User bastionuser
  IdentityFile /keys/bastion

Host *
  User fallback
`

func TestResolveUsesConfigLikeSSH(t *testing.T) {
	home := isolate(t)
	cfg := writeConfig(t, sampleConfig)
	r, err := resolve(&Options{Address: "pi-kitchen", ConfigFile: cfg})
	if err != nil {
		t.Fatal(err)
	}
	e := r.target
	want := &endpoint{
		alias: "pi-kitchen", hostName: "192.168.1.50", port: 2222, user: "pi",
		identityFiles:   []string{filepath.Join(home, ".ssh/pi_192.168.1.50")},
		identitiesOnly:  true,
		knownHosts:      []string{filepath.Join(home, "kh/one"), filepath.Join(home, "kh/two")},
		hostKeyChecking: HostKeyStrict,
		connectTimeout:  4 * time.Second,
		aliveInterval:   7 * time.Second,
		aliveCountMax:   defaultKeepAliveMax,
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("target\n got %+v\nwant %+v", e, want)
	}
	if len(r.jumps) != 2 {
		t.Fatalf("jumps: %d", len(r.jumps))
	}
	// The first hop's spec gives user and port; its config gives the rest.
	if j := r.jumps[0]; j.hostName != "10.9.9.9" || j.user != "ops" || j.port != 2200 || !reflect.DeepEqual(j.identityFiles, []string{"/keys/bastion"}) {
		t.Errorf("first hop: %+v", j)
	}
	if j := r.jumps[1]; j.hostName != "gate" || j.user != "fallback" || j.port != 22 {
		t.Errorf("second hop: %+v", j)
	}
}

func TestResolveFlagsWinOverConfig(t *testing.T) {
	home := isolate(t)
	cfg := writeConfig(t, sampleConfig)
	r, err := resolve(&Options{
		Address: "pi-kitchen", ConfigFile: cfg,
		User: "root", Port: 22, KeyFiles: []string{"~/flagkey"}, Jump: "none",
		HostKeyChecking: HostKeyOff, KnownHostsFile: "/tmp/kh", ConnectTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := r.target
	if e.user != "root" || e.port != 22 || e.hostKeyChecking != HostKeyOff || e.connectTimeout != time.Second ||
		!reflect.DeepEqual(e.knownHosts, []string{"/tmp/kh"}) || len(r.jumps) != 0 {
		t.Errorf("%+v, jumps %d", e, len(r.jumps))
	}
	if want := []string{filepath.Join(home, "flagkey"), filepath.Join(home, ".ssh/pi_192.168.1.50")}; !reflect.DeepEqual(e.identityFiles, want) || e.explicitKeys != 1 {
		t.Errorf("identity files %q (%d explicit), want flags first: %q", e.identityFiles, e.explicitKeys, want)
	}
}

func TestResolvePatternsAndDefaults(t *testing.T) {
	home := isolate(t)
	cfg := writeConfig(t, sampleConfig)
	for alias, user := range map[string]string{"nas.lan": "lanuser", "pi-attic": "pi", "10.0.0.5": "fallback"} {
		r, err := resolve(&Options{Address: alias, ConfigFile: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if r.target.user != user || r.target.hostName != alias || r.target.port != 22 {
			t.Errorf("%s: user %q host %q port %d, want user %q", alias, r.target.user, r.target.hostName, r.target.port, user)
		}
		if r.target.hostKeyChecking != HostKeyAcceptNew || !reflect.DeepEqual(r.target.knownHosts, []string{filepath.Join(home, ".ssh/known_hosts")}) {
			t.Errorf("%s: defaults %+v", alias, r.target)
		}
	}
	// No config at all: ~/.ssh/config is optional.
	r, err := resolve(&Options{Address: "10.0.0.5"})
	if err != nil || r.target.user == "" || r.target.port != 22 || r.target.connectTimeout != defaultConnectTimeout {
		t.Errorf("%+v %v", r, err)
	}
	// But a config file named on the command line must exist.
	if _, err := resolve(&Options{Address: "x", ConfigFile: filepath.Join(home, "nope")}); err == nil {
		t.Error("missing --ssh-config file accepted")
	}
}

func TestResolveRejectsBadValues(t *testing.T) {
	isolate(t)
	for _, body := range []string{
		"Host x\n  Port abc\n",
		"Host x\n  StrictHostKeyChecking maybe\n",
		"Host x\n  ConnectTimeout soon\n",
	} {
		if _, err := resolve(&Options{Address: "x", ConfigFile: writeConfig(t, body)}); err == nil {
			t.Errorf("accepted %q", body)
		}
	}
	if _, err := resolve(&Options{Address: "x", Jump: "pi@host:99999"}); err == nil {
		t.Error("accepted a bad jump port")
	}
}

func TestParseJumpSpec(t *testing.T) {
	for in, want := range map[string][3]string{
		"host":               {"", "host", "0"},
		"pi@host":            {"pi", "host", "0"},
		"pi@host:2222":       {"pi", "host", "2222"},
		"[fe80::1]:22":       {"", "fe80::1", "22"},
		"ops@[2001:db8::1]":  {"ops", "2001:db8::1", "0"},
		"we@ird@10.0.0.1:23": {"we@ird", "10.0.0.1", "23"},
	} {
		u, h, p, err := parseJumpSpec(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := [3]string{u, h, strconv.Itoa(p)}; got != want {
			t.Errorf("%s: got %q want %q", in, got, want)
		}
	}
}

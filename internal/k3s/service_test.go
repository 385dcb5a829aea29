package k3s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSystemdUnit(t *testing.T) {
	golden(t, "k3s.service", SystemdUnit(Server))
	golden(t, "k3s-agent.service", SystemdUnit(Agent))
	for r, execStart := range map[Role]string{Server: "ExecStart=/usr/local/bin/k3s server", Agent: "ExecStart=/usr/local/bin/k3s agent"} {
		unit := string(SystemdUnit(r))
		lines := map[string]bool{}
		for _, l := range strings.Split(unit, "\n") {
			lines[l] = true
		}
		for _, want := range []string{
			"Type=notify", "EnvironmentFile=-" + EnvPath(r), "KillMode=process", "Delegate=yes",
			"LimitNOFILE=1048576", "TasksMax=infinity", "TimeoutStartSec=0", "Restart=always", "RestartSec=5s",
			"ExecStartPre=-/sbin/modprobe br_netfilter", "ExecStartPre=-/sbin/modprobe overlay",
			execStart, "WantedBy=multi-user.target", "Wants=network-online.target", "After=network-online.target",
		} {
			if !lines[want] {
				t.Errorf("%s unit lacks the line %q", r, want)
			}
		}
		if n := strings.Count(unit, "ExecStart="); n != 1 {
			t.Errorf("%s unit has %d ExecStart lines", r, n)
		}
		// Nothing but the role on the command line: no flags, no secrets.
		for _, l := range strings.Split(unit, "\n") {
			if strings.HasPrefix(l, "ExecStart=") && (strings.Contains(l, "--") || strings.Contains(l, "token")) {
				t.Errorf("command line carries settings: %s", l)
			}
		}
	}
}

func TestEnvFile(t *testing.T) {
	env := map[string]string{
		"HTTPS_PROXY":   "http://user:p@ss@proxy:3128",
		"NO_PROXY":      "127.0.0.0/8,10.0.0.0/8,.svc,.cluster.local",
		"K3S_NODE_NAME": "pi 1",
		"ODD":           `a"b\c $HOME ` + "`x`; #y",
		"EMPTY":         "",
	}
	b, err := EnvFile(Agent, env)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "k3s-agent.service.env", b)
	// The OpenRC script sources the file with sh; what comes out must be
	// exactly what went in.
	p := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		out, err := exec.Command("sh", "-c", `set -a; . "$1"; printf %s "$(eval "printf %s \"\${$2}\"")"`, "sh", p, k).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != v {
			t.Errorf("%s = %q after sourcing, want %q", k, out, v)
		}
	}
	for name, bad := range map[string]map[string]string{
		"name with dash": {"MY-VAR": "x"},
		"name digit":     {"1X": "x"},
		"newline":        {"X": "a\nb"},
		"single quote":   {"X": "it's"},
	} {
		if _, err := EnvFile(Server, bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestOpenRCScript(t *testing.T) {
	golden(t, "k3s", OpenRCScript(Server))
	golden(t, "k3s-agent", OpenRCScript(Agent))
	s := string(OpenRCScript(Agent))
	for _, want := range []string{"#!/sbin/openrc-run\n", "command=/usr/local/bin/k3s\n", "command_args=agent\n", "supervisor=supervise-daemon\n", ". /etc/rancher/k3s/k3s.env", "output_log=/var/log/k3s-agent.log\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("OpenRC script lacks %q", want)
		}
	}
}

func TestPaths(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ServiceName(Server), "k3s"},
		{ServiceName(Agent), "k3s-agent"},
		{UnitPath(Server), "/etc/systemd/system/k3s.service"},
		{UnitPath(Agent), "/etc/systemd/system/k3s-agent.service"},
		{EnvPath(Server), "/etc/systemd/system/k3s.service.env"},
		{EnvPath(Agent), "/etc/systemd/system/k3s-agent.service.env"},
		{UninstallPath(Server), "/usr/local/bin/k3s-uninstall.sh"},
		{UninstallPath(Agent), "/usr/local/bin/k3s-agent-uninstall.sh"},
		{OpenRCScriptPath(Agent), "/etc/init.d/k3s-agent"},
		{TokenPath, "/var/lib/rancher/k3s/server/token"},
		{ConfigPath, "/etc/rancher/k3s/config.yaml"},
		{KubeconfigPath, "/etc/rancher/k3s/k3s.yaml"},
		{ManifestsDir, "/var/lib/rancher/k3s/server/manifests"},
		{ImagesDir, "/var/lib/rancher/k3s/agent/images"},
		{strings.Join(Links(), " "), "/usr/local/bin/kubectl /usr/local/bin/crictl /usr/local/bin/ctr"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	if _, err := ParseRole("master"); err == nil {
		t.Error("ParseRole accepted master")
	}
	if r, err := ParseRole("agent"); err != nil || r != Agent {
		t.Error("ParseRole(agent)")
	}
}

func TestDetectInitSystem(t *testing.T) {
	if s, _ := DetectInitSystem(true, true); s != OpenRC {
		t.Errorf("openrc-run and systemctl: %s, want openrc", s)
	}
	if s, _ := DetectInitSystem(false, true); s != Systemd {
		t.Errorf("systemctl: %s", s)
	}
	if _, err := DetectInitSystem(false, false); err == nil || !strings.Contains(err.Error(), "no systemd or openrc found") {
		t.Errorf("neither: %v", err)
	}
}

func TestArch(t *testing.T) {
	for _, tc := range []struct {
		uname                   string
		arch                    Arch
		binary, sums, imagesZst string
	}{
		{"x86_64", AMD64, "k3s", "sha256sum-amd64.txt", "k3s-airgap-images-amd64.tar.zst"},
		{"aarch64\n", ARM64, "k3s-arm64", "sha256sum-arm64.txt", "k3s-airgap-images-arm64.tar.zst"},
		{"arm64", ARM64, "k3s-arm64", "sha256sum-arm64.txt", "k3s-airgap-images-arm64.tar.zst"},
		{"armv7l", ARM, "k3s-armhf", "sha256sum-arm.txt", "k3s-airgap-images-arm.tar.zst"},
		{"armv6l", ARM, "k3s-armhf", "sha256sum-arm.txt", "k3s-airgap-images-arm.tar.zst"},
	} {
		a, err := ArchFromUname(tc.uname)
		if err != nil || a != tc.arch || a.BinaryAsset() != tc.binary || a.ChecksumAsset() != tc.sums || a.AirgapImagesAsset("tar.zst") != tc.imagesZst {
			t.Errorf("%q: %v %v %s %s", tc.uname, a, err, a.BinaryAsset(), a.ChecksumAsset())
		}
	}
	for _, bad := range []string{"s390x", "riscv64", "i686", ""} {
		if _, err := ArchFromUname(bad); err == nil || !strings.Contains(err.Error(), "unsupported architecture") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

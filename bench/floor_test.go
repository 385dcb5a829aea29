package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSSH puts ssh and scp stand-ins first on PATH. They log every argument
// list to dir/calls, keep what ssh got on stdin in dir/stdin-<n>, and answer
// `kubectl get nodes` with one Ready node per install script received so
// far. scp fails for the host named in FAIL_SCP.
func fakeSSH(t *testing.T) (dir string, env []string) {
	t.Helper()
	dir = t.TempDir()
	ssh := `#!/bin/bash
echo "ssh $*" >>"$FAKE/calls"
case "$*" in
*kubectl*)
	n=$(grep -l 'systemctl start' "$FAKE"/stdin-* 2>/dev/null | wc -l)
	for i in $(seq 1 "$n"); do echo "node$i Ready <none> 1s v1.31.4+k3s1"; done ;;
*"sh -s"*)
	f=$(mktemp "$FAKE/stdin-XXXXXX")
	cat >"$f"
	echo "$f $*" >>"$FAKE/scripts" ;;
esac
`
	scp := `#!/bin/bash
echo "scp $*" >>"$FAKE/calls"
for a; do case "$a" in *"$FAIL_SCP":*) [ -n "$FAIL_SCP" ] && exit 1 ;; esac; done
exit 0
`
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"ssh": ssh, "scp": scp} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAKE="+dir)
}

func runFloor(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	cmd := exec.Command("bash", append([]string{"floor.sh"}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const testToken = "s3cret-token-value-42"

func floorArgs(t *testing.T, dir string) []string {
	known := filepath.Join(dir, "known_hosts")
	bin := filepath.Join(dir, "k3s")
	for _, f := range []string{known, bin} {
		if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"-k", "/keys/id", "-K", known, "-b", bin, "-u", "pi", "-t", "5"}
}

func readCalls(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestFloorParallel(t *testing.T) {
	dir, env := fakeSSH(t)
	env = append(env, "K3S_TOKEN="+testToken)
	out, err := runFloor(t, env, append(floorArgs(t, dir), "10.0.0.1", "10.0.0.2", "10.0.0.3")...)
	if err != nil {
		t.Fatalf("floor.sh: %v\n%s", err, out)
	}
	calls := readCalls(t, dir)
	scps := 0
	for _, c := range calls {
		if strings.Contains(c, testToken) {
			t.Errorf("the token is on a command line: %s", c)
		}
		for _, want := range []string{"StrictHostKeyChecking=yes", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "-i /keys/id", "-F /dev/null"} {
			if !strings.Contains(c, want) {
				t.Errorf("call lacks %q: %s", want, c)
			}
		}
		if strings.HasPrefix(c, "scp ") {
			scps++
			if !strings.HasSuffix(c, ":/tmp/k3s-floor") {
				t.Errorf("scp to an unexpected place: %s", c)
			}
		}
	}
	if scps != 3 {
		t.Errorf("%d scp calls, want one per host (3)", scps)
	}
	scripts, err := os.ReadFile(filepath.Join(dir, "scripts"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(scripts)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d install scripts sent, want 3:\n%s", len(lines), scripts)
	}
	servers, agents := 0, 0
	for _, l := range lines {
		file, _, _ := strings.Cut(l, " ")
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s := string(body)
		if !strings.Contains(s, "token: "+testToken) {
			t.Errorf("config sent to %s lacks the token:\n%s", l, s)
		}
		if out, err := exec.Command("sh", "-n", file).CombinedOutput(); err != nil {
			t.Errorf("script for %s is not valid sh: %v %s", l, err, out)
		}
		switch {
		case strings.Contains(l, "pi@10.0.0.1 "):
			servers++
			if !strings.Contains(s, "ExecStart=/usr/local/bin/k3s server") || strings.Contains(s, "server: https://") {
				t.Errorf("server script:\n%s", s)
			}
		default:
			agents++
			for _, want := range []string{"ExecStart=/usr/local/bin/k3s agent", "server: https://10.0.0.1:6443", "k3s-agent.service", "systemctl start --no-block"} {
				if !strings.Contains(s, want) {
					t.Errorf("agent script lacks %q:\n%s", want, s)
				}
			}
		}
	}
	if servers != 1 || agents != 2 {
		t.Errorf("%d server and %d agent scripts, want 1 and 2", servers, agents)
	}
	if last := calls[len(calls)-1]; !strings.Contains(last, "pi@10.0.0.1 sudo k3s kubectl get nodes") {
		t.Errorf("last call is %q, want the Ready check through the server", last)
	}
}

func TestFloorSerialOneHostAtATime(t *testing.T) {
	dir, env := fakeSSH(t)
	out, err := runFloor(t, env, append(floorArgs(t, dir), "-s", "10.0.0.1", "10.0.0.2")...)
	if err != nil {
		t.Fatalf("floor.sh -s: %v\n%s", err, out)
	}
	var kinds []string
	for _, c := range readCalls(t, dir) {
		switch {
		case strings.HasPrefix(c, "scp ") && strings.Contains(c, "pi@10.0.0.1:"):
			kinds = append(kinds, "scp1")
		case strings.HasPrefix(c, "scp "):
			kinds = append(kinds, "scp2")
		case strings.Contains(c, "sh -s") && strings.Contains(c, "pi@10.0.0.1 "):
			kinds = append(kinds, "cfg1")
		case strings.Contains(c, "sh -s"):
			kinds = append(kinds, "cfg2")
		case strings.Contains(c, "kubectl"):
			kinds = append(kinds, "ready")
		}
	}
	if got, want := strings.Join(kinds, ","), "scp1,cfg1,ready,scp2,cfg2,ready"; got != want {
		t.Errorf("order of work: %s, want %s", got, want)
	}
}

func TestFloorFailureNamesHost(t *testing.T) {
	dir, env := fakeSSH(t)
	env = append(env, "FAIL_SCP=10.0.0.2")
	out, err := runFloor(t, env, append(floorArgs(t, dir), "10.0.0.1", "10.0.0.2")...)
	if err == nil {
		t.Fatalf("floor.sh succeeded although scp to 10.0.0.2 failed:\n%s", out)
	}
	if !strings.Contains(out, "10.0.0.2: scp") {
		t.Errorf("error does not name the host and step: %s", out)
	}
}

func TestFloorSSHRound(t *testing.T) {
	dir, env := fakeSSH(t)
	out, err := runFloor(t, env, "-k", "/keys/id", "-K", floorArgs(t, dir)[3], "-r", "10.0.0.1", "10.0.0.2")
	if err != nil {
		t.Fatalf("floor.sh -r: %v\n%s", err, out)
	}
	calls := readCalls(t, dir)
	if len(calls) != 2 {
		t.Fatalf("%d calls, want one ssh per host: %v", len(calls), calls)
	}
	for _, c := range calls {
		if !strings.HasPrefix(c, "ssh ") || !strings.HasSuffix(c, " true") || !strings.Contains(c, "StrictHostKeyChecking=yes") {
			t.Errorf("call %q, want ssh … host true with host keys checked", c)
		}
	}
}

func TestFloorRefusesMissingKnownHosts(t *testing.T) {
	dir, env := fakeSSH(t)
	out, err := runFloor(t, env, "-k", "/keys/id", "-K", filepath.Join(dir, "nope"), "-b", "/bin/sh", "10.0.0.1")
	if err == nil || !strings.Contains(out, "known_hosts") {
		t.Errorf("floor.sh without a known_hosts file: err=%v out=%s; want a refusal naming known_hosts", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "calls")); err == nil {
		t.Error("floor.sh connected although known_hosts is missing")
	}
}

// Through forwarded ports (a site behind an uplink) the hosts are aliases
// of an ssh config, and the agents join the server on its own network.
func TestFloorSSHConfigAndJoinAddress(t *testing.T) {
	dir, env := fakeSSH(t)
	cfg := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(cfg, []byte("Host site-a\n  HostName 127.0.0.1\n  Port 40001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runFloor(t, env, append(floorArgs(t, dir), "-F", cfg, "-a", "10.9.9.9", "site-a", "site-b")...)
	if err != nil {
		t.Fatalf("floor.sh -F -a: %v\n%s", err, out)
	}
	for _, c := range readCalls(t, dir) {
		if !strings.Contains(c, "-F "+cfg) || strings.Contains(c, "/dev/null") {
			t.Errorf("call does not read the ssh config given: %s", c)
		}
	}
	scripts, err := os.ReadFile(filepath.Join(dir, "scripts"))
	if err != nil {
		t.Fatal(err)
	}
	agents := 0
	for _, l := range strings.Split(strings.TrimSpace(string(scripts)), "\n") {
		file, _, _ := strings.Cut(l, " ")
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(l, "pi@site-b ") {
			agents++
			if !strings.Contains(string(body), "server: https://10.9.9.9:6443") {
				t.Errorf("agent does not join on the address given with -a:\n%s", body)
			}
		}
	}
	if agents != 1 {
		t.Errorf("%d agent scripts, want 1:\n%s", agents, scripts)
	}
}

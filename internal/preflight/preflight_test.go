package preflight

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/k3sctl/k3sctl/internal/hostlock"
	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kubeconfig"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

func TestDuplicates(t *testing.T) {
	ids := []Identity{
		{Cluster: "shop-1", Address: "10.0.0.5", Hostname: "pi", MachineID: "0123456789abcdef0123456789abcdef"},
		{Cluster: "shop-1", Address: "10.0.0.6", Hostname: "PI", MachineID: "0123456789abcdef0123456789abcdef"},
		{Cluster: "shop-1", Address: "10.0.0.7", Hostname: "pi", NodeName: "pi-3", MachineID: "fedcba9876543210fedcba9876543210"},
		{Cluster: "shop-1", Address: "10.0.0.8", Hostname: "other", NodeName: "pi-3"},
		// Another cluster may reuse both.
		{Cluster: "shop-2", Address: "10.1.0.5", Hostname: "pi", MachineID: "0123456789abcdef0123456789abcdef"},
		// Unknown values are not compared.
		{Cluster: "shop-2", Address: "10.1.0.6"},
		{Cluster: "shop-2", Address: "10.1.0.7"},
	}
	var got []string
	for _, p := range Duplicates(ids) {
		got = append(got, p.Error())
	}
	want := []string{
		`10.0.0.6: hostname "PI" is also the hostname of 10.0.0.5 in cluster "shop-1"; K3s refuses the second node forever ("Node password rejected, duplicate hostname")` +
			"\nhint: give each host its own hostname (hostnamectl set-hostname <name> on 10.0.0.6), or set name: for one of them in the inventory",
		`10.0.0.6: machine-id 01234567… is also the machine-id of 10.0.0.5 in cluster "shop-1": the disk or SD card was cloned` +
			"\nhint: give 10.0.0.6 a new machine-id: rm /etc/machine-id && systemd-machine-id-setup, then reboot",
		`10.0.0.8: node name "pi-3" is also the node name of 10.0.0.7 in cluster "shop-1"; K3s refuses the second node forever ("Node password rejected, duplicate hostname")` +
			"\nhint: give each host its own name: in the inventory",
	}
	if strings.Join(got, "\n---\n") != strings.Join(want, "\n---\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n---\n"), strings.Join(want, "\n---\n"))
	}
}

func TestSudo(t *testing.T) {
	noTerminal := &ssh.Error{Host: "10.0.0.5", Op: "sudo", Err: errors.New("user ops needs a password for sudo and there is no terminal to ask for it"), Hint: "set K3SCTL_SUDO_PASSWORD"}
	wrong := &ssh.Error{Host: "10.0.0.5", Op: "sudo", Err: errors.New("sudo password for ops was not accepted")}
	refused := &ssh.Error{Host: "10.0.0.5", Op: "sudo", Err: errors.New("user ops cannot use sudo: ops is not in the sudoers file")}
	for _, tc := range []struct {
		name string
		f    *node.Facts
		err  error
		want string
	}{
		{"root", &node.Facts{User: "root", Sudo: ssh.SudoRoot, Privileged: true}, nil, ""},
		{"nopasswd", &node.Facts{User: "pi", Sudo: ssh.SudoNoPassword, Privileged: true}, nil, ""},
		{"password given", &node.Facts{User: "ops", Sudo: ssh.SudoWithPassword, Privileged: true}, nil, ""},
		{"no password", &node.Facts{User: "ops", Sudo: ssh.SudoWithPassword}, noTerminal,
			"10.0.0.5: user ops has no passwordless sudo and no sudo password was given\nhint: give the sudo password (set K3SCTL_SUDO_PASSWORD, or run on a terminal to be asked), or add a NOPASSWD rule for ops in /etc/sudoers.d on the host"},
		{"wrong password", &node.Facts{User: "ops", Sudo: ssh.SudoWithPassword}, wrong,
			"10.0.0.5: the sudo password for ops was not accepted\nhint: give the right sudo password (set K3SCTL_SUDO_PASSWORD, or run on a terminal to be asked), or add a NOPASSWD rule for ops in /etc/sudoers.d on the host"},
		{"no sudo", &node.Facts{User: "ops", Sudo: ssh.SudoNone}, nil,
			"10.0.0.5: user ops is not root and sudo is not installed\nhint: log in as root (--user root), or install sudo on the host"},
		{"not in sudoers", &node.Facts{User: "ops", Sudo: ssh.SudoNoPassword}, refused,
			"10.0.0.5: user ops cannot use sudo to act as root: user ops cannot use sudo: ops is not in the sudoers file\nhint: allow ops to use sudo on the host, or log in as a user who can (--user)"},
		{"no facts", nil, noTerminal,
			"10.0.0.5: user ops needs a password for sudo and there is no terminal to ask for it\nhint: set K3SCTL_SUDO_PASSWORD"},
		{"unreachable is no sudo problem", nil, &ssh.Error{Host: "10.0.0.5", Op: "connect", Err: errors.New("i/o timeout")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Sudo("10.0.0.5", tc.f, tc.err)
			switch {
			case tc.want == "" && p != nil:
				t.Errorf("problem %v", p)
			case tc.want != "" && (p == nil || p.Error() != tc.want || p.Kind != KindSudo):
				t.Errorf("\n got %v\nwant %s", p, tc.want)
			}
		})
	}
}

func TestReportCollectsAndSorts(t *testing.T) {
	var r Report
	if r.Err() != nil {
		t.Fatal("empty report is an error")
	}
	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	if err := os.WriteFile(kc, []byte("clusters: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.AddError(Local, kubeconfig.Check(kc))
	r.AddError(Local, k3s.CheckTokenFormat("--token", secret.New("K10abc::server:pw")))
	r.AddError("10.0.0.10", &hostlock.LockedError{Host: "10.0.0.10", Known: true, Holder: hostlock.Holder{User: "alice", Workstation: "laptop", PID: 7, Command: "k3sctl apply"}})
	r.Add(*Sudo("10.0.0.9", &node.Facts{User: "ops", Sudo: ssh.SudoNone}, nil))
	r.Add(Duplicates([]Identity{{Cluster: "c", Address: "10.0.0.2", Hostname: "pi"}, {Cluster: "c", Address: "10.0.0.10", Hostname: "pi"}})...)
	r.Add(NameProblems([]inventory.NameProblem{{Address: "pi.lan", Problem: inventory.Problem{File: "inv.yaml", Line: 4, Col: 7, Message: `address "pi.lan" does not resolve: no such host`, Hint: "write the IP"}}})...)
	r.AddError("10.0.0.3", &ssh.Error{Host: "10.0.0.3", Op: "upload /x", Err: errors.New("boom"), Hint: "retry"})
	r.AddError("10.0.0.4", nil)

	err := r.Err()
	var rep *Report
	if !errors.As(err, &rep) || len(rep.Problems) != 7 {
		t.Fatalf("err = %v", err)
	}
	var hosts []string
	for _, p := range rep.Problems {
		hosts = append(hosts, string(p.Kind)+"@"+p.Host)
	}
	wantOrder := "kubeconfig@ token@ other@10.0.0.3 sudo@10.0.0.9 duplicate-hostname@10.0.0.10 locked@10.0.0.10 inventory@pi.lan"
	if strings.Join(hosts, " ") != wantOrder {
		t.Errorf("order: %s\nwant   %s", strings.Join(hosts, " "), wantOrder)
	}
	msg := err.Error()
	for _, s := range []string{
		"preflight: 7 problems, nothing was changed:\n",
		"kubeconfig " + kc + ": is not a valid kubeconfig: yaml: line 1: did not find expected node content\nhint: repair the file",
		"--token: the token's CA hash has 3 characters, not 64\nhint: copy the token again",
		"10.0.0.3: upload /x: boom\nhint: retry",
		"10.0.0.9: user ops is not root and sudo is not installed",
		`10.0.0.10: locked by alice@laptop (pid 7) running "k3sctl apply"; wait for it to finish, or stop it`,
		`pi.lan: inv.yaml:4:7: address "pi.lan" does not resolve: no such host` + "\nhint: write the IP",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("report lacks %q:\n%s", s, msg)
		}
	}
	if strings.Contains(msg, "server:pw") || strings.Contains(msg, "K10abc") {
		t.Error("report shows the token")
	}
}

func TestKeyFileProblem(t *testing.T) {
	p := FromError(Local, &ssh.KeyPermissionError{Path: "/home/u/.ssh/id", Mode: 0o644})
	want := "key /home/u/.ssh/id: UNPROTECTED PRIVATE KEY FILE: permissions 0644 are too open; a private key must not be accessible by group or others, so it is ignored\nhint: chmod 600 /home/u/.ssh/id"
	if p.Kind != KindKeyFile || p.Error() != want {
		t.Errorf("got %v\nwant %s", p, want)
	}
}

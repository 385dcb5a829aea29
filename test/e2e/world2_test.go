package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/k3sctl/k3sctl/test/e2e/world"
	"golang.org/x/crypto/ssh"
)

// sshAs opens an SSH connection to addr as user with the world's key,
// accepting only the host's own ed25519 key (read from the container).
func sshAs(t *testing.T, w *world.World, h *world.Host, addr, user string) *ssh.Client {
	t.Helper()
	pem, err := os.ReadFile(w.Key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.Exec(t, "cat /etc/ssh/ssh_host_ed25519_key.pub")))
	if err != nil {
		t.Fatalf("host %s: host key: %v", h.Name, err)
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(addr, "22"), &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(hostKey),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           time.Minute,
	})
	if err != nil {
		t.Fatalf("ssh %s@%s (%s): %v", user, addr, h.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runErr runs cmd over c and returns its stdout, stderr and error.
func runErr(c *ssh.Client, cmd string) (string, string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", "", err
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	return out.String(), errb.String(), err
}

func TestWorldPostgres(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	h, dsn := w.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("dsn %q: %v", dsn, err)
	}
	if u.Scheme != "postgres" || u.Hostname() != h.IP || u.Port() != "5432" || u.User.Username() == "" || u.Path == "" {
		t.Fatalf("dsn %q: want postgres://user:pass@%s:5432/db", dsn, h.IP)
	}
	if _, ok := u.User.Password(); !ok {
		t.Fatalf("dsn %q has no password", dsn)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", h.IP, err)
	}
	defer conn.Close(ctx)
	var user, db, version string
	if err := conn.QueryRow(ctx, "SELECT current_user, current_database(), version()").Scan(&user, &db, &version); err != nil {
		t.Fatal(err)
	}
	if user != u.User.Username() || "/"+db != u.Path || !strings.HasPrefix(version, "PostgreSQL ") {
		t.Fatalf("got user %q db %q version %q for dsn user %q path %q", user, db, version, u.User.Username(), u.Path)
	}
	// The role owns its database: it can create and fill a table.
	if _, err := conn.Exec(ctx, "CREATE TABLE kv (k text PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO kv VALUES ($1, $2)", "node", "a"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kv WHERE k = $1", "node").Scan(&v); err != nil || v != "a" {
		t.Fatalf("read back: %q, %v", v, err)
	}

	// Password authentication is enforced.
	bad := *u
	bad.User = url.UserPassword(u.User.Username(), "wrong")
	if c, err := pgx.Connect(ctx, bad.String()); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	} else if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "28P01" {
		t.Fatalf("wrong password: want SQLSTATE 28P01 (invalid_password), got %v", err)
	}

	// Another world host on the same network reaches the database port.
	b := w.Start(t, "b")[0]
	probe := fmt.Sprintf("timeout 10 bash -c 'exec 3<>/dev/tcp/%s/5432' && echo open", h.IP)
	if out := b.Exec(t, probe); strings.TrimSpace(out) != "open" {
		t.Fatalf("host b to %s:5432: %q", h.IP, out)
	}
}

func TestWorldArm64Host(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	h := w.NewHost(t, "rpi", world.WithArch("arm64"))
	if h.Arch != "arm64" {
		t.Fatalf("Arch = %q", h.Arch)
	}
	c := sshAs(t, w, h, h.IP, "pi")
	if got := run(t, c, "uname -m"); got != "aarch64" {
		t.Fatalf("uname -m = %q, want aarch64", got)
	}
	if got := run(t, c, "dpkg --print-architecture"); got != "arm64" {
		t.Fatalf("dpkg architecture = %q, want arm64", got)
	}
	// setuid works under emulation: sudo runs and becomes root.
	if got := run(t, c, "sudo -n true && sudo -n id -u"); got != "0" {
		t.Fatalf("sudo -n id -u = %q, want 0", got)
	}
	if got := run(t, c, "systemctl is-active ssh"); got != "active" {
		t.Fatalf("ssh.service: %q", got)
	}
	// User ops still needs a password for sudo.
	if _, _, err := runErr(sshAs(t, w, h, h.IP, "ops"), "sudo -n true"); err == nil {
		t.Fatal("sudo -n as ops succeeded without a password")
	}
}

func TestWorldProxy(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	internal := w.NewInternalNetwork(t)
	proxy, proxyURL := w.Proxy(t, internal)
	pu, err := url.Parse(proxyURL)
	if err != nil || pu.Scheme != "http" || pu.Hostname() != proxy.IPOn(internal) || pu.Port() != "8888" {
		t.Fatalf("proxy URL %q (err %v): want http://%s:8888", proxyURL, err, proxy.IPOn(internal))
	}
	if proxy.IPOn(w.DefaultNetwork()) != proxy.IP {
		t.Fatalf("proxy is not on the world's first network: %s", proxy.IP)
	}
	target := w.Start(t, "target")[0]
	restricted := w.NewHost(t, "restricted", world.WithNetworks(internal))
	if restricted.IPOn(w.DefaultNetwork()) != "" {
		t.Fatal("restricted host is on the world's first network")
	}
	c := sshAs(t, w, restricted, restricted.IP, "pi")

	// Directly, the target's sshd is out of reach.
	direct := fmt.Sprintf(`timeout 5 bash -c 'exec 3<>/dev/tcp/%s/22 && head -c 4 <&3'`, target.IP)
	if out, _, err := runErr(c, direct); err == nil {
		t.Fatalf("restricted host reached %s:22 directly: %q", target.IP, out)
	}
	// The same command works from a host on the target's network.
	if out := proxy.Exec(t, direct); out != "SSH-" {
		t.Fatalf("from %s to %s:22: %q", proxy.Name, target.IP, out)
	}
	// Through the proxy (HTTP CONNECT) the same connection gets the SSH banner.
	viaProxy := fmt.Sprintf(`timeout 20 bash -c '
exec 3<>/dev/tcp/%[1]s/%[2]s || exit 1
printf "CONNECT %[3]s:22 HTTP/1.1\r\nHost: %[3]s:22\r\n\r\n" >&3
read -r status <&3; echo "$status"
while read -r line <&3; do [ "${line%%$(printf "\r")}" = "" ] && break; done
head -c 8 <&3'`, pu.Hostname(), pu.Port(), target.IP)
	out, errOut, err := runErr(c, viaProxy)
	if err != nil || !strings.Contains(out, " 200 ") || !strings.Contains(out, "SSH-2.0-") {
		t.Fatalf("CONNECT %s:22 through %s: %v\nstdout: %q\nstderr: %q\n%s", target.IP, proxyURL, err, out, errOut, proxy.Logs("tinyproxy", 20))
	}
}

func TestWorldTwoNetworks(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	first := w.DefaultNetwork()
	second := w.NewNetwork(t)
	h := w.NewHost(t, "dual", world.WithNetworks(first, second))
	ip1, ip2 := h.IPOn(first), h.IPOn(second)
	if ip1 != h.IP || ip2 == "" || ip1 == ip2 || !strings.HasPrefix(ip2, second.Prefix) {
		t.Fatalf("addresses: first %q (IP %q), second %q (prefix %s)", ip1, h.IP, ip2, second.Prefix)
	}
	addrs := func() map[string]string {
		// "2: eth0    inet 172.28.5.11/24 brd ..." -> address: interface
		got := map[string]string{}
		out := run(t, sshAs(t, w, h, h.IP, "pi"), "ip -o -4 addr")
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[2] == "inet" && f[1] != "lo" {
				ip, _, _ := strings.Cut(f[3], "/")
				got[ip] = f[1]
			}
		}
		return got
	}
	got := addrs()
	if len(got) != 2 || got[ip1] == "" || got[ip2] == "" || got[ip1] == got[ip2] {
		t.Fatalf("ip -o -4 addr: want %s and %s on two interfaces, got %v", ip1, ip2, got)
	}
	// The second address answers SSH too.
	if out := run(t, sshAs(t, w, h, ip2, "pi"), "hostname"); out != "dual" {
		t.Fatalf("hostname via %s: %q", ip2, out)
	}

	// A third network added to a running host, kept when it is recreated.
	third := w.NewNetwork(t)
	ip3 := h.Connect(t, third)
	if h.IPOn(third) != ip3 {
		t.Fatalf("IPOn(third) = %q, Connect said %q", h.IPOn(third), ip3)
	}
	h.Recreate(t)
	got = addrs()
	if len(got) != 3 || got[ip1] == "" || got[ip2] == "" || got[ip3] == "" {
		t.Fatalf("after Recreate: want %s, %s and %s, got %v", ip1, ip2, ip3, got)
	}
}

func TestWorldSmallDisk(t *testing.T) {
	t.Parallel()
	w := world.New(t)
	h := w.NewHost(t, "small", world.WithSmallDisk("/usr/local/bin", 20), world.WithSmallDisk("/var/lib/rancher", 30))
	c := sshAs(t, w, h, h.IP, "pi")
	out := run(t, c, "df -BM --output=size,target /usr/local/bin /var/lib/rancher | tail -n +2")
	sizes := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			sizes[f[1]] = f[0]
		}
	}
	if sizes["/usr/local/bin"] != "20M" || sizes["/var/lib/rancher"] != "30M" {
		t.Fatalf("df: %q", out)
	}
	// Programs run from it.
	if got := run(t, c, "sudo -n cp /bin/echo /usr/local/bin/e && /usr/local/bin/e ran"); got != "ran" {
		t.Fatalf("run from /usr/local/bin: %q", got)
	}
	// Nearly full: 2 MB left, a 5 MB upload fails for lack of space.
	h.FillDisk(t, "/usr/local/bin", 2)
	avail := run(t, c, "df -BM --output=avail /usr/local/bin | tail -n1")
	if avail != "2M" && avail != "3M" {
		t.Fatalf("after FillDisk: %s available", avail)
	}
	_, errOut, err := runErr(c, "sudo -n dd if=/dev/zero of=/usr/local/bin/k3s bs=1M count=5")
	if err == nil || !strings.Contains(errOut, "No space left on device") {
		t.Fatalf("5 MB into a 2 MB space: err %v, stderr %q", err, errOut)
	}
}

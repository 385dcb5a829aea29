package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testPostgres gives a test a database of its own: in the PostgreSQL named
// by K3S_SIM_TEST_POSTGRES (an admin connection string), or in a private
// server started from the local PostgreSQL installation. Without either the
// test is skipped, except in CI, where PostgreSQL must be installed.
func testPostgres(t *testing.T) (endpoint string) {
	t.Helper()
	admin := os.Getenv("K3S_SIM_TEST_POSTGRES")
	if admin == "" {
		admin = startPrivatePostgres(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer c.Close(ctx)
	db := "k3s_" + strings.ToLower(randomHex(6))
	if _, err := c.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", cfg.User, cfg.Password, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), db)
}

func startPrivatePostgres(t *testing.T) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	initdb := ""
	if len(bins) > 0 {
		initdb = bins[len(bins)-1]
	} else if p, err := exec.LookPath("initdb"); err == nil {
		initdb = p
	}
	if initdb == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL is not installed (no initdb); CI must install the postgresql package")
		}
		t.Skip("PostgreSQL is not installed (no initdb) and K3S_SIM_TEST_POSTGRES is not set")
	}
	pgctl := filepath.Join(filepath.Dir(initdb), "pg_ctl")
	dir, err := os.MkdirTemp("", "k3s-sim-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		if os.Geteuid() == 0 {
			// PostgreSQL refuses to run as root.
			cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "postgres", dir).Run(); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	data := filepath.Join(dir, "data")
	run(initdb, "-D", data, "-U", "sim", "--auth=trust", "-E", "UTF8")
	run(pgctl, "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir), "start")
	t.Cleanup(func() { run(pgctl, "-D", data, "-m", "immediate", "stop") })
	return fmt.Sprintf("postgres://sim:dbsecret@127.0.0.1:%d/postgres?sslmode=disable", port)
}

// TestExternalDatastore: two servers on one PostgreSQL database share CA,
// nodes and objects; a server with another token is refused.
func TestExternalDatastore(t *testing.T) {
	t.Parallel()
	ep := testPostgres(t)
	l := newLo(t)
	rootA, rootB := t.TempDir(), t.TempDir()
	a := startSim(t, simOpt{root: rootA, hostname: "pga", notify: true}, l.serverArgs(1, "--datastore-endpoint", ep, "--token", "pgtoken")...)
	a.waitReady(60 * time.Second)
	b := startSim(t, simOpt{root: rootB, hostname: "pgb", notify: true}, l.serverArgs(2, "--datastore-endpoint", ep, "--token", "pgtoken")...)
	b.waitReady(60 * time.Second)
	if readFile(t, rootA, caPath) != readFile(t, rootB, caPath) || readFile(t, rootA, tokenPath) != readFile(t, rootB, tokenPath) {
		t.Error("servers on one datastore have different CAs or tokens")
	}
	if fileExists(filepath.Join(rootA, "/var/lib/rancher/k3s/server/db/state.db")) {
		t.Error("server with an external datastore wrote state.db")
	}
	ka := realKubectl(t, filepath.Join(rootA, kubeconfigPathK3s))
	kb := realKubectl(t, filepath.Join(rootB, kubeconfigPathK3s))
	for _, k := range []*kubectlRunner{ka, kb} {
		eventually(t, 20*time.Second, func() string {
			out, _ := k.try("get", "nodes", "-o", "name")
			if !strings.Contains(out, "node/pga") || !strings.Contains(out, "node/pgb") {
				return "nodes: " + out
			}
			return ""
		})
	}
	ka.run("create", "configmap", "shared", "--from-literal=k=v")
	ka.run("label", "node", "pgb", "via=a")
	eventually(t, 10*time.Second, func() string {
		if out, _ := kb.try("get", "configmap", "shared", "-o", "jsonpath={.data.k}"); out != "v" {
			return "configmap through b: " + out
		}
		if out, _ := kb.try("get", "node", "pgb", "-o", "jsonpath={.metadata.labels.via}"); out != "a" {
			return "label through b: " + out
		}
		return ""
	})
	if args := kb.run("get", "node", "pgb", "-o", `jsonpath={.metadata.annotations.k3s\.io/node-args}`); strings.Contains(args, "dbsecret") || !strings.Contains(args, `"--datastore-endpoint","********"`) {
		t.Errorf("node-args annotation: %s", args)
	}
	for _, p := range []*proc{a, b} {
		if strings.Contains(p.logs(), "dbsecret") {
			t.Errorf("%s logged the datastore password", p.name)
		}
	}

	// An agent learns both servers and keeps reporting through the other
	// when its server stops.
	rootW := t.TempDir()
	ag := startSim(t, simOpt{root: rootW, hostname: "pgw", notify: true}, "agent", "--server", l.url(1), "--token", "pgtoken", "--node-ip", l.ip(4))
	ag.waitReady(30 * time.Second)
	b2 := net.JoinHostPort(l.ip(2), strconv.Itoa(l.port))
	eventually(t, 30*time.Second, func() string {
		lb := readFile(t, rootW, "/var/lib/rancher/k3s/agent/etc/k3s-agent-load-balancer.json")
		if !strings.Contains(lb, b2) {
			return "agent load balancer: " + lb
		}
		return ""
	})
	a.stop()
	ag.waitLog("Updated load balancer k3s-agent-load-balancer default server: "+b2, 30*time.Second)

	c := startSim(t, simOpt{hostname: "pgc", notify: true}, l.serverArgs(3, "--datastore-endpoint", ep, "--token", "othertoken")...)
	if code := c.waitExit(30 * time.Second); code != 1 || !strings.Contains(c.logs(), `level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"`) {
		t.Errorf("server with another token: exit %d\n%s", code, c.logs())
	}
}

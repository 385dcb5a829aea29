package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The process tests run the test binary itself as the simulator: with
// K3S_SIM_EXEC set, TestMain hands over to main.
func TestMain(m *testing.M) {
	if os.Getenv("K3S_SIM_EXEC") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

var selfPath = func() string {
	p, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return p
}()

// lo is a private slice of loopback for one test: 127.a.b.x, one port.
type lo struct {
	prefix string
	port   int
}

func newLo(t *testing.T) lo {
	t.Helper()
	for i := 0; i < 20; i++ {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		prefix := fmt.Sprintf("127.%d.%d.", 1+int(b[0])%250, 1+int(b[1])%250)
		ln, err := net.Listen("tcp", prefix+"1:0")
		if err != nil {
			continue
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		return lo{prefix: prefix, port: port}
	}
	t.Fatal("no free loopback address")
	return lo{}
}

func (l lo) ip(i int) string { return l.prefix + strconv.Itoa(i) }

func (l lo) url(i int) string { return "https://" + net.JoinHostPort(l.ip(i), strconv.Itoa(l.port)) }

// serverArgs make a simulator listen on its own loopback address.
func (l lo) serverArgs(i int, extra ...string) []string {
	return append([]string{"server", "--node-ip", l.ip(i), "--bind-address", l.ip(i), "--https-listen-port", strconv.Itoa(l.port)}, extra...)
}

type proc struct {
	t       *testing.T
	name    string
	root    string
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
	exit    int
	sock    *net.UnixConn
	mu      sync.Mutex
	ready   []time.Time
	started time.Time
}

type simOpt struct {
	root     string
	hostname string
	env      []string
	notify   bool
}

// startSim runs the simulator with its filesystem under root.
func startSim(t *testing.T, o simOpt, args ...string) *proc {
	t.Helper()
	if o.root == "" {
		o.root = t.TempDir()
	}
	p := &proc{t: t, name: o.hostname, root: o.root, done: make(chan struct{}), started: time.Now()}
	p.logFile = filepath.Join(t.TempDir(), "log")
	lf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(selfPath, args...)
	cmd.Env = append(os.Environ(), "K3S_SIM_EXEC=1", "K3S_SIM_ROOT="+o.root, "K3S_SIM_HOSTNAME="+o.hostname, "NOTIFY_SOCKET=")
	cmd.Env = append(cmd.Env, o.env...)
	if o.notify {
		dir, err := os.MkdirTemp("", "sd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		sp := filepath.Join(dir, "notify")
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sp, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		p.sock = c
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sp)
		go p.readNotify()
		t.Cleanup(func() { c.Close() })
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	go func() {
		_ = cmd.Wait()
		p.exit = cmd.ProcessState.ExitCode()
		lf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *proc) readNotify() {
	buf := make([]byte, 256)
	for {
		n, err := p.sock.Read(buf)
		if err != nil {
			return
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			p.mu.Lock()
			p.ready = append(p.ready, time.Now())
			p.mu.Unlock()
		}
	}
}

func (p *proc) readyCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

func (p *proc) waitReady(timeout time.Duration) time.Duration {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		if len(p.ready) > 0 {
			d := p.ready[0].Sub(p.started)
			p.mu.Unlock()
			return d
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%d) before READY:\n%s", p.name, p.exit, p.logs())
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s: no READY=1 within %s:\n%s", p.name, timeout, p.logs())
	return 0
}

func (p *proc) logs() string {
	b, _ := os.ReadFile(p.logFile)
	return string(b)
}

func (p *proc) waitLog(substr string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.logs(), substr) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("%s: log never showed %q within %s:\n%s", p.name, substr, timeout, p.logs())
}

func (p *proc) countLog(substr string) int { return strings.Count(p.logs(), substr) }

// waitExit waits for the process to end on its own and returns its status.
func (p *proc) waitExit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.exit
	case <-time.After(timeout):
		p.t.Fatalf("%s still running after %s:\n%s", p.name, timeout, p.logs())
	}
	return 0
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) stop() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) file(rel string) string {
	b, err := os.ReadFile(filepath.Join(p.root, rel))
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// apiClient talks to a server with the admin credentials of a kubeconfig.
type apiClient struct {
	t      *testing.T
	server string
	c      *http.Client
}

func kubeconfigClient(t *testing.T, kubeconfigPath, server string) *apiClient {
	t.Helper()
	var kc kubeconfig
	b, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &kc); err != nil {
		t.Fatal(err)
	}
	ca, _ := base64.StdEncoding.DecodeString(kc.Clusters[0].Cluster.CAData)
	crt, _ := base64.StdEncoding.DecodeString(kc.Users[0].User.CertData)
	key, _ := base64.StdEncoding.DecodeString(kc.Users[0].User.KeyData)
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	if server == "" {
		server = kc.Clusters[0].Cluster.Server
	}
	return &apiClient{t: t, server: server, c: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}}
}

func (a *apiClient) get(path string) (int, []byte) {
	a.t.Helper()
	resp, err := a.c.Get(a.server + path)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (a *apiClient) nodes() map[string]nodeJSON {
	a.t.Helper()
	code, b := a.get("/api/v1/nodes")
	if code != 200 {
		a.t.Fatalf("GET nodes on %s: %d %s", a.server, code, b)
	}
	var list struct{ Items []nodeJSON }
	if err := json.Unmarshal(b, &list); err != nil {
		a.t.Fatal(err)
	}
	out := map[string]nodeJSON{}
	for _, n := range list.Items {
		out[n.Metadata.Name] = n
	}
	return out
}

func readyStatus(n nodeJSON) string {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status
		}
	}
	return ""
}

// eventually retries f until it returns "" or the time is up.
func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("after %s: %s", timeout, last)
}

// runSim runs a short simulator command (kubectl, --version, ...).
func runSim(t *testing.T, root string, argv0 string, args ...string) (string, string, int) {
	t.Helper()
	bin := selfPath
	if argv0 != "" {
		dir := t.TempDir()
		bin = filepath.Join(dir, argv0)
		if err := os.Symlink(selfPath, bin); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "K3S_SIM_EXEC=1", "K3S_SIM_ROOT="+root, "KUBECONFIG=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

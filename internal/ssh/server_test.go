package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// testServer is an SSH server on 127.0.0.1 that runs commands with the
// local /bin/sh, serves SFTP and forwards direct-tcpip, for tests that
// need a real SSH conversation without the container world.
type testServer struct {
	t        *testing.T
	addr     string
	port     int
	hostKey  ssh.Signer
	mu       sync.Mutex
	allowed  map[string]bool
	commands []string
	env      []string // extra environment for commands
	conns    int
}

func newTestServer(t *testing.T, hostKey ssh.Signer, allowed ...ssh.PublicKey) *testServer {
	t.Helper()
	if hostKey == nil {
		hostKey = newSigner(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, hostKey: hostKey, allowed: map[string]bool{}}
	for _, k := range allowed {
		s.allowed[string(k.Marshal())] = true
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.allowed[string(key.Marshal())] {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("key not allowed")
		},
	}
	cfg.AddHostKey(hostKey)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c, cfg)
			}()
		}
	}()
	return s
}

func (s *testServer) allow(k ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[string(k.Marshal())] = true
}

func (s *testServer) ran() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *testServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	defer sc.Close()
	go func() {
		for r := range reqs {
			r.Reply(r.Type == "keepalive@openssh.com", nil)
		}
	}()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go s.session(ch, creqs)
		case "direct-tcpip":
			var p struct {
				Host       string
				Port       uint32
				OrigHost   string
				OriginPort uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			up, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				up.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			go func() { io.Copy(ch, up); ch.CloseWrite() }()
			go func() { io.Copy(up, ch); up.Close() }()
		default:
			nc.Reject(ssh.UnknownChannelType, "no")
		}
	}
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	done := make(chan struct{})
	for r := range reqs {
		switch r.Type {
		case "exec":
			line := string(r.Payload[4:])
			s.mu.Lock()
			s.commands = append(s.commands, line)
			s.mu.Unlock()
			cmd = exec.Command("/bin/sh", "-c", line)
			cmd.Env = append(os.Environ(), s.env...)
			cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdin, _ := cmd.StdinPipe()
			if err := cmd.Start(); err != nil {
				r.Reply(false, nil)
				return
			}
			r.Reply(true, nil)
			go func() { io.Copy(stdin, ch); stdin.Close() }()
			go func() {
				defer close(done)
				code := 0
				if err := cmd.Wait(); err != nil {
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						code = ee.ExitCode()
						if code < 0 {
							code = 143
						}
					}
				}
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
				ch.Close()
			}()
		case "subsystem":
			if string(r.Payload[4:]) != "sftp" {
				r.Reply(false, nil)
				continue
			}
			r.Reply(true, nil)
			srv, err := sftp.NewServer(ch)
			if err != nil {
				return
			}
			go func() {
				srv.Serve()
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
				ch.Close()
			}()
		case "signal":
			if cmd != nil && cmd.Process != nil {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			}
			if r.WantReply {
				r.Reply(true, nil)
			}
		default:
			if r.WantReply {
				r.Reply(r.Type == "env", nil)
			}
		}
	}
	if cmd != nil && cmd.Process != nil {
		// The client went away: like a hangup.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
		<-done
	}
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeKey writes a new ed25519 private key (OpenSSH format) and its .pub.
func writeKey(t testing.TB, dir, name, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, pub
}

// isolate points HOME at an empty directory and forgets any ssh-agent, so
// the developer's own keys and config never take part.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return home
}

// testSetup is a server that accepts one key, and options that use it.
type testSetup struct {
	srv  *testServer
	key  string
	home string
	opts Options
}

func newTestSetup(t *testing.T) *testSetup {
	t.Helper()
	home := isolate(t)
	key, pub := writeKey(t, home, "id_test", "")
	srv := newTestServer(t, nil, pub)
	return &testSetup{srv: srv, key: key, home: home, opts: Options{
		Address:        "127.0.0.1",
		Port:           srv.port,
		User:           "tester",
		KeyFiles:       []string{key},
		KnownHostsFile: filepath.Join(home, "known_hosts"),
		ConnectRetry:   -1,
	}}
}

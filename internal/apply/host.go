package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// host runs one host's steps. Every step checks before it acts, so a host
// that is already right comes out unchanged.
func (r *runner) host(ctx context.Context, j *job) (bool, error) {
	hp := j.hp
	conn := r.o.Conns[hp.Address]
	if hp.Action == plan.ActionJoinSource && !j.cluster.currentToken().IsZero() {
		return false, nil // the user gave the token: nothing to read
	}
	if conn == nil {
		return false, fmt.Errorf("%s: no connection", hp.Address)
	}
	if hp.Action == plan.ActionJoinSource {
		return false, r.readToken(ctx, j, conn)
	}
	cs := j.cluster
	spec := specHost(j)
	if spec.Address == "" {
		return false, fmt.Errorf("%s: not in the spec", hp.Address)
	}
	service := k3s.ServiceName(hp.Role)
	initSystem := r.o.InitSystems[hp.Address]
	changed := false

	if hp.Action != plan.ActionNothing {
		if hp.Upload {
			c, err := r.step(ctx, j, "upload k3s", func(ctx context.Context) (bool, error) {
				return r.uploadBinary(ctx, j, conn)
			})
			if err != nil {
				return changed, err
			}
			changed = changed || c
		}

		c, err := r.step(ctx, j, "write config", func(ctx context.Context) (bool, error) {
			token := cs.currentToken()
			files, pending, err := plan.Files(cs.spec, spec, hp.First, token, initSystem)
			if err != nil {
				return false, err
			}
			if pending {
				return false, errors.New("the cluster token is not known: the first server did not report one")
			}
			written, err := writeFiles(ctx, conn, files, linksCommand())
			if err != nil {
				return false, err
			}
			if len(written) > 0 {
				r.emit(j, Event{Type: EventLog, Step: "write config", Message: "changed " + strings.Join(written, ", ")})
			}
			any := len(written) > 0
			for _, f := range cs.spec.Files {
				if !f.For(hp.Role) {
					continue
				}
				res, err := conn.Upload(ctx, f.Source, f.Dest(), ssh.UploadOptions{Mode: 0o600})
				if err != nil {
					return any, fmt.Errorf("deliver %s: %w", f.Source, err)
				}
				any = any || !res.Skipped
			}
			return any, nil
		})
		if err != nil {
			return changed, err
		}
		changed = changed || c

		started := false
		_, err = r.step(ctx, j, "start "+service, func(ctx context.Context) (bool, error) {
			cmd, act := serviceCommand(initSystem, service, changed)
			res, err := conn.Run(ctx, cmd, ssh.RunOptions{Sudo: true})
			if err != nil {
				return false, err
			}
			started = act || strings.Contains(string(res.Stdout), "started")
			return started, nil
		})
		if err != nil {
			return changed, err
		}
		changed = changed || started
		if started || hp.Action == plan.ActionStart || changed {
			if _, err := r.step(ctx, j, "wait for ready", func(ctx context.Context) (bool, error) {
				return false, r.waitReady(ctx, j, conn, service, initSystem)
			}); err != nil {
				return changed, err
			}
		}
	}
	if hp.First {
		// A server that was not touched still has the token read while
		// planning; one that was (re)started may have just written it.
		if changed || cs.currentToken().IsZero() {
			if err := r.readToken(ctx, j, conn); err != nil {
				return changed, err
			}
		}
		if r.o.Kubeconfig != nil {
			if _, err := r.step(ctx, j, "kubeconfig", func(ctx context.Context) (bool, error) {
				data, err := conn.ReadFile(ctx, k3s.KubeconfigPath)
				if err != nil {
					return false, err
				}
				return false, r.o.Kubeconfig(ctx, j.cplan.Name, data)
			}); err != nil {
				return changed, err
			}
		}
	}
	return changed, nil
}

func (cs *clusterState) currentToken() secret.Value {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.token
}

// readToken reads the cluster's full token from a server so that joining
// hosts can verify the cluster CA.
func (r *runner) readToken(ctx context.Context, j *job, conn Conn) error {
	_, err := r.step(ctx, j, "read token", func(ctx context.Context) (bool, error) {
		var data []byte
		var err error
		deadline := time.Now().Add(r.o.ReadyTimeout)
		for {
			data, err = conn.ReadFile(ctx, k3s.TokenPath)
			if err == nil && len(strings.TrimSpace(string(data))) > 0 {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return false, fmt.Errorf("read %s: %v (is K3s running as a server there?)", k3s.TokenPath, err)
			}
			sleep(ctx, r.o.PollInterval)
		}
		j.cluster.mu.Lock()
		j.cluster.token = secret.New(strings.TrimSpace(string(data)))
		j.cluster.mu.Unlock()
		return false, nil
	})
	return err
}

func (r *runner) uploadBinary(ctx context.Context, j *job, conn Conn) (bool, error) {
	progress := func(done, total int64) {
		r.emit(j, Event{Type: EventProgress, Step: "upload k3s", Bytes: done, Total: total})
	}
	path, err := r.o.Binary(ctx, j.hp.Arch, progress)
	if err != nil {
		return false, err
	}
	select {
	case r.uploads <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-r.uploads }()
	res, err := conn.Upload(ctx, path, k3s.BinaryPath, ssh.UploadOptions{Mode: k3s.BinaryMode, Progress: progress})
	if err != nil {
		return false, err
	}
	if res.Skipped {
		r.emit(j, Event{Type: EventLog, Step: "upload k3s", Message: "already there (same sha256)"})
	}
	return !res.Skipped, nil
}

// linksCommand makes kubectl, crictl and ctr point at k3s, leaving any
// existing command of that name alone.
func linksCommand() string {
	var b strings.Builder
	for _, l := range k3s.Links() {
		fmt.Fprintf(&b, "[ -e %[1]s ] || [ -L %[1]s ] || ln -s k3s %[1]s; ", ssh.Quote(l))
	}
	b.WriteString("true")
	return b.String()
}

// serviceCommand enables the service and (re)starts it without waiting:
// K3s's unit has TimeoutStartSec=0, so a blocking start never returns on a
// node that cannot join. The returned command prints "started" when it
// started or restarted the service.
func serviceCommand(initSystem, service string, restart bool) (string, bool) {
	q := ssh.Quote(service)
	if initSystem == string(k3s.OpenRC) {
		if restart {
			return fmt.Sprintf("rc-update add %s default >/dev/null && rc-service %s restart >/dev/null && echo started", q, q), true
		}
		return fmt.Sprintf("rc-update add %s default >/dev/null; if rc-service %s status >/dev/null 2>&1; then echo running; else rc-service %s start >/dev/null && echo started; fi", q, q, q), false
	}
	if restart {
		return fmt.Sprintf("systemctl daemon-reload && systemctl enable %s >/dev/null 2>&1 && systemctl restart --no-block %s && echo started", q, q), true
	}
	return fmt.Sprintf("systemctl daemon-reload && systemctl enable %s >/dev/null 2>&1; if systemctl is-active --quiet %s; then echo running; else systemctl reset-failed %s >/dev/null 2>&1; systemctl start --no-block %s && echo started; fi", q, q, q, q), false
}

// waitReady waits until the service reports ready (systemd: active, which a
// Type=notify unit only becomes once K3s says so) and, for servers, until
// the node is Ready in the API with the planned version.
func (r *runner) waitReady(ctx context.Context, j *job, conn Conn, service, initSystem string) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.ReadyTimeout)
	defer cancel()
	node := r.o.Hostnames[j.hp.Address]
	if h := specHost(j); h.NodeName != "" {
		node = h.NodeName
	}
	statusCmd := "systemctl is-active " + ssh.Quote(service) + " || true"
	if initSystem == string(k3s.OpenRC) {
		statusCmd = "rc-service " + ssh.Quote(service) + " status >/dev/null 2>&1 && echo active || echo inactive"
	}
	lastState := ""
	for {
		res, err := conn.Run(ctx, statusCmd, ssh.RunOptions{Sudo: true})
		state := strings.TrimSpace(string(res.Stdout))
		if err == nil && state != lastState {
			r.emit(j, Event{Type: EventLog, Step: "wait for ready", Message: service + " " + state})
			lastState = state
		}
		if err == nil && state == "active" {
			// Servers answer for themselves; an agent is checked through
			// a server of its cluster when k3sctl has a connection to one.
			api := conn
			if j.hp.Role == k3s.Agent {
				api = r.serverConn(j)
			}
			if api == nil || node == "" {
				return nil
			}
			ready, version := nodeStatus(ctx, api, node, withNodeID(j))
			if ready && (j.hp.To == "" || version == "" || version == j.hp.To) {
				return nil
			}
		}
		if ctx.Err() != nil {
			return r.notReady(j, conn, service, initSystem, lastState)
		}
		sleep(ctx, r.o.PollInterval)
	}
}

// serverConn is a connection to a server of j's cluster, or nil.
func (r *runner) serverConn(j *job) Conn {
	for _, h := range j.cplan.Hosts {
		if h.Role == k3s.Server && h.Action != plan.ActionRefuse && h.Action != plan.ActionUnreachable {
			if c := r.o.Conns[h.Address]; c != nil {
				return c
			}
		}
	}
	return nil
}

func specHost(j *job) plan.Host {
	for _, h := range append(append([]plan.Host{}, j.cluster.spec.Servers...), j.cluster.spec.Agents...) {
		if h.Address == j.hp.Address {
			return h
		}
	}
	return plan.Host{}
}

// withNodeID reports whether K3s names j's node <name>-<8 hex> (the fix for
// duplicate hostnames), from the config the plan renders: the host's own
// keys over its role's.
func withNodeID(j *job) bool {
	h := specHost(j)
	v, ok := h.Config["with-node-id"]
	if !ok {
		shared := j.cluster.spec.AgentConfig
		if j.hp.Role == k3s.Server {
			shared = j.cluster.spec.ServerConfig
		}
		v = shared["with-node-id"]
	}
	b, _ := v.(bool)
	return b
}

// nodeNameIs matches a node name; with suffixed, K3s has added -<8 hex>,
// an id k3sctl cannot know beforehand.
func nodeNameIs(name, node string, suffixed bool) bool {
	if !suffixed {
		return name == node
	}
	id, ok := strings.CutPrefix(name, node+"-")
	if !ok || len(id) != 8 {
		return false
	}
	return strings.Trim(id, "0123456789abcdef") == ""
}

// nodeStatus asks the server's own API about a node.
func nodeStatus(ctx context.Context, conn Conn, node string, suffixed bool) (ready bool, version string) {
	res, err := conn.Run(ctx, "k3s kubectl get nodes", ssh.RunOptions{Sudo: true})
	if err != nil {
		return false, ""
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && nodeNameIs(f[0], node, suffixed) {
			return f[1] == "Ready", f[4]
		}
	}
	return false, ""
}

// notReady builds the error for a host that missed its deadline, with the
// service log and a hint for the causes people hit.
func (r *runner) notReady(j *job, conn Conn, service, initSystem, state string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	logCmd := "journalctl -u " + ssh.Quote(service) + " --no-pager -n 30 -o cat"
	if initSystem == string(k3s.OpenRC) {
		logCmd = "tail -n 30 " + ssh.Quote(k3s.OpenRCLogPath(j.hp.Role))
	}
	res, _ := conn.Run(ctx, logCmd, ssh.RunOptions{Sudo: true})
	tail := condenseLog(strings.Split(strings.TrimSpace(string(res.Stdout)), "\n"), 8)
	if state == "" {
		state = "unknown"
	}
	return &StepError{
		Host:    j.hp.Address,
		Step:    "wait for ready",
		Err:     fmt.Errorf("%s not ready after %s (state: %s)", service, r.o.ReadyTimeout, state),
		Hint:    k3s.DiagnoseLog(tail),
		LogTail: tail,
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// condenseLog keeps the last max distinct lines of a service log: a node
// that cannot join logs the same error every few seconds, and one copy
// with a count says more than a screenful.
func condenseLog(lines []string, max int) []string {
	type entry struct {
		line  string
		count int
	}
	var out []entry
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		key := logMessage(l)
		if n := len(out); n > 0 && logMessage(out[n-1].line) == key {
			out[n-1].line = l
			out[n-1].count++
			continue
		}
		out = append(out, entry{l, 1})
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	res := make([]string, len(out))
	for i, e := range out {
		res[i] = e.line
		if e.count > 1 {
			res[i] += fmt.Sprintf(" (×%d)", e.count)
		}
	}
	return res
}

// logMessage drops the time of a K3s log line so repeats compare equal.
func logMessage(l string) string {
	if i := strings.Index(l, " level="); i >= 0 && strings.HasPrefix(l, "time=") {
		return l[i:]
	}
	return l
}

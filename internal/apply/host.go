package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// host runs steps of j's plan, in order. Every step checks before it
// acts, so a host that is already right comes out unchanged.
func (r *runner) host(ctx context.Context, j *job, hr *hostRun, steps []plan.Step) (bool, error) {
	changed := false
	for _, s := range steps {
		c, err := r.step(ctx, j, s.Kind, func(ctx context.Context) (bool, error) {
			return r.runStep(ctx, j, hr, s.Kind)
		})
		changed = changed || c
		hr.changed = hr.changed || c
		if c && s.Kind != plan.StepDeliverFiles && s.Kind != plan.StepDrain {
			hr.restart = true
		}
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// removeStale deletes the temporary files an interrupted earlier run left
// on the host (the facts found them), before the first step that writes.
// The run holds the host, so no other run is writing them.
func (r *runner) removeStale(ctx context.Context, j *job, conn Conn) error {
	if len(j.hp.Stale) == 0 {
		return nil
	}
	first := plan.StepKind("")
	for _, s := range j.hp.Steps {
		if s.Kind.MayChange() {
			first = s.Kind
			break
		}
	}
	if first == "" {
		return nil
	}
	if _, err := conn.Run(ctx, node.Command(append([]string{"rm", "-f", "--"}, j.hp.Stale...)...), ssh.RunOptions{Sudo: true}); err != nil {
		return &StepError{Host: j.hp.Address, Step: first, Err: fmt.Errorf("remove temporary files of an earlier run: %w", err)}
	}
	for _, f := range j.hp.Stale {
		r.emit(j, Event{Type: EventLog, Step: first, Message: "removed " + f + " (left by an interrupted run)"})
	}
	return nil
}

// hostRun is what one host's steps share.
type hostRun struct {
	conn       Conn
	initSystem string
	changed    bool // an earlier step changed the host
	// restart: an earlier step changed what K3s reads only at start.
	restart bool
}

// runStep does one step and reports whether it changed the host.
func (r *runner) runStep(ctx context.Context, j *job, hr *hostRun, kind plan.StepKind) (bool, error) {
	hp, conn := j.hp, hr.conn
	switch kind {
	case plan.StepFixBoot:
		return r.fixBoot(ctx, j, hr)
	case plan.StepUploadBinary:
		return r.uploadBinary(ctx, j, conn)
	case plan.StepUploadImages:
		return r.uploadImages(ctx, j, conn)
	case plan.StepWriteConfig:
		return r.writeConfig(ctx, j, hr)
	case plan.StepDeliverFiles:
		return r.deliverFiles(ctx, j, hr)
	case plan.StepStartServer, plan.StepStartAgent:
		// A changed binary or file that K3s reads at start needs a
		// restart; otherwise the service is only started when it is not
		// running.
		cmd, act := serviceCommand(hr.initSystem, k3s.ServiceName(hp.Role), hr.restart)
		res, err := conn.Run(ctx, cmd, ssh.RunOptions{Sudo: true})
		if err != nil {
			return false, err
		}
		return act || strings.Contains(string(res.Stdout), "started"), nil
	case plan.StepRepair:
		return r.repair(ctx, j, hr)
	case plan.StepDrain:
		return r.drain(ctx, j)
	case plan.StepUncordon:
		return r.uncordon(ctx, j)
	case plan.StepLabels:
		return r.labelNode(ctx, j)
	case plan.StepWaitReady:
		return false, r.waitReady(ctx, j, conn, k3s.ServiceName(hp.Role), hr.initSystem)
	case plan.StepReadToken:
		return false, r.readToken(ctx, j, conn)
	case plan.StepSnapshot:
		return r.snapshot(ctx, j, conn)
	case plan.StepKubeconfig:
		data, ok := r.o.KnownKubeconfigs[hp.Address]
		if !ok || hr.changed {
			var err error
			if data, err = conn.ReadFile(ctx, k3s.KubeconfigPath); err != nil {
				return false, err
			}
		}
		return false, r.o.Kubeconfig(ctx, j.cplan.Name, data)
	}
	return false, fmt.Errorf("this k3sctl cannot run step %q; update k3sctl", kind)
}

// PreUpgradeSnapshot is the --name of the etcd snapshot taken before an
// upgrade; K3s names the file <name>-<node>-<unix time>.
const PreUpgradeSnapshot = "k3sctl-pre-upgrade"

// snapshot takes an etcd snapshot on the server and names it; it is kept
// there, for K3s's cluster reset should the upgrade go wrong.
func (r *runner) snapshot(ctx context.Context, j *job, conn Conn) (bool, error) {
	if _, err := conn.Run(ctx, node.HasEtcdCommand(), ssh.RunOptions{Sudo: true}); err != nil {
		var ee *ssh.ExitError
		if !errors.As(err, &ee) {
			return false, err
		}
		r.emit(j, Event{Type: EventLog, Step: plan.StepSnapshot, Message: "no embedded etcd datastore on this server: no snapshot taken"})
		return false, nil
	}
	name, file, err := node.TakeSnapshot(ctx, conn, PreUpgradeSnapshot)
	if err != nil {
		return false, &StepError{Host: j.hp.Address, Step: plan.StepSnapshot, Err: err,
			Hint: "fix the snapshot, or upgrade without one: apply --no-snapshot"}
	}
	r.emit(j, Event{Type: EventLog, Step: plan.StepSnapshot, Message: "snapshot " + name + " saved in " + file})
	return true, nil
}

// writeConfig puts every file k3sctl renders for the host in place, then the
// cluster's delivered files, each only when it differs.
func (r *runner) writeConfig(ctx context.Context, j *job, hr *hostRun) (bool, error) {
	hp, cs, conn := j.hp, j.cluster, hr.conn
	spec := specHost(j)
	if spec.Address == "" {
		return false, fmt.Errorf("not in the spec")
	}
	files, pending, err := plan.Files(cs.spec, spec, hp.First, cs.currentToken(), hr.initSystem)
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
		r.emit(j, Event{Type: EventLog, Step: plan.StepWriteConfig, Message: "changed " + strings.Join(written, ", ")})
	}
	return len(written) > 0, nil
}

// deliverFiles puts the cluster's files for the host's role in place (an
// upload is skipped when the same sha256 is there; mode and owner are put
// right), removes the files the plan lists as no longer in the inventory
// (only while they still hold what k3sctl wrote), and rewrites the host's
// record of what it delivered. A changed file that K3s reads only at
// start (plan.FileKind.NeedsRestart) makes the start step restart K3s.
func (r *runner) deliverFiles(ctx context.Context, j *job, hr *hostRun) (bool, error) {
	hp, conn := j.hp, hr.conn
	changed := false
	var record []plan.DeliveredFile
	for _, f := range plan.HostFiles(j.cluster.spec, hp.Role) {
		res, err := conn.Upload(ctx, f.Source, f.Dest(), ssh.UploadOptions{Mode: plan.DeliveredFileMode})
		if err != nil {
			return changed, fmt.Errorf("deliver %s to %s: %w", f.Source, f.Dest(), err)
		}
		record = append(record, plan.DeliveredFile{Path: f.Dest(), SHA256: res.SHA256})
		if !res.Skipped || plannedChange(hp, f.Dest()) {
			changed = true
			r.emit(j, Event{Type: EventLog, Step: plan.StepDeliverFiles, Message: "delivered " + f.Dest()})
			if f.Kind.NeedsRestart() {
				hr.restart = true
			}
		}
	}
	var remove []node.Recorded
	for _, fc := range hp.Files {
		if fc.Op == plan.FileRemove {
			remove = append(remove, node.Recorded{Path: fc.Path, SHA256: fc.OldSHA256})
		}
	}
	removed, kept, err := node.RemoveRecorded(ctx, conn, remove)
	if err != nil {
		return changed, fmt.Errorf("remove files no longer in the inventory: %w", err)
	}
	for _, p := range removed {
		changed = true
		r.emit(j, Event{Type: EventLog, Step: plan.StepDeliverFiles, Message: "removed " + p})
		for _, fc := range hp.Files {
			if fc.Path == p && fc.Restart {
				hr.restart = true
			}
		}
	}
	for _, p := range kept {
		r.emit(j, Event{Type: EventLog, Step: plan.StepDeliverFiles, Message: "kept " + p + ": changed on the host since k3sctl delivered it; remove it by hand if it should go"})
	}
	written, err := writeFiles(ctx, conn, []plan.RemoteFile{{Path: plan.DeliveredRecordPath, Mode: plan.DeliveredRecordMode, Data: plan.RenderDeliveredRecord(record)}}, "")
	if err != nil {
		return changed, fmt.Errorf("write %s: %w", plan.DeliveredRecordPath, err)
	}
	return changed || len(written) > 0, nil
}

// plannedChange reports whether the plan has a write of path on the host:
// an upload skipped for the same content may still have fixed the mode.
func plannedChange(hp plan.HostPlan, path string) bool {
	for _, fc := range hp.Files {
		if fc.Path == path && fc.Op != plan.FileRemove {
			return true
		}
	}
	return false
}

func (cs *clusterState) currentToken() secret.Value {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.token
}

// readToken reads the cluster's full token from a server so that joining
// hosts can verify the cluster CA. A server that was just started may not
// have written it yet.
func (r *runner) readToken(ctx context.Context, j *job, conn Conn) error {
	var tok secret.Value
	var err error
	deadline := time.Now().Add(r.o.ReadyTimeout)
	for {
		tok, err = node.ReadToken(ctx, conn)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return interrupted("reading "+k3s.TokenPath, ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("read %s: %v (is K3s running as a server there?)", k3s.TokenPath, err)
		}
		sleep(ctx, r.o.PollInterval)
	}
	j.cluster.mu.Lock()
	j.cluster.token = tok
	j.cluster.mu.Unlock()
	return nil
}

func (r *runner) uploadBinary(ctx context.Context, j *job, conn Conn) (bool, error) {
	progress := func(done, total int64) {
		r.emit(j, Event{Type: EventProgress, Step: plan.StepUploadBinary, Bytes: done, Total: total})
	}
	path, err := r.o.Binary(ctx, plan.BinaryKey{Version: j.hp.To, Arch: j.hp.Arch}, progress)
	if err != nil {
		return false, err
	}
	key := plan.BinaryKey{Version: j.hp.To, Arch: j.hp.Arch}
	if src := j.hp.UploadFrom; src != nil {
		res, copied, err := r.copyFromSeed(ctx, j, conn, siteCopy{step: plan.StepUploadBinary, src: *src, path: k3s.BinaryPath,
			local: path, sum: r.o.BinarySHA256[key], mode: k3s.BinaryMode, file: func(s *job) *seedFile { return s.bin }})
		if err != nil {
			return false, err
		}
		if copied {
			_ = node.StampBinary(ctx, conn, res.SHA256)
			return !res.Skipped, nil
		}
	}
	release, err := r.uploadSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	// The plan uploads only when the facts found another binary there (or
	// none), so the host is not asked to hash it again.
	res, err := conn.Upload(ctx, path, k3s.BinaryPath, ssh.UploadOptions{Mode: k3s.BinaryMode, Progress: progress,
		SHA256: r.o.BinarySHA256[key], Differs: j.hp.Upload})
	if err != nil {
		return false, err
	}
	if res.Skipped {
		r.emit(j, Event{Type: EventLog, Step: plan.StepUploadBinary, Message: "already there (same sha256)"})
	}
	// Later runs' facts read the sha256 from this record instead of
	// hashing the binary; without it they only take longer.
	_ = node.StampBinary(ctx, conn, res.SHA256)
	return !res.Skipped, nil
}

// conn is the current connection to a host.
func (r *runner) conn(address string) Conn {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	return r.o.Conns[address]
}

func (r *runner) setConn(address string, c Conn) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	conns := make(map[string]Conn, len(r.o.Conns))
	for a, old := range r.o.Conns {
		conns[a] = old
	}
	conns[address] = c
	r.o.Conns = conns // the caller's map stays as it was
}

// fixBoot turns the memory cgroup on in the boot command line, reboots the
// host, waits until it answers on a new connection, and reads again
// whether the memory cgroup is on now.
func (r *runner) fixBoot(ctx context.Context, j *job, hr *hostRun) (bool, error) {
	if r.o.Redial == nil {
		return false, errors.New("this run cannot reconnect to a rebooted host")
	}
	file, err := node.FixBoot(ctx, hr.conn)
	if err != nil {
		return false, err
	}
	if file != "" {
		r.emit(j, Event{Type: EventLog, Step: plan.StepFixBoot, Message: "added " + k3s.MemoryCgroupBootArgs + " to " + file})
	}
	r.emit(j, Event{Type: EventLog, Step: plan.StepFixBoot, Message: "rebooting"})
	if err := node.Reboot(ctx, hr.conn); err != nil {
		return true, fmt.Errorf("reboot: %w", err)
	}
	conn, err := r.awaitReboot(ctx, j)
	if err != nil {
		return true, err
	}
	hr.conn = conn
	r.setConn(j.hp.Address, conn)
	on, err := node.MemoryCgroupOn(ctx, conn)
	if err != nil {
		return true, fmt.Errorf("after the reboot: %w", err)
	}
	if !on {
		return true, fmt.Errorf("the host rebooted but the memory cgroup is still off: check that the bootloader reads %s "+
			"(the kernel's command line is in /proc/cmdline), or add %s to the kernel command line by hand", orFiles(file), k3s.MemoryCgroupBootArgs)
	}
	r.emit(j, Event{Type: EventLog, Step: plan.StepFixBoot, Message: "back after the reboot; memory cgroup on"})
	return true, nil
}

func orFiles(file string) string {
	if file != "" {
		return file
	}
	return strings.Join(node.BootCmdlineFiles, " or ")
}

// awaitReboot dials the host until it answers and has rebooted, within
// the ready timeout.
func (r *runner) awaitReboot(parent context.Context, j *job) (Conn, error) {
	ctx, cancel := context.WithTimeout(parent, r.o.ReadyTimeout)
	defer cancel()
	var last error
	for {
		sleep(ctx, r.o.PollInterval)
		if parent.Err() != nil {
			return nil, interrupted("waiting for the host to come back from its reboot", parent.Err())
		}
		if ctx.Err() != nil {
			if last == nil {
				last = errors.New("it still had not rebooted")
			}
			return nil, fmt.Errorf("not back from its reboot after %s: %v", r.o.ReadyTimeout, last)
		}
		c, err := r.o.Redial(ctx, j.hp.Address)
		if err != nil {
			last = err
			continue
		}
		done, err := node.Rebooted(ctx, c)
		if err == nil && done {
			return c, nil
		}
		last = err
		if cl, ok := c.(io.Closer); ok {
			_ = cl.Close()
		}
	}
}

// uploadImages puts the images archive of the host's architecture into
// K3s's images folder, where K3s imports it at start.
func (r *runner) uploadImages(ctx context.Context, j *job, conn Conn) (bool, error) {
	if r.o.Images == nil {
		return false, errors.New("no images archives were fetched for this run")
	}
	progress := func(done, total int64) {
		r.emit(j, Event{Type: EventProgress, Step: plan.StepUploadImages, Bytes: done, Total: total})
	}
	local, err := r.o.Images(ctx, plan.BinaryKey{Version: j.hp.To, Arch: j.hp.Arch})
	if err != nil {
		return false, err
	}
	if src := j.hp.ImagesFrom; src != nil {
		res, copied, err := r.copyFromSeed(ctx, j, conn, siteCopy{step: plan.StepUploadImages, src: *src, path: j.hp.Images,
			local: local, mode: 0o600, file: func(s *job) *seedFile { return s.img }})
		if err != nil {
			return false, err
		}
		if copied {
			return !res.Skipped, nil
		}
	}
	release, err := r.uploadSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	res, err := conn.Upload(ctx, local, j.hp.Images, ssh.UploadOptions{Mode: 0o600, Progress: progress})
	if err != nil {
		return false, err
	}
	if res.Skipped {
		r.emit(j, Event{Type: EventLog, Step: plan.StepUploadImages, Message: "already there (same sha256)"})
	}
	return !res.Skipped, nil
}

// linksCommand makes kubectl, crictl and ctr point at k3s, leaving any
// existing command of that name alone.
func linksCommand() string { return node.LinksCommand() }

// serviceCommand enables the service and (re)starts it without waiting
// (node.ServiceManager.StartCommand). The returned command prints
// "started" when it started or restarted the service.
func serviceCommand(initSystem, service string, restart bool) (string, bool) {
	return node.ManagerFor(initSystem).StartCommand(service, restart), restart
}

// logCommand prints the last lines of the service's log.
func logCommand(initSystem, service string) string {
	return node.ManagerFor(initSystem).LogCommand(service, 30)
}

// waitReady waits until the service reports ready (systemd: active, which a
// Type=notify unit only becomes once K3s says so) and, when k3sctl can ask
// a server, until the node is Ready in the API with the planned version.
func (r *runner) waitReady(parent context.Context, j *job, conn Conn, service, initSystem string) error {
	ctx, cancel := context.WithTimeout(parent, r.o.ReadyTimeout)
	defer cancel()
	name := r.o.Hostnames[j.hp.Address]
	if h := specHost(j); h.NodeName != "" {
		name = h.NodeName
	}
	if err := r.waitService(parent, ctx, j, conn, service, initSystem); err != nil {
		return err
	}
	// Servers answer for themselves; an agent is checked through a server
	// of its cluster when k3sctl has a connection to one.
	api := conn
	if j.hp.Role == k3s.Agent {
		api = r.serverConn(j)
	}
	if api == nil || name == "" {
		return nil
	}
	if r.nodeReady(ctx, j, api, name) {
		return nil
	}
	if parent.Err() != nil {
		return interrupted(fmt.Sprintf("waiting for %s to become ready (state: active; node %s not Ready yet)", service, name), parent.Err())
	}
	return r.notReady(j, conn, service, initSystem, "active")
}

// waitService waits with one command that loops on the host until the
// service is active (node.ServiceManager.WaitCommand), within ctx's
// deadline. Each state the host prints becomes a log line as it comes.
func (r *runner) waitService(parent, ctx context.Context, j *job, conn Conn, service, initSystem string) error {
	m := node.ManagerFor(initSystem)
	var mu sync.Mutex
	last, streamed := "", false
	onState := func(line string) {
		s := strings.TrimSpace(line)
		mu.Lock()
		defer mu.Unlock()
		if s == "" || s == last {
			return
		}
		last = s
		r.emit(j, Event{Type: EventLog, Step: plan.StepWaitReady, Message: service + " " + s})
	}
	interval := pollIntervals(r.o.PollInterval)
	for {
		// The host's loop ends a little before the run's deadline and
		// prints where it stopped.
		limit := r.o.ReadyTimeout
		if dl, ok := ctx.Deadline(); ok {
			remaining := time.Until(dl)
			limit = remaining - min(remaining/20, 2*time.Second)
		}
		res, err := conn.Run(ctx, m.WaitCommand(service, limit), ssh.RunOptions{Sudo: true, OnLine: func(stream, line string) {
			if stream == "stdout" {
				mu.Lock()
				streamed = true
				mu.Unlock()
				onState(line)
			}
		}})
		mu.Lock()
		fed := streamed
		mu.Unlock()
		if !fed {
			for _, l := range strings.Split(string(res.Stdout), "\n") {
				onState(l)
			}
		}
		mu.Lock()
		state := last
		mu.Unlock()
		switch {
		case err == nil && state == "active":
			return nil
		case parent.Err() != nil:
			return interrupted(fmt.Sprintf("waiting for %s to become ready (state: %s)", service, stateWord(state)), parent.Err())
		case ctx.Err() != nil, err == nil:
			// The deadline passed, or the host's loop ended at its own
			// deadline or on a unit that stays failed.
			return r.notReady(j, conn, service, initSystem, state)
		}
		// The command itself failed (a dropped connection): again.
		sleep(ctx, interval())
	}
}

// nodeReady waits until the API reports the node Ready with the planned
// version: through the cluster's node watch (nodeWatches) while it runs,
// otherwise (no API: a first server's admin kubeconfig is written only as
// K3s starts, TCP forwarding may be off) by asking api, a server, with
// kubectl every poll interval.
// It reports false when ctx ends first.
func (r *runner) nodeReady(ctx context.Context, j *job, api Conn, name string) bool {
	suffixed := withNodeID(j)
	good := func(ready bool, version string) bool {
		return ready && (j.hp.To == "" || version == "" || version == j.hp.To)
	}
	w, leave := r.joinWatch(j.cplan.Name)
	defer leave()
	interval := pollIntervals(r.o.PollInterval)
	graced := false
	for {
		nodes, live, starting, changed := w.state()
		var poll <-chan time.Time
		switch {
		case live:
			for n, kn := range nodes {
				if nodeNameIs(n, name, suffixed) && good(kn.Ready, kn.KubeletVersion) {
					return true
				}
			}
		case starting && !graced:
			// The watch is being set up: one poll interval's grace
			// before asking the server with kubectl.
			graced = true
			poll = time.After(r.o.PollInterval)
		default:
			if good(r.nodeStatus(ctx, api, name, suffixed)) {
				return true
			}
			poll = time.After(interval())
		}
		select {
		case <-changed:
		case <-poll:
		case <-ctx.Done():
			return false
		}
	}
}

// serverConn is a connection to a server of j's cluster, or nil.
func (r *runner) serverConn(j *job) Conn {
	for _, h := range j.cplan.Hosts {
		if h.Role == k3s.Server && h.Action != plan.ActionRefuse && h.Action != plan.ActionUnreachable {
			if c := r.conn(h.Address); c != nil {
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

// notReady builds the error for a host that missed its deadline, with the
// service log and a hint for the causes people hit.
func (r *runner) notReady(j *job, conn Conn, service, initSystem, state string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	logCmd := logCommand(initSystem, service)
	res, _ := conn.Run(ctx, logCmd, ssh.RunOptions{Sudo: true})
	tail := condenseLog(strings.Split(strings.TrimSpace(string(res.Stdout)), "\n"), 8)
	return &StepError{
		Host:    j.hp.Address,
		Step:    plan.StepWaitReady,
		Err:     fmt.Errorf("%s not ready after %s (state: %s)", service, r.o.ReadyTimeout, stateWord(state)),
		Hint:    k3s.DiagnoseLog(tail),
		LogTail: tail,
	}
}

func stateWord(state string) string {
	if state == "" {
		return "unknown"
	}
	return state
}

// interrupted is the error of a step the user stopped (Ctrl-C, a signal)
// while it waited: it says so instead of reporting a timeout, and wraps
// the context's error so that the host counts as cancelled.
func interrupted(what string, cause error) error {
	if errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("stopped while %s: the run's deadline passed: %w", what, cause)
	}
	return fmt.Errorf("interrupted while %s: %w", what, cause)
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

// uploadSlot waits for one of the run's concurrent upload slots.
func (r *runner) uploadSlot(ctx context.Context) (release func(), err error) {
	select {
	case r.uploads <- struct{}{}:
		return func() { <-r.uploads }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

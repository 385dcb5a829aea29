package node

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// ServiceManager is how a node's init system runs a service. Its commands
// run as root.
type ServiceManager interface {
	// Name is the init system: k3s.Systemd or k3s.OpenRC.
	Name() k3s.InitSystem
	// StartCommand enables service and starts it without waiting for it
	// to be ready; with restart it restarts it even when it runs. The
	// command prints "started" when it started or restarted the service.
	StartCommand(service string, restart bool) string
	// StatusCommand prints "active" when service runs, another word else.
	StatusCommand(service string) string
	// LogCommand prints the last lines of service's log.
	LogCommand(service string, lines int) string
	// WaitCommand waits on the host until service is active, printing its
	// state word (StatusCommand's) first and then each time it changes,
	// one a line; see WaitCommand.
	WaitCommand(service string, limit time.Duration) string
}

// FailedFor is how long a unit must stay failed before a wait gives up
// on it: a restart k3sctl just queued (--no-block) leaves that state
// within moments, and K3s's Restart=always makes a crash "activating",
// so a unit failed this long has hit its start limit or was stopped.
const FailedFor = 10 * time.Second

// WaitCommand is the loop the managers' WaitCommand run on the host: it
// checks status (a command printing one state word) four times a second,
// prints the state when it changes, and ends when the state is active,
// when it has been failed for FailedFor, or after limit (whole seconds,
// at least one). It always exits 0: the last line printed is the state it
// ended in.
func WaitCommand(status string, limit time.Duration) string {
	return waitCommand(status, limit, FailedFor)
}

func waitCommand(status string, limit, failedFor time.Duration) string {
	secs := int((limit + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return `now() { date +%s; }; end=$(( $(now) + ` + strconv.Itoa(secs) + ` )); last=; failed=; ` +
		`while :; do s=$(` + status + `); s=${s%%[!a-z-]*}; [ -n "$s" ] || s=unknown; ` +
		`if [ "$s" != "$last" ]; then echo "$s"; last=$s; fi; ` +
		`[ "$s" = active ] && exit 0; ` +
		`if [ "$s" = failed ]; then failed=${failed:-$(now)}; [ $(( $(now) - failed )) -ge ` + strconv.Itoa(int(failedFor/time.Second)) + ` ] && exit 0; else failed=; fi; ` +
		`[ "$(now)" -lt "$end" ] || exit 0; ` +
		`sleep 0.25 2>/dev/null || sleep 1; done`
}

// ManagerFor is the service manager of an init system as the facts name
// it; systemd unless it is "openrc".
func ManagerFor(initSystem string) ServiceManager {
	if initSystem == string(k3s.OpenRC) {
		return OpenRC{}
	}
	return Systemd{}
}

// Systemd runs services with systemctl.
type Systemd struct{}

// Name implements ServiceManager.
func (Systemd) Name() k3s.InitSystem { return k3s.Systemd }

// StartCommand implements ServiceManager. K3s's unit has
// TimeoutStartSec=0, so a blocking start never returns on a node that
// cannot join: starts are --no-block and readiness is polled.
func (Systemd) StartCommand(service string, restart bool) string {
	// enable alone reloads systemd as well; once is enough.
	enable := And(Quiet(Command("systemctl", "enable", "--no-reload", service)), Command("systemctl", "daemon-reload"))
	if restart {
		return And(enable, Command("systemctl", "restart", "--no-block", service), Command("echo", "started"))
	}
	return Seq(enable, If(Command("systemctl", "is-active", "--quiet", service),
		Command("echo", "running"),
		Seq(Quiet(Command("systemctl", "reset-failed", service)),
			And(Command("systemctl", "start", "--no-block", service), Command("echo", "started")))))
}

// StatusCommand implements ServiceManager: active, activating, failed, …
func (Systemd) StatusCommand(service string) string {
	return Or(Command("systemctl", "is-active", service), Command("true"))
}

// LogCommand implements ServiceManager.
func (Systemd) LogCommand(service string, lines int) string {
	return Command("journalctl", "-u", service, "--no-pager", "-n", strconv.Itoa(lines), "-o", "cat")
}

// WaitCommand implements ServiceManager.
func (m Systemd) WaitCommand(service string, limit time.Duration) string {
	return WaitCommand(m.StatusCommand(service), limit)
}

// OpenRC runs services with rc-service (Alpine).
type OpenRC struct{}

// Name implements ServiceManager.
func (OpenRC) Name() k3s.InitSystem { return k3s.OpenRC }

// StartCommand implements ServiceManager.
func (OpenRC) StartCommand(service string, restart bool) string {
	add := QuietOut(Command("rc-update", "add", service, "default"))
	if restart {
		return And(add, QuietOut(Command("rc-service", service, "restart")), Command("echo", "started"))
	}
	return Seq(add, If(Quiet(Command("rc-service", service, "status")),
		Command("echo", "running"),
		And(QuietOut(Command("rc-service", service, "start")), Command("echo", "started"))))
}

// StatusCommand implements ServiceManager: active or inactive.
func (OpenRC) StatusCommand(service string) string {
	return Or(And(Quiet(Command("rc-service", service, "status")), Command("echo", "active")), Command("echo", "inactive"))
}

// LogCommand implements ServiceManager. K3s's OpenRC script logs to
// /var/log/<service>.log (k3s.OpenRCLogPath).
func (OpenRC) LogCommand(service string, lines int) string {
	return Command("tail", "-n", strconv.Itoa(lines), "/var/log/"+service+".log")
}

// WaitCommand implements ServiceManager: OpenRC knows started and not
// started only, so the wait ends at active or at limit.
func (m OpenRC) WaitCommand(service string, limit time.Duration) string {
	return WaitCommand(m.StatusCommand(service), limit)
}

// StartService enables and starts (or restarts) service and reports
// whether it started it.
func StartService(ctx context.Context, c Conn, m ServiceManager, service string, restart bool) (bool, error) {
	res, err := c.Run(ctx, m.StartCommand(service, restart), ssh.RunOptions{Sudo: true})
	if err != nil {
		return false, err
	}
	return restart || strings.Contains(string(res.Stdout), "started"), nil
}

// ServiceStatus is the service's state word ("active" when it runs).
func ServiceStatus(ctx context.Context, c Conn, m ServiceManager, service string) (string, error) {
	res, err := c.Run(ctx, m.StatusCommand(service), ssh.RunOptions{Sudo: true})
	return strings.TrimSpace(string(res.Stdout)), err
}

// LogTail is the last lines of the service's log; nil when it cannot be
// read.
func LogTail(ctx context.Context, c Conn, m ServiceManager, service string, lines int) []string {
	res, err := c.Run(ctx, m.LogCommand(service, lines), ssh.RunOptions{Sudo: true})
	out := strings.TrimSpace(string(res.Stdout))
	if out == "" && err != nil {
		return nil
	}
	return strings.Split(out, "\n")
}

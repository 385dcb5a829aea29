package k3s

import "fmt"

// Role is what a node runs: a server (control plane, etcd) or an agent.
type Role string

// Node roles.
const (
	Server Role = "server"
	Agent  Role = "agent"
)

// Valid reports whether r is a role K3s knows.
func (r Role) Valid() bool { return r == Server || r == Agent }

// ParseRole accepts "server" or "agent".
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("unknown role %q: want %q or %q", s, Server, Agent)
	}
	return r, nil
}

// Paths on a node. They follow the upstream install script so that a node
// set up by k3sctl can be handled by the upstream scripts and the other way
// round.
const (
	BinDir         = "/usr/local/bin"
	BinaryPath     = BinDir + "/k3s"
	KillallPath    = BinDir + "/k3s-killall.sh"
	ConfigDir      = "/etc/rancher/k3s"
	ConfigPath     = ConfigDir + "/config.yaml"
	ConfigDropIns  = ConfigDir + "/config.yaml.d"
	KubeconfigPath = ConfigDir + "/k3s.yaml"
	RegistriesPath = ConfigDir + "/registries.yaml"
	// NodeDir holds the node password. It outlives an uninstall on purpose:
	// the servers remember the password, and a reinstalled node must present
	// the same one to keep its name.
	NodeDir          = "/etc/rancher/node"
	NodePasswordPath = NodeDir + "/password"

	DataDir        = "/var/lib/rancher/k3s"
	TokenPath      = DataDir + "/server/token"
	NodeTokenPath  = DataDir + "/server/node-token"
	AgentTokenPath = DataDir + "/server/agent-token"
	ServerCAPath   = DataDir + "/server/tls/server-ca.crt"
	ManifestsDir   = DataDir + "/server/manifests"
	ImagesDir      = DataDir + "/agent/images"
	EtcdDir        = DataDir + "/server/db/etcd"
	SQLitePath     = DataDir + "/server/db/state.db"
	KubeletDir     = "/var/lib/kubelet"
	RunDir         = "/run/k3s"
	FlannelRunDir  = "/run/flannel"
	CNIDir         = "/var/lib/cni"
	SystemdUnitDir = "/etc/systemd/system"
	OpenRCInitDir  = "/etc/init.d"
	OpenRCEnvPath  = ConfigDir + "/k3s.env"
	OpenRCRunPath  = "/sbin/openrc-run"
)

// APIPort is where servers serve the Kubernetes API and the join endpoints.
const APIPort = 6443

// LocalServerURL is the server address K3s writes into k3s.yaml.
const LocalServerURL = "https://127.0.0.1:6443"

// File modes K3s and the upstream installer use.
const (
	BinaryMode     = 0o755
	ScriptMode     = 0o755
	UnitMode       = 0o644
	SecretFileMode = 0o600 // config.yaml, env files, tokens, k3s.yaml
)

// ServiceName is the systemd unit (without ".service") or OpenRC service name.
func ServiceName(r Role) string {
	if r == Agent {
		return "k3s-agent"
	}
	return "k3s"
}

// UnitPath is where the systemd unit of the role lives.
func UnitPath(r Role) string { return SystemdUnitDir + "/" + ServiceName(r) + ".service" }

// EnvPath is the systemd environment file of the role. It is the only place
// besides config.yaml where a secret may go, hence mode 0600.
func EnvPath(r Role) string { return UnitPath(r) + ".env" }

// OpenRCScriptPath is the init script of the role on OpenRC systems.
func OpenRCScriptPath(r Role) string { return OpenRCInitDir + "/" + ServiceName(r) }

// OpenRCLogPath is where the OpenRC supervisor sends the service's output;
// systemd nodes use the journal instead.
func OpenRCLogPath(r Role) string { return "/var/log/" + ServiceName(r) + ".log" }

// UninstallPath is the uninstall script of the role.
func UninstallPath(r Role) string {
	if r == Agent {
		return BinDir + "/k3s-agent-uninstall.sh"
	}
	return BinDir + "/k3s-uninstall.sh"
}

// Links are the commands K3s answers to when called through a symlink to
// BinaryPath. The installer creates each one only where no file exists yet,
// so that a kubectl the user installed keeps working.
func Links() []string {
	return []string{BinDir + "/kubectl", BinDir + "/crictl", BinDir + "/ctr"}
}

// LinkTarget is what each of Links points to. It is relative, as the upstream
// installer writes it; the uninstall script accepts the absolute form too.
const LinkTarget = "k3s"

// InitSystem is the service manager of a node.
type InitSystem string

// Init systems K3s supports.
const (
	Systemd InitSystem = "systemd"
	OpenRC  InitSystem = "openrc"
)

// DetectInitSystem applies the installer's rule: OpenRC when openrc-run is
// executable, else systemd when systemctl exists, else nothing usable.
func DetectInitSystem(hasOpenRCRun, hasSystemctl bool) (InitSystem, error) {
	switch {
	case hasOpenRCRun:
		return OpenRC, nil
	case hasSystemctl:
		return Systemd, nil
	}
	return "", fmt.Errorf("no systemd or openrc found: K3s needs one of them to run as a service")
}

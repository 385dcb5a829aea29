package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const heartbeatInterval = 5 * time.Second

func passwordRejected() error {
	return fmt.Errorf("Node password rejected, duplicate hostname or contents of '%s' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag",
		filepath.Join(nodeConfigDir, "password"))
}

// buildNodeInfo is what the kubelet registers: identity, addresses, the
// labels and annotations k3s sets, and node-label / node-taint.
func buildNodeInfo(o *opts, name string, ips, ext []net.IP, roles []string) (nodeInfo, error) {
	info := nodeInfo{
		Name: name, Hostname: name, KubeletVersion: version, OSImage: readOSImage(), Kernel: readKernel(),
		Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), MemoryKi: memTotalKi(),
	}
	for _, ip := range ips {
		info.InternalIPs = append(info.InternalIPs, ip.String())
	}
	for _, ip := range ext {
		info.ExternalIPs = append(info.ExternalIPs, ip.String())
	}
	info.Labels = map[string]string{
		"beta.kubernetes.io/arch":          runtime.GOARCH,
		"beta.kubernetes.io/instance-type": "k3s",
		"beta.kubernetes.io/os":            "linux",
		"kubernetes.io/arch":               runtime.GOARCH,
		"kubernetes.io/hostname":           name,
		"kubernetes.io/os":                 "linux",
		"node.kubernetes.io/instance-type": "k3s",
	}
	for _, r := range roles {
		info.Labels["node-role.kubernetes.io/"+r] = "true"
	}
	info.Roles = roles
	for _, l := range o.rawList("node-label") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return info, fmt.Errorf("invalid node-label %q: want key=value", l)
		}
		info.Labels[k] = v
	}
	for _, t := range o.rawList("node-taint") {
		tt, err := parseTaint(t)
		if err != nil {
			return info, err
		}
		info.Taints = append(info.Taints, tt)
	}
	args, _ := json.Marshal(o.redactedArgs())
	info.Annotations = map[string]string{
		"alpha.kubernetes.io/provided-node-ip":                   strings.Join(info.InternalIPs, ","),
		"flannel.alpha.coreos.com/backend-type":                  "vxlan",
		"flannel.alpha.coreos.com/public-ip":                     info.InternalIPs[0],
		"k3s.io/hostname":                                        strings.ToLower(hostname()),
		"k3s.io/internal-ip":                                     strings.Join(info.InternalIPs, ","),
		"k3s.io/node-args":                                       string(args),
		"k3s.io/node-config-hash":                                strings.ToUpper(hashCA(args)[:52]),
		"node.alpha.kubernetes.io/ttl":                           "0",
		"volumes.kubernetes.io/controller-managed-attach-detach": "true",
	}
	if len(info.ExternalIPs) > 0 {
		info.Annotations["k3s.io/external-ip"] = strings.Join(info.ExternalIPs, ",")
	}
	return info, nil
}

// parseTaint reads "key=value:Effect" or "key:Effect".
func parseTaint(s string) (taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return taint{}, fmt.Errorf("invalid taint spec: %s", s)
	}
	switch effect {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		return taint{}, fmt.Errorf("invalid taint effect: %s, unsupported taint effect", effect)
	}
	k, v, _ := strings.Cut(kv, "=")
	if k == "" {
		return taint{}, fmt.Errorf("invalid taint spec: %s", s)
	}
	return taint{Key: k, Value: v, Effect: effect}, nil
}

func memTotalKi() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func logKubeletStart(dataDir, name string, ips []net.IP) {
	agentDir := displayPath(filepath.Join(dataDir, "agent"))
	infof("Module overlay was already loaded")
	infof("Module nf_conntrack was already loaded")
	infof("Module br_netfilter was already loaded")
	infof("Logging containerd to %s/containerd/containerd.log", agentDir)
	infof("Running containerd -c %s/etc/containerd/config.toml -a /run/k3s/containerd/containerd.sock --state /run/k3s/containerd --root %s/containerd", agentDir, agentDir)
	infof("containerd is now running")
	infof("Running kubelet --address=0.0.0.0 --anonymous-auth=false --authentication-token-webhook=true --authorization-mode=Webhook --cgroup-driver=systemd --client-ca-file=%s/client-ca.crt --cloud-provider=external --cluster-dns=10.43.0.10 --cluster-domain=cluster.local --container-runtime-endpoint=unix:///run/k3s/containerd/containerd.sock --hostname-override=%s --kubeconfig=%s/kubelet.kubeconfig --node-ip=%s --node-labels= --pod-manifest-path=%s/pod-manifests --read-only-port=0 --resolv-conf=/etc/resolv.conf --serialize-image-pulls=false --tls-cert-file=%s/serving-kubelet.crt --tls-private-key-file=%s/serving-kubelet.key",
		agentDir, name, agentDir, joinIPs(ips), agentDir, agentDir, agentDir)
}

func joinIPs(ips []net.IP) string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return strings.Join(s, ",")
}

// runLocalNode is a server's own kubelet: it registers with the local
// datastore and keeps its heartbeat, like any agent.
func (s *server) runLocalNode() {
	pw, err := ensureNodePassword()
	if err != nil {
		errorf("Failed to read node password: %v", err)
		return
	}
	roles := []string{"control-plane", "master"}
	if s.st.d.Mode == "etcd" {
		roles = append(roles, "etcd")
	}
	info, err := buildNodeInfo(s.o, s.nodeName, s.nodeIPs, s.externalIP, roles)
	if err != nil {
		fatalf("%v", err)
	}
	logKubeletStart(s.dataDir, s.nodeName, s.nodeIPs)
	for {
		if !s.quorum() {
			time.Sleep(time.Second)
			continue
		}
		code, err := s.registerNode(info, pw)
		if err == nil {
			break
		}
		if code == http.StatusForbidden {
			err = passwordRejected()
		}
		infof("Waiting to retrieve agent configuration; server is not ready: %v", err)
		time.Sleep(heartbeatInterval)
	}
	infof("Annotations and labels have been set successfully on node: %s", s.nodeName)
	infof("Starting flannel with backend vxlan")
	for {
		time.Sleep(heartbeatInterval)
		if code, err := s.heartbeat(s.nodeName, pw); err != nil {
			if code == http.StatusNotFound {
				errorf("Error updating node status, will retry: error getting node %q: nodes %q not found", s.nodeName, s.nodeName)
				// The Node was deleted while this node runs: register again.
				if !s.quorum() {
					continue
				}
				if _, err := s.registerNode(info, pw); err == nil {
					infof("Successfully registered node %s", s.nodeName)
				}
			} else {
				errorf("Error updating node status, will retry: %v", err)
			}
		}
	}
}

// lbState is the agent's list of servers, kept on disk as k3s keeps
// agent/etc/k3s-agent-load-balancer.json.
type lbState struct {
	ServerURL       string   `json:"ServerURL"`
	ServerAddresses []string `json:"ServerAddresses"`
	Listener        any      `json:"Listener"`
}

type agent struct {
	o        *opts
	dataDir  string
	agentDir string
	server   string // configured server URL
	token    joinToken
	name     string
	ips, ext []net.IP
	pw       string
	lb       lbState
	current  int
	ca       []byte
	client   *http.Client
}

func runAgent(o *opts) {
	a := &agent{o: o}
	token := o.str("token")
	if token == "" && o.str("token-file") != "" {
		b, err := os.ReadFile(hostPath(o.str("token-file")))
		if err != nil {
			fatalf("%v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		fatalf("--token is required")
	}
	if o.str("server") == "" {
		fatalf("--server is required")
	}
	infof("Starting k3s agent %s (%s)", version, shortCommit())
	logProxyEnv()
	base, err := normalizeServerURL(o.str("server"))
	if err != nil {
		fatalf("%v", err)
	}
	a.server = base
	t, err := parseToken(token)
	if err != nil {
		fatalf("%v", err)
	}
	a.token = t
	a.dataDir = hostPath(o.str("data-dir"))
	a.agentDir = filepath.Join(a.dataDir, "agent")
	if err := os.MkdirAll(filepath.Join(a.agentDir, "etc"), 0o700); err != nil {
		fatalf("%v", err)
	}
	if a.name, a.ips, a.ext, err = nodeIdentity(o); err != nil {
		fatalf("%v", err)
	}
	a.loadLB()
	go watchImages(filepath.Join(a.agentDir, "images"))

	a.validate()
	logKubeletStart(a.dataDir, a.name, a.ips)
	info, err := buildNodeInfo(o, a.name, a.ips, a.ext, nil)
	if err != nil {
		fatalf("%v", err)
	}
	for {
		err := a.register(info)
		if err == nil {
			break
		}
		infof("Waiting to retrieve agent configuration; server is not ready: %v", err)
		time.Sleep(heartbeatInterval)
	}
	host := strings.TrimPrefix(a.currentURL(), "https://")
	infof("Connecting to proxy url=\"wss://%s/v1-k3s/connect\"", host)
	infof("Remotedialer connected to proxy url=\"wss://%s/v1-k3s/connect\"", host)
	infof("Annotations and labels have been set successfully on node: %s", a.name)
	infof("Starting flannel with backend vxlan")
	sdNotify("READY=1\n")
	go a.heartbeatLoop(info)
	waitForSignal()
}

func (a *agent) lbFile() string {
	return filepath.Join(a.agentDir, "etc", "k3s-agent-load-balancer.json")
}

func (a *agent) loadLB() {
	host := strings.TrimPrefix(a.server, "https://")
	a.lb = lbState{ServerURL: a.server, ServerAddresses: []string{host}}
	if b, err := os.ReadFile(a.lbFile()); err == nil {
		var saved lbState
		if json.Unmarshal(b, &saved) == nil && saved.ServerURL == a.server && len(saved.ServerAddresses) > 0 {
			a.lb.ServerAddresses = saved.ServerAddresses
		}
	}
	for _, s := range a.lb.ServerAddresses {
		infof("Adding server to load balancer k3s-agent-load-balancer: %s", s)
	}
	infof("Running load balancer k3s-agent-load-balancer 127.0.0.1:%d -> [%s] [default: %s]",
		a.o.integer("lb-server-port"), strings.Join(a.lb.ServerAddresses, " "), host)
	a.saveLB()
}

func (a *agent) saveLB() {
	b, _ := json.Marshal(&a.lb)
	_ = writeFileAtomic(a.lbFile(), b, 0o600)
}

// candidates are the server URLs to try: the current one first, then the
// others in order, then the configured server.
func (a *agent) candidates() []string {
	var out []string
	n := len(a.lb.ServerAddresses)
	for i := 0; i < n; i++ {
		out = append(out, "https://"+a.lb.ServerAddresses[(a.current+i)%n])
	}
	found := false
	for _, u := range out {
		if u == a.server {
			found = true
		}
	}
	if !found {
		out = append(out, a.server)
	}
	return out
}

func (a *agent) currentURL() string {
	if len(a.lb.ServerAddresses) == 0 {
		return a.server
	}
	return "https://" + a.lb.ServerAddresses[a.current%len(a.lb.ServerAddresses)]
}

func (a *agent) use(u string) {
	host := strings.TrimPrefix(u, "https://")
	for i, s := range a.lb.ServerAddresses {
		if s == host {
			if i != a.current {
				infof("Updated load balancer k3s-agent-load-balancer default server: %s", host)
			}
			a.current = i
			return
		}
	}
}

// validate fetches /cacerts and checks it against the token, retrying every
// two seconds for as long as it takes, as k3s does.
func (a *agent) validate() {
	for {
		var lastErr error
		for _, u := range a.candidates() {
			ca, err := getCACerts(u)
			if err == nil {
				err = a.token.validateCAHash(ca)
			}
			if err == nil {
				if a.token.caHash == "" {
					warnf("Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a CA hash. Use the full token from the server's node-token file to enable Cluster CA validation.")
				}
				a.ca = ca
				a.client = caClient(ca, 5*time.Second)
				a.use(u)
				return
			}
			lastErr = err
			var he *httpError
			if !errors.As(err, &he) && strings.Contains(err.Error(), "token CA hash") {
				break
			}
		}
		errorf("Failed to validate connection to cluster at %s: %v", a.server, lastErr)
		time.Sleep(2 * time.Second)
	}
}

func (a *agent) headers() map[string]string {
	return map[string]string{
		"k3s-Node-Name":     a.name,
		"k3s-Node-Password": a.pw,
		"k3s-Node-IP":       joinIPs(a.ips),
	}
}

// register fetches the agent's configuration and certificates and registers
// the node, against the first server that answers.
func (a *agent) register(info nodeInfo) error {
	pw, err := ensureNodePassword()
	if err != nil {
		return err
	}
	a.pw = pw
	var lastErr error
	for _, u := range a.candidates() {
		err := a.registerWith(u, info)
		if err == nil {
			a.use(u)
			a.refreshServers(u)
			return nil
		}
		lastErr = err
		var he *httpError
		if errors.As(err, &he) && he.code != http.StatusServiceUnavailable {
			break
		}
		if errors.Is(err, errRejected) {
			break
		}
	}
	return lastErr
}

var errRejected = errors.New("rejected")

type rejectedError struct{}

func (rejectedError) Error() string   { return passwordRejected().Error() }
func (rejectedError) Is(t error) bool { return t == errRejected }

func (a *agent) registerWith(u string, info nodeInfo) error {
	pass := a.token.password
	if _, err := do(a.client, http.MethodGet, u+"/v1-k3s/config", "node", pass, nil, nil); err != nil {
		return fmt.Errorf("failed to retrieve configuration from server: %w", err)
	}
	for _, f := range []string{"client-ca.crt", "server-ca.crt"} {
		b, err := do(a.client, http.MethodGet, u+"/v1-k3s/"+f, "node", pass, nil, nil)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(a.agentDir, f), b, 0o600); err != nil {
			return err
		}
	}
	for _, f := range []string{"serving-kubelet", "client-kubelet"} {
		b, err := do(a.client, http.MethodGet, u+"/v1-k3s/"+f+".crt", "node", pass, a.headers(), nil)
		if err != nil {
			var he *httpError
			if errors.As(err, &he) && he.code == http.StatusForbidden {
				return rejectedError{}
			}
			return err
		}
		crt, key := splitPEM(b)
		if err := writeFileAtomic(filepath.Join(a.agentDir, f+".crt"), crt, 0o600); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(a.agentDir, f+".key"), key, 0o600); err != nil {
			return err
		}
	}
	body, _ := json.Marshal(info)
	if _, err := do(a.client, http.MethodPost, u+"/v1-k3s/sim/node", "node", pass, a.headers(), body); err != nil {
		var he *httpError
		if errors.As(err, &he) && he.code == http.StatusForbidden {
			return rejectedError{}
		}
		return err
	}
	return nil
}

func splitPEM(b []byte) (cert, key []byte) {
	s := string(b)
	i := strings.Index(s, "-----BEGIN EC PRIVATE KEY-----")
	if i < 0 {
		return b, nil
	}
	return []byte(s[:i]), []byte(s[i:])
}

// refreshServers learns the cluster's servers, so that the agent can fall
// back on another when its server goes away.
func (a *agent) refreshServers(u string) {
	b, err := do(a.client, http.MethodGet, u+"/v1-k3s/apiservers", "node", a.token.password, nil, nil)
	if err != nil {
		return
	}
	var list []string
	if json.Unmarshal(b, &list) != nil || len(list) == 0 {
		return
	}
	cur := strings.TrimPrefix(a.currentURL(), "https://")
	known := map[string]bool{}
	for _, s := range a.lb.ServerAddresses {
		known[s] = true
	}
	changed := len(list) != len(a.lb.ServerAddresses)
	for _, s := range list {
		if !known[s] {
			changed = true
		}
	}
	if !changed {
		return
	}
	for _, s := range list {
		if !known[s] {
			infof("Adding server to load balancer k3s-agent-load-balancer: %s", s)
		}
	}
	a.lb.ServerAddresses = list
	a.current = 0
	a.use("https://" + cur)
	a.saveLB()
}

func (a *agent) heartbeatLoop(info nodeInfo) {
	body, _ := json.Marshal(nodeInfo{Name: a.name})
	lastRefresh := time.Now()
	failing := false
	for {
		time.Sleep(heartbeatInterval)
		var lastErr error
		ok := false
		for _, u := range a.candidates() {
			_, err := do(a.client, http.MethodPost, u+"/v1-k3s/sim/heartbeat", "node", a.token.password, a.headers(), body)
			if err == nil {
				a.use(u)
				ok = true
				if time.Since(lastRefresh) >= 10*time.Second {
					a.refreshServers(u)
					lastRefresh = time.Now()
				}
				break
			}
			lastErr = err
			var he *httpError
			if errors.As(err, &he) && he.code == http.StatusNotFound {
				break
			}
		}
		switch {
		case ok && failing:
			infof("Node status update succeeded via %s", a.currentURL())
			failing = false
		case !ok:
			var he *httpError
			if errors.As(lastErr, &he) && he.code == http.StatusNotFound {
				errorf("Error updating node status, will retry: error getting node %q: nodes %q not found", a.name, a.name)
				// The Node was deleted while this node runs: register again.
				if err := a.register(info); err == nil {
					infof("Successfully registered node %s", a.name)
					failing = false
					continue
				}
			} else {
				errorf("Error updating node status, will retry: %v", lastErr)
			}
			failing = true
		}
	}
}

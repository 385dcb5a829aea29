package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (s *server) handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/cacerts":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(s.serverCA.certPEM)
	case p == "/ping":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("pong"))
	case p == "/db/snapshot":
		s.handleSnapshot(w, r)
	case strings.HasPrefix(p, "/v1-k3s/"):
		s.supervisor(w, r)
	default:
		s.kubeAPI(w, r)
	}
}

// supervisorUser authenticates the k3s join endpoints: basic auth with the
// token password as user "server" or "node", or a client certificate from
// the cluster's client CA.
func (s *server) supervisorUser(r *http.Request) string {
	if u, p, ok := r.BasicAuth(); ok {
		switch {
		case u == "server" && p == s.st.d.ServerPassword:
			return "server"
		case u == "node" && (p == s.st.d.AgentPassword || p == s.st.d.ServerPassword):
			return "node"
		}
		return ""
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		for _, o := range r.TLS.PeerCertificates[0].Subject.Organization {
			switch o {
			case "system:masters":
				return "server"
			case "system:nodes":
				return "node"
			}
		}
	}
	return ""
}

type supervisorConfig struct {
	Critical       map[string]string `json:"critical"`
	AgentTokenHash string            `json:"agentTokenHash,omitempty"`
	HTTPSPort      int               `json:"httpsPort"`
	ServiceIP      string            `json:"serviceIP"`
	ClusterDNS     string            `json:"clusterDNS"`
	ClusterDomain  string            `json:"clusterDomain"`
}

func (s *server) supervisor(w http.ResponseWriter, r *http.Request) {
	user := s.supervisorUser(r)
	if user == "" {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1-k3s")
	serverOnly := map[string]bool{"/server-bootstrap": true, "/sim/state": true, "/sim/join": true, "/sim/promote": true}
	if serverOnly[p] && user != "server" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	if user == "server" {
		s.sawMember(r.Header.Get("k3s-Member-Name"))
	}
	switch p {
	case "/server-bootstrap":
		s.handleBootstrap(w, r)
	case "/sim/state":
		s.writeState(w)
	case "/sim/join":
		if r.Method != http.MethodPost {
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		s.handleJoin(w, r)
	case "/sim/promote":
		if r.Method != http.MethodPost {
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		s.handlePromote(w, r)
	case "/config":
		cfg := supervisorConfig{Critical: s.st.d.Critical, HTTPSPort: s.port, ServiceIP: serviceIP(s.o).String(),
			ClusterDNS: s.st.d.Critical["cluster-dns"], ClusterDomain: s.st.d.Critical["cluster-domain"]}
		if s.st.d.AgentPassword != s.st.d.ServerPassword {
			cfg.AgentTokenHash = hashCA([]byte(s.st.d.AgentPassword))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&cfg)
	case "/readyz":
		if !s.apiUp.Load() || !s.quorum() {
			http.Error(w, "runtime core not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	case "/apiservers":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.apiServers())
	case "/server-ca.crt":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(s.serverCA.certPEM)
	case "/client-ca.crt":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(s.clientCA.certPEM)
	case "/serving-kubelet.crt", "/client-kubelet.crt":
		name := r.Header.Get("k3s-Node-Name")
		if code, err := s.checkNodePassword(name, r.Header.Get("k3s-Node-Password")); err != nil {
			http.Error(w, err.Error(), code)
			return
		}
		spec := leafSpec{cn: "system:node:" + name, orgs: []string{"system:nodes"}, client: true}
		ca := s.clientCA
		if p == "/serving-kubelet.crt" {
			spec = leafSpec{cn: name, dns: []string{name, "localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}, server: true}
			for _, v := range strings.Split(r.Header.Get("k3s-Node-IP"), ",") {
				if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
					spec.ips = append(spec.ips, ip)
				}
			}
			ca = s.serverCA
		}
		c := ca.sign(spec)
		_, _ = w.Write(append(append([]byte(nil), c.certPEM...), c.keyPEM...))
	case "/sim/node", "/sim/heartbeat":
		if r.Method != http.MethodPost {
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		if !s.apiUp.Load() || !s.quorum() {
			http.Error(w, "apiserver not ready", http.StatusServiceUnavailable)
			return
		}
		var info nodeInfo
		if err := json.NewDecoder(r.Body).Decode(&info); err != nil || info.Name == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		pw := r.Header.Get("k3s-Node-Password")
		var code int
		var err error
		if p == "/sim/node" {
			code, err = s.registerNode(info, pw)
		} else {
			code, err = s.heartbeat(info.Name, pw)
		}
		if err != nil {
			http.Error(w, err.Error(), code)
			return
		}
		_, _ = w.Write([]byte("ok"))
	default:
		http.NotFound(w, r)
	}
}

// apiServers lists the voting servers' addresses, which agents keep to fall
// back on when their server goes away.
func (s *server) apiServers() []string {
	if s.st.d.Mode != "etcd" {
		self := net.JoinHostPort(s.advertise.String(), strconv.Itoa(s.port))
		out := []string{self}
		// Servers sharing an external datastore each keep a record of
		// their address there, renewed while they run.
		for _, o := range s.st.objects(apiServerRes, "") {
			addr, _ := o.Object["address"].(string)
			renewed, _ := time.Parse(time.RFC3339, strField(o.Object, "renewed"))
			if addr != "" && addr != self && time.Since(renewed) < apiServerTTL {
				out = append(out, addr)
			}
		}
		sort.Strings(out[1:])
		return out
	}
	var out []string
	for _, m := range s.st.liveMembers() {
		if m.Learner {
			continue
		}
		if u, err := url.Parse(m.URL); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}

func hashPassword(pw string) string {
	d := sha256.Sum256([]byte("k3s-node-password:" + pw))
	return hex.EncodeToString(d[:])
}

func (s *server) checkNodePassword(name, pw string) (int, error) {
	if name == "" {
		return http.StatusBadRequest, fmt.Errorf("header k3s-Node-Name is required")
	}
	n, ok := s.st.node(name)
	if ok && n.PasswordHash != "" && n.PasswordHash != hashPassword(pw) {
		warnf("Node password validation failed for '%s': unable to verify password for node %s: hash does not match", name, name)
		return http.StatusForbidden, fmt.Errorf("unable to verify password for node %s: hash does not match", name)
	}
	return http.StatusOK, nil
}

// nodeInfo is what a kubelet reports when it registers.
type nodeInfo struct {
	Name           string            `json:"name"`
	Hostname       string            `json:"hostname"`
	InternalIPs    []string          `json:"internalIPs"`
	ExternalIPs    []string          `json:"externalIPs"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations"`
	Taints         []taint           `json:"taints"`
	KubeletVersion string            `json:"kubeletVersion"`
	OSImage        string            `json:"osImage"`
	Kernel         string            `json:"kernel"`
	Arch           string            `json:"arch"`
	CPUs           int               `json:"cpus"`
	MemoryKi       int64             `json:"memoryKi"`
	// Roles are the node-role.kubernetes.io labels k3s itself sets on a
	// server's node (control-plane, master, etcd).
	Roles []string `json:"roles,omitempty"`
}

// kubeletLabels are the labels the kubelet owns and refreshes each time it
// registers, also on a Node that already exists.
var kubeletLabels = []string{
	"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "node.kubernetes.io/instance-type",
	"beta.kubernetes.io/os", "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type",
}

// refreshLabels is what a restarted node does to the labels of its existing
// Node: the kubelet's own labels and k3s's role labels are set again;
// everything else, node-label values among them, stays as it is.
func refreshLabels(cur map[string]string, info nodeInfo) map[string]string {
	out := map[string]string{}
	for k, v := range cur {
		out[k] = v
	}
	for _, k := range kubeletLabels {
		if v, ok := info.Labels[k]; ok {
			out[k] = v
		}
	}
	for _, r := range info.Roles {
		out["node-role.kubernetes.io/"+r] = "true"
	}
	return out
}

func mergeStrings(cur, add map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range cur {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}

func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *server) registerNode(info nodeInfo, pw string) (int, error) {
	hash := hashPassword(pw)
	code, err := http.StatusOK, error(nil)
	s.st.updateNode(info.Name, func(n *nodeRec, exists bool) bool {
		if exists && n.PasswordHash != "" && n.PasswordHash != hash {
			code, err = http.StatusForbidden, fmt.Errorf("unable to verify password for node %s: hash does not match", info.Name)
			return false
		}
		now := time.Now().UTC()
		if !exists {
			*n = nodeRec{Name: info.Name, UID: newUID(), Created: now,
				PodCIDR: fmt.Sprintf("10.42.%d.0/24", len(s.st.d.Nodes)%256)}
			infof("Registered node %s", info.Name)
		}
		n.PasswordHash = hash
		n.Hostname, n.InternalIPs, n.ExternalIPs = info.Hostname, info.InternalIPs, info.ExternalIPs
		if !exists {
			n.Labels, n.Annotations, n.Taints = info.Labels, info.Annotations, info.Taints
		} else {
			n.Labels, n.Annotations = refreshLabels(n.Labels, info), mergeStrings(n.Annotations, info.Annotations)
		}
		n.KubeletVersion, n.OSImage, n.Kernel, n.Arch = info.KubeletVersion, info.OSImage, info.Kernel, info.Arch
		n.Runtime, n.CPUs, n.MemoryKi = containerRuntime, info.CPUs, info.MemoryKi
		// k3s's controllers hold every Node: its node controller (node
		// password, CoreDNS hosts) and, with embedded etcd, the etcd member
		// controller.
		if n.DeletionTimestamp.IsZero() {
			n.Finalizers = []string{"wrangler.cattle.io/node"}
			if s.st.d.Mode == "etcd" {
				n.Finalizers = []string{"wrangler.cattle.io/managed-etcd-controller", "wrangler.cattle.io/node"}
			}
		}
		n.Deleted = false
		n.Updated, n.Heartbeat, n.ReadySince, n.StatusUpdated = now, now, now, now
		return true
	})
	if err != nil {
		warnf("Node password validation failed for '%s': %v", info.Name, err)
	}
	return code, err
}

func (s *server) heartbeat(name, pw string) (int, error) {
	hash := hashPassword(pw)
	code, err := http.StatusOK, error(nil)
	s.st.updateNode(name, func(n *nodeRec, exists bool) bool {
		if !exists {
			code, err = http.StatusNotFound, fmt.Errorf("nodes %q not found", name)
			return false
		}
		if n.PasswordHash != "" && n.PasswordHash != hash {
			code, err = http.StatusForbidden, fmt.Errorf("unable to verify password for node %s: hash does not match", name)
			return false
		}
		now := time.Now().UTC()
		if now.Sub(n.Heartbeat) >= nodeGrace() {
			// Back after being marked NotReady: Ready changes now.
			n.ReadySince, n.Updated, n.StatusUpdated = now, now, now
		}
		n.Heartbeat = now
		return true
	})
	return code, err
}

// --- Kubernetes API ---

type statusJSON struct {
	Kind       string         `json:"kind"`
	APIVersion string         `json:"apiVersion"`
	Metadata   struct{}       `json:"metadata"`
	Status     string         `json:"status"`
	Message    string         `json:"message"`
	Reason     string         `json:"reason,omitempty"`
	Details    map[string]any `json:"details,omitempty"`
	Code       int            `json:"code"`
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string, details map[string]any) {
	st := statusJSON{Kind: "Status", APIVersion: "v1", Status: "Failure", Message: msg, Reason: reason, Details: details, Code: code}
	if code < 300 {
		st.Status = "Success"
	}
	writeJSON(w, code, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func notFound(w http.ResponseWriter) {
	writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource", map[string]any{})
}

func (s *server) kubeAPI(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized", nil)
		return
	}
	if !s.apiUp.Load() {
		writeStatus(w, http.StatusServiceUnavailable, "ServiceUnavailable", "apiserver not ready", nil)
		return
	}
	if !s.quorum() {
		writeStatus(w, http.StatusServiceUnavailable, "ServiceUnavailable", "etcdserver: no leader", nil)
		return
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	objectPath := strings.HasPrefix(p, "/api/v1/namespaces/") || strings.HasPrefix(p, "/apis/policy/v1/")
	nodeWrite := (r.Method == http.MethodDelete || r.Method == http.MethodPatch) && strings.HasPrefix(p, "/api/v1/nodes/")
	if r.Method != http.MethodGet && !nodeWrite && !objectPath {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource", nil)
		return
	}
	switch {
	case p == "/version":
		major, minor := kubeMajorMinor()
		writeJSON(w, 200, map[string]string{
			"major": major, "minor": minor, "gitVersion": version, "gitCommit": gitCommit(),
			"gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": runtime.Version(),
			"compiler": "gc", "platform": "linux/" + runtime.GOARCH,
		})
	case p == "/healthz" || p == "/livez" || p == "/readyz" || strings.HasPrefix(p, "/healthz/") ||
		strings.HasPrefix(p, "/livez/") || strings.HasPrefix(p, "/readyz/"):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, ok := r.URL.Query()["verbose"]; ok {
			base := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0]
			_, _ = fmt.Fprintf(w, "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]poststarthook/start-apiserver-admission-initializer ok\n%s check passed\n", base)
			return
		}
		_, _ = w.Write([]byte("ok"))
	case p == "/api":
		writeJSON(w, 200, map[string]any{"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []map[string]string{{"clientCIDR": "0.0.0.0/0",
				"serverAddress": net.JoinHostPort(s.advertise.String(), strconv.Itoa(s.port))}}})
	case p == "/apis":
		writeJSON(w, 200, map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": []any{policyGroup()}})
	case p == "/apis/policy":
		g := policyGroup()
		g["kind"], g["apiVersion"] = "APIGroup", "v1"
		writeJSON(w, 200, g)
	case p == "/apis/policy/v1":
		writeJSON(w, 200, map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "policy/v1", "resources": []any{
			resEntry(pdbRes, true, []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}),
			map[string]any{"name": "poddisruptionbudgets/status", "singularName": "", "namespaced": true, "kind": "PodDisruptionBudget", "verbs": []string{"get", "patch", "update"}},
		}})
	case p == "/apis/policy/v1/poddisruptionbudgets":
		s.objectsAPI(w, r, pdbRes, "", "", "")
	case strings.HasPrefix(p, "/apis/policy/v1/namespaces/"):
		rest := strings.Split(strings.TrimPrefix(p, "/apis/policy/v1/namespaces/"), "/")
		if len(rest) < 2 || len(rest) > 4 || rest[1] != "poddisruptionbudgets" {
			notFound(w)
			return
		}
		rest = append(rest, "", "")
		s.objectsAPI(w, r, pdbRes, rest[0], rest[2], rest[3])
	case p == "/openapi/v3" || strings.HasPrefix(p, "/openapi/v3/"):
		s.openAPI(w, r, p)
	case p == "/api/v1":
		writeJSON(w, 200, apiResources())
	case p == "/api/v1/nodes":
		s.listNodes(w, r)
	case strings.HasPrefix(p, "/api/v1/nodes/"):
		rest := strings.TrimPrefix(p, "/api/v1/nodes/")
		name, sub, _ := strings.Cut(rest, "/")
		if sub != "" && sub != "status" {
			notFound(w)
			return
		}
		if r.Method == http.MethodDelete {
			s.deleteNode(w, name)
			return
		}
		if r.Method == http.MethodPatch {
			s.patchNode(w, r, name)
			return
		}
		s.getNode(w, r, name)
	case p == "/api/v1/namespaces":
		s.listNamespaces(w, r)
	case strings.HasPrefix(p, "/api/v1/namespaces/"):
		rest := strings.Split(strings.TrimPrefix(p, "/api/v1/namespaces/"), "/")
		switch {
		case len(rest) == 1 && r.Method == http.MethodGet:
			s.getNamespace(w, r, rest[0])
		case len(rest) >= 2 && len(rest) <= 4 && (rest[1] == "pods" || rest[1] == "configmaps"):
			d := podsRes
			if rest[1] == "configmaps" {
				d = cmRes
			}
			rest = append(rest, "", "")
			s.objectsAPI(w, r, d, rest[0], rest[2], rest[3])
		case r.Method != http.MethodGet:
			writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource", nil)
		default:
			notFound(w)
		}
	case p == "/api/v1/pods":
		s.objectsAPI(w, r, podsRes, "", "", "")
	case p == "/api/v1/configmaps":
		s.objectsAPI(w, r, cmRes, "", "", "")
	default:
		notFound(w)
	}
}

func apiResources() map[string]any {
	res := func(name, singular, kind string, namespaced bool, short []string, verbs []string) map[string]any {
		m := map[string]any{"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs}
		if len(short) > 0 {
			m["shortNames"] = short
		}
		return m
	}
	return map[string]any{
		"kind": "APIResourceList", "groupVersion": "v1",
		"resources": []any{
			res("namespaces", "namespace", "Namespace", false, []string{"ns"}, []string{"create", "delete", "get", "list", "patch", "update", "watch"}),
			res("nodes", "node", "Node", false, []string{"no"}, []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}),
			res("nodes/status", "", "Node", false, nil, []string{"get", "patch", "update"}),
			res("pods", "pod", "Pod", true, []string{"po"}, []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}),
			map[string]any{"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": []string{"create"}},
			res("pods/status", "", "Pod", true, nil, []string{"get", "patch", "update"}),
			res("configmaps", "configmap", "ConfigMap", true, []string{"cm"}, []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}),
		},
	}
}

func policyGroup() map[string]any {
	v := map[string]string{"groupVersion": "policy/v1", "version": "v1"}
	return map[string]any{"name": "policy", "versions": []any{v}, "preferredVersion": v}
}

func resEntry(d resDef, namespaced bool, verbs []string) map[string]any {
	return map[string]any{"name": d.plural, "singularName": d.singular, "namespaced": namespaced, "kind": d.kind, "verbs": verbs, "shortNames": d.short}
}

// wantsTable reports whether the client asked for server-side printing,
// which kubectl does for "get" unless an output format needs whole objects.
func wantsTable(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "as=Table")
}

func (s *server) filteredNodes(r *http.Request) ([]nodeRec, error) {
	q := r.URL.Query()
	ls, err := parseSelector(q.Get("labelSelector"))
	if err != nil {
		return nil, err
	}
	fs, err := parseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, err
	}
	var out []nodeRec
	for _, n := range s.st.nodes() {
		labels := n.Labels
		if !ls.matches(func(k string) (string, bool) { v, ok := labels[k]; return v, ok }) {
			continue
		}
		name := n.Name
		unsched := strconv.FormatBool(n.Unschedulable)
		if !fs.matches(func(k string) (string, bool) {
			switch k {
			case "metadata.name":
				return name, true
			case "spec.unschedulable":
				return unsched, true
			}
			return "", false
		}) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func rowObject(r *http.Request, n *nodeRec, now time.Time) any {
	switch r.URL.Query().Get("includeObject") {
	case "None":
		return nil
	case "Object":
		return n.render(now)
	}
	o := n.render(now)
	return map[string]any{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.Metadata}
}

func (s *server) nodeTable(r *http.Request, nodes []nodeRec, rv int64) table {
	now := time.Now()
	t := table{Kind: "Table", APIVersion: "meta.k8s.io/v1", Metadata: listMeta{ResourceVersion: strconv.FormatInt(rv, 10)},
		ColumnDefinitions: nodeColumns, Rows: []tableRow{}}
	for i := range nodes {
		t.Rows = append(t.Rows, tableRow{Cells: nodes[i].cells(now), Object: rowObject(r, &nodes[i], now)})
	}
	return t
}

func (s *server) listNodes(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
		s.watchNodes(w, r)
		return
	}
	nodes, err := s.filteredNodes(r)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error(), nil)
		return
	}
	rv, _ := s.st.revision()
	if wantsTable(r) {
		writeJSON(w, 200, s.nodeTable(r, nodes, rv))
		return
	}
	now := time.Now()
	items := []nodeJSON{}
	for i := range nodes {
		o := nodes[i].render(now)
		o.Kind, o.APIVersion = "", ""
		items = append(items, o)
	}
	writeJSON(w, 200, map[string]any{"kind": "NodeList", "apiVersion": "v1",
		"metadata": listMeta{ResourceVersion: strconv.FormatInt(rv, 10)}, "items": items})
}

func (s *server) getNode(w http.ResponseWriter, r *http.Request, name string) {
	n, ok := s.st.node(name)
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("nodes %q not found", name), map[string]any{"name": name, "kind": "nodes"})
		return
	}
	if wantsTable(r) {
		rv, _ := s.st.revision()
		writeJSON(w, 200, s.nodeTable(r, []nodeRec{n}, rv))
		return
	}
	writeJSON(w, 200, n.render(time.Now()))
}

// deleteNode deletes a Node the way k3s's finalizers let it go: the node
// controller's finalizer (wrangler.cattle.io/node) is dropped at once with
// the node's password; the etcd member controller's
// (wrangler.cattle.io/managed-etcd-controller) first removes the etcd
// member of a server's node. That removal is made by another server: a
// server never removes itself ("not removing self from etcd cluster"), so
// the Node of the last etcd member stays Terminating. Pods bound to a
// deleted Node are removed by the pod garbage collector (scheduleLoop).
func (s *server) deleteNode(w http.ResponseWriter, name string) {
	var obj nodeJSON
	found, kept := false, false
	s.st.mu.Lock()
	var others []member
	for _, m := range s.st.d.Members {
		if !m.Removed && m.NodeName != name {
			others = append(others, *m)
		}
	}
	s.st.mu.Unlock()
	s.st.updateNode(name, func(n *nodeRec, exists bool) bool {
		if !exists {
			return false
		}
		found = true
		now := time.Now().UTC()
		if n.DeletionTimestamp.IsZero() {
			n.DeletionTimestamp = now
		}
		n.Updated = now
		etcdRole := n.Labels["node-role.kubernetes.io/etcd"] == "true" && hasString(n.Finalizers, "wrangler.cattle.io/managed-etcd-controller")
		if etcdRole && len(others) == 0 {
			n.Finalizers = []string{"wrangler.cattle.io/managed-etcd-controller"}
			obj = n.render(time.Now())
			kept = true
			return true
		}
		obj = n.render(time.Now())
		*n = nodeRec{Name: name, Deleted: true, Updated: now}
		return true
	})
	if !found {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("nodes %q not found", name), map[string]any{"name": name, "kind": "nodes"})
		return
	}
	if kept {
		errorf("error syncing '%s': handler managed-etcd-controller: not removing self from etcd cluster, requeuing", name)
		writeJSON(w, 200, obj)
		return
	}
	s.st.updateMembers(func(ms map[string]*member) bool {
		changed := false
		for _, m := range ms {
			if m.NodeName == name && !m.Removed {
				infof("Removing name=%s peerURL=%s from etcd cluster", m.Name, peerURL(m.URL))
				m.Removed, m.Updated, changed = true, time.Now().UTC(), true
			}
		}
		return changed
	})
	infof("Deleted node %s and its node password", name)
	writeJSON(w, 200, obj)
}

func hasString(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// watchNodes streams node changes until the client goes away or the
// requested timeout passes.
func (s *server) watchNodes(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeStatus(w, http.StatusInternalServerError, "InternalError", "streaming unsupported", nil)
		return
	}
	timeout := 30 * time.Minute
	if v, err := strconv.Atoi(r.URL.Query().Get("timeoutSeconds")); err == nil && v > 0 {
		timeout = time.Duration(v) * time.Second
	}
	deadline := time.After(timeout)
	table := wantsTable(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(200)
	fl.Flush()

	sent := map[string]string{}
	initial := r.URL.Query().Get("resourceVersion")
	first := true
	enc := json.NewEncoder(w)
	for {
		nodes, _ := s.filteredNodes(r)
		rv, changed := s.st.revision()
		now := time.Now()
		seen := map[string]bool{}
		for i := range nodes {
			n := &nodes[i]
			seen[n.Name] = true
			obj := n.render(now)
			digest := watchDigest(obj)
			prev, had := sent[n.Name]
			sent[n.Name] = digest
			if first && initial != "" && initial != "0" {
				continue
			}
			if had && prev == digest {
				continue
			}
			typ := "MODIFIED"
			if !had {
				typ = "ADDED"
			}
			var out any = obj
			if table {
				out = s.nodeTable(r, []nodeRec{*n}, rv)
			}
			if err := enc.Encode(map[string]any{"type": typ, "object": out}); err != nil {
				return
			}
		}
		for name := range sent {
			if !seen[name] {
				delete(sent, name)
				if err := enc.Encode(map[string]any{"type": "DELETED", "object": map[string]any{
					"kind": "Node", "apiVersion": "v1", "metadata": map[string]string{"name": name}}}); err != nil {
					return
				}
			}
		}
		first = false
		fl.Flush()
		if !waitWatch(r, deadline, changed) {
			return
		}
	}
}

// watchDigest identifies a node's state for a watch, leaving out the
// heartbeat time, which changes on every status update but is not news.
func watchDigest(o nodeJSON) string {
	conds := append([]nodeCondition(nil), o.Status.Conditions...)
	for i := range conds {
		conds[i].LastHeartbeatTime = ""
	}
	o.Status.Conditions = conds
	o.Metadata.ResourceVersion = ""
	b, _ := json.Marshal(o)
	return string(b)
}

var namespaces = []string{"default", "kube-node-lease", "kube-public", "kube-system"}

var nsColumns = []tableColumn{
	nodeColumns[0],
	{"Status", "string", "", "The status of the namespace", 0},
	nodeColumns[3],
}

var podColumns = []tableColumn{
	nodeColumns[0],
	{"Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0},
	{"Status", "string", "", "The aggregate status of the containers in this pod.", 0},
	{"Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0},
	nodeColumns[3],
	{"IP", "string", "", "The IP address assigned to the pod", 1},
	{"Node", "string", "", "The name of the node this pod is assigned to", 1},
	{"Nominated Node", "string", "", "The name of the node this pod is nominated to", 1},
	{"Readiness Gates", "string", "", "The readiness gates of this pod", 1},
}

func (s *server) nsObject(name string) map[string]any {
	return map[string]any{"kind": "Namespace", "apiVersion": "v1",
		"metadata": map[string]any{"name": name, "uid": newUIDFrom(s.st.d.ClusterID + name), "resourceVersion": "1",
			"creationTimestamp": rfc3339(s.clusterCreated()), "labels": map[string]string{"kubernetes.io/metadata.name": name}},
		"spec": map[string]any{"finalizers": []string{"kubernetes"}}, "status": map[string]string{"phase": "Active"}}
}

func (s *server) clusterCreated() time.Time {
	oldest := time.Now()
	for _, m := range s.st.liveMembers() {
		if m.Added.Before(oldest) {
			oldest = m.Added
		}
	}
	for _, n := range s.st.nodes() {
		if n.Created.Before(oldest) {
			oldest = n.Created
		}
	}
	return oldest
}

func newUIDFrom(seed string) string {
	d := sha256.Sum256([]byte(seed))
	h := hex.EncodeToString(d[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *server) listNamespaces(w http.ResponseWriter, r *http.Request) {
	if wantsTable(r) {
		t := table{Kind: "Table", APIVersion: "meta.k8s.io/v1", Metadata: listMeta{ResourceVersion: "1"}, ColumnDefinitions: nsColumns, Rows: []tableRow{}}
		age := humanDuration(time.Since(s.clusterCreated()))
		for _, n := range namespaces {
			obj := s.nsObject(n)
			t.Rows = append(t.Rows, tableRow{Cells: []any{n, "Active", age}, Object: map[string]any{
				"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}})
		}
		writeJSON(w, 200, t)
		return
	}
	var items []any
	for _, n := range namespaces {
		items = append(items, s.nsObject(n))
	}
	writeJSON(w, 200, map[string]any{"kind": "NamespaceList", "apiVersion": "v1", "metadata": listMeta{ResourceVersion: "1"}, "items": items})
}

func (s *server) getNamespace(w http.ResponseWriter, r *http.Request, name string) {
	i := sort.SearchStrings(namespaces, name)
	if i >= len(namespaces) || namespaces[i] != name {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("namespaces %q not found", name), map[string]any{"name": name, "kind": "namespaces"})
		return
	}
	if wantsTable(r) {
		obj := s.nsObject(name)
		writeJSON(w, 200, table{Kind: "Table", APIVersion: "meta.k8s.io/v1", Metadata: listMeta{ResourceVersion: "1"}, ColumnDefinitions: nsColumns,
			Rows: []tableRow{{Cells: []any{name, "Active", humanDuration(time.Since(s.clusterCreated()))}, Object: map[string]any{
				"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}}}})
		return
	}
	writeJSON(w, 200, s.nsObject(name))
}

// apiServerRes names the datastore records of the servers of a cluster on
// an external datastore; they are not served by the API.
const (
	apiServerRes = "sim-apiservers"
	apiServerTTL = time.Minute
)

// renewAPIServer records this server's address in the datastore.
func (s *server) renewAPIServer() {
	addr := net.JoinHostPort(s.advertise.String(), strconv.Itoa(s.port))
	s.st.updateObject(apiServerRes, "", s.nodeName, func(o *objRec, exists bool) bool {
		o.Object = map[string]any{"address": addr, "renewed": rfc3339(time.Now())}
		return true
	})
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type server struct {
	o          *opts
	dataDir    string // on the host (see hostPath)
	serverDir  string
	tlsDir     string
	nodeName   string
	nodeIPs    []net.IP
	externalIP []net.IP
	advertise  net.IP
	bindAddr   string
	port       int
	url        string // how peers and agents reach this server
	memberName string

	st       *store
	serverCA *certPair
	clientCA *certPair
	admin    *certPair
	serving  tls.Certificate

	apiUp      atomic.Bool // API answering (not only /cacerts and /ping)
	learnerEnd atomic.Int64

	pg *pgStore // external datastore, if datastore-endpoint is set

	peerMu sync.Mutex
	peerOK map[string]time.Time
	peerC  map[string]*http.Client
}

// failPrepare ends a server that cannot start, as k3s does: a fatal line and
// exit status 1, which systemd answers by restarting it.
func failPrepare(err error) {
	fatalf("starting kubernetes: preparing server: %v", err)
}

func runServer(o *opts) {
	s := &server{o: o, peerOK: map[string]time.Time{}, peerC: map[string]*http.Client{}}
	infof("Starting k3s %s (%s)", version, shortCommit())
	logProxyEnv()

	s.dataDir = hostPath(o.str("data-dir"))
	s.serverDir = filepath.Join(s.dataDir, "server")
	s.tlsDir = filepath.Join(s.serverDir, "tls")
	s.port = o.integer("https-listen-port")
	if s.port == 0 {
		s.port = 6443
	}
	s.bindAddr = o.str("bind-address")
	if err := s.resolveIdentity(); err != nil {
		fatalf("%v", err)
	}
	host := s.advertise.String()
	s.url = "https://" + net.JoinHostPort(host, strconv.Itoa(s.port))

	token, agentToken := s.readTokens()
	var tok, agentTok *joinToken
	if token != "" {
		t, err := parseToken(token)
		if err != nil {
			failPrepare(errors.New("failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>"))
		}
		tok = &t
	}
	if agentToken != "" {
		t, err := parseToken(agentToken)
		if err != nil {
			failPrepare(errors.New("failed to normalize agent token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>"))
		}
		agentTok = &t
	}

	etcdState := filepath.Join(s.serverDir, "db", "etcd", "member", "snap", "db")
	sqliteState := filepath.Join(s.serverDir, "db", "state.db")
	joining := false
	if o.boolean("cluster-reset") {
		s.clusterReset(tok, etcdState)
		return
	}
	switch {
	case o.str("datastore-endpoint") != "":
		s.startExternalDatastore(tok, agentTok)
	case fileExists(etcdState):
		st, err := loadStore(etcdState)
		if err != nil {
			failPrepare(fmt.Errorf("failed to read datastore: %w", err))
		}
		s.st = st
		infof("Managed etcd cluster bootstrap already complete and initialized")
		s.restoreCluster(tok)
	case fileExists(sqliteState):
		st, err := loadStore(sqliteState)
		if err != nil {
			failPrepare(fmt.Errorf("failed to read datastore: %w", err))
		}
		s.st = st
		if o.boolean("cluster-init") {
			infof("Migrating content from sqlite to etcd")
			s.st.path = etcdState
			s.st.mu.Lock()
			s.st.d.Mode = "etcd"
			s.memberName = s.newMemberName()
			now := time.Now().UTC()
			s.st.d.Members[s.memberName] = &member{Name: s.memberName, NodeName: s.nodeName, URL: s.url, Added: now, Updated: now}
			s.st.touch()
			s.st.mu.Unlock()
		} else {
			infof("Configuring sqlite3 database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s")
			infof("Database tables and indexes are up to date")
		}
		s.restoreCluster(tok)
	case o.str("server") != "":
		joining = true
		s.joinCluster(tok, agentTok, etcdState)
	default:
		mode := "sqlite"
		path := sqliteState
		if o.boolean("cluster-init") {
			mode, path = "etcd", etcdState
			infof("Managed etcd cluster initializing")
		} else {
			infof("Configuring sqlite3 database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s")
			infof("Configuring database table schema and indexes, this may take a moment...")
			infof("Database tables and indexes are up to date")
			infof("Kine available at unix://kine.sock")
		}
		s.newCluster(mode, path, tok, agentTok)
	}

	if s.st.d.Mode == "etcd" {
		s.ensureEtcdFiles()
	}
	if err := s.st.save(); err != nil {
		fatalf("failed to write datastore: %v", err)
	}
	s.writeBootstrapFiles()
	s.writeTokenFiles(agentTok != nil)
	s.writeCerts()
	s.writePackagedManifests()
	if _, err := ensureNodePassword(); err != nil {
		fatalf("failed to write node password: %v", err)
	}

	if s.pg != nil {
		// Serve with the cluster's registry, not an empty one.
		if err := s.pgSync(context.Background()); err != nil {
			errorf("Failed to sync with the datastore at %s: %v", redactEndpoint(s.pg.endpoint), err)
		}
		go s.pgLoop()
	}
	go s.saveLoop()
	s.startListener()
	if s.st.d.Mode == "etcd" {
		go s.syncLoop()
		if joining {
			base, _ := normalizeServerURL(o.str("server"))
			go s.promoteLater(base)
		}
	}
	go s.scheduleLoop()
	go watchManifests(filepath.Join(s.serverDir, "manifests"))
	go watchImages(filepath.Join(s.dataDir, "agent", "images"))

	infof("Running kube-apiserver --advertise-address=%s --advertise-port=%d --bind-address=127.0.0.1 --secure-port=6444 --service-cluster-ip-range=%s --tls-cert-file=%s",
		host, s.port, strings.Join(defaultList(o.list("service-cidr"), "10.43.0.0/16"), ","),
		displayPath(filepath.Join(s.tlsDir, "serving-kube-apiserver.crt")))
	infof("Tunnel server egress proxy mode: %s", o.str("egress-selector-mode"))
	infof("Waiting for API server to become available")
	s.waitQuorum()
	s.apiUp.Store(true)

	tokenPath := displayPath(filepath.Join(s.serverDir, "token"))
	joinHost := net.JoinHostPort(host, strconv.Itoa(s.port))
	infof("Server node token is available at %s", tokenPath)
	infof("To join server node to cluster: k3s server -s https://%s -t ${SERVER_NODE_TOKEN}", joinHost)
	infof("Agent node token is available at %s", displayPath(filepath.Join(s.serverDir, "agent-token")))
	infof("To join agent node to cluster: k3s agent -s https://%s -t ${AGENT_NODE_TOKEN}", joinHost)
	s.writeKubeconfig()
	infof("Wrote kubeconfig %s", displayPath(s.kubeconfigPath()))
	infof("Run: k3s kubectl")
	infof("k3s is up and running")
	sdNotify("READY=1\n")

	if !o.boolean("disable-agent") {
		go s.runLocalNode()
	}
	waitForSignal()
	_ = s.st.save()
}

func defaultList(l []string, def string) []string {
	if len(l) == 0 {
		return []string{def}
	}
	return l
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// resolveIdentity works out the node name and addresses as k3s does: the
// lower-cased hostname unless node-name is set, node-ip or the address of
// the default route.
func (s *server) resolveIdentity() error {
	name, ips, ext, err := nodeIdentity(s.o)
	if err != nil {
		return err
	}
	s.nodeName, s.nodeIPs, s.externalIP = name, ips, ext
	s.advertise = s.nodeIPs[0]
	if a := s.o.str("advertise-address"); a != "" {
		ip := net.ParseIP(a)
		if ip == nil {
			return fmt.Errorf("invalid advertise-address %q", a)
		}
		s.advertise = ip
	}
	return nil
}

func nodeIdentity(o *opts) (string, []net.IP, []net.IP, error) {
	name := o.str("node-name")
	if name == "" {
		name = hostname()
	}
	name = strings.ToLower(name)
	if o.boolean("with-node-id") {
		id, err := ensureNodeID()
		if err != nil {
			return "", nil, nil, err
		}
		name += "-" + id
	}
	var ips []net.IP
	for _, v := range o.list("node-ip") {
		ip := net.ParseIP(v)
		if ip == nil {
			return "", nil, nil, fmt.Errorf("invalid node-ip %q", v)
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 && o.str("flannel-iface") != "" {
		// As k3s does: the flannel interface's address is the node's.
		ip, err := interfaceIP(o.str("flannel-iface"))
		if err != nil {
			return "", nil, nil, err
		}
		ips = []net.IP{ip}
	}
	if len(ips) == 0 {
		ips = []net.IP{defaultRouteIP()}
	}
	var ext []net.IP
	for _, v := range o.list("node-external-ip") {
		ip := net.ParseIP(v)
		if ip == nil {
			return "", nil, nil, fmt.Errorf("invalid node-external-ip: invalid IP address %q", v)
		}
		ext = append(ext, ip)
	}
	return name, ips, ext, nil
}

func ensureNodePassword() (string, error) {
	p := hostPath(filepath.Join(nodeConfigDir, "password"))
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	pw := randomHex(16)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return pw, os.WriteFile(p, []byte(pw+"\n"), 0o600)
}

func ensureNodeID() (string, error) {
	p := hostPath(filepath.Join(nodeConfigDir, "id"))
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	id := randomHex(4)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return id, os.WriteFile(p, []byte(id+"\n"), 0o644)
}

func (s *server) readTokens() (string, string) {
	o := s.o
	token := o.str("token")
	if token == "" && o.str("token-file") != "" {
		b, err := os.ReadFile(hostPath(o.str("token-file")))
		if err != nil {
			fatalf("%v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		token = o.str("cluster-secret")
	}
	agent := o.str("agent-token")
	if agent == "" && o.str("agent-token-file") != "" {
		b, err := os.ReadFile(hostPath(o.str("agent-token-file")))
		if err != nil {
			fatalf("%v", err)
		}
		agent = strings.TrimSpace(string(b))
	}
	return token, agent
}

// criticalConfig holds the settings every server of a cluster must share.
func criticalConfig(o *opts) map[string]string {
	b := func(n string) string { return strconv.FormatBool(o.boolean(n)) }
	disables := o.list("disable")
	sort.Strings(disables)
	disables = uniq(disables)
	return map[string]string{
		"cluster-cidr":             strings.Join(defaultList(o.list("cluster-cidr"), "10.42.0.0/16"), ","),
		"service-cidr":             strings.Join(defaultList(o.list("service-cidr"), "10.43.0.0/16"), ","),
		"cluster-dns":              strings.Join(defaultList(o.list("cluster-dns"), "10.43.0.10"), ","),
		"cluster-domain":           o.str("cluster-domain"),
		"flannel-backend":          o.str("flannel-backend"),
		"disable-network-policy":   b("disable-network-policy"),
		"disable-helm-controller":  b("disable-helm-controller"),
		"disable-cloud-controller": b("disable-cloud-controller"),
		"disable":                  strings.Join(disables, ","),
		"egress-selector-mode":     o.str("egress-selector-mode"),
		"embedded-registry":        b("embedded-registry"),
		"secrets-encryption":       b("secrets-encryption"),
	}
}

func uniq(in []string) []string {
	var out []string
	for i, v := range in {
		if i == 0 || v != in[i-1] {
			out = append(out, v)
		}
	}
	return out
}

var bootstrapCAs = []string{"server-ca", "client-ca", "request-header-ca", "etcd/server-ca", "etcd/peer-ca"}

// newCluster creates the cluster's CAs and secrets. CA files already on disk
// (a custom CA) are used as they are.
func (s *server) newCluster(mode, path string, tok, agentTok *joinToken) {
	st := newStore(path)
	st.d.Mode = mode
	st.d.ClusterID = randomHex(8)
	for _, name := range bootstrapCAs {
		crt := filepath.Join(s.tlsDir, name+".crt")
		key := filepath.Join(s.tlsDir, name+".key")
		var p *certPair
		if fileExists(crt) && fileExists(key) {
			var err error
			if p, err = loadPair(crt, key); err != nil {
				failPrepare(fmt.Errorf("failed to load %s: %w", name, err))
			}
		} else {
			p = newCA("k3s-" + strings.ReplaceAll(name, "/", "-"))
		}
		st.d.Bootstrap[name+".crt"] = string(p.certPEM)
		st.d.Bootstrap[name+".key"] = string(p.keyPEM)
	}
	ca := []byte(st.d.Bootstrap["server-ca.crt"])
	if tok != nil {
		if err := tok.validateCAHash(ca); err != nil {
			failPrepare(err)
		}
		st.d.ServerPassword = tok.password
	} else {
		st.d.ServerPassword = randomHex(16)
	}
	st.d.AgentPassword = st.d.ServerPassword
	if agentTok != nil {
		if err := agentTok.validateCAHash(ca); err != nil {
			failPrepare(err)
		}
		st.d.AgentPassword = agentTok.password
	}
	st.d.Critical = criticalConfig(s.o)
	if mode == "etcd" {
		s.memberName = s.newMemberName()
		now := time.Now().UTC()
		st.d.Members[s.memberName] = &member{Name: s.memberName, NodeName: s.nodeName, URL: s.url, Added: now, Updated: now}
	}
	st.mu.Lock()
	st.touch()
	st.mu.Unlock()
	s.st = st
	s.loadCAs()
}

func (s *server) newMemberName() string { return s.nodeName + "-" + randomHex(4) }

// restoreCluster checks a restarted server's token against what it was
// created with. A server never regenerates its CA or token.
func (s *server) restoreCluster(tok *joinToken) {
	d := &s.st.d
	if tok != nil {
		if err := tok.validateCAHash([]byte(d.Bootstrap["server-ca.crt"])); err != nil {
			failPrepare(err)
		}
		if tok.password != d.ServerPassword {
			failPrepare(errors.New("bootstrap data already found and encrypted with different token"))
		}
	}
	s.loadCAs()
	if d.Mode != "etcd" {
		return
	}
	if b, err := os.ReadFile(filepath.Join(s.serverDir, "db", "etcd", "name")); err == nil {
		s.memberName = strings.TrimSpace(string(b))
	}
	if s.memberName == "" {
		for _, m := range d.Members {
			if m.NodeName == s.nodeName && !m.Removed {
				s.memberName = m.Name
			}
		}
	}
	s.st.updateMembers(func(ms map[string]*member) bool {
		m, ok := ms[s.memberName]
		if !ok || m.URL == s.url {
			return false
		}
		m.URL = s.url
		m.Updated = time.Now().UTC()
		return true
	})
}

func (s *server) loadCAs() {
	d := &s.st.d
	var err error
	if s.serverCA, err = parsePair([]byte(d.Bootstrap["server-ca.crt"]), []byte(d.Bootstrap["server-ca.key"])); err != nil {
		failPrepare(fmt.Errorf("failed to load server CA: %w", err))
	}
	if s.clientCA, err = parsePair([]byte(d.Bootstrap["client-ca.crt"]), []byte(d.Bootstrap["client-ca.key"])); err != nil {
		failPrepare(fmt.Errorf("failed to load client CA: %w", err))
	}
}

func (s *server) ensureEtcdFiles() {
	dir := filepath.Join(s.serverDir, "db", "etcd")
	_ = os.MkdirAll(filepath.Join(dir, "member", "wal"), 0o700)
	_ = writeFileAtomic(filepath.Join(dir, "name"), []byte(s.memberName+"\n"), 0o600)
	cfg := fmt.Sprintf("name: %s\ndata-dir: %s\nlisten-peer-urls: https://%s:2380\nlisten-client-urls: https://127.0.0.1:2379,https://%s:2379\n",
		s.memberName, displayPath(dir), s.advertise, s.advertise)
	_ = writeFileAtomic(filepath.Join(dir, "config"), []byte(cfg), 0o600)
}

// writeBootstrapFiles puts the cluster's CAs where k3s keeps them; a
// joining server gets the same files from the cluster.
func (s *server) writeBootstrapFiles() {
	for rel, content := range s.st.d.Bootstrap {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, ".key") {
			mode = 0o600
		}
		p := filepath.Join(s.tlsDir, rel)
		if b, err := os.ReadFile(p); err == nil && string(b) == content {
			continue
		}
		if err := writeFileAtomic(p, []byte(content), mode); err != nil {
			fatalf("failed to write %s: %v", displayPath(p), err)
		}
	}
	passwd := fmt.Sprintf("%s,server,server,k3s:server\n%s,node,node,k3s:agent\n", s.st.d.ServerPassword, s.st.d.AgentPassword)
	_ = writeFileAtomic(filepath.Join(s.serverDir, "cred", "passwd"), []byte(passwd), 0o600)
}

func (s *server) writeTokenFiles(separateAgentToken bool) {
	ca := []byte(s.st.d.Bootstrap["server-ca.crt"])
	tokenFile := filepath.Join(s.serverDir, "token")
	if err := writeFileAtomic(tokenFile, []byte(formatToken(ca, "server", s.st.d.ServerPassword)+"\n"), 0o600); err != nil {
		fatalf("failed to write token: %v", err)
	}
	target := tokenFile
	if simRoot() != "" {
		target = "token"
	}
	link := func(name string) {
		p := filepath.Join(s.serverDir, name)
		_ = os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			fatalf("failed to link %s: %v", displayPath(p), err)
		}
	}
	link("node-token")
	if separateAgentToken || s.st.d.AgentPassword != s.st.d.ServerPassword {
		p := filepath.Join(s.serverDir, "agent-token")
		_ = os.Remove(p)
		if err := writeFileAtomic(p, []byte(formatToken(ca, "node", s.st.d.AgentPassword)+"\n"), 0o600); err != nil {
			fatalf("failed to write agent token: %v", err)
		}
	} else {
		link("agent-token")
	}
}

func serviceIP(o *opts) net.IP {
	cidr := defaultList(o.list("service-cidr"), "10.43.0.0/16")[0]
	_, n, err := net.ParseCIDR(cidr)
	if err != nil || n.IP.To4() == nil {
		return net.IPv4(10, 43, 0, 1)
	}
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1)
}

// writeCerts issues this server's serving certificate (every start, so that
// a changed tls-san takes effect) and keeps the admin client certificate.
func (s *server) writeCerts() {
	domain := s.o.str("cluster-domain")
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + domain}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP(s.o)}
	add := func(v string) {
		if ip := net.ParseIP(v); ip != nil {
			for _, have := range ips {
				if have.Equal(ip) {
					return
				}
			}
			ips = append(ips, ip)
			return
		}
		for _, have := range dns {
			if have == v {
				return
			}
		}
		dns = append(dns, v)
	}
	add(strings.ToLower(hostname()))
	add(s.nodeName)
	for _, ip := range s.nodeIPs {
		add(ip.String())
	}
	for _, ip := range s.externalIP {
		add(ip.String())
	}
	add(s.advertise.String())
	if b := s.bindAddr; b != "" && b != "0.0.0.0" && b != "::" {
		add(b)
	}
	for _, san := range s.o.list("tls-san") {
		add(san)
	}
	serving := s.ensureLeaf("serving-kube-apiserver", s.serverCA, leafSpec{cn: "k3s", orgs: []string{"k3s"}, dns: dns, ips: ips, server: true})
	s.serving = serving.tlsCert()
	s.admin = s.ensureLeaf("client-admin", s.clientCA, leafSpec{cn: "system:admin", orgs: []string{"system:masters"}, client: true})

	// The other control-plane client certificates k3s keeps in server/tls.
	for name, spec := range map[string]leafSpec{
		"client-supervisor":           {cn: "system:k3s-supervisor", orgs: []string{"system:masters"}, client: true},
		"client-controller":           {cn: "system:kube-controller-manager", client: true},
		"client-scheduler":            {cn: "system:kube-scheduler", client: true},
		"client-kube-apiserver":       {cn: "system:apiserver", orgs: []string{"system:masters"}, client: true},
		"client-kube-proxy":           {cn: "system:kube-proxy", client: true},
		"client-k3s-controller":       {cn: "system:k3s-controller", client: true},
		"client-k3s-cloud-controller": {cn: "k3s-cloud-controller-manager", client: true},
	} {
		s.ensureLeaf(name, s.clientCA, spec)
	}
	if p, err := parsePair([]byte(s.st.d.Bootstrap["request-header-ca.crt"]), []byte(s.st.d.Bootstrap["request-header-ca.key"])); err == nil {
		s.ensureLeaf("client-auth-proxy", p, leafSpec{cn: "system:auth-proxy", client: true})
	}
	if s.st.d.Mode == "etcd" {
		etcdIPs := []net.IP{net.IPv4(127, 0, 0, 1), s.advertise}
		if p, err := parsePair([]byte(s.st.d.Bootstrap["etcd/server-ca.crt"]), []byte(s.st.d.Bootstrap["etcd/server-ca.key"])); err == nil {
			s.ensureLeaf("etcd/client", p, leafSpec{cn: "etcd-client", client: true})
			s.ensureLeaf("etcd/server-client", p, leafSpec{cn: "etcd-server", dns: []string{"localhost", s.nodeName}, ips: etcdIPs, server: true, client: true})
		}
		if p, err := parsePair([]byte(s.st.d.Bootstrap["etcd/peer-ca.crt"]), []byte(s.st.d.Bootstrap["etcd/peer-ca.key"])); err == nil {
			s.ensureLeaf("etcd/peer-server-client", p, leafSpec{cn: "etcd-peer", dns: []string{"localhost", s.nodeName}, ips: etcdIPs, server: true, client: true})
		}
	}
}

// certRenewWindow: at start k3s renews a certificate that has expired or
// expires within 120 days.
const certRenewWindow = 120 * 24 * time.Hour

// ensureLeaf keeps server/tls/<name>.crt while it is signed by ca, has the
// wanted names and more than the renewal window left; otherwise it issues
// a new one, valid 365 days.
func (s *server) ensureLeaf(name string, ca *certPair, spec leafSpec) *certPair {
	crt := filepath.Join(s.tlsDir, name+".crt")
	key := filepath.Join(s.tlsDir, name+".key")
	old, err := loadPair(crt, key)
	if err == nil && old.cert.CheckSignatureFrom(ca.cert) == nil && time.Until(old.cert.NotAfter) > certRenewWindow && sameNames(old.cert, spec) {
		return old
	}
	var p *certPair
	if err == nil && old.cert.CheckSignatureFrom(ca.cert) == nil {
		// Renewal keeps the key.
		if time.Until(old.cert.NotAfter) <= certRenewWindow {
			infof("Certificate %s will expire at %s; renewing", displayPath(crt), old.cert.NotAfter.UTC().Format(time.RFC3339))
		}
		p = ca.signKey(spec, old.key, old.keyPEM)
	} else {
		p = ca.sign(spec)
	}
	if err := writeFileAtomic(crt, p.certPEM, 0o644); err != nil {
		fatalf("failed to write %s: %v", displayPath(crt), err)
	}
	if err := writeFileAtomic(key, p.keyPEM, 0o600); err != nil {
		fatalf("failed to write %s: %v", displayPath(key), err)
	}
	return p
}

func sameNames(c *x509.Certificate, spec leafSpec) bool {
	if c.Subject.CommonName != spec.cn || len(c.DNSNames) != len(spec.dns) || len(c.IPAddresses) != len(spec.ips) {
		return false
	}
	for i, d := range spec.dns {
		if c.DNSNames[i] != d {
			return false
		}
	}
	for i, ip := range spec.ips {
		if !c.IPAddresses[i].Equal(ip) {
			return false
		}
	}
	return true
}

func (s *server) kubeconfigPath() string {
	if p := s.o.str("write-kubeconfig"); p != "" {
		return hostPath(p)
	}
	return hostPath(defaultKubeconfig)
}

func (s *server) localURL() string {
	host := "127.0.0.1"
	if b := s.bindAddr; b != "" && b != "0.0.0.0" && b != "::" {
		host = b
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(s.port))
}

func (s *server) writeKubeconfig() {
	b64 := base64.StdEncoding.EncodeToString
	kc := fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
`, b64(s.serverCA.certPEM), s.localURL(), b64(s.admin.certPEM), b64(s.admin.keyPEM))
	mode := os.FileMode(0o600)
	if m := s.o.str("write-kubeconfig-mode"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			fatalf("failed to parse write-kubeconfig-mode %q: %v", m, err)
		}
		mode = os.FileMode(v)
	}
	if err := writeFileAtomic(s.kubeconfigPath(), []byte(kc), mode); err != nil {
		errorf("Failed to write kubeconfig: %v", err)
	}
}

// writePackagedManifests lays down the add-ons k3s ships, minus the
// disabled ones, which k3s deletes.
func (s *server) writePackagedManifests() {
	dir := filepath.Join(s.serverDir, "manifests")
	_ = os.MkdirAll(dir, 0o700)
	disabled := map[string]bool{}
	for _, d := range s.o.list("disable") {
		disabled[d] = true
	}
	files := map[string]string{
		"ccm.yaml":                           "ccm",
		"coredns.yaml":                       "coredns",
		"local-storage.yaml":                 "local-storage",
		"rolebindings.yaml":                  "rolebindings",
		"runtimes.yaml":                      "runtimes",
		"traefik.yaml":                       "traefik",
		"metrics-server/metrics-server.yaml": "metrics-server",
	}
	for rel, addon := range files {
		p := filepath.Join(dir, rel)
		if disabled[addon] || (addon == "ccm" && s.o.boolean("disable-cloud-controller")) {
			_ = os.Remove(p)
			continue
		}
		if fileExists(p) {
			continue
		}
		content := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-packaged\n  namespace: kube-system\ndata:\n  k3s-version: %q\n", addon, version)
		_ = writeFileAtomic(p, []byte(content), 0o600)
	}
}

func (s *server) saveLoop() {
	for {
		time.Sleep(time.Second)
		if err := s.st.save(); err != nil {
			errorf("Failed to persist datastore: %v", err)
		}
	}
}

// startListener serves the supervisor and the Kubernetes API on one port,
// as k3s does. /cacerts and /ping answer at once; the API answers 503 until
// the datastore is usable.
func (s *server) startListener() {
	addr := net.JoinHostPort(s.bindAddr, strconv.Itoa(s.port))
	if s.bindAddr == "" {
		addr = ":" + strconv.Itoa(s.port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatalf("starting kubernetes: %v", err)
	}
	srv := &http.Server{
		Handler: s.handler(),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{s.serving},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    poolOf(s.clientCA.certPEM),
			MinVersion:   tls.VersionTLS12,
		},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          quietLog(),
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fatalf("https listener: %v", err)
		}
	}()
}

// joinCluster is a new server joining an etcd cluster through an existing
// server: check the CA against the token, compare critical settings, fetch
// the bootstrap data, become a learner member, copy the datastore.
func (s *server) joinCluster(tok, agentTok *joinToken, statePath string) {
	if tok == nil {
		failPrepare(errors.New("token is required to join a cluster"))
	}
	base, err := normalizeServerURL(s.o.str("server"))
	if err != nil {
		failPrepare(err)
	}
	ca, err := getCACerts(base)
	if err != nil {
		failPrepare(fmt.Errorf("failed to validate token: %w", err))
	}
	if err := tok.validateCAHash(ca); err != nil {
		failPrepare(fmt.Errorf("failed to validate token: %w", err))
	}
	if tok.caHash == "" {
		warnf("Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a CA hash. Use the full token from the server's node-token file to enable Cluster CA validation.")
	}
	infof("Managed etcd cluster not yet initialized")
	c := caClient(ca, clientTimeout)

	nodePass := tok.password
	if agentTok != nil {
		nodePass = agentTok.password
	}
	if body, err := do(c, http.MethodGet, base+"/v1-k3s/config", "node", nodePass, nil, nil); err != nil {
		warnf("Skipping cluster configuration validation: %v", err)
	} else {
		var remote supervisorConfig
		if err := json.Unmarshal(body, &remote); err != nil {
			failPrepare(fmt.Errorf("failed to validate server configuration: %w", err))
		}
		mine := criticalConfig(s.o)
		var bad []string
		for k, v := range mine {
			if rv, ok := remote.Critical[k]; ok && rv != v {
				bad = append(bad, k)
			}
		}
		if agentTok != nil && remote.AgentTokenHash != "" && remote.AgentTokenHash != hashCA([]byte(agentTok.password)) {
			bad = append(bad, "agent-token")
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			for _, k := range bad {
				warnf("critical configuration mismatched: %s", k)
			}
			failPrepare(errors.New("failed to validate server configuration: critical configuration value mismatch between servers"))
		}
	}

	body, err := do(c, http.MethodGet, base+"/v1-k3s/server-bootstrap", "server", tok.password, nil, nil)
	if err != nil {
		failPrepare(fmt.Errorf("failed to bootstrap cluster data: %w", err))
	}
	var boot stateData
	if err := json.Unmarshal(body, &boot); err != nil {
		failPrepare(fmt.Errorf("failed to bootstrap cluster data: %w", err))
	}
	st := newStore(statePath)
	st.d.Mode, st.d.ClusterID = "etcd", boot.ClusterID
	st.d.Bootstrap, st.d.Critical = boot.Bootstrap, boot.Critical
	st.d.ServerPassword, st.d.AgentPassword = boot.ServerPassword, boot.AgentPassword
	s.st = st
	s.loadCAs()
	s.writeBootstrapFiles()

	s.memberName = s.newMemberName()
	var names []string
	for _, m := range boot.Members {
		if !m.Removed && !m.Learner {
			names = append(names, m.Name+"="+peerURL(m.URL))
		}
	}
	sort.Strings(names)
	infof("Adding member %s=%s to etcd cluster [%s]", s.memberName, peerURL(s.url), strings.Join(names, " "))
	req, _ := json.Marshal(joinRequest{Name: s.memberName, NodeName: s.nodeName, URL: s.url})
	resp, err := do(c, http.MethodPost, base+"/v1-k3s/sim/join", "server", tok.password, nil, req)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && strings.TrimSpace(he.body) != "" {
			err = errors.New(strings.TrimSpace(he.body))
		}
		fatalf("ETCD join failed: %v", err)
	}
	var full stateData
	if err := json.Unmarshal(resp, &full); err != nil {
		fatalf("ETCD join failed: %v", err)
	}
	st.merge(full)
	infof("Starting etcd to join cluster with members [%s]", strings.Join(append(names, s.memberName+"="+peerURL(s.url)), " "))
	s.learnerEnd.Store(time.Now().Add(envDuration("K3S_SIM_LEARNER_DELAY", 5*time.Second)).UnixNano())
}

type joinRequest struct {
	Name     string `json:"name"`
	NodeName string `json:"nodeName"`
	URL      string `json:"url"`
}

func peerURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	return "https://" + net.JoinHostPort(pu.Hostname(), "2380")
}

func normalizeServerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("Invalid server url, failed to parse: %s: %v", raw, err)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("only https:// URLs are supported, invalid scheme: %s", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String(), nil
}

// promoteLater turns this learner into a voting member once it has had time
// to catch up. Like etcd, the promotion is made by the cluster, not by the
// learner: the member it joined through records it first, so that the next
// joining server sees a voter, never a second learner.
func (s *server) promoteLater(joinURL string) {
	time.Sleep(time.Until(time.Unix(0, s.learnerEnd.Load())))
	body, _ := json.Marshal(joinRequest{Name: s.memberName, NodeName: s.nodeName, URL: s.url})
	for {
		targets := []string{joinURL}
		for _, m := range s.st.liveMembers() {
			if m.Name != s.memberName && !m.Learner {
				targets = append(targets, m.URL)
			}
		}
		for _, u := range targets {
			if _, err := do(s.peerClient("promote"), http.MethodPost, u+"/v1-k3s/sim/promote", "server", s.st.d.ServerPassword, s.memberHeader(), body); err == nil {
				s.st.updateMembers(func(ms map[string]*member) bool {
					m, ok := ms[s.memberName]
					if !ok || !m.Learner {
						return false
					}
					m.Learner = false
					m.Updated = time.Now().UTC()
					return true
				})
				infof("Promoted learner member %s to voter", s.memberName)
				return
			}
		}
		time.Sleep(time.Second)
	}
}

func poolOf(pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemBytes)
	return p
}

// quietLog drops the TLS handshake noise of clients that probe and leave.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

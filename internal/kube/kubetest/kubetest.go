// Package kubetest is a fake of the part of a K3s cluster's Kubernetes API
// that internal/kube uses (nodes, pods on a node, eviction with
// disruption-budget refusals), served over TLS with client certificates
// as K3s does, for tests.
package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake API. Its fields may be read and changed between
// requests while holding Lock.
type Server struct {
	sync.Mutex
	Nodes map[string]map[string]any // by name, as the API returns them
	Pods  []map[string]any
	// Blocked is how many evictions of a pod (namespace/name) are refused
	// with 429 before one succeeds.
	Blocked map[string]int
	// Patches are the bodies of node patches received, in order.
	Patches []string
	// Requests are "METHOD path" of every request.
	Requests []string
	// WatchGone is how many node watches are answered 410 Gone (the
	// resource version asked for is too old) before one is served.
	WatchGone int
	// Watches counts the node watches opened; MostWatching is the most
	// open at once; watching those open now.
	Watches, MostWatching, watching int

	srv    *httptest.Server
	caPEM  []byte
	cert   []byte
	key    []byte
	dialed []string
	stop   chan struct{} // closed when the test ends: watches end
}

// New starts a fake API for the test's duration.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Nodes: map[string]map[string]any{}, Blocked: map[string]int{}, stop: make(chan struct{})}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "k3s-server-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: ips,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	// K3s's serving certificate is valid for 127.0.0.1, which is where a
	// client dialing through SSH connects.
	sc, sk := leaf("kube-apiserver", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	serving, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	s.cert, s.key = leaf("system:admin", x509.ExtKeyUsageClientAuth, nil)
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.stop) }) // runs first
	return s
}

// Kubeconfig is the admin kubeconfig K3s writes (/etc/rancher/k3s/k3s.yaml),
// with server https://127.0.0.1:6443.
func (s *Server) Kubeconfig() []byte {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	return []byte(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ` + b64(s.caPEM) + `
    server: https://127.0.0.1:6443
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
    client-certificate-data: ` + b64(s.cert) + `
    client-key-data: ` + b64(s.key) + `
`)
}

// Dial reaches the fake whatever address is asked, as a dial through SSH
// to 127.0.0.1:6443 reaches the server's API.
func (s *Server) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s.Lock()
	s.dialed = append(s.dialed, network+" "+addr)
	s.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.srv.Listener.Addr().String())
}

// Dialed lists "network address" of every Dial.
func (s *Server) Dialed() []string {
	s.Lock()
	defer s.Unlock()
	return append([]string(nil), s.dialed...)
}

// Node is a Node object as the API returns it.
func Node(name string, ready bool, labels map[string]string) map[string]any {
	st := "False"
	reason, msg := "NodeStatusUnknown", "Kubelet stopped posting node status."
	if ready {
		st, reason, msg = "True", "KubeletReady", "kubelet is posting ready status"
	}
	l := map[string]any{}
	for k, v := range labels {
		l[k] = v
	}
	return map[string]any{
		"metadata": map[string]any{"name": name, "labels": l, "annotations": map[string]any{"k3s.io/hostname": name}},
		"spec":     map[string]any{},
		"status": map[string]any{
			"conditions": []any{map[string]any{"type": "MemoryPressure", "status": "False"},
				map[string]any{"type": "Ready", "status": st, "reason": reason, "message": msg}},
			"addresses": []any{map[string]any{"type": "InternalIP", "address": "10.0.0.5"}},
			"nodeInfo":  map[string]any{"kubeletVersion": "v1.31.4+k3s1"},
		},
	}
}

// Pod is a running Pod object bound to node, owned by a controller of
// kind owner (none when empty).
func Pod(ns, name, node, owner string, annotations map[string]string) map[string]any {
	a := map[string]any{}
	for k, v := range annotations {
		a[k] = v
	}
	meta := map[string]any{"namespace": ns, "name": name, "uid": ns + "-" + name, "annotations": a}
	if owner != "" {
		meta["ownerReferences"] = []any{map[string]any{"kind": owner, "name": "x"}}
	}
	return map[string]any{"metadata": meta, "spec": map[string]any{"nodeName": node}, "status": map[string]any{"phase": "Running"}}
}

// PodIDs lists namespace/name of the pods left.
func (s *Server) PodIDs() []string {
	s.Lock()
	defer s.Unlock()
	var out []string
	for _, p := range s.Pods {
		m := p["metadata"].(map[string]any)
		out = append(out, m["namespace"].(string)+"/"+m["name"].(string))
	}
	return out
}

// ServeHTTP implements the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Lock()
	s.Requests = append(s.Requests, r.Method+" "+r.URL.Path)
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		s.Unlock()
		status(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	if r.Method == "GET" && r.URL.Path == "/api/v1/nodes" && r.URL.Query().Get("watch") == "true" {
		s.Watches++
		if s.WatchGone > 0 {
			s.WatchGone--
			s.Unlock()
			status(w, 410, "Expired", "too old resource version")
			return
		}
		s.watching++
		s.MostWatching = max(s.MostWatching, s.watching)
		s.Unlock()
		s.watchNodes(w, r)
		s.Lock()
		s.watching--
		s.Unlock()
		return
	}
	defer s.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/nodes":
		names := make([]string, 0, len(s.Nodes))
		for n := range s.Nodes {
			names = append(names, n)
		}
		sort.Strings(names)
		items := []any{}
		for _, n := range names {
			items = append(items, s.Nodes[n])
		}
		writeJSON(w, 200, map[string]any{"kind": "NodeList", "metadata": map[string]any{"resourceVersion": "1"}, "items": items})
	case strings.HasPrefix(r.URL.Path, "/api/v1/nodes/"):
		s.node(w, r, strings.TrimPrefix(r.URL.Path, "/api/v1/nodes/"))
	case r.Method == "GET" && r.URL.Path == "/api/v1/pods":
		node := strings.TrimPrefix(r.URL.Query().Get("fieldSelector"), "spec.nodeName=")
		items := []any{}
		for _, p := range s.Pods {
			if p["spec"].(map[string]any)["nodeName"] == node {
				items = append(items, p)
			}
		}
		writeJSON(w, 200, map[string]any{"kind": "PodList", "items": items})
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/eviction"):
		s.evict(w, r)
	default:
		status(w, 404, "NotFound", "the server could not find the requested resource")
	}
}

// Watching is how many node watches are open now.
func (s *Server) Watching() int {
	s.Lock()
	defer s.Unlock()
	return s.watching
}

// watchNodes streams node changes, as the API's watch does, until the
// client goes away or the test ends. It looks for changes every few
// milliseconds (tests change Nodes directly) and starts with every node
// as ADDED, which a client that listed first takes as no change.
func (s *Server) watchNodes(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		status(w, 500, "InternalError", "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	fl.Flush()
	enc := json.NewEncoder(w)
	sent := map[string]string{}
	for {
		var events []map[string]any
		s.Lock()
		names := make([]string, 0, len(s.Nodes))
		for n := range s.Nodes {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			b, _ := json.Marshal(s.Nodes[name])
			prev, had := sent[name]
			if had && prev == string(b) {
				continue
			}
			sent[name] = string(b)
			typ := "MODIFIED"
			if !had {
				typ = "ADDED"
			}
			var obj map[string]any
			_ = json.Unmarshal(b, &obj)
			events = append(events, map[string]any{"type": typ, "object": obj})
		}
		for name := range sent {
			if _, ok := s.Nodes[name]; !ok {
				delete(sent, name)
				events = append(events, map[string]any{"type": "DELETED", "object": map[string]any{"metadata": map[string]any{"name": name}}})
			}
		}
		s.Unlock()
		for _, e := range events {
			if err := enc.Encode(e); err != nil {
				return
			}
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *Server) node(w http.ResponseWriter, r *http.Request, name string) {
	n, ok := s.Nodes[name]
	if !ok {
		status(w, 404, "NotFound", `nodes "`+name+`" not found`)
		return
	}
	switch r.Method {
	case "GET":
		writeJSON(w, 200, n)
	case "DELETE":
		delete(s.Nodes, name)
		writeJSON(w, 200, map[string]any{"kind": "Status", "status": "Success"})
	case "PATCH":
		if r.Header.Get("Content-Type") != "application/merge-patch+json" {
			status(w, 415, "UnsupportedMediaType", "unsupported "+r.Header.Get("Content-Type"))
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.Patches = append(s.Patches, string(b))
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil {
			status(w, 400, "BadRequest", err.Error())
			return
		}
		mergePatch(n, p)
		writeJSON(w, 200, n)
	default:
		status(w, 405, "MethodNotAllowed", r.Method)
	}
}

func (s *Server) evict(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(r.URL.Path, "/") // /api/v1/namespaces/<ns>/pods/<name>/eviction
	if len(parts) != 8 {
		status(w, 404, "NotFound", "the server could not find the requested resource")
		return
	}
	ns, name := parts[4], parts[6]
	var ev struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	_ = json.NewDecoder(r.Body).Decode(&ev)
	if ev.Kind != "Eviction" || ev.APIVersion != "policy/v1" {
		status(w, 400, "BadRequest", "not a policy/v1 Eviction")
		return
	}
	id := ns + "/" + name
	if s.Blocked[id] > 0 {
		s.Blocked[id]--
		status(w, 429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
		return
	}
	for i, p := range s.Pods {
		m := p["metadata"].(map[string]any)
		if m["namespace"] == ns && m["name"] == name {
			s.Pods = append(s.Pods[:i], s.Pods[i+1:]...)
			status(w, 201, "", "")
			return
		}
	}
	status(w, 404, "NotFound", `pods "`+name+`" not found`)
}

// mergePatch applies a JSON merge patch (RFC 7396).
func mergePatch(dst, p map[string]any) {
	for k, v := range p {
		switch pv := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = map[string]any{}
				dst[k] = d
			}
			mergePatch(d, pv)
		default:
			dst[k] = v
		}
	}
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{"kind": "Status", "code": code, "reason": reason, "message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

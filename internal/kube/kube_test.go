package kube

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
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// pki is a cluster CA with a serving certificate for 127.0.0.1 and an
// admin client certificate, as K3s makes them.
type pki struct {
	caPEM, certPEM, keyPEM []byte
	serving                tls.Certificate
	pool                   *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
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
	sc, sk := leaf("kube-apiserver", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	serving, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	cc, ck := leaf("system:admin", x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certPEM: cc, keyPEM: ck, serving: serving, pool: pool}
}

func (p pki) kubeconfig(server string) []byte {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	return []byte(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ` + b64(p.caPEM) + `
    server: ` + server + `
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
    client-certificate-data: ` + b64(p.certPEM) + `
    client-key-data: ` + b64(p.keyPEM) + `
`)
}

// fakeAPI serves the few endpoints the client uses, from memory.
type fakeAPI struct {
	mu       sync.Mutex
	nodes    map[string]map[string]any
	pods     []map[string]any
	blocked  map[string]int // evictions refused (429) before one succeeds
	patches  []string       // bodies received
	requests []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		status(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/nodes":
		var items []any
		for _, n := range f.nodes {
			items = append(items, n)
		}
		writeJSON(w, 200, map[string]any{"kind": "NodeList", "items": items})
	case strings.HasPrefix(r.URL.Path, "/api/v1/nodes/"):
		name := strings.TrimPrefix(r.URL.Path, "/api/v1/nodes/")
		n, ok := f.nodes[name]
		if !ok {
			status(w, 404, "NotFound", `nodes "`+name+`" not found`)
			return
		}
		switch r.Method {
		case "GET":
			writeJSON(w, 200, n)
		case "DELETE":
			delete(f.nodes, name)
			writeJSON(w, 200, map[string]any{"kind": "Status", "status": "Success"})
		case "PATCH":
			if r.Header.Get("Content-Type") != "application/merge-patch+json" {
				status(w, 415, "UnsupportedMediaType", "unsupported "+r.Header.Get("Content-Type"))
				return
			}
			b, _ := io.ReadAll(r.Body)
			f.patches = append(f.patches, string(b))
			var p map[string]any
			if err := json.Unmarshal(b, &p); err != nil {
				status(w, 400, "BadRequest", err.Error())
				return
			}
			mergePatch(n, p)
			writeJSON(w, 200, n)
		}
	case r.Method == "GET" && r.URL.Path == "/api/v1/pods":
		node := strings.TrimPrefix(r.URL.Query().Get("fieldSelector"), "spec.nodeName=")
		var items []any
		for _, p := range f.pods {
			if p["spec"].(map[string]any)["nodeName"] == node {
				items = append(items, p)
			}
		}
		writeJSON(w, 200, map[string]any{"kind": "PodList", "items": items})
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/eviction"):
		parts := strings.Split(r.URL.Path, "/") // /api/v1/namespaces/<ns>/pods/<name>/eviction
		ns, name := parts[4], parts[6]
		var ev struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		if ev.Kind != "Eviction" || ev.APIVersion != "policy/v1" {
			status(w, 400, "BadRequest", "not an Eviction")
			return
		}
		id := ns + "/" + name
		if f.blocked[id] > 0 {
			f.blocked[id]--
			status(w, 429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
			return
		}
		for i, p := range f.pods {
			m := p["metadata"].(map[string]any)
			if m["namespace"] == ns && m["name"] == name {
				f.pods = append(f.pods[:i], f.pods[i+1:]...)
				status(w, 201, "", "")
				return
			}
		}
		status(w, 404, "NotFound", `pods "`+name+`" not found`)
	default:
		status(w, 404, "NotFound", "the server could not find the requested resource")
	}
}

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

func nodeObj(name string, ready bool, labels map[string]any) map[string]any {
	st := "False"
	if ready {
		st = "True"
	}
	return map[string]any{
		"metadata": map[string]any{"name": name, "labels": labels, "annotations": map[string]any{"k3s.io/hostname": name}},
		"spec":     map[string]any{},
		"status": map[string]any{
			"conditions": []any{map[string]any{"type": "MemoryPressure", "status": "False"},
				map[string]any{"type": "Ready", "status": st, "reason": "KubeletReady", "message": "kubelet is posting ready status"}},
			"addresses": []any{map[string]any{"type": "InternalIP", "address": "10.0.0.5"}},
			"nodeInfo":  map[string]any{"kubeletVersion": "v1.31.4+k3s1"},
		},
	}
}

func podObj(ns, name, node, owner string, annotations map[string]any) map[string]any {
	meta := map[string]any{"namespace": ns, "name": name, "uid": ns + "-" + name, "annotations": annotations}
	if owner != "" {
		meta["ownerReferences"] = []any{map[string]any{"kind": owner, "name": "x"}}
	}
	return map[string]any{"metadata": meta, "spec": map[string]any{"nodeName": node}, "status": map[string]any{"phase": "Running"}}
}

// start serves api over TLS that asks for client certificates, and
// returns a client whose dialer reaches it whatever address is asked, as
// a dial through SSH to 127.0.0.1:6443 does.
func start(t *testing.T, api http.Handler) (*Client, pki, *[]string) {
	t.Helper()
	p := newPKI(t)
	srv := httptest.NewUnstartedServer(api)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.serving}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, network+" "+addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}
	cfg, err := ParseKubeconfig(p.kubeconfig("https://127.0.0.1:6443"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New("edge", "10.0.0.5", cfg, dial)
	if err != nil {
		t.Fatal(err)
	}
	c.PollInterval = 10 * time.Millisecond
	t.Cleanup(c.Close)
	return c, p, &dialed
}

func TestListNodesThroughDialer(t *testing.T) {
	api := &fakeAPI{nodes: map[string]map[string]any{
		"w1": nodeObj("w1", false, map[string]any{"zone": "a"}),
		"s1": nodeObj("s1", true, nil),
	}}
	api.nodes["w1"]["spec"] = map[string]any{"unschedulable": true, "taints": []any{map[string]any{"key": "gpu", "value": "yes", "effect": "NoSchedule"}}}
	c, _, dialed := start(t, api)
	nodes, err := c.ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "s1" || nodes[1].Name != "w1" {
		t.Fatalf("nodes: %+v", nodes)
	}
	s1, w1 := nodes[0], nodes[1]
	if !s1.Ready || s1.ReadyReason != "KubeletReady" || s1.KubeletVersion != "v1.31.4+k3s1" || s1.Labels == nil {
		t.Errorf("s1: %+v", s1)
	}
	if w1.Ready || !w1.Unschedulable || w1.Labels["zone"] != "a" || len(w1.Taints) != 1 || w1.Taints[0].String() != "gpu=yes:NoSchedule" {
		t.Errorf("w1: %+v", w1)
	}
	if len(w1.Addresses) != 1 || w1.Addresses[0].Address != "10.0.0.5" || w1.Annotations["k3s.io/hostname"] != "w1" {
		t.Errorf("w1 addresses/annotations: %+v", w1)
	}
	if len(*dialed) == 0 || (*dialed)[0] != "tcp 127.0.0.1:6443" {
		t.Errorf("dialed %v, want tcp 127.0.0.1:6443 through the dialer", *dialed)
	}
}

func TestServingCertificateIsVerified(t *testing.T) {
	api := &fakeAPI{nodes: map[string]map[string]any{}}
	c, _, _ := start(t, api)
	// Another cluster's CA must not be trusted.
	other := newPKI(t)
	cfg := Config{Server: "https://127.0.0.1:6443", CA: other.caPEM, Cert: other.certPEM, Key: other.keyPEM}
	bad, err := New("edge", "10.0.0.5", cfg, func(ctx context.Context, n, a string) (net.Conn, error) {
		return c.tr.DialContext(ctx, n, a)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ListNodes(context.Background())
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Fatalf("want an unknown authority error, got %v", err)
	}
	if !strings.Contains(err.Error(), "cluster edge (API through 10.0.0.5): list nodes") {
		t.Errorf("error does not name the cluster and server: %v", err)
	}
}

func TestPatchNodeLabelsTaintsCordon(t *testing.T) {
	api := &fakeAPI{nodes: map[string]map[string]any{"w1": nodeObj("w1", true, map[string]any{"zone": "a", "team": "x"})}}
	c, _, _ := start(t, api)
	ctx := context.Background()
	b := "b"
	taints := []Taint{{Key: "dedicated", Value: "edge", Effect: "NoSchedule"}}
	n, err := c.PatchNode(ctx, "w1", NodePatch{
		Labels:      map[string]*string{"zone": &b, "team": nil},
		Annotations: map[string]*string{"k3sctl.io/managed-labels": &b},
		Taints:      &taints,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["zone"] != "b" || n.Labels["team"] != "" || n.Annotations["k3sctl.io/managed-labels"] != "b" || n.Annotations["k3s.io/hostname"] != "w1" {
		t.Errorf("after patch: %+v", n)
	}
	if len(n.Taints) != 1 || n.Taints[0].String() != "dedicated=edge:NoSchedule" {
		t.Errorf("taints: %+v", n.Taints)
	}
	want := `{"metadata":{"annotations":{"k3sctl.io/managed-labels":"b"},"labels":{"team":null,"zone":"b"}},"spec":{"taints":[{"key":"dedicated","value":"edge","effect":"NoSchedule"}]}}`
	if api.patches[0] != want {
		t.Errorf("patch body\n got %s\nwant %s", api.patches[0], want)
	}
	// An empty taint list is sent as [], which removes every taint.
	none := []Taint{}
	if n, err = c.PatchNode(ctx, "w1", NodePatch{Taints: &none}); err != nil || len(n.Taints) != 0 {
		t.Errorf("remove taints: %+v %v", n.Taints, err)
	}
	if err := c.Cordon(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.GetNode(ctx, "w1"); !n.Unschedulable {
		t.Error("cordon did not make the node unschedulable")
	}
	if err := c.Uncordon(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.GetNode(ctx, "w1"); n.Unschedulable {
		t.Error("uncordon left the node unschedulable")
	}
	_, err = c.PatchNode(ctx, "nope", NodePatch{Unschedulable: &[]bool{true}[0]})
	if !IsNotFound(err) || !strings.Contains(err.Error(), `patch node nope: nodes "nope" not found (NotFound)`) {
		t.Errorf("patch of a missing node: %v", err)
	}
}

func TestDeleteNode(t *testing.T) {
	api := &fakeAPI{nodes: map[string]map[string]any{"w1": nodeObj("w1", true, nil)}}
	c, _, _ := start(t, api)
	if err := c.DeleteNode(context.Background(), "w1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := api.nodes["w1"]; ok {
		t.Error("node not deleted")
	}
	if err := c.DeleteNode(context.Background(), "w1"); err != nil {
		t.Errorf("deleting a node already gone: %v", err)
	}
}

func TestDrainSkipsDaemonSetsAndMirrorsAndRetriesBudgets(t *testing.T) {
	api := &fakeAPI{
		nodes: map[string]map[string]any{"w1": nodeObj("w1", true, nil)},
		pods: []map[string]any{
			podObj("default", "web-1", "w1", "ReplicaSet", nil),
			podObj("default", "db-0", "w1", "StatefulSet", nil),
			podObj("kube-system", "svclb-1", "w1", "DaemonSet", nil),
			podObj("kube-system", "static-w1", "w1", "Node", map[string]any{mirrorAnnotation: "abc"}),
			podObj("default", "web-2", "w2", "ReplicaSet", nil),
		},
		blocked: map[string]int{"default/db-0": 3},
	}
	c, _, _ := start(t, api)
	res, err := c.Drain(context.Background(), "w1", 5*time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Evicted, ",") != "default/db-0,default/web-1" || len(res.Left) != 0 {
		t.Errorf("drain result: %+v", res)
	}
	if api.blocked["default/db-0"] != 0 {
		t.Error("the budget-blocked pod was not retried")
	}
	var left []string
	for _, p := range api.pods {
		m := p["metadata"].(map[string]any)
		left = append(left, m["namespace"].(string)+"/"+m["name"].(string))
	}
	if strings.Join(left, ",") != "kube-system/svclb-1,kube-system/static-w1,default/web-2" {
		t.Errorf("pods left: %v", left)
	}
	if n, _ := c.GetNode(context.Background(), "w1"); !n.Unschedulable {
		t.Error("drain did not cordon")
	}
}

func TestDrainTimeout(t *testing.T) {
	mk := func() *fakeAPI {
		return &fakeAPI{
			nodes:   map[string]map[string]any{"w1": nodeObj("w1", true, nil)},
			pods:    []map[string]any{podObj("default", "db-0", "w1", "StatefulSet", nil), podObj("default", "web-1", "w1", "ReplicaSet", nil)},
			blocked: map[string]int{"default/db-0": 1 << 30},
		}
	}
	c, _, _ := start(t, mk())
	_, err := c.Drain(context.Background(), "w1", 100*time.Millisecond, false)
	var de *DrainError
	if !errors.As(err, &de) || strings.Join(de.Left, ",") != "default/db-0" || !IsTooManyRequests(err) {
		t.Fatalf("want a DrainError naming db-0 from a 429, got %v", err)
	}
	if !strings.Contains(err.Error(), "disruption budget") || !strings.Contains(err.Error(), "--force-drain") {
		t.Errorf("error lacks the cause or the fix: %v", err)
	}
	c2, _, _ := start(t, mk())
	res, err := c2.Drain(context.Background(), "w1", 100*time.Millisecond, true)
	if err != nil || strings.Join(res.Left, ",") != "default/db-0" || strings.Join(res.Evicted, ",") != "default/web-1" {
		t.Errorf("forced drain: %+v %v", res, err)
	}
}

func TestParseKubeconfigErrors(t *testing.T) {
	p := newPKI(t)
	cfg, err := ParseKubeconfig(p.kubeconfig("https://127.0.0.1:6443"))
	if err != nil || cfg.Server != "https://127.0.0.1:6443" || string(cfg.CA) != string(p.caPEM) || string(cfg.Key) != string(p.keyPEM) {
		t.Fatalf("parse: %v", err)
	}
	if _, err := ParseKubeconfig([]byte("current-context: x\n")); err == nil || !strings.Contains(err.Error(), `no context "x"`) {
		t.Errorf("missing context: %v", err)
	}
	noKey := strings.Replace(string(p.kubeconfig("https://127.0.0.1:6443")), "client-key-data", "client-key", 1)
	if _, err := ParseKubeconfig([]byte(noKey)); err == nil || !strings.Contains(err.Error(), "client-key-data is missing") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := New("edge", "s1", Config{Server: "http://127.0.0.1:6443"}, nil); err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Errorf("http server: %v", err)
	}
}

func TestTransportErrorNamesClusterAndServer(t *testing.T) {
	p := newPKI(t)
	cfg, _ := ParseKubeconfig(p.kubeconfig("https://127.0.0.1:6443"))
	c, err := New("edge", "10.0.0.5", cfg, func(ctx context.Context, n, a string) (net.Conn, error) {
		return nil, errors.New("ssh: rejected: connect failed (Connection refused)")
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListNodes(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cluster edge (API through 10.0.0.5): list nodes:") || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("error: %v", err)
	}
}

package kube

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/k3sctl/k3sctl/internal/kube/kubetest"
)

// start returns a client of a fake API reached through its dialer, as
// through an SSH connection to a server.
func start(t *testing.T) (*Client, *kubetest.Server) {
	t.Helper()
	api := kubetest.New(t)
	cfg, err := ParseKubeconfig(api.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New("edge", "10.0.0.5", cfg, api.Dial)
	if err != nil {
		t.Fatal(err)
	}
	c.PollInterval = 10 * time.Millisecond
	t.Cleanup(c.Close)
	return c, api
}

func TestListNodesThroughDialer(t *testing.T) {
	c, api := start(t)
	api.Nodes["w1"] = kubetest.Node("w1", false, map[string]string{"zone": "a"})
	api.Nodes["w1"]["spec"] = map[string]any{"unschedulable": true, "taints": []any{map[string]any{"key": "gpu", "value": "yes", "effect": "NoSchedule"}}}
	api.Nodes["s1"] = kubetest.Node("s1", true, nil)
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
	if w1.Ready || w1.ReadyReason != "NodeStatusUnknown" || w1.ReadyMessage != "Kubelet stopped posting node status." {
		t.Errorf("w1 Ready condition: %+v", w1)
	}
	if !w1.Unschedulable || w1.Labels["zone"] != "a" || len(w1.Taints) != 1 || w1.Taints[0].String() != "gpu=yes:NoSchedule" {
		t.Errorf("w1: %+v", w1)
	}
	if len(w1.Addresses) != 1 || w1.Addresses[0].Address != "10.0.0.5" || w1.Annotations["k3s.io/hostname"] != "w1" {
		t.Errorf("w1 addresses/annotations: %+v", w1)
	}
	if d := api.Dialed(); len(d) == 0 || d[0] != "tcp 127.0.0.1:6443" {
		t.Errorf("dialed %v, want tcp 127.0.0.1:6443 through the dialer", d)
	}
}

func TestServingCertificateIsVerified(t *testing.T) {
	_, api := start(t)
	other := kubetest.New(t)
	cfg, _ := ParseKubeconfig(api.Kubeconfig())
	otherCfg, _ := ParseKubeconfig(other.Kubeconfig())
	// Another cluster's CA must not be trusted.
	cfg.CA = otherCfg.CA
	bad, err := New("edge", "10.0.0.5", cfg, api.Dial)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.ListNodes(context.Background())
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Fatalf("want an unknown authority error, got %v", err)
	}
	if !strings.Contains(err.Error(), "cluster edge (API through 10.0.0.5): list nodes") {
		t.Errorf("error does not name the cluster and server: %v", err)
	}
	// The certificate is valid for 127.0.0.1, not for another name.
	cfg, _ = ParseKubeconfig(api.Kubeconfig())
	cfg.Server = "https://kubernetes.example:6443"
	wrongName, err := New("edge", "10.0.0.5", cfg, api.Dial)
	if err != nil {
		t.Fatal(err)
	}
	defer wrongName.Close()
	var he x509.HostnameError
	if _, err = wrongName.ListNodes(context.Background()); !errors.As(err, &he) {
		t.Errorf("want a hostname error, got %v", err)
	}
}

func TestPatchNodeLabelsTaintsCordon(t *testing.T) {
	c, api := start(t)
	api.Nodes["w1"] = kubetest.Node("w1", true, map[string]string{"zone": "a", "team": "x"})
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
	if api.Patches[0] != want {
		t.Errorf("patch body\n got %s\nwant %s", api.Patches[0], want)
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
	yes := true
	_, err = c.PatchNode(ctx, "nope", NodePatch{Unschedulable: &yes})
	if !IsNotFound(err) || !strings.Contains(err.Error(), `cluster edge (API through 10.0.0.5): patch node nope: nodes "nope" not found (NotFound)`) {
		t.Errorf("patch of a missing node: %v", err)
	}
}

func TestDeleteNode(t *testing.T) {
	c, api := start(t)
	api.Nodes["w1"] = kubetest.Node("w1", true, nil)
	if err := c.DeleteNode(context.Background(), "w1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := api.Nodes["w1"]; ok {
		t.Error("node not deleted")
	}
	if err := c.DeleteNode(context.Background(), "w1"); err != nil {
		t.Errorf("deleting a node already gone: %v", err)
	}
}

func TestDrainSkipsDaemonSetsAndMirrorsAndRetriesBudgets(t *testing.T) {
	c, api := start(t)
	api.Nodes["w1"] = kubetest.Node("w1", true, nil)
	api.Pods = []map[string]any{
		kubetest.Pod("default", "web-1", "w1", "ReplicaSet", nil),
		kubetest.Pod("default", "db-0", "w1", "StatefulSet", nil),
		kubetest.Pod("kube-system", "svclb-1", "w1", "DaemonSet", nil),
		kubetest.Pod("kube-system", "static-w1", "w1", "Node", map[string]string{mirrorAnnotation: "abc"}),
		kubetest.Pod("default", "web-2", "w2", "ReplicaSet", nil),
	}
	api.Blocked["default/db-0"] = 3
	res, err := c.Drain(context.Background(), "w1", 5*time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Evicted, ",") != "default/db-0,default/web-1" || len(res.Left) != 0 {
		t.Errorf("drain result: %+v", res)
	}
	if api.Blocked["default/db-0"] != 0 {
		t.Error("the budget-blocked pod was not retried")
	}
	if left := api.PodIDs(); !slices.Equal(left, []string{"kube-system/svclb-1", "kube-system/static-w1", "default/web-2"}) {
		t.Errorf("pods left: %v", left)
	}
	if n, _ := c.GetNode(context.Background(), "w1"); !n.Unschedulable {
		t.Error("drain did not cordon")
	}
}

func TestDrainTimeout(t *testing.T) {
	setup := func() *Client {
		c, api := start(t)
		api.Nodes["w1"] = kubetest.Node("w1", true, nil)
		api.Pods = []map[string]any{kubetest.Pod("default", "db-0", "w1", "StatefulSet", nil), kubetest.Pod("default", "web-1", "w1", "ReplicaSet", nil)}
		api.Blocked["default/db-0"] = 1 << 30
		return c
	}
	_, err := setup().Drain(context.Background(), "w1", 100*time.Millisecond, false)
	var de *DrainError
	if !errors.As(err, &de) || strings.Join(de.Left, ",") != "default/db-0" || !IsTooManyRequests(err) {
		t.Fatalf("want a DrainError naming db-0 from a 429, got %v", err)
	}
	if !strings.Contains(err.Error(), "disruption budget") || !strings.Contains(err.Error(), "--force-drain") {
		t.Errorf("error lacks the cause or the fix: %v", err)
	}
	res, err := setup().Drain(context.Background(), "w1", 100*time.Millisecond, true)
	if err != nil || strings.Join(res.Left, ",") != "default/db-0" || strings.Join(res.Evicted, ",") != "default/web-1" {
		t.Errorf("forced drain: %+v %v", res, err)
	}
}

func TestParseKubeconfigErrors(t *testing.T) {
	api := kubetest.New(t)
	kc := string(api.Kubeconfig())
	cfg, err := ParseKubeconfig([]byte(kc))
	if err != nil || cfg.Server != "https://127.0.0.1:6443" || !strings.Contains(string(cfg.CA), "BEGIN CERTIFICATE") ||
		!strings.Contains(string(cfg.Key), "PRIVATE KEY") {
		t.Fatalf("parse: %+v %v", cfg, err)
	}
	if _, err := ParseKubeconfig([]byte("current-context: x\n")); err == nil || !strings.Contains(err.Error(), `no context "x"`) {
		t.Errorf("missing context: %v", err)
	}
	noKey := strings.Replace(kc, "client-key-data", "client-key", 1)
	if _, err := ParseKubeconfig([]byte(noKey)); err == nil || !strings.Contains(err.Error(), "client-key-data is missing") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := New("edge", "s1", Config{Server: "http://127.0.0.1:6443"}, nil); err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Errorf("http server: %v", err)
	}
}

func TestTransportErrorNamesClusterAndServer(t *testing.T) {
	api := kubetest.New(t)
	cfg, _ := ParseKubeconfig(api.Kubeconfig())
	c, err := New("edge", "10.0.0.5", cfg, func(ctx context.Context, n, a string) (net.Conn, error) {
		return nil, errors.New("10.0.0.5: connect to 127.0.0.1:6443 through SSH: ssh: rejected: connect failed (Connection refused)")
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListNodes(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cluster edge (API through 10.0.0.5): list nodes:") || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("error: %v", err)
	}
}

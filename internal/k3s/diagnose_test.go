package k3s

import (
	"strings"
	"testing"
)

func TestDiagnoseLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []string // all must appear in the hint
	}{
		{"ca hash", []string{
			`time="2024-05-01T10:00:00Z" level=fatal msg="Error: token CA hash does not match the Cluster CA certificate hash: 7c3b… != 9f2a…"`,
		}, []string{"another cluster", TokenPath}},
		{"duplicate hostname", []string{
			`level=error msg="Failed to retrieve agent config: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"`,
		}, []string{"unique node-name", "with-node-id", "kubectl delete node"}},
		{"critical", []string{
			`level=fatal msg="starting kubernetes: preparing server: failed to validate server configuration: critical configuration value mismatch between servers: cluster-cidr"`,
		}, []string{"(cluster-cidr)", "same on every server"}},
		{"bootstrap token", []string{
			`level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"`,
		}, []string{"original token", "database of its own", "uninstall"}},
		{"unauthorized", []string{
			`level=error msg="failed to get CA certs: https://10.0.0.1:6443/v1-k3s/server-bootstrap: 401 Unauthorized"`,
		}, []string{"rejected the token"}},
		{"learners", []string{
			`level=fatal msg="ETCD join failed: etcdserver: too many learner members in cluster"`,
		}, []string{"one at a time"}},
		{"x509", []string{
			`E0501 10:00:00 reflector.go:1 "Unhandled Error" err="Get \"https://k3s.example.com:6443/api\": tls: failed to verify certificate: x509: certificate is valid for 10.0.0.1, 127.0.0.1, kubernetes, not k3s.example.com"`,
		}, []string{"k3s.example.com to tls-san", "10.0.0.1, 127.0.0.1, kubernetes"}},
		{"refused", []string{
			`level=error msg="failed to get CA certs: Get \"https://10.0.0.1:6443/cacerts\": dial tcp 10.0.0.1:6443: connect: connection refused"`,
		}, []string{"cannot reach 10.0.0.1:6443", "connection refused", "6443/tcp"}},
		{"timeout ipv6", []string{
			`level=info msg="Waiting to retrieve agent configuration; server is not ready: Get \"https://[fd00::1]:6443/v1-k3s/serving-kubelet.crt\": dial tcp [fd00::1]:6443: i/o timeout"`,
		}, []string{"cannot reach [fd00::1]:6443", "i/o timeout"}},
		{"cause beats symptom", []string{
			`dial tcp 10.0.0.1:6443: connect: connection refused`,
			`Error: token CA hash does not match the Cluster CA certificate hash: a != b`,
			`dial tcp 10.0.0.1:6443: connect: connection refused`,
		}, []string{"another cluster"}},
	} {
		got := DiagnoseLog(tc.lines)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: hint %q lacks %q", tc.name, got, w)
			}
		}
	}
	if got := DiagnoseLog([]string{"level=info msg=\"Starting k3s v1.31.4+k3s1\"", "Running kubelet"}); got != "" {
		t.Errorf("healthy log diagnosed: %q", got)
	}
	if DiagnoseLog(nil) != "" {
		t.Error("empty log diagnosed")
	}
}

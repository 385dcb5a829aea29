// Package kube is a small client of a K3s cluster's Kubernetes API: nodes
// (list, patch, cordon, delete), pods on a node, eviction and drain. It
// authenticates with the admin client certificate of a server's k3s.yaml
// and reaches the API through whatever dialer it is given, usually the SSH
// connection to that server, so it works wherever SSH does.
package kube

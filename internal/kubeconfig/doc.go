// Package kubeconfig puts a cluster's admin credentials into the user's
// kubeconfig: it renames K3s's "default" entries after the cluster, points
// them at the address the user reaches, and merges them in without
// disturbing any other cluster, user, context or comment. Writes are atomic
// and locked against other k3sctl and kubectl processes.
package kubeconfig

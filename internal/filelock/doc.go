// Package filelock holds advisory file locks (flock) that keep k3sctl
// processes apart: the download cache and the kubeconfig use them.
package filelock

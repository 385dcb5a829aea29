// Package k3s holds what k3sctl knows about K3s itself: release assets and
// versions, the download cache, config.yaml, service units and scripts,
// tokens and the paths K3s uses on a node.
package k3s

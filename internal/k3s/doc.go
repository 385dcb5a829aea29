// Package k3s holds what k3sctl knows about K3s itself: release assets and
// versions, the download cache, config.yaml, service units and scripts,
// tokens, the paths K3s uses on a node, and what its logs say when a node
// fails to start or join. Nothing here opens an SSH connection.
package k3s

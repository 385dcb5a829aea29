// Package plan turns a Spec (what the user wants) and the facts of each
// host into a Plan: per host, install, upgrade, reconfigure, start, nothing
// or refuse, and the order hosts run in. It is a pure function: no SSH, no
// clock. It renders every file k3sctl writes on a node (Files) and compares
// their sha256 with the facts; a node's config.yaml is built by
// k3s.BuildConfig from what the plan decides for the host (join server,
// token, cluster-init, names, labels, taints) and the user's settings, so
// the model of that file and the keys k3sctl owns live in internal/k3s.
package plan

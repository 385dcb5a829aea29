// Package node owns what k3sctl knows about a node's system: how remote
// commands are built (every one from an argument list through Command and
// Quote), the service manager (systemd, and OpenRC behind the same
// ServiceManager interface), the batch write of small files, the facts
// script and the parsing of its answer, readiness (service state and
// `k3s kubectl get nodes`), the service log tail, the kubectl/crictl/ctr
// links, the join token read, and uninstall. It reaches hosts through the
// small Conn interfaces that *ssh.Client implements, so tests can fake them.
package node

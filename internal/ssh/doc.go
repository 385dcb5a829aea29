// Package ssh owns how k3sctl reaches hosts, and nothing about what runs on
// them: connections (keys, ssh-agent, ~/.ssh/config, known_hosts, jump
// hosts, retries, keepalives), running a command line with sudo (the
// password on stdin, never in the command), shell quoting, SFTP uploads
// verified by sha256, and reading and writing small root-owned files. It
// imports no K3s package; the remote system is internal/node's.
package ssh

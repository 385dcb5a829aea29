// Package ssh owns how k3sctl reaches hosts: connections (keys, ssh-agent,
// ~/.ssh/config, known_hosts, jump hosts, retries, keepalives), running
// commands with sudo, SFTP uploads verified by sha256, small root-owned files,
// and the one-round-trip facts gathering.
package ssh

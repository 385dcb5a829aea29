// Package e2e holds the end-to-end tests: real SSH servers with systemd in
// containers, the K3s simulator, real kubectl. See test/e2e/world.
package e2e

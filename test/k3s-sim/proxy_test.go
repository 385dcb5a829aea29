package main

import (
	"strings"
	"testing"
	"time"
)

// TestProxyEnvironmentLogged: the server logs the proxy environment it was
// started with, without a proxy password.
func TestProxyEnvironmentLogged(t *testing.T) {
	t.Parallel()
	l := newLo(t)
	env := []string{"HTTP_PROXY=http://ops:hunter2@proxy.test:3128", "HTTPS_PROXY=http://proxy.test:3128", "NO_PROXY=localhost,10.42.0.0/16"}
	a := startSim(t, simOpt{hostname: "px", env: env, notify: true}, l.serverArgs(1, "--token", "pw")...)
	a.waitLog("Proxy environment:", 30*time.Second)
	logs := a.logs()
	want := `msg="Proxy environment: HTTP_PROXY=http://ops:xxxxx@proxy.test:3128 HTTPS_PROXY=http://proxy.test:3128 NO_PROXY=localhost,10.42.0.0/16"`
	if !strings.Contains(logs, want) || strings.Contains(logs, "hunter2") {
		t.Errorf("log lacks %s or shows the password:\n%s", want, logs)
	}
}

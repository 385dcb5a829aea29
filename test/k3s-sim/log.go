package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// The journal is what users and k3sctl read, so lines follow logrus's text
// format as k3s prints it when stderr is not a terminal.

var (
	logMu sync.Mutex
	//lint:ignore U1000 set by --debug; read by debugf, kept for debug lines added while working on the simulator
	logDebug bool
	logOut   = os.Stderr
	// exitFunc is replaced in tests so that a fatal line can be asserted.
	exitFunc = os.Exit
)

func logLine(level, msg string) {
	var b strings.Builder
	b.WriteString(`time="`)
	b.WriteString(time.Now().Format(time.RFC3339))
	b.WriteString(`" level=`)
	b.WriteString(level)
	b.WriteString(" msg=")
	b.WriteString(logValue(msg))
	b.WriteByte('\n')
	logMu.Lock()
	defer logMu.Unlock()
	_, _ = logOut.WriteString(b.String())
}

// logValue quotes like logrus: only values with characters outside its safe
// set are quoted.
func logValue(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '.' || r == '_' || r == '/' || r == '@' || r == '^' || r == '+') {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

func infof(format string, a ...any)  { logLine("info", fmt.Sprintf(format, a...)) }
func warnf(format string, a ...any)  { logLine("warning", fmt.Sprintf(format, a...)) }
func errorf(format string, a ...any) { logLine("error", fmt.Sprintf(format, a...)) }

//lint:ignore U1000 kept for debug lines added while working on the simulator
func debugf(format string, a ...any) {
	if logDebug {
		logLine("debug", fmt.Sprintf(format, a...))
	}
}

func fatalf(format string, a ...any) {
	logLine("fatal", fmt.Sprintf(format, a...))
	exitFunc(1)
}

// proxyVars are the proxy variables k3s passes on to its components and
// containerd.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "CONTAINERD_HTTP_PROXY", "CONTAINERD_HTTPS_PROXY", "CONTAINERD_NO_PROXY"}

// logProxyEnv logs the proxy environment the process was started with, a
// password in a proxy URL replaced by xxxxx.
func logProxyEnv() {
	var parts []string
	for _, k := range proxyVars {
		v := os.Getenv(k)
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			v = u.Redacted()
		}
		parts = append(parts, k+"="+v)
	}
	if len(parts) > 0 {
		infof("Proxy environment: %s", strings.Join(parts, " "))
	}
}

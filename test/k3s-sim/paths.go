package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// simRoot lets unit tests run several simulators on one machine: every
// absolute path the simulator touches is taken relative to K3S_SIM_ROOT, as
// if the process were chrooted there. Unset, paths are the real ones.
func simRoot() string { return os.Getenv("K3S_SIM_ROOT") }

// hostPath maps a path as k3s knows it to the file the simulator uses.
func hostPath(p string) string {
	root := simRoot()
	if root == "" || !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// displayPath is the inverse of hostPath, for log lines and messages, which
// must show the paths k3s would show.
func displayPath(p string) string {
	root := simRoot()
	if root == "" {
		return p
	}
	if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + rel
	}
	return p
}

const (
	defaultDataDir    = "/var/lib/rancher/k3s"
	defaultConfigFile = "/etc/rancher/k3s/config.yaml"
	defaultKubeconfig = "/etc/rancher/k3s/k3s.yaml"
	nodeConfigDir     = "/etc/rancher/node"
)

func hostname() string {
	if h := os.Getenv("K3S_SIM_HOSTNAME"); h != "" {
		return h
	}
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// envDuration reads a duration knob for tests; real deployments never set
// these, so defaults must match k3s.
func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return def
}

// defaultRouteIP finds the address of the interface holding the default
// route, which is what k3s picks as node IP when none is configured.
func defaultRouteIP() net.IP {
	iface := ""
	if f, err := os.Open("/proc/net/route"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 2 && fields[1] == "00000000" && fields[0] != "Iface" {
				iface = fields[0]
				break
			}
		}
		f.Close()
	}
	var fallback net.IP
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if ifc.Name == iface {
				return ipn.IP.To4()
			}
			if fallback == nil {
				fallback = ipn.IP.To4()
			}
		}
	}
	if fallback != nil {
		return fallback
	}
	return net.IPv4(127, 0, 0, 1).To4()
}

func readOSImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"'`)
			}
		}
	}
	return "Linux"
}

func readKernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// interfaceIP is the first IPv4 address of the named interface.
func interfaceIP(name string) (net.IP, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("unable to find interface %s: %v", name, err)
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("unable to find an IPv4 address on interface %s", name)
}

// Command k3s is the K3s simulator used by k3sctl's tests: one small binary
// that behaves, through everything k3sctl touches (CLI, files, logs, systemd
// notification, the join protocol and the Kubernetes API as kubectl uses
// it), like the k3s binary of the version it was built as:
//
//	go build -ldflags "-X main.version=v1.31.4+k3s1" -o k3s ./test/k3s-sim
//
// It runs no containers. A server keeps a datastore of cluster bootstrap
// data, etcd members, nodes and namespaced objects; servers of an
// embedded-etcd cluster copy each other's datastore every two seconds and
// serve the API only while a majority of members is reachable. The
// datastore is server/db/etcd/member/snap/db (embedded etcd),
// server/db/state.db (SQLite; copying server/db and server/token onto a new
// host restores the cluster) or a PostgreSQL database (datastore-endpoint,
// see pg.go).
//
// The Kubernetes API, as kubectl and k3sctl use it (admin client
// certificate of the kubeconfig; discovery under /api, /apis and
// /openapi/v3):
//
//	GET    /api/v1/nodes[/<name>]            list (labelSelector; fieldSelector metadata.name,
//	                                         spec.unschedulable; watch), get, Table output
//	PATCH  /api/v1/nodes/<name>              merge or strategic merge patch of metadata.labels,
//	                                         metadata.annotations, metadata.finalizers, spec.taints,
//	                                         spec.unschedulable (kubectl label, taint, cordon,
//	                                         uncordon, drain)
//	DELETE /api/v1/nodes/<name>              delete through k3s's finalizers (see deleteNode)
//	GET    /api/v1/namespaces[/<name>]       the four namespaces of a new cluster
//	       /api/v1/[namespaces/<ns>/]pods, configmaps, and
//	       /apis/policy/v1/[namespaces/<ns>/]poddisruptionbudgets: see objects.go
//	POST   /api/v1/namespaces/<ns>/pods/<name>/eviction
//	                                         policy/v1 Eviction; 429 "Cannot evict pod as it
//	                                         would violate the pod's disruption budget."
//
// Node registration follows the kubelet: a Node that already exists keeps
// its labels and taints; only the kubelet's own labels (hostname, os, arch,
// instance-type and their beta forms) and k3s's node-role labels are set
// again, so node-label and node-taint act only when the Node is created. A
// deleted Node whose service keeps running registers again.
//
// At start, server and agent log the proxy environment they were given
// (HTTP_PROXY, HTTPS_PROXY, NO_PROXY and the CONTAINERD_ forms, a password
// masked): "Proxy environment: HTTP_PROXY=... NO_PROXY=...". Without
// node-ip, the node's address is flannel-iface's, else the default route's.
//
// Snapshots: "k3s etcd-snapshot save|ls" and "k3s server --cluster-reset
// --cluster-reset-restore-path", see snapshot.go.
//
// Real deployments set none of the following; unit tests use them to run
// several simulators on one machine and to shorten waits:
//
//	K3S_SIM_ROOT                every absolute path is taken under this directory
//	K3S_SIM_HOSTNAME            the hostname to use instead of the machine's
//	K3S_SIM_NODE_MONITOR_GRACE  how long without heartbeat until NotReady (40s)
//	K3S_SIM_LEARNER_DELAY       how long a joining server stays a learner (5s)
//	K3S_SIM_LEARNER_TIMEOUT     when a learner that never promoted is dropped (1m)
//	K3S_SIM_PEER_TIMEOUT        how long an unreachable member counts as up (7s)
//	K3S_SIM_POD_GC_QUARANTINE   how long a node stays gone before its pods are deleted (40s)
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "kubectl":
		os.Exit(kubectlMain(os.Args[1:]))
	case "crictl":
		os.Exit(crictlMain(os.Args[1:]))
	case "ctr":
		os.Exit(ctrMain(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch a := args[0]; {
		case a == "-v" || a == "--version":
			fmt.Print(versionLines())
			return 0
		case a == "-h" || a == "--help":
			usage()
			return 0
		case a == "--debug":
			logDebug = true
		case a == "--data-dir" || a == "-d":
			if len(args) > 1 {
				args = args[1:]
			}
		case strings.HasPrefix(a, "--data-dir="):
		default:
			fmt.Fprintf(os.Stderr, "Incorrect Usage: flag provided but not defined: %s\n\n", a)
			usage()
			fatalf("flag provided but not defined: %s", a)
		}
		args = args[1:]
	}
	if len(args) == 0 {
		usage()
		return 0
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "server", "agent":
		for _, a := range rest {
			if a == "-h" || a == "--help" {
				fmt.Printf("NAME:\n   k3s %s - Run management %s\n\nUSAGE:\n   k3s %s [OPTIONS]\n", cmd, cmd, cmd)
				return 0
			}
		}
		o, err := parseOpts(cmd, rest, os.Getenv)
		if err != nil {
			if strings.HasPrefix(err.Error(), "flag ") {
				fmt.Fprintf(os.Stderr, "Incorrect Usage: %v\n\n", err)
			}
			fatalf("%v", err)
		}
		if o.boolean("debug") {
			logDebug = true
		}
		if memoryCgroupOff() {
			fatalf("Error: failed to find memory cgroup (v2)")
		}
		if cmd == "server" {
			runServer(o)
		} else {
			runAgent(o)
		}
		return 0
	case "kubectl":
		return kubectlMain(rest)
	case "crictl":
		return crictlMain(rest)
	case "ctr":
		return ctrMain(rest)
	case "version":
		fmt.Print(versionLines())
		return 0
	case "check-config":
		return checkConfig()
	case "token":
		return tokenCmd(rest)
	case "etcd-snapshot":
		return etcdSnapshotCmd(rest)
	case "certificate":
		return certificateCmd(rest)
	case "secrets-encrypt":
		fmt.Println("Encryption Status: Disabled\nCurrent Rotation Stage: start\nServer Encryption Hashes: All hashes match")
		return 0
	case "completion":
		return 0
	case "help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "No help topic for '%s'\n", cmd)
	return 3
}

func usage() {
	fmt.Printf(`NAME:
   k3s - Kubernetes, but small and simple

USAGE:
   k3s [global options] command [command options] [arguments...]

VERSION:
   %s (%s)

COMMANDS:
   server           Run management server
   agent            Run node agent
   kubectl          Run kubectl
   crictl           Run crictl
   ctr              Run ctr
   check-config     Run config check
   token            Manage tokens
   etcd-snapshot    Manage etcd snapshots
   secrets-encrypt  Control secrets encryption and keys rotation
   certificate      Manage K3s certificates
   completion       Install shell completion script
   help, h          Shows a list of commands or help for one command

GLOBAL OPTIONS:
   --debug                     (logging) Turn on debug logs [$K3S_DEBUG]
   --data-dir value, -d value  (data) Folder to hold state (default: /var/lib/rancher/k3s or ${HOME}/.rancher/k3s if not root) [$K3S_DATA_DIR]
   --help, -h                  show help
   --version, -v               print the version
`, version, shortCommit())
}

func checkConfig() int {
	fmt.Print(`Verifying binaries in /var/lib/rancher/k3s/data/current/bin:
- sha256sum: good
- links: good

System:
- /usr/sbin iptables v1.8.9 (nf_tables): ok
- swap: disabled
- routes: ok

Limits:
- /proc/sys/kernel/keys/root_maxkeys: 1000000

info: reading kernel config from /proc/config.gz ...

Generally Necessary:
- cgroup hierarchy: cgroups Hybrid mounted, cpuset|memory controllers status: good
- CONFIG_NAMESPACES: enabled
- CONFIG_NET_NS: enabled
- CONFIG_PID_NS: enabled
- CONFIG_IPC_NS: enabled
- CONFIG_UTS_NS: enabled
- CONFIG_CGROUPS: enabled
- CONFIG_KEYS: enabled
- CONFIG_VETH: enabled (as module)
- CONFIG_BRIDGE: enabled (as module)
- CONFIG_NETFILTER_XT_MATCH_CONNTRACK: enabled (as module)
- CONFIG_OVERLAY_FS: enabled (as module)

STATUS: pass
`)
	return 0
}

func tokenCmd(args []string) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "list":
		tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "TOKEN\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS")
		tw.Flush()
		return 0
	case "create", "generate":
		const alnum = "0123456789abcdefghijklmnopqrstuvwxyz"
		pick := func(n int) string {
			b := []byte(randomHex(n))
			for i := range b {
				b[i] = alnum[int(b[i])%len(alnum)]
			}
			return string(b[:n])
		}
		fmt.Println(pick(6) + "." + pick(16))
		return 0
	case "delete":
		for _, t := range args[1:] {
			if !strings.HasPrefix(t, "-") {
				fmt.Printf("bootstrap token %q deleted\n", strings.SplitN(t, ".", 2)[0])
			}
		}
		return 0
	case "rotate":
		fatalf("token rotation requires --new-token and a running server")
	}
	fmt.Println("NAME:\n   k3s token - Manage tokens\n\nCOMMANDS:\n   create    Create bootstrap tokens on the server\n   delete    Delete bootstrap tokens on the server\n   generate  Generate and print a bootstrap token, but do not create it on the server\n   list      List bootstrap tokens on the server\n   rotate    Rotate original server token with a new server token")
	return 0
}

func etcdSnapshotCmd(args []string) int {
	sub := "save"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	dataDir := defaultDataDir
	for i := 0; i < len(args); i++ {
		if (args[i] == "--data-dir" || args[i] == "-d") && i+1 < len(args) {
			dataDir = args[i+1]
		} else if v, ok := strings.CutPrefix(args[i], "--data-dir="); ok {
			dataDir = v
		}
	}
	dir := filepath.Join(hostPath(dataDir), "server", "db", "snapshots")
	switch sub {
	case "save":
		return snapshotSave(args, dataDir)
	case "ls", "list":
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
		fmt.Fprintln(tw, "Name\tLocation\tSize\tCreated")
		for _, n := range names {
			info, err := os.Stat(filepath.Join(dir, n))
			if err != nil {
				continue
			}
			fmt.Fprintf(tw, "%s\tfile://%s\t%d\t%s\n", n, displayPath(filepath.Join(dir, n)), info.Size(), info.ModTime().UTC().Format(time.RFC3339))
		}
		tw.Flush()
		return 0
	case "delete", "prune":
		for _, n := range args {
			if !strings.HasPrefix(n, "-") {
				_ = os.Remove(filepath.Join(dir, filepath.Base(n)))
				infof("Snapshot %s deleted.", n)
			}
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "No help topic for '%s'\n", sub)
	return 3
}

func certificateCmd(args []string) int {
	if len(args) > 0 && args[0] == "check" {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
		fmt.Fprintln(tw, "FILENAME\tSUBJECT\tUSAGES\tEXPIRES\tRESIDUAL TIME\tSTATUS")
		fmt.Fprintf(tw, "serving-kube-apiserver.crt\tk3s\tServerAuth\t%s\t1 year\tOK\n", time.Now().AddDate(1, 0, 0).Format("Jan 02, 2006 15:04 UTC"))
		tw.Flush()
		return 0
	}
	if len(args) > 0 && args[0] == "rotate" {
		infof("Server detected, rotating server certificates")
		infof("Successfully backed up certificates to %s, please restart k3s server or agent to rotate certificates", displayPath(filepath.Join(hostPath(defaultDataDir), "server", "tls-"+time.Now().Format("20060102150405"))))
		return 0
	}
	fmt.Println("NAME:\n   k3s certificate - Manage K3s certificates\n\nCOMMANDS:\n   check      Check K3s component certificates on disk\n   rotate     Rotate K3s component certificates on disk\n   rotate-ca  Write updated K3s CA certificates to the datastore")
	return 0
}

func crictlMain(args []string) int {
	if len(args) == 0 {
		fmt.Println("NAME:\n   crictl - client for CRI")
		return 0
	}
	switch args[0] {
	case "ps":
		fmt.Println("CONTAINER           IMAGE               CREATED             STATE               NAME                ATTEMPT             POD ID              POD")
	case "pods":
		fmt.Println("POD ID              CREATED             STATE               NAME                NAMESPACE           ATTEMPT             RUNTIME")
	case "images":
		fmt.Println("IMAGE               TAG                 IMAGE ID            SIZE")
	case "version", "--version":
		fmt.Printf("Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  %s\nRuntimeApiVersion:  v1\n", strings.TrimPrefix(containerRuntime, "containerd://"))
	}
	return 0
}

func ctrMain(args []string) int {
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		v := strings.TrimPrefix(containerRuntime, "containerd://")
		fmt.Printf("Client:\n  Version:  v%s\n  Revision: \n  Go version: go1.22.9\n\nServer:\n  Version:  v%s\n  Revision: \n  UUID: \n", v, v)
	}
	return 0
}

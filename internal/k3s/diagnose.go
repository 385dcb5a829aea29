package k3s

import (
	"fmt"
	"regexp"
	"strings"
)

// logCause is one known way a K3s service fails, recognised in its log.
type logCause struct {
	match *regexp.Regexp
	// hint turns the submatches of the last matching line into advice.
	hint func(m []string) string
	// more, when set, adds what the rest of the log says.
	more func(lines []string) string
}

// logCauses are tried in order, most specific first: a node that cannot
// join often logs connection errors too, but those are the symptom.
var logCauses = []logCause{
	{
		match: regexp.MustCompile(`token CA hash does not match the Cluster CA certificate hash`),
		hint: func([]string) string {
			return "the join token belongs to another cluster: its CA hash does not match this server's CA. " +
				"Use the token from " + TokenPath + " on a server of this cluster."
		},
	},
	{
		match: regexp.MustCompile(`bootstrap data already found and encrypted with different token`),
		hint: func([]string) string {
			return "the cluster data this server found (on its disk, or in the external datastore it shares) is encrypted with another token. " +
				"Give it that cluster's original token (token: in the inventory or --token; it is in " + TokenPath + " on a server of that cluster); " +
				"a new cluster on an external datastore needs a database of its own; " +
				"or uninstall K3s on this node if its local data should be thrown away."
		},
	},
	{
		match: regexp.MustCompile(`critical configuration value mismatch between servers:?\s*([^"]*)`),
		hint: func(m []string) string {
			what := strings.TrimSpace(m[1])
			if what != "" {
				what = " (" + what + ")"
			}
			return "this server's config differs from the cluster's in a setting all servers must share" + what +
				". Make the critical settings (cluster-cidr, service-cidr, cluster-dns, cluster-domain, flannel-backend, " +
				"disable, disable-network-policy, secrets-encryption, …) the same on every server."
		},
	},
	{
		match: regexp.MustCompile(`Node password rejected, duplicate hostname`),
		hint: func([]string) string {
			return "a node with this name is already in the cluster. Give the node a unique node-name or set with-node-id: true; " +
				"if it is the same machine reinstalled, delete the old node (kubectl delete node <name>) and run again."
		},
	},
	{
		match: regexp.MustCompile(`too many learner members in cluster`),
		hint: func([]string) string {
			return "another server is still joining etcd. Servers must join one at a time: wait for it to become ready, then run again."
		},
	},
	{
		match: regexp.MustCompile(`failed to find memory cgroup`),
		hint: func([]string) string {
			return "the kernel runs without the memory cgroup, and K3s does not start without it. On a Raspberry Pi add " +
				MemoryCgroupBootArgs + " to the single line of /boot/firmware/cmdline.txt (/boot/cmdline.txt on older images) and reboot, " +
				"or run again with --fix-cgroups (fixBoot: true in an inventory) to have k3sctl do it."
		},
	},
	{
		// etcd answers every request with "no leader" (or times out) while
		// fewer than half of the members plus one are reachable; K3s
		// then never becomes ready.
		match: regexp.MustCompile(`lost quorum|etcdserver: no leader|etcdserver: request timed out|etcdserver: leader changed`),
		hint:  etcdQuorumHint,
		more:  etcdUnreachable,
	},
	{
		match: regexp.MustCompile(`x509: certificate is valid for (.*?), not ([^\s"',]+)`),
		hint: func(m []string) string {
			return fmt.Sprintf("the server's certificate does not cover %s (it covers %s). "+
				"Add %s to tls-san on every server and run again.", m[2], m[1], m[2])
		},
	},
	{
		match: regexp.MustCompile(`401 Unauthorized`),
		hint: func([]string) string {
			return "the server rejected the token. Use the cluster's token from " + TokenPath + " on a server."
		},
	},
	{
		match: regexp.MustCompile(`((?:\[[0-9a-fA-F:.]+\]|[\w.\-]+):6443)\b.*?(connection refused|i/o timeout|no route to host|connection reset by peer|network is unreachable)`),
		hint: func(m []string) string {
			return fmt.Sprintf("cannot reach %s (%s). Check that K3s runs on that server and that port %d/tcp is open from this node.",
				m[1], m[2], APIPort)
		},
	},
}

// DiagnoseLog looks through a K3s service log for a known cause of failure
// and says what to do about it; "" when it recognises none.
func DiagnoseLog(lines []string) string {
	for _, c := range logCauses {
		for i := len(lines) - 1; i >= 0; i-- {
			if m := c.match.FindStringSubmatch(lines[i]); m != nil {
				h := c.hint(m)
				if c.more != nil {
					h += c.more(lines)
				}
				return h
			}
		}
	}
	return ""
}

// etcdMemberDown is a server's note that it cannot reach another member.
var etcdMemberDown = regexp.MustCompile(`Failed to reach etcd member (\S+) at (\S+?):? (.*?)"?(?: \(×\d+\))?$`)

// MemoryCgroupBootArgs are the kernel parameters that turn the memory
// cgroup on for a Raspberry Pi kernel; K3s does not start without it.
const MemoryCgroupBootArgs = "cgroup_memory=1 cgroup_enable=memory"

// The etcd ports servers use among themselves.
const (
	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
)

func etcdQuorumHint([]string) string {
	return fmt.Sprintf("this server cannot reach a quorum of the cluster's etcd members (more than half of the servers), "+
		"so it cannot read or write cluster data. Check that the other servers are up and K3s runs there "+
		"(systemctl status k3s), and that ports %d-%d/tcp are open between the servers. "+
		"If more than half of the servers are gone for good, restore the cluster from one server with cluster-reset.",
		EtcdClientPort, EtcdPeerPort)
}

// etcdUnreachable names the members the log says are unreachable.
func etcdUnreachable(lines []string) string {
	seen := map[string]bool{}
	var names []string
	for _, l := range lines {
		if m := etcdMemberDown.FindStringSubmatch(l); m != nil && !seen[m[2]] {
			seen[m[2]] = true
			names = append(names, m[1]+" at "+m[2]+" ("+strings.TrimSpace(m[3])+")")
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " Unreachable: " + strings.Join(names, ", ") + "."
}

package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// nodeGrace is how long a node may go without a heartbeat before the node
// controller marks it NotReady (node-monitor-grace-period).
func nodeGrace() time.Duration { return envDuration("K3S_SIM_NODE_MONITOR_GRACE", 40*time.Second) }

func (n *nodeRec) ready(now time.Time) bool {
	return now.Sub(n.Heartbeat) < nodeGrace()
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

type objMeta struct {
	Name              string            `json:"name"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	Finalizers        []string          `json:"finalizers,omitempty"`
	DeletionTimestamp string            `json:"deletionTimestamp,omitempty"`
}

type nodeCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastHeartbeatTime  string `json:"lastHeartbeatTime"`
	LastTransitionTime string `json:"lastTransitionTime"`
	Reason             string `json:"reason"`
	Message            string `json:"message"`
}

type nodeAddress struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

type taintJSON struct {
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	Effect    string `json:"effect"`
	TimeAdded string `json:"timeAdded,omitempty"`
}

type nodeJSON struct {
	Kind       string  `json:"kind,omitempty"`
	APIVersion string  `json:"apiVersion,omitempty"`
	Metadata   objMeta `json:"metadata"`
	Spec       struct {
		PodCIDR       string      `json:"podCIDR,omitempty"`
		PodCIDRs      []string    `json:"podCIDRs,omitempty"`
		ProviderID    string      `json:"providerID,omitempty"`
		Unschedulable bool        `json:"unschedulable,omitempty"`
		Taints        []taintJSON `json:"taints,omitempty"`
	} `json:"spec"`
	Status struct {
		Capacity        map[string]string `json:"capacity"`
		Allocatable     map[string]string `json:"allocatable"`
		Conditions      []nodeCondition   `json:"conditions"`
		Addresses       []nodeAddress     `json:"addresses"`
		DaemonEndpoints struct {
			KubeletEndpoint struct {
				Port int `json:"Port"`
			} `json:"kubeletEndpoint"`
		} `json:"daemonEndpoints"`
		NodeInfo struct {
			MachineID               string `json:"machineID"`
			SystemUUID              string `json:"systemUUID"`
			BootID                  string `json:"bootID"`
			KernelVersion           string `json:"kernelVersion"`
			OSImage                 string `json:"osImage"`
			ContainerRuntimeVersion string `json:"containerRuntimeVersion"`
			KubeletVersion          string `json:"kubeletVersion"`
			KubeProxyVersion        string `json:"kubeProxyVersion"`
			OperatingSystem         string `json:"operatingSystem"`
			Architecture            string `json:"architecture"`
		} `json:"nodeInfo"`
	} `json:"status"`
}

// render builds the Node object as the apiserver would return it, with the
// conditions and taints the node lifecycle controller sets.
func (n *nodeRec) render(now time.Time) nodeJSON {
	var o nodeJSON
	o.Kind, o.APIVersion = "Node", "v1"
	o.Metadata = objMeta{
		Name: n.Name, UID: n.UID, ResourceVersion: strconv.FormatInt(n.rev, 10),
		CreationTimestamp: rfc3339(n.Created), Labels: n.Labels, Annotations: n.Annotations, Finalizers: n.Finalizers,
	}
	if n.PodCIDR != "" {
		o.Spec.PodCIDR, o.Spec.PodCIDRs = n.PodCIDR, []string{n.PodCIDR}
	}
	if !n.DeletionTimestamp.IsZero() {
		o.Metadata.DeletionTimestamp = rfc3339(n.DeletionTimestamp)
	}
	o.Spec.ProviderID = "k3s://" + n.Name
	o.Spec.Unschedulable = n.Unschedulable
	for _, t := range n.Taints {
		o.Spec.Taints = append(o.Spec.Taints, taintJSON{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	ready := n.ready(now)
	hb := rfc3339(n.Heartbeat)
	if !ready {
		since := rfc3339(n.Heartbeat.Add(nodeGrace()))
		o.Spec.Taints = append(o.Spec.Taints,
			taintJSON{Key: "node.kubernetes.io/unreachable", Effect: "NoSchedule", TimeAdded: since},
			taintJSON{Key: "node.kubernetes.io/unreachable", Effect: "NoExecute", TimeAdded: since})
		for _, c := range []string{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"} {
			o.Status.Conditions = append(o.Status.Conditions, nodeCondition{Type: c, Status: "Unknown",
				LastHeartbeatTime: hb, LastTransitionTime: since, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."})
		}
	} else {
		since := rfc3339(n.ReadySince)
		o.Status.Conditions = []nodeCondition{
			{"MemoryPressure", "False", hb, since, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"},
			{"DiskPressure", "False", hb, since, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
			{"PIDPressure", "False", hb, since, "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
			{"Ready", "True", hb, since, "KubeletReady", "kubelet is posting ready status"},
		}
	}
	for _, ip := range n.InternalIPs {
		o.Status.Addresses = append(o.Status.Addresses, nodeAddress{"InternalIP", ip})
	}
	for _, ip := range n.ExternalIPs {
		o.Status.Addresses = append(o.Status.Addresses, nodeAddress{"ExternalIP", ip})
	}
	o.Status.Addresses = append(o.Status.Addresses, nodeAddress{"Hostname", n.Hostname})
	cpus := n.CPUs
	if cpus == 0 {
		cpus = 1
	}
	mem := n.MemoryKi
	if mem == 0 {
		mem = 2 << 20
	}
	o.Status.Capacity = map[string]string{
		"cpu": strconv.Itoa(cpus), "memory": fmt.Sprintf("%dKi", mem), "pods": "110",
		"ephemeral-storage": "20470152Ki", "hugepages-2Mi": "0",
	}
	o.Status.Allocatable = map[string]string{
		"cpu": strconv.Itoa(cpus), "memory": fmt.Sprintf("%dKi", mem), "pods": "110",
		"ephemeral-storage": "19913526693", "hugepages-2Mi": "0",
	}
	o.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250
	ni := &o.Status.NodeInfo
	ni.MachineID = strings.ReplaceAll(n.UID, "-", "")
	ni.SystemUUID = n.UID
	ni.BootID = n.UID
	ni.KernelVersion = n.Kernel
	ni.OSImage = n.OSImage
	ni.ContainerRuntimeVersion = n.Runtime
	ni.KubeletVersion = n.KubeletVersion
	ni.KubeProxyVersion = n.KubeletVersion
	ni.OperatingSystem = "linux"
	ni.Architecture = n.Arch
	return o
}

func (n *nodeRec) statusText(now time.Time) string {
	s := "Ready"
	if !n.ready(now) {
		s = "NotReady"
	}
	if n.Unschedulable {
		s += ",SchedulingDisabled"
	}
	return s
}

func (n *nodeRec) roles() string {
	var roles []string
	for k, v := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		} else if k == "kubernetes.io/role" && v != "" {
			roles = append(roles, v)
		}
	}
	if len(roles) == 0 {
		return "<none>"
	}
	sort.Strings(roles)
	return strings.Join(roles, ",")
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "<none>"
	}
	return strings.Join(l, ",")
}

type tableColumn struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Format      string `json:"format"`
	Description string `json:"description"`
	Priority    int    `json:"priority"`
}

type tableRow struct {
	Cells  []any `json:"cells"`
	Object any   `json:"object,omitempty"`
}

type table struct {
	Kind              string        `json:"kind"`
	APIVersion        string        `json:"apiVersion"`
	Metadata          listMeta      `json:"metadata"`
	ColumnDefinitions []tableColumn `json:"columnDefinitions"`
	Rows              []tableRow    `json:"rows"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

var nodeColumns = []tableColumn{
	{"Name", "string", "name", "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", 0},
	{"Status", "string", "", "The status of the node", 0},
	{"Roles", "string", "", "The roles of the node", 0},
	{"Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", 0},
	{"Version", "string", "", "Kubelet Version reported by the node.", 0},
	{"Internal-IP", "string", "", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses", 1},
	{"External-IP", "string", "", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses", 1},
	{"OS-Image", "string", "", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1},
	{"Kernel-Version", "string", "", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1},
	{"Container-Runtime", "string", "", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1},
}

func (n *nodeRec) cells(now time.Time) []any {
	return []any{n.Name, n.statusText(now), n.roles(), humanDuration(now.Sub(n.Created)), n.KubeletVersion,
		orNone(n.InternalIPs), orNone(n.ExternalIPs), n.OSImage, n.Kernel, n.Runtime}
}

// humanDuration is Kubernetes' short age format ("5s", "3m20s", "2d4h").
func humanDuration(d time.Duration) string {
	if d < -time.Second {
		return "<invalid>"
	} else if d < 0 {
		return "0s"
	}
	s := int(d.Seconds())
	switch {
	case s < 60*2:
		return fmt.Sprintf("%ds", s)
	}
	m := int(d.Minutes())
	switch {
	case m < 10:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s%60)
	case m < 60*3:
		return fmt.Sprintf("%dm", m)
	}
	h := int(d.Hours())
	switch {
	case h < 8:
		if m%60 == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m%60)
	case h < 48:
		return fmt.Sprintf("%dh", h)
	case h < 24*8:
		if h%24 == 0 {
			return fmt.Sprintf("%dd", h/24)
		}
		return fmt.Sprintf("%dd%dh", h/24, h%24)
	case h < 24*365*2:
		return fmt.Sprintf("%dd", h/24)
	case h < 24*365*8:
		dy := (h / 24) % 365
		if dy == 0 {
			return fmt.Sprintf("%dy", h/24/365)
		}
		return fmt.Sprintf("%dy%dd", h/24/365, dy)
	}
	return fmt.Sprintf("%dy", h/24/365)
}

// selector is a label or field selector of the equality-based kind kubectl
// sends: "a=b,c!=d,e,!f".
type selector []selTerm

type selTerm struct {
	key, op, val string
}

func parseSelector(s string) (selector, error) {
	var out selector
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		switch {
		case strings.Contains(part, "!="):
			k, v, _ := strings.Cut(part, "!=")
			out = append(out, selTerm{strings.TrimSpace(k), "!=", strings.TrimSpace(v)})
		case strings.Contains(part, "=="):
			k, v, _ := strings.Cut(part, "==")
			out = append(out, selTerm{strings.TrimSpace(k), "=", strings.TrimSpace(v)})
		case strings.Contains(part, "="):
			k, v, _ := strings.Cut(part, "=")
			out = append(out, selTerm{strings.TrimSpace(k), "=", strings.TrimSpace(v)})
		case strings.HasPrefix(part, "!"):
			out = append(out, selTerm{strings.TrimSpace(part[1:]), "!", ""})
		case strings.ContainsAny(part, " ()"):
			return nil, fmt.Errorf("unable to parse requirement: %q", part)
		default:
			out = append(out, selTerm{part, "exists", ""})
		}
	}
	return out, nil
}

func (sel selector) matches(get func(string) (string, bool)) bool {
	for _, t := range sel {
		v, ok := get(t.key)
		switch t.op {
		case "=":
			if !ok || v != t.val {
				return false
			}
		case "!=":
			if ok && v == t.val {
				return false
			}
		case "!":
			if ok {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		}
	}
	return true
}

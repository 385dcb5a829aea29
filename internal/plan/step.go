package plan

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
)

// StepKind names one step of a host's plan. The values are what the
// printed plan, the views and the `step` field of JSON events show
// (docs/events.md): kinds are added, never renamed.
type StepKind string

// Step kinds, in the order a host runs them.
const (
	// StepFixBoot adds cgroup_memory=1 cgroup_enable=memory to the boot
	// command line, reboots the host and waits for it to come back.
	StepFixBoot StepKind = "fix boot"
	// StepUploadBinary puts the k3s binary on the host.
	StepUploadBinary StepKind = "upload k3s"
	// StepUploadImages puts the release's images archive of the host's
	// architecture into K3s's images folder (air-gapped clusters).
	StepUploadImages StepKind = "upload images"
	// StepWriteConfig writes config.yaml, the service files and scripts,
	// each only when it differs.
	StepWriteConfig StepKind = "write config"
	// StepDeliverFiles puts the cluster's files (manifests, images,
	// registries.yaml) on the host when they differ, removes those k3sctl
	// delivered earlier that are no longer listed, and updates the
	// host's record of them.
	StepDeliverFiles StepKind = "deliver files"
	// StepDrain cordons the node and evicts its pods (as kubectl drain
	// does, respecting PodDisruptionBudgets) before K3s restarts on it or
	// the node is removed.
	StepDrain StepKind = "drain node"
	// StepStartServer starts or restarts the k3s service of a server.
	StepStartServer StepKind = "start k3s"
	// StepStartAgent starts or restarts the k3s-agent service of an agent.
	StepStartAgent StepKind = "start k3s-agent"
	// StepRepair restarts the service of a host whose node did not
	// register or is not Ready, so that it joins again.
	StepRepair StepKind = "repair"
	// StepWaitReady waits until the service is active and the node Ready.
	StepWaitReady StepKind = "wait for ready"
	// StepUncordon makes a drained node schedulable again once it is
	// Ready on its new state.
	StepUncordon StepKind = "uncordon"
	// StepDeleteNode deletes a removed node's Node object; K3s then
	// removes its etcd member.
	StepDeleteNode StepKind = "delete node"
	// StepUninstall uninstalls K3s from a removed node's host.
	StepUninstall StepKind = "uninstall"
	// StepLabels brings the node's labels and taints to the inventory
	// through the Kubernetes API and records which k3sctl manages.
	StepLabels StepKind = "label node"
	// StepReadToken reads the cluster's token from a server for the hosts
	// that join it.
	StepReadToken StepKind = "read token"
	// StepKubeconfig reads the admin kubeconfig from the first server and
	// merges it into the local kubeconfig.
	StepKubeconfig StepKind = "kubeconfig"
	// StepSnapshot takes an etcd snapshot on a server: apply before an
	// upgrade, and backup.
	StepSnapshot StepKind = "etcd snapshot"
	// StepDownload copies a server's datastore and token into a local
	// backup (backup).
	StepDownload StepKind = "download backup"
	// StepStopServer stops the k3s service of a server (backup of SQLite,
	// restore).
	StepStopServer StepKind = "stop k3s"
	// StepRestore puts a backup's datastore and token in place on the first
	// server: the SQLite database before K3s starts, or an etcd snapshot
	// through K3s's cluster reset (restore).
	StepRestore StepKind = "restore data"
	// StepClearEtcd removes another server's old etcd data so that it joins
	// the restored cluster afresh (restore).
	StepClearEtcd StepKind = "clear etcd data"
)

// StepKinds lists every kind, in the order a host runs them.
func StepKinds() []StepKind {
	return []StepKind{StepSnapshot, StepFixBoot, StepUploadBinary, StepUploadImages, StepWriteConfig, StepDeliverFiles, StepDrain, StepStartServer, StepStartAgent, StepRepair, StepWaitReady, StepUncordon, StepLabels, StepReadToken, StepKubeconfig,
		StepDownload, StepStopServer, StepRestore, StepClearEtcd, StepUninstall, StepDeleteNode}
}

// StartStep is the kind that starts the service of role r.
func StartStep(r k3s.Role) StepKind {
	if r == k3s.Agent {
		return StepStartAgent
	}
	return StepStartServer
}

// MayChange reports whether a step of this kind can change the host. The
// others only read from it or wait for it, so "no change" says nothing
// about them. A kind this build does not know may change the host.
func (k StepKind) MayChange() bool {
	switch k {
	case StepWaitReady, StepReadToken, StepKubeconfig, StepDownload:
		return false
	}
	return true
}

// Step is one thing apply does on a host, in plan order.
type Step struct {
	Kind StepKind `json:"kind"`
	Host string   `json:"host"`
	// Reason says why the step runs, for people.
	Reason string `json:"reason,omitempty"`
	// Changes is whether the step is expected to change the host. Apply
	// checks again before it acts: a step planned as a change may find
	// the host already right and then reports no change.
	Changes bool `json:"changes"`
}

// planSteps lists what apply does on hp, given what planning decided.
// tokenKnown says whether the cluster's token was read while planning;
// kubeconfig whether the admin kubeconfig is merged.
func planSteps(hp *HostPlan, tokenKnown, kubeconfig bool) []Step {
	var steps []Step
	add := func(k StepKind, changes bool, reason string) {
		steps = append(steps, Step{Kind: k, Host: hp.Address, Reason: reason, Changes: changes})
	}
	readToken := func() {
		add(StepReadToken, false, "the hosts that join need the cluster's token")
	}
	labels := func() {
		if hp.Labels != nil {
			add(StepLabels, true, strings.Join(hp.Labels, ", "))
		}
	}
	switch hp.Action {
	case ActionRefuse, ActionUnreachable:
		return nil
	case ActionJoinSource:
		if !tokenKnown {
			readToken()
		}
		return steps
	case ActionNothing:
		if hp.First && !tokenKnown {
			readToken()
		}
	case ActionLabel:
		if len(hp.Changes) > 0 {
			add(StepWriteConfig, true, "writes "+path.Base(k3s.ConfigPath)+" without a restart (K3s reads node-label and node-taint only when a node registers)")
		}
		labels()
		if hp.First && !tokenKnown {
			readToken()
		}
	default:
		service := k3s.ServiceName(hp.Role)
		filesChange := len(hp.Files) > 0 || hp.FilesRecord
		deliver := func() {
			if filesChange {
				add(StepDeliverFiles, true, filesReason(*hp))
			} else if hp.delivers {
				add(StepDeliverFiles, false, "checks the delivered files")
			}
		}
		if hp.Action == ActionReconfigure && !hp.Upload && len(hp.Changes) == 0 && !hp.TokenPending && !FilesRestart(hp.Files) &&
			!hp.FixBoot && hp.Images == "" {
			// K3s picks these files up while it runs: nothing restarts.
			deliver()
			if hp.First && !tokenKnown {
				readToken()
			}
			break
		}
		if hp.FixBoot {
			add(StepFixBoot, true, "turns the memory cgroup on ("+k3s.MemoryCgroupBootArgs+") and reboots")
		}
		if hp.Upload {
			add(StepUploadBinary, true, fmt.Sprintf("k3s %s for %s", orNone(hp.To), hp.Arch))
		}
		if hp.Images != "" {
			add(StepUploadImages, true, path.Base(hp.Images)+" for "+string(hp.Arch))
		}
		var names []string
		for _, p := range hp.Changes {
			names = append(names, path.Base(p))
		}
		if hp.TokenPending && !slices.Contains(hp.Changes, k3s.ConfigPath) {
			names = append(names, path.Base(k3s.ConfigPath)+" once the cluster's token is known")
		}
		writes := len(names) > 0
		if writes {
			add(StepWriteConfig, true, "writes "+strings.Join(names, ", "))
		} else {
			add(StepWriteConfig, false, "checks the files k3sctl manages")
		}
		deliver()
		restartFiles := FilesRestart(hp.Files)
		restart := hp.Action != ActionRepair && hp.Action != ActionStart && hp.Action != ActionInstall
		drain := restart && hp.Node != ""
		if drain {
			add(StepDrain, true, "cordons node "+hp.Node+" and evicts its pods before "+service+" restarts")
		}
		switch {
		case hp.Action == ActionRepair:
			add(StepRepair, true, "join again: restarts "+service)
		case hp.Action == ActionStart:
			add(StartStep(hp.Role), true, "starts "+service)
		case hp.Action == ActionInstall:
			add(StartStep(hp.Role), true, "enables and starts "+service)
		default:
			add(StartStep(hp.Role), true, "restarts "+service+" with the new "+restartCause(hp.Upload, writes || restartFiles, hp.Images != ""))
		}
		ready := service + " active and the node Ready"
		if hp.To != "" {
			ready += " at " + hp.To
		}
		add(StepWaitReady, false, ready)
		if drain {
			add(StepUncordon, true, "makes node "+hp.Node+" schedulable again")
		}
		labels()
		if hp.First {
			readToken()
		}
	}
	if hp.First && kubeconfig {
		add(StepKubeconfig, false, "merges the cluster's admin kubeconfig into the local one")
	}
	return steps
}

func restartCause(upload, writes, images bool) string {
	var what []string
	if upload {
		what = append(what, "binary")
	}
	if images {
		what = append(what, "images")
	}
	if writes || len(what) == 0 {
		what = append(what, "files")
	}
	switch len(what) {
	case 1:
		return what[0]
	case 2:
		return what[0] + " and " + what[1]
	}
	return what[0] + ", " + what[1] + " and " + what[2]
}

// StepsChange reports whether any of steps is expected to change its host.
func StepsChange(steps []Step) bool {
	for _, s := range steps {
		if s.Changes {
			return true
		}
	}
	return false
}

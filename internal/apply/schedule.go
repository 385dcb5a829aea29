package apply

import (
	"context"
	"fmt"

	"github.com/k3sctl/k3sctl/internal/plan"
)

// newHostRun is the state j's steps share. A host with steps needs its
// connection.
func (r *runner) newHostRun(j *job) (*hostRun, error) {
	conn := r.conn(j.hp.Address)
	if conn == nil && len(j.hp.Steps) > 0 {
		return nil, fmt.Errorf("%s: no connection", j.hp.Address)
	}
	return &hostRun{conn: conn, initSystem: r.o.InitSystems[j.hp.Address]}, nil
}

// runnableSteps are the planned steps this run does: the kubeconfig step
// is left out when there is no kubeconfig to merge into.
func (r *runner) runnableSteps(j *job) []plan.Step {
	var out []plan.Step
	for _, s := range j.hp.Steps {
		if s.Kind == plan.StepKubeconfig && r.o.Kubeconfig == nil {
			continue
		}
		out = append(out, s)
	}
	return out
}

// earlySteps is how many of the first steps of a host being installed may
// run before the hosts it waits for have finished: uploading the binary
// and delivering files need neither the cluster's token nor a running
// server. A host being upgraded waits for its turn before anything, so
// that a new binary is never left beside a cluster whose servers failed
// to upgrade.
func earlySteps(j *job, steps []plan.Step) int {
	if j.hp.Action != plan.ActionInstall {
		return 0
	}
	n := 0
	for _, s := range steps {
		if s.Kind != plan.StepUploadBinary && s.Kind != plan.StepDeliverFiles {
			break
		}
		n++
	}
	return n
}

// waitDeps waits until every host j depends on has finished; it returns
// why j cannot go on, or nil.
func (r *runner) waitDeps(ctx context.Context, j *job, deps []*job) error {
	for _, d := range deps {
		select {
		case <-d.done:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.ok {
			return fmt.Errorf("not started: %s (%s) did not finish", d.hp.Address, d.hp.Role)
		}
	}
	return nil
}

func (j *job) markUploaded() { j.uploadedOnce.Do(func() { close(j.uploaded) }) }

func hasUpload(steps []plan.Step) bool {
	for _, s := range steps {
		if s.Kind == plan.StepUploadBinary {
			return true
		}
	}
	return false
}

// waitUploads waits until none of deps uploads its binary any more: on a
// workstation whose uplink or CPU is the limit, the hosts everything
// waits for get it first.
func waitUploads(ctx context.Context, deps []*job) {
	for _, d := range deps {
		select {
		case <-d.uploaded:
		case <-ctx.Done():
			return
		}
	}
}

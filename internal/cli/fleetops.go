package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/k3sctl/k3sctl/internal/apply"
	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/rollout"
	"github.com/k3sctl/k3sctl/internal/ssh"
	"github.com/k3sctl/k3sctl/internal/ui"
	"github.com/spf13/pflag"
)

// subsetFlags choose some clusters of an inventory: plan, apply, reset,
// status and kubeconfig take them.
type subsetFlags struct {
	clusters []string
	selector string
}

func addSubsetFlags(fs *pflag.FlagSet, s *subsetFlags) {
	fs.StringSliceVar(&s.clusters, "cluster", nil, `only these clusters: names or shell-style globs such as "shop-*" (repeatable)`)
	fs.StringVarP(&s.selector, "selector", "l", "", "only clusters whose labels match: key=value,key!=value, key or !key joined by commas")
}

// subset is the choice the flags make; a selector that cannot be read is
// a usage error.
func (s *subsetFlags) subset() (inventory.Subset, error) {
	sel, err := inventory.ParseSelector(s.selector)
	if err != nil {
		return inventory.Subset{}, flagErrorf("--selector: %v", err)
	}
	for _, p := range s.clusters {
		if err := inventory.CheckPattern(p); err != nil {
			return inventory.Subset{}, flagErrorf("--cluster: %v", err)
		}
	}
	return inventory.Subset{Clusters: s.clusters, Selector: sel}, nil
}

// selectClusters keeps the clusters the flags choose, before anything
// connects. A pattern or selector that matches nothing is a usage error
// naming what is close.
func selectClusters(inv *inventory.Inventory, s *subsetFlags) (*inventory.Inventory, error) {
	sub, err := s.subset()
	if err != nil {
		return nil, err
	}
	what := "--cluster"
	if len(s.clusters) == 0 {
		what = "--selector"
	}
	out, err := inventory.Select(inv, sub, what)
	if err != nil {
		return nil, &FlagError{err}
	}
	return out, nil
}

// rolloutFlags are apply's flags for a progressive rollout; each replaces
// its key of the inventory's rollout: section.
type rolloutFlags struct {
	canary         []string
	canarySelector string
	waveSize       string
	failureBudget  string
	pause          string
	confirm        bool
	maxClusters    int
	yes            bool
}

var rolloutFlagNames = []string{"canary", "canary-selector", "wave-size", "failure-budget", "pause", "confirm", "max-clusters"}

func addRolloutFlags(fs *pflag.FlagSet, r *rolloutFlags) {
	fs.StringSliceVar(&r.canary, "canary", nil, "roll out in waves, these clusters first: names or globs (repeatable; replaces rollout.canary)")
	fs.StringVar(&r.canarySelector, "canary-selector", "", "roll out in waves, the clusters whose labels match first (replaces rollout.canary)")
	fs.StringVar(&r.waveSize, "wave-size", "", `roll out in waves of this many clusters, or this percentage of them, e.g. 2 or "25%" (replaces rollout.waves)`)
	fs.StringVar(&r.failureBudget, "failure-budget", "", `in waves: clusters that may fail before no new one is started, e.g. 1 or "10%" (default 0)`)
	fs.StringVar(&r.pause, "pause", "", "in waves: wait this long between waves, e.g. 5m")
	fs.BoolVar(&r.confirm, "confirm", false, "in waves: ask before each wave after the first")
	fs.IntVar(&r.maxClusters, "max-clusters", 0, "in waves: clusters worked on at once (default: a whole wave)")
	fs.BoolVarP(&r.yes, "yes", "y", false, "do not ask before a wave")
}

// policy is the rollout to run: the inventory's rollout: section with the
// flags given laid over it; nil when neither asks for waves.
func (r *rolloutFlags) policy(fs *pflag.FlagSet, inv *inventory.Inventory) (*inventory.Rollout, error) {
	changed := false
	for _, n := range rolloutFlagNames {
		changed = changed || fs.Changed(n)
	}
	if inv.Rollout == nil && !changed {
		return nil, nil
	}
	p := inventory.Rollout{}
	if inv.Rollout != nil {
		p = *inv.Rollout
	}
	if fs.Changed("canary") || fs.Changed("canary-selector") {
		sel, err := inventory.ParseSelector(r.canarySelector)
		if err != nil {
			return nil, flagErrorf("--canary-selector: %v", err)
		}
		for _, c := range r.canary {
			if err := inventory.CheckPattern(c); err != nil {
				return nil, flagErrorf("--canary: %v", err)
			}
		}
		p.Canary = inventory.Subset{Clusters: r.canary, Selector: sel}
		what := "--canary"
		if len(r.canary) == 0 {
			what = "--canary-selector"
		}
		if _, err := p.Canary.Names(inv.Clusters, what); err != nil {
			return nil, &FlagError{err}
		}
	}
	if fs.Changed("wave-size") {
		a, err := inventory.ParseAmount(r.waveSize, 1)
		if err != nil {
			return nil, flagErrorf("--wave-size: %v", err)
		}
		p.Waves = []inventory.Amount{a}
	}
	if fs.Changed("failure-budget") {
		a, err := inventory.ParseAmount(r.failureBudget, 0)
		if err != nil {
			return nil, flagErrorf("--failure-budget: %v", err)
		}
		p.FailureBudget = a
	}
	if fs.Changed("pause") {
		d, confirm, err := inventory.ParsePause(r.pause)
		if err != nil {
			return nil, flagErrorf("--pause: %v", err)
		}
		p.Pause, p.Confirm = d, confirm
	}
	if fs.Changed("confirm") {
		p.Confirm = r.confirm
	}
	if fs.Changed("max-clusters") {
		if r.maxClusters < 1 {
			return nil, flagErrorf("--max-clusters must be at least 1, not %d", r.maxClusters)
		}
		p.MaxClustersInFlight = r.maxClusters
	}
	return &p, nil
}

// canaryOf is the names of the chosen clusters the canary names. An
// inventory's canary outside the chosen clusters just has no canary.
func canaryOf(p *inventory.Rollout, inv *inventory.Inventory) []string {
	if p.Canary.Empty() {
		return nil
	}
	var out []string
	for i := range inv.Clusters {
		if p.Canary.Match(&inv.Clusters[i]) {
			out = append(out, inv.Clusters[i].Name)
		}
	}
	return out
}

// progressive runs apply as a rollout in waves.
func (r *rolloutRun) progressive(ctx context.Context, pol *inventory.Rollout, yes bool) error {
	f := r.k3s
	var names []string
	for _, c := range r.inv.Clusters {
		names = append(names, c.Name)
	}
	waves := rollout.PlanWaves(names, canaryOf(pol, r.inv), pol.Waves)
	numbered := rollout.Numbered(waves)
	budget := pol.FailureBudget.Of(len(names), false)
	ask := pol.Confirm && !yes && len(waves) > 1 && !f.dryRun
	if ask && !r.io.IsStdinTTY() {
		return flagErrorf("the rollout asks before each wave (--confirm or rollout.pause: confirm), but stdin is not a terminal; pass --yes to go on without asking")
	}
	mode := r.io.RenderMode(f.output, f.plain)
	if ask && mode == ui.ModeTUI {
		// The question needs the terminal between waves.
		mode = ui.ModePlain
	}
	if mode != ui.ModeJSON {
		printWaves(r.io.Err, waves, numbered, budget, pol)
	}
	if f.dryRun {
		return r.execute(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renderer := r.io.Renderer(mode, cancel)
	in := bufio.NewReader(r.io.In)
	var errMu sync.Mutex
	between := func(ctx context.Context, done, next rollout.Wave) error {
		if ask {
			errMu.Lock()
			fmt.Fprintf(r.io.Err, "\n%s finished. Start %s (%s)? [y/N] ", done.Label(numbered), next.Label(numbered), strings.Join(next.Clusters, ", "))
			answer, _ := in.ReadString('\n')
			errMu.Unlock()
			switch strings.ToLower(strings.TrimSpace(answer)) {
			case "y", "yes":
			default:
				return errNotConfirmed{next.Label(numbered)}
			}
		}
		if pol.Pause > 0 {
			renderer.Event(apply.Event{Time: time.Now(), Type: apply.EventLog, Wave: next.Name,
				Message: fmt.Sprintf("pausing %s before %s", pol.Pause, next.Label(numbered))})
			select {
			case <-time.After(pol.Pause):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	if mode == ui.ModeTUI {
		// Clusters connect while the live view runs: SSH warnings (a
		// host key recorded) go through it instead of across it.
		base := r.sshFunc
		r.sshFunc = func(address string) ssh.Options {
			so := base(address)
			so.Warnf = func(format string, a ...any) {
				renderer.Event(apply.Event{Time: time.Now(), Type: apply.EventLog, Message: "warning: " + fmt.Sprintf(format, a...)})
			}
			return so
		}
	}
	var sink apply.Sink = renderer
	var trace *traceSink
	if r.k3s.trace {
		trace = newTraceSink(renderer)
		sink = trace
	}
	// Each cluster is locked when its turn comes, for that cluster's run.
	o := r.options(ctx, sink, rollout.NewLockOptions(os.Args))
	o.Progress = nil
	if err := renderer.Start(); err != nil {
		return err
	}
	rep, _ := rollout.Progressive(ctx, rollout.ProgressiveOptions{
		Options: o, Waves: waves, Budget: budget, MaxInFlight: pol.MaxClustersInFlight, Between: between,
	})
	renderer.Close()
	_ = renderer.Wait()
	if mode != ui.ModeJSON {
		for _, m := range r.merged {
			fmt.Fprintf(r.io.Err, "Merged context %q into %s: kubectl --context %s get nodes\n", m, r.kube.Path, m)
		}
	}
	// People read stderr in every mode; the events said the same.
	printRolloutReport(r.io.Err, rep, waves, numbered)
	if trace != nil {
		trace.print(r.io.Err)
	}
	var nc errNotConfirmed
	switch {
	case errors.Is(rep.Stopped, context.Canceled) || errors.Is(rep.Stopped, context.DeadlineExceeded):
		return &SilentError{Code: ExitInterrupted}
	case len(rep.Failed) > 0:
		return &SilentError{Code: ExitHostsFailed}
	case errors.As(rep.Stopped, &nc):
		return &SilentError{Code: ExitError}
	}
	return nil
}

type errNotConfirmed struct{ wave string }

func (e errNotConfirmed) Error() string { return "not confirmed: stopped before " + e.wave }

func printWaves(w io.Writer, waves []rollout.Wave, numbered, budget int, pol *inventory.Rollout) {
	fmt.Fprintf(w, "Rollout in %d wave(s), failure budget %d cluster(s)", len(waves), budget)
	switch {
	case pol.Confirm:
		fmt.Fprint(w, ", asking before each wave")
	case pol.Pause > 0:
		fmt.Fprintf(w, ", pausing %s between waves", pol.Pause)
	}
	if pol.MaxClustersInFlight > 0 {
		fmt.Fprintf(w, ", at most %d cluster(s) at once", pol.MaxClustersInFlight)
	}
	fmt.Fprintln(w, ":")
	for _, wv := range waves {
		fmt.Fprintf(w, "  %-10s %s\n", wv.Label(numbered), strings.Join(wv.Clusters, ", "))
	}
	fmt.Fprintln(w)
}

// printRolloutReport says what the rollout did, what failed and what it
// did not start.
func printRolloutReport(w io.Writer, rep rollout.Report, waves []rollout.Wave, numbered int) {
	label := func(name string) string {
		for _, wv := range waves {
			if wv.Name == name {
				return wv.Label(numbered)
			}
		}
		return name
	}
	fmt.Fprintln(w)
	if rep.Stopped == nil {
		fmt.Fprintf(w, "Rollout finished: %d cluster(s) in %d wave(s)", len(rep.Done)+len(rep.Failed), len(waves))
		if len(rep.Failed) > 0 {
			fmt.Fprintf(w, ", %d failed", len(rep.Failed))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "Rollout stopped after %s: %v\n", label(rep.StoppedAfter), rep.Stopped)
	}
	list := func(what string, names []string) {
		if len(names) > 0 {
			fmt.Fprintf(w, "  %-12s %s\n", what+":", strings.Join(names, ", "))
		}
	}
	list("done", rep.Done)
	list("failed", rep.Failed)
	list("not started", rep.NotStarted)
	if rep.Stopped != nil || len(rep.Failed) > 0 {
		fmt.Fprintln(w, "Fix what failed and run apply again: clusters already in sync finish unchanged in their wave, the rest carry on.")
	}
}

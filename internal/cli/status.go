package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kube"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/plan"
	"github.com/k3sctl/k3sctl/internal/rollout"
)

// StatusOptions are what status was asked to do, checked.
type StatusOptions struct {
	IO      *IO
	Factory *Factory

	File     string
	IP       string
	Output   string
	Watch    bool
	Interval time.Duration
	Subset   subsetFlags
	SSH      sshFlags
	// K3s holds --channel-url, used when a cluster names a channel.
	K3s k3sFlags
}

// Health of a node, a cluster and the whole report.
const (
	HealthOK        = "ok"
	HealthDrift     = "drift"
	HealthUnhealthy = "unhealthy"
)

// Certificate states: ok, warn (inside CertWarnDays), expired.
const (
	CertOK      = "ok"
	CertWarn    = "warn"
	CertExpired = "expired"
	CertUnread  = "unreadable"
)

// CertWarnDays is how long before expiry status warns: K3s renews its
// certificates at a restart inside these days.
const CertWarnDays = 120

// StatusReport is status's JSON document (docs/status.md).
type StatusReport struct {
	Time time.Time `json:"time"`
	// Health is the worst of the clusters': ok, drift or unhealthy.
	Health   string          `json:"health"`
	ExitCode int             `json:"exitCode"`
	Clusters []ClusterStatus `json:"clusters"`
}

// ClusterStatus is one cluster and its nodes.
type ClusterStatus struct {
	Name   string `json:"name"`
	Health string `json:"health"`
	// APIError says why the cluster's API could not be read although a
	// server runs.
	APIError string       `json:"apiError,omitempty"`
	Nodes    []NodeStatus `json:"nodes"`
}

// NodeStatus is one host of the inventory, or a node only the cluster's
// API knows (Host is then its address from the API and Reachable null).
type NodeStatus struct {
	Host      string `json:"host"`
	Node      string `json:"node,omitempty"`
	Role      string `json:"role"`
	Reachable *bool  `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Service is the K3s service's state: active, inactive, failed, …,
	// or not-installed; "" when the host was not reached.
	Service string `json:"service,omitempty"`
	// Ready is the Node's Ready condition; null when not known.
	Ready   *bool  `json:"ready"`
	Version string `json:"version,omitempty"`
	// Drift is what apply would change; null when nothing or when there
	// is no inventory.
	Drift    *Drift     `json:"drift"`
	Certs    CertStatus `json:"certs"`
	Health   string     `json:"health"`
	Problems []string   `json:"problems,omitempty"`
}

// Drift is the plan's action for a host and what it changes.
type Drift struct {
	Action string `json:"action"`
	// Kinds are short names of what differs: install, version, config,
	// files, labels, start, repair, refused.
	Kinds   []string `json:"kinds"`
	Reasons []string `json:"reasons,omitempty"`
}

// CertStatus is the state of a host's K3s certificates: the worst of the
// certificates that are not CAs, and the one that expires first.
type CertStatus struct {
	State string `json:"state,omitempty"`
	// First is the certificate (not a CA) that expires first.
	First *CertInfo  `json:"first,omitempty"`
	List  []CertInfo `json:"list,omitempty"`
}

// CertInfo is one certificate file.
type CertInfo struct {
	Path     string    `json:"path"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"notAfter"`
	DaysLeft int       `json:"daysLeft"`
	CA       bool      `json:"ca,omitempty"`
	State    string    `json:"state"`
	Error    string    `json:"error,omitempty"`
}

// NewCmdStatus is the status command; runF replaces statusRun in tests.
func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "status -f <inventory> | --ip <server> [flags]",
		Short: "Show the health of every cluster and node, and what differs from the inventory",
		Long: `Connect to every host of the inventory (reading only: nothing is written,
no lock is taken) and show per cluster and node: whether the host is
reachable, the K3s service's state, the node's Ready condition from the
cluster's API, its role and K3s version, drift from the inventory (what
apply would do: version, config, files, labels, start, repair) and the
expiry of the K3s certificates under /var/lib/rancher/k3s (server/tls and
agent). A certificate that expires within 120 days is a warning (K3s renews
it when it restarts then), an expired one makes the node unhealthy;
certificate authorities are listed but not warned about.

With --ip, the one server given and its cluster's nodes as the API lists
them are shown, without drift.

` + exitCodeHelp(ExitOK, ExitError, ExitUsage, ExitChangesPending, ExitUnhealthy, ExitInterrupted),
		Example: `  # The whole fleet at a glance
  $ k3sctl status -f fleet.yaml

  # As JSON, for monitoring
  $ k3sctl status -f fleet.yaml -o json

  # A live view of the shops, refreshed every 30 seconds
  $ k3sctl status -f fleet.yaml --cluster 'shop-*' --watch --interval 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.File != "" && opts.IP != "":
				return flagErrorf("give -f <inventory> or --ip <server>, not both")
			case opts.File == "" && opts.IP == "":
				return flagErrorf("which hosts? give -f <inventory> or --ip <server>")
			case opts.IP != "" && (len(opts.Subset.clusters) > 0 || opts.Subset.selector != ""):
				return flagErrorf("--cluster and --selector choose clusters of an inventory: give -f <inventory>")
			}
			if opts.Output != "" && opts.Output != "json" && opts.Output != "text" {
				return flagErrorf("--output must be json or text, not %q", opts.Output)
			}
			if opts.Interval < time.Second {
				return flagErrorf("--interval must be at least 1s, not %s", opts.Interval)
			}
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&opts.File, "file", "f", "", "inventory file")
	fs.StringVar(&opts.IP, "ip", "", "address of one server: show its cluster without an inventory")
	fs.StringVarP(&opts.Output, "output", "o", "", "output: json for the report as JSON (default: a table)")
	fs.BoolVarP(&opts.Watch, "watch", "w", false, "refresh the view every --interval until Ctrl-C")
	fs.DurationVar(&opts.Interval, "interval", 10*time.Second, "time between refreshes with --watch")
	fs.StringVar(&opts.K3s.channelURL, "channel-url", "", channelURLUsage)
	addSubsetFlags(fs, &opts.Subset)
	addSSHFlags(fs, &opts.SSH)
	return cmd
}

// statusSource gathers one report.
type statusSource func(ctx context.Context) (*StatusReport, error)

func statusRun(ctx context.Context, opts *StatusOptions) error {
	src, err := statusSourceOf(opts)
	if err != nil {
		return err
	}
	if !opts.Watch {
		rep, err := src(ctx)
		if err != nil {
			return err
		}
		if opts.Output == "json" {
			if err := encodeIndented(opts.IO.Out, rep); err != nil {
				return err
			}
		} else {
			printStatus(opts.IO.Out, rep)
		}
		if rep.ExitCode != ExitOK {
			return &SilentError{Code: rep.ExitCode}
		}
		return nil
	}
	return watchStatus(ctx, opts, src)
}

// watchStatus redraws the view every interval until ctx ends (Ctrl-C).
// With -o json each refresh is one line.
func watchStatus(ctx context.Context, opts *StatusOptions, src statusSource) error {
	clear := opts.Output != "json" && opts.IO.IsStdoutTTY()
	for {
		rep, err := src(ctx)
		if ctx.Err() != nil {
			return &SilentError{Code: ExitInterrupted}
		}
		switch {
		case err != nil:
			fmt.Fprintf(opts.IO.Err, "status: %v (trying again in %s)\n", err, opts.Interval)
		case opts.Output == "json":
			line, err := json.Marshal(rep)
			if err != nil {
				return err
			}
			if _, err := opts.IO.Out.Write(append(line, '\n')); err != nil {
				return err
			}
		default:
			if clear {
				fmt.Fprint(opts.IO.Out, "\x1b[H\x1b[2J")
			}
			fmt.Fprintf(opts.IO.Out, "Every %s: k3sctl status (Ctrl-C ends)   %s\n\n", opts.Interval, rep.Time.Local().Format(time.DateTime))
			printStatus(opts.IO.Out, rep)
			if !clear {
				fmt.Fprintln(opts.IO.Out)
			}
		}
		select {
		case <-ctx.Done():
			return &SilentError{Code: ExitInterrupted}
		case <-time.After(opts.Interval):
		}
	}
}

// statusSourceOf reads the inventory (or builds the one-server cluster of
// --ip) once; each call of the source connects and reads afresh.
func statusSourceOf(opts *StatusOptions) (statusSource, error) {
	res := opts.SSH.resolver(opts.Factory)
	var (
		spec     *plan.Spec
		versions map[string]string
		sshFor   = res.options
	)
	if opts.IP != "" {
		spec = &plan.Spec{Clusters: []plan.Cluster{{Name: opts.IP, Servers: []plan.Host{{Address: opts.IP, Role: k3s.Server}}}}}
		versions = map[string]string{}
	} else {
		inv, err := loadSelected(opts.File, &opts.Subset)
		if err != nil {
			return nil, err
		}
		spec, versions, sshFor = rollout.FromInventory(inv, res.options)
	}
	return func(ctx context.Context) (*StatusReport, error) {
		o := rollout.Options{
			Spec: spec, SSH: sshFor, VersionOrChannel: versions, Release: opts.K3s.release(), Status: true,
			Progress: func(format string, a ...any) {
				if opts.Output != "json" && !opts.Watch {
					fmt.Fprintf(opts.IO.Err, format+"\n", a...)
				}
			},
		}
		p, err := rollout.Prepare(ctx, o)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		return buildStatus(p, opts.IP == "", time.Now()), nil
	}, nil
}

// buildStatus makes the report of a prepared plan. withDrift: the plan
// was built from an inventory, so its actions are drift.
func buildStatus(p *rollout.Prepared, withDrift bool, now time.Time) *StatusReport {
	rep := &StatusReport{Time: now.UTC(), Health: HealthOK}
	for _, cp := range p.Plan.Clusters {
		cs := ClusterStatus{Name: cp.Name, Health: HealthOK, APIError: p.NodesErr[cp.Name]}
		if cs.APIError != "" {
			cs.Health = HealthUnhealthy
		}
		seen := map[string]bool{}
		for _, hp := range cp.Hosts {
			if hp.Action == plan.ActionJoinSource {
				continue
			}
			ns := hostStatus(p, hp, withDrift, now)
			if ns.Node != "" {
				seen[ns.Node] = true
			}
			cs.Nodes = append(cs.Nodes, ns)
		}
		for _, n := range p.Nodes[cp.Name] {
			if !seen[n.Name] {
				cs.Nodes = append(cs.Nodes, apiNodeStatus(n))
			}
		}
		for _, n := range cs.Nodes {
			cs.Health = worse(cs.Health, n.Health)
		}
		rep.Health = worse(rep.Health, cs.Health)
		rep.Clusters = append(rep.Clusters, cs)
	}
	switch rep.Health {
	case HealthUnhealthy:
		rep.ExitCode = ExitUnhealthy
	case HealthDrift:
		rep.ExitCode = ExitChangesPending
	}
	return rep
}

func worse(a, b string) string {
	rank := map[string]int{HealthOK: 0, HealthDrift: 1, HealthUnhealthy: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func hostStatus(p *rollout.Prepared, hp plan.HostPlan, withDrift bool, now time.Time) NodeStatus {
	ns := NodeStatus{Host: hp.Address, Role: string(hp.Role), Health: HealthOK}
	hf, nf := p.Facts[hp.Address], p.HostFacts[hp.Address]
	reachable := hf != nil && hf.Err == "" && nf != nil
	ns.Reachable = &reachable
	unhealthy := func(format string, a ...any) {
		ns.Health = HealthUnhealthy
		ns.Problems = append(ns.Problems, fmt.Sprintf(format, a...))
	}
	if !reachable {
		ns.Error = "not reached"
		if hf != nil && hf.Err != "" {
			ns.Error = hf.Err
		}
		unhealthy("unreachable: %s", ns.Error)
		return ns
	}
	svc := nf.Services.K3s
	if hp.Role == k3s.Agent {
		svc = nf.Services.K3sAgent
	}
	switch {
	case !svc.Installed:
		ns.Service = "not-installed"
	case svc.State != "":
		ns.Service = svc.State
	case svc.Active:
		ns.Service = "active"
	default:
		ns.Service = "inactive"
	}
	if !svc.Active {
		unhealthy("%s is %s", k3s.ServiceName(hp.Role), ns.Service)
	}
	ns.Version = nf.K3sVersion
	if n := hf.Node; n != nil {
		ns.Node = n.Name
		switch {
		case n.Registered:
			ready := n.Ready
			ns.Ready = &ready
			if !ready {
				unhealthy("node %s is not Ready: %s", n.Name, n.NotReadyReason)
			}
		case svc.Installed:
			unhealthy("no node %s in the cluster", n.Name)
		}
	}
	ns.Certs = certStatus(nf.Certs, now)
	for _, c := range ns.Certs.List {
		switch c.State {
		case CertExpired:
			unhealthy("certificate %s expired on %s", c.Path, c.NotAfter.Format(time.DateOnly))
		case CertWarn:
			if !c.CA {
				ns.Problems = append(ns.Problems, fmt.Sprintf("warning: certificate %s expires in %d days (%s); K3s renews it when restarted", c.Path, c.DaysLeft, c.NotAfter.Format(time.DateOnly)))
			}
		case CertUnread:
			ns.Problems = append(ns.Problems, fmt.Sprintf("warning: %s: %s", c.Path, c.Error))
		}
	}
	if withDrift {
		ns.Drift = driftOf(hp)
		if ns.Drift != nil && ns.Health == HealthOK {
			ns.Health = HealthDrift
		}
	}
	return ns
}

// apiNodeStatus is a node the cluster's API lists that is no host of the
// inventory (or, with --ip, any node but the server's).
func apiNodeStatus(n kube.Node) NodeStatus {
	ns := NodeStatus{Node: n.Name, Role: string(k3s.Agent), Version: n.KubeletVersion, Health: HealthOK}
	for _, a := range n.Addresses {
		if a.Type == "InternalIP" {
			ns.Host = a.Address
			break
		}
	}
	if n.Labels["node-role.kubernetes.io/control-plane"] == "true" || n.Labels["node-role.kubernetes.io/master"] == "true" {
		ns.Role = string(k3s.Server)
	}
	ready := n.Ready
	ns.Ready = &ready
	if !ready {
		ns.Health = HealthUnhealthy
		ns.Problems = append(ns.Problems, fmt.Sprintf("node %s is not Ready: %s", n.Name, n.ReadyReason))
	}
	return ns
}

// driftOf is the plan's action for the host as drift; nil when the plan
// changes nothing there.
func driftOf(hp plan.HostPlan) *Drift {
	d := &Drift{Action: string(hp.Action), Reasons: hp.Reasons}
	switch hp.Action {
	case plan.ActionNothing, plan.ActionJoinSource, plan.ActionUnreachable:
		return nil
	case plan.ActionInstall:
		d.Kinds = append(d.Kinds, "install")
	case plan.ActionUpgrade, plan.ActionDowngrade:
		d.Kinds = append(d.Kinds, "version")
	case plan.ActionStart:
		d.Kinds = append(d.Kinds, "start")
	case plan.ActionRepair:
		d.Kinds = append(d.Kinds, "repair")
	case plan.ActionRefuse:
		d.Kinds = append(d.Kinds, "refused")
	}
	if hp.Action != plan.ActionInstall && hp.Action != plan.ActionRefuse {
		if len(hp.Changes) > 0 && hp.Action != plan.ActionLabel {
			d.Kinds = append(d.Kinds, "config")
		}
		if len(hp.Files) > 0 || hp.FilesRecord {
			d.Kinds = append(d.Kinds, "files")
		}
		if hp.Labels != nil {
			d.Kinds = append(d.Kinds, "labels")
		}
	}
	if len(d.Kinds) == 0 {
		d.Kinds = []string{string(hp.Action)}
	}
	return d
}

// certStatus rates a host's certificates at now.
func certStatus(certs []node.Cert, now time.Time) CertStatus {
	var cs CertStatus
	if len(certs) == 0 {
		return cs
	}
	cs.State = CertOK
	for _, c := range certs {
		ci := CertInfo{Path: c.Path, Subject: c.Subject, NotAfter: c.NotAfter, CA: c.CA, Error: c.Err, State: CertOK}
		left := c.NotAfter.Sub(now)
		ci.DaysLeft = int(left / (24 * time.Hour))
		switch {
		case c.Err != "":
			ci.State, ci.DaysLeft = CertUnread, 0
		case left <= 0:
			ci.State = CertExpired
		case left < CertWarnDays*24*time.Hour:
			ci.State = CertWarn
		}
		cs.List = append(cs.List, ci)
		if ci.State == CertUnread || ci.CA && ci.State != CertExpired {
			continue
		}
		if ci.State == CertExpired || ci.State == CertWarn && cs.State == CertOK {
			cs.State = ci.State
		}
		if !ci.CA && (cs.First == nil || ci.NotAfter.Before(cs.First.NotAfter)) {
			first := ci
			cs.First = &first
		}
	}
	sort.Slice(cs.List, func(i, j int) bool { return cs.List[i].Path < cs.List[j].Path })
	return cs
}

// printStatus writes the table, then each node's problems and a summary.
func printStatus(w io.Writer, rep *StatusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tHOST\tROLE\tREACHABLE\tSERVICE\tREADY\tVERSION\tDRIFT\tCERTS")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, c := range rep.Clusters {
		for _, n := range c.Nodes {
			host := n.Host
			if host == "" {
				host = n.Node
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, host, n.Role,
				yesNoUnknown(n.Reachable), dash(n.Service), yesNoUnknown(n.Ready), dash(n.Version), driftCell(n.Drift), certCell(n.Certs))
		}
	}
	_ = tw.Flush()
	var notes []string
	for _, c := range rep.Clusters {
		if c.APIError != "" {
			notes = append(notes, fmt.Sprintf("%s: the cluster's API could not be read: %s", c.Name, c.APIError))
		}
		for _, n := range c.Nodes {
			who := c.Name + "/" + dash(n.Host)
			for _, p := range n.Problems {
				notes = append(notes, who+": "+p)
			}
			if n.Drift != nil {
				why := ""
				if len(n.Drift.Reasons) > 0 {
					why = ": " + strings.Join(n.Drift.Reasons, "; ")
				}
				notes = append(notes, fmt.Sprintf("%s: apply would %s%s", who, n.Drift.Action, why))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	count := map[string][]string{}
	for _, c := range rep.Clusters {
		count[c.Health] = append(count[c.Health], c.Name)
	}
	fmt.Fprintf(w, "\n%d cluster(s): %d healthy and in sync", len(rep.Clusters), len(count[HealthOK]))
	if n := count[HealthDrift]; len(n) > 0 {
		fmt.Fprintf(w, ", %d with drift (%s)", len(n), strings.Join(n, ", "))
	}
	if n := count[HealthUnhealthy]; len(n) > 0 {
		fmt.Fprintf(w, ", %d unhealthy (%s)", len(n), strings.Join(n, ", "))
	}
	fmt.Fprintln(w)
}

func yesNoUnknown(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "yes"
	}
	return "no"
}

func driftCell(d *Drift) string {
	if d == nil {
		return "-"
	}
	return strings.Join(d.Kinds, ",")
}

func certCell(c CertStatus) string {
	switch {
	case c.State == "":
		return "-"
	case c.First == nil:
		return c.State
	case c.State == CertExpired:
		return "EXPIRED"
	}
	cell := fmt.Sprintf("%s %dd", c.State, c.First.DaysLeft)
	if c.State == CertWarn {
		cell += " " + path.Base(c.First.Path)
	}
	return cell
}

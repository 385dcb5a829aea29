package plan

import (
	"fmt"
	"io"
	"strings"
)

var actionWords = map[Action]string{
	ActionInstall:     "install",
	ActionUpgrade:     "upgrade",
	ActionDowngrade:   "downgrade",
	ActionReconfigure: "reconfigure",
	ActionStart:       "start",
	ActionRepair:      "repair",
	ActionLabel:       "label",
	ActionNothing:     "no changes",
	ActionRefuse:      "REFUSED",
	ActionUnreachable: "UNREACHABLE",
	ActionJoinSource:  "read token",
	ActionRemove:      "remove",
}

// stepWidth lines up the reasons after the longest step kind.
var stepWidth = func() int {
	n := 0
	for _, k := range StepKinds() {
		n = max(n, len(k))
	}
	return n
}()

// Print writes the plan for people: per cluster, the hosts in the order
// they run, what happens to each and why, then each host's steps, those
// that change the host marked "+". It never shows secrets: the plan holds
// none.
func Print(w io.Writer, p *Plan) {
	for i, c := range p.Clusters {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "cluster %s (K3s %s, API %s)\n", c.Name, orNone(c.Version), c.APIAddress)
		// Hosts keyed past their address ("10.0.0.5 via ops@jump-b")
		// widen the column.
		width := 22
		for _, h := range c.Hosts {
			width = max(width, len(h.Address))
		}
		for _, r := range c.Removals {
			width = max(width, len(r.Node))
		}
		for _, h := range c.Hosts {
			role := string(h.Role)
			if h.First && h.Action != ActionJoinSource {
				role += ", first"
			}
			what := actionWords[h.Action]
			switch h.Action {
			case ActionInstall:
				what += " " + h.To
			case ActionUpgrade, ActionDowngrade:
				what += " " + orNone(h.From) + " → " + h.To
			}
			fmt.Fprintf(w, "  %d. %-*s %-14s %s\n", h.Step, width, h.Address, "("+role+")", what)
			for _, r := range h.Reasons {
				fmt.Fprintf(w, "       - %s\n", strings.ReplaceAll(strings.TrimSpace(r), "\n", "\n         "))
			}
			if len(h.After) > 0 && h.Action != ActionNothing {
				fmt.Fprintf(w, "       - after %s\n", strings.Join(h.After, ", "))
			}
			for _, s := range h.Steps {
				mark := " "
				if s.Changes {
					mark = "+"
				}
				fmt.Fprintf(w, "       %s %-*s  %s\n", mark, stepWidth, s.Kind, s.Reason)
				if s.Kind == StepDeliverFiles {
					printFiles(w, h.Files)
				}
			}
		}
		printRemovals(w, c.Removals, width)
	}
	n, changes, blocked := 0, 0, 0
	for _, c := range p.Clusters {
		for _, h := range c.Hosts {
			switch h.Action {
			case ActionJoinSource:
				continue
			case ActionNothing:
			case ActionRefuse, ActionUnreachable:
				blocked++
			default:
				changes++
			}
			n++
		}
	}
	removals, refused, shown := 0, 0, 0
	for _, r := range p.Removals() {
		switch {
		case r.Action == ActionRefuse:
			refused++
		case r.Pruned:
			removals++
		default:
			shown++
		}
	}
	defer func() {
		if removals > 0 {
			fmt.Fprintf(w, "%d node(s) to remove from their clusters.\n", removals)
		}
		if shown > 0 {
			fmt.Fprintf(w, "%d node(s) no longer in the inventory: apply --prune removes them (drain, delete the node, uninstall K3s).\n", shown)
		}
		if refused > 0 {
			fmt.Fprintf(w, "%d node removal(s) refused: apply --prune changes nothing until the reasons above are fixed.\n", refused)
		}
	}()
	switch {
	case changes == 0 && blocked == 0:
		fmt.Fprintf(w, "\nNo changes: %d host(s) already as wanted.\n", n)
	case blocked == 0:
		fmt.Fprintf(w, "\n%d of %d host(s) to change.\n", changes, n)
	default:
		fmt.Fprintf(w, "\n%d of %d host(s) to change; %d refused or unreachable.\n", changes, n, blocked)
	}
}

// printFiles lists the delivered files a host's plan changes: "+" new,
// "~" changed, "-" removed, each with sizes and sha256 prefixes, and the
// content diff when the plan has one.
func printFiles(w io.Writer, files []FileChange) {
	marks := map[string]string{FileCreate: "+", FileUpdate: "~", FileRemove: "-"}
	for _, fc := range files {
		fmt.Fprintf(w, "           %s %s\n", marks[fc.Op], fc.Summary())
		if fc.Secret && fc.Op != FileRemove {
			fmt.Fprintf(w, "             (secret: content not shown)\n")
		}
		for _, l := range strings.Split(strings.TrimSuffix(fc.Diff, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(w, "             %s\n", l)
			}
		}
	}
}

// printRemovals lists the nodes of a cluster no longer in the inventory.
func printRemovals(w io.Writer, rs []Removal, width int) {
	for _, r := range rs {
		where := r.Address
		if where == "" {
			where = "address unknown"
		}
		what := actionWords[r.Action]
		if r.Action == ActionRemove && !r.Pruned {
			what += " (needs --prune)"
		}
		fmt.Fprintf(w, "  -. %-*s %-14s %s\n", width, r.Node, "("+string(r.Role)+", "+where+")", what)
		for _, why := range r.Reasons {
			fmt.Fprintf(w, "       - %s\n", why)
		}
		for _, s := range r.Steps {
			mark := " "
			if s.Changes && r.Pruned {
				mark = "+"
			}
			fmt.Fprintf(w, "       %s %-*s  %s\n", mark, stepWidth, s.Kind, s.Reason)
		}
	}
}

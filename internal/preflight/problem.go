package preflight

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/k3sctl/k3sctl/internal/hostlock"
	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/kubeconfig"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Kind is what a problem is about.
type Kind string

// Kinds of problems.
const (
	KindKubeconfig        Kind = "kubeconfig"
	KindInventory         Kind = "inventory" // an address that is not valid or does not resolve
	KindToken             Kind = "token"
	KindKeyFile           Kind = "key-file"
	KindDuplicateHostname Kind = "duplicate-hostname"
	KindDuplicateMachine  Kind = "duplicate-machine-id"
	KindSudo              Kind = "sudo"
	KindLocked            Kind = "locked"
	KindOther             Kind = "other"
)

// Local is the Host of a problem on this machine (kubeconfig, key files,
// flags); such problems are listed first.
const Local = ""

// Problem is one thing that would make a run fail on a host.
type Problem struct {
	Host string // address, or Local
	Kind Kind
	What string // one line, never a secret
	Fix  string
	Err  error // the typed error it came from, if any
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.Host != Local {
		b.WriteString(p.Host + ": ")
	}
	b.WriteString(p.What)
	if p.Fix != "" {
		b.WriteString("\nhint: " + p.Fix)
	}
	return b.String()
}

func (p Problem) Unwrap() error { return p.Err }

// Report is every problem found before a run, so a user fixes them all in
// one pass. It is an error when it holds any problem.
type Report struct {
	Problems []Problem
}

// Add records problems; zero Problems (no What) are left out.
func (r *Report) Add(ps ...Problem) {
	for _, p := range ps {
		if p.What != "" {
			r.Problems = append(r.Problems, p)
		}
	}
}

// AddError records err found for host, typed where the error is known;
// a nil err adds nothing.
func (r *Report) AddError(host string, err error) {
	if err != nil {
		r.Add(FromError(host, err))
	}
}

// Err is nil for a clean report, else the report sorted.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	s := &Report{Problems: slices.Clone(r.Problems)}
	s.sort()
	return s
}

// Error lists one problem a block, local problems first, then by host
// (IPs in numeric order), then by kind.
func (r *Report) Error() string {
	ps := &Report{Problems: slices.Clone(r.Problems)}
	ps.sort()
	lines := make([]string, len(ps.Problems))
	for i, p := range ps.Problems {
		lines[i] = p.Error()
	}
	head := "preflight: 1 problem, nothing was changed:\n"
	if n := len(lines); n != 1 {
		head = "preflight: " + strconv.Itoa(n) + " problems, nothing was changed:\n"
	}
	return head + strings.Join(lines, "\n")
}

func (r *Report) sort() {
	slices.SortStableFunc(r.Problems, func(a, b Problem) int {
		return cmp.Or(compareHosts(a.Host, b.Host), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.What, b.What))
	})
}

// compareHosts puts Local first, IPs in numeric order, then names.
func compareHosts(a, b string) int {
	if a == b {
		return 0
	}
	if a == Local || b == Local {
		return cmp.Compare(a, b) // "" sorts first
	}
	ia, ea := netip.ParseAddr(a)
	ib, eb := netip.ParseAddr(b)
	switch {
	case ea == nil && eb == nil:
		return ia.Compare(ib)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return cmp.Compare(a, b)
}

// FromError turns the typed errors of the checks in other packages into a
// Problem at host, keeping their message and fix.
func FromError(host string, err error) Problem {
	var (
		kc  *kubeconfig.Problem
		tok *k3s.TokenProblem
		key *ssh.KeyPermissionError
		lk  *hostlock.LockedError
		se  *ssh.Error
		pp  Problem
		ptr *Problem
	)
	switch {
	case errors.As(err, &pp):
		return pp
	case errors.As(err, &ptr) && ptr != nil:
		return *ptr
	case errors.As(err, &kc):
		return Problem{Host: Local, Kind: KindKubeconfig, What: "kubeconfig " + kc.Path + ": " + kc.What, Fix: kc.Fix, Err: err}
	case errors.As(err, &tok):
		return Problem{Host: Local, Kind: KindToken, What: tok.Flag + ": " + tok.What, Fix: tok.Fix, Err: err}
	case errors.As(err, &key):
		return Problem{Host: Local, Kind: KindKeyFile, What: key.Error(), Fix: key.Hint(), Err: err}
	case errors.As(err, &lk):
		return Problem{Host: lk.Host, Kind: KindLocked, What: strings.TrimPrefix(lk.Error(), lk.Host+": "), Err: err}
	case errors.As(err, &se) && se.Op == "sudo":
		return Problem{Host: se.Host, Kind: KindSudo, What: se.Err.Error(), Fix: se.Hint, Err: err}
	}
	what := err.Error()
	fix := ssh.HintOf(err)
	if fix != "" {
		what = strings.TrimSuffix(what, "\nhint: "+fix)
	}
	if host != Local {
		what = strings.TrimPrefix(what, host+": ")
	}
	return Problem{Host: host, Kind: KindOther, What: what, Fix: fix, Err: err}
}

// NameProblems turns the names inventory.LookupNames could not resolve
// into Problems at those addresses.
func NameProblems(ps []inventory.NameProblem) []Problem {
	out := make([]Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, Problem{Host: p.Address, Kind: KindInventory, What: p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col) + ": " + p.Message, Fix: p.Hint})
	}
	return out
}

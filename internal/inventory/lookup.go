package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// NameCheck says how LookupNames resolves addresses.
type NameCheck struct {
	// Lookup resolves a name; nil is net.DefaultResolver.LookupHost.
	Lookup func(ctx context.Context, name string) ([]string, error)
	// Timeout bounds each lookup; 0 is DefaultLookupTimeout.
	Timeout time.Duration
	// Alias reports an address that is a Host in the SSH config, which
	// the SSH layer maps to a HostName: such names are not in DNS.
	Alias func(address string) bool
}

// DefaultLookupTimeout bounds one name lookup.
const DefaultLookupTimeout = 5 * time.Second

// lookupParallel bounds how many lookups run at once.
const lookupParallel = 16

// NameProblem is an address that does not resolve, at the host that uses
// it.
type NameProblem struct {
	Address string
	Problem
}

// LookupNames resolves every host address of inv that is not an IP, before
// a run changes any host, and returns a Problem at the host for each name
// that does not resolve. Addresses reached through a jump host are left
// out: the jump host resolves them, not this machine. Each name is looked
// up once.
func LookupNames(ctx context.Context, inv *Inventory, nc NameCheck) []NameProblem {
	lookup := nc.Lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	timeout := nc.Timeout
	if timeout <= 0 {
		timeout = DefaultLookupTimeout
	}
	type use struct {
		name string
		pos  Position
	}
	var uses []use
	names := map[string]error{}
	for _, c := range inv.Clusters {
		for _, h := range c.Hosts() {
			if h.Address == "" || h.SSH.Jump != "" || (nc.Alias != nil && nc.Alias(h.Address)) {
				continue
			}
			if _, err := netip.ParseAddr(h.Address); err == nil {
				continue
			}
			uses = append(uses, use{h.Address, h.Pos})
			names[h.Address] = nil
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, lookupParallel)
	for name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			addrs, err := lookup(lctx, name)
			if err == nil && len(addrs) == 0 {
				err = errors.New("no addresses")
			}
			if err != nil && lctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %s", timeout)
			}
			mu.Lock()
			names[name] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	var ps []NameProblem
	for _, u := range uses {
		if err := names[u.name]; err != nil {
			ps = append(ps, NameProblem{Address: u.name, Problem: Problem{File: u.pos.File, Line: u.pos.Line, Col: u.pos.Col,
				Message: fmt.Sprintf("address %q does not resolve: %v", u.name, lookupReason(err)),
				Hint:    "check the name and the DNS settings of this machine, write the IP instead, or add the name as a Host in the SSH config"}})
		}
	}
	slices.SortStableFunc(ps, func(a, b NameProblem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return ps
}

// lookupReason drops the name that *net.DNSError repeats.
func lookupReason(err error) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return errors.New("no such host")
		}
		return errors.New(de.Err)
	}
	return err
}

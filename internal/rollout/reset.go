package rollout

import (
	"context"
	"sync"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/preflight"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Uninstall runs whichever uninstall scripts the node has and reports
// whether anything was removed (node.Uninstall).
func Uninstall(ctx context.Context, c node.Conn) (bool, error) {
	return node.Uninstall(ctx, c)
}

// UninstallOne removes K3s from the host c is connected to, under the
// host lock when lock is set: a host locked by another run, or whose sudo
// fails, is a *preflight.Report and nothing is removed.
func UninstallOne(ctx context.Context, c *ssh.Client, lock *LockOptions) (bool, error) {
	conns := map[string]Conn{c.Host(): c}
	var locks *hostLocks
	if lock != nil {
		var problems []preflight.Problem
		locks, problems = lockHosts(ctx, *lock, conns, []string{c.Host()}, 1)
		defer locks.release()
		if len(problems) > 0 {
			var r preflight.Report
			r.Add(problems...)
			return false, r.Err()
		}
	}
	return Uninstall(ctx, locks.guard(c.Host(), c))
}

// Reset uninstalls K3s from every host of the inventory: in each cluster
// the agents first, then the servers; clusters in parallel. It connects to
// every host first and, when lock is set, takes every host's lock before
// the first removal: a host locked by another run, or whose sudo fails,
// stops the reset before anything is removed, and the error is the
// *preflight.Report of every such host. A host that cannot be reached is
// reported and counted, and the others go on. It returns how many hosts
// failed; report is called once per host.
func Reset(ctx context.Context, inv *inventory.Inventory, sshFor func(string) ssh.Options, lock *LockOptions, report func(host string, removed bool, err error)) (int, error) {
	var targets []target
	seen := map[string]bool{}
	keys := hostKeys(inv) // as FromInventory keys them: sshFor takes these
	keyOf := func(h inventory.Host) string { k, _, _ := keys(h); return k }
	for _, c := range inv.Clusters {
		for _, h := range c.Hosts() {
			if k := keyOf(h); !seen[k] {
				seen[k] = true
				targets = append(targets, target{addr: k})
			}
		}
	}
	var mu sync.Mutex
	conns := map[string]Conn{}
	failed := 0
	parallel(targets, 20, func(t target) {
		c, err := ssh.Dial(ctx, sshFor(t.addr))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			report(t.addr, false, err)
			return
		}
		conns[t.addr] = c
	})
	defer closeAll(conns)
	if err := ctx.Err(); err != nil {
		return failed, err
	}
	var locks *hostLocks
	if lock != nil {
		addrs := make([]string, 0, len(targets))
		for _, t := range targets {
			addrs = append(addrs, t.addr)
		}
		var problems []preflight.Problem
		locks, problems = lockHosts(ctx, *lock, conns, sortedCopy(addrs), 20)
		defer locks.release()
		if len(problems) > 0 {
			var r preflight.Report
			r.Add(problems...)
			return failed, r.Err()
		}
	}

	one := func(addr string) {
		mu.Lock()
		c := conns[addr]
		mu.Unlock()
		if c == nil {
			return // unreachable, reported above
		}
		removed, err := Uninstall(ctx, locks.guard(addr, c))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
		}
		report(addr, removed, err)
	}
	inParallel := func(hosts []inventory.Host) {
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Add(1)
			go func() { defer wg.Done(); one(keyOf(h)) }()
		}
		wg.Wait()
	}
	var wg sync.WaitGroup
	for _, c := range inv.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inParallel(c.Agents)
			inParallel(c.Servers)
		}()
	}
	wg.Wait()
	return failed, nil
}

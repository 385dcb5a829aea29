package rollout

import (
	"context"
	"sync"

	"github.com/k3sctl/k3sctl/internal/inventory"
	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Uninstall runs whichever uninstall scripts the node has and reports
// whether anything was removed (node.Uninstall).
func Uninstall(ctx context.Context, c *ssh.Client) (bool, error) {
	return node.Uninstall(ctx, c)
}

// Reset uninstalls K3s from every host of the inventory: in each cluster
// the agents first, then the servers; clusters in parallel. It returns how
// many hosts failed; report is called once per host.
func Reset(ctx context.Context, inv *inventory.Inventory, sshFor func(string) ssh.Options, report func(host string, removed bool, err error)) int {
	var mu sync.Mutex
	failed := 0
	one := func(addr string) {
		var removed bool
		c, err := ssh.Dial(ctx, sshFor(addr))
		if err == nil {
			removed, err = Uninstall(ctx, c)
			c.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
		}
		report(addr, removed, err)
	}
	parallel := func(hosts []inventory.Host) {
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Add(1)
			go func() { defer wg.Done(); one(h.Address) }()
		}
		wg.Wait()
	}
	var wg sync.WaitGroup
	for _, c := range inv.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parallel(c.Agents)
			parallel(c.Servers)
		}()
	}
	wg.Wait()
	return failed
}

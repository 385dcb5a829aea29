package e2e

import (
	"context"
	"testing"

	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/preflight"
	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/test/e2e/world"
)

// A user whose sudo needs a password is a sudo problem with its fix, not an
// unreachable host, whether the password is missing or wrong.
func TestPreflightSudo(t *testing.T) {
	// Not parallel: sshHome sets HOME for the process.
	w := world.New(t)
	h := w.Start(t, "a")[0]
	home := sshHome(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, password, want string
	}{
		{"nopasswd", "pi", "", ""},
		{"password given", "ops", w.OpsPassword, ""},
		{"no password", "ops", "", h.IP + ": user ops has no passwordless sudo and no sudo password was given\n" +
			"hint: give the sudo password (set K3SCTL_SUDO_PASSWORD, or run on a terminal to be asked), or add a NOPASSWD rule for ops in /etc/sudoers.d on the host"},
		{"wrong password", "ops", "not-the-password", h.IP + ": the sudo password for ops was not accepted\n" +
			"hint: give the right sudo password (set K3SCTL_SUDO_PASSWORD, or run on a terminal to be asked), or add a NOPASSWD rule for ops in /etc/sudoers.d on the host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := piOptions(w, home, h.IP)
			o.User = tc.user
			if tc.password != "" {
				o.SudoPassword = secret.New(tc.password)
			}
			c := mustDial(t, o)
			f, err := node.GatherFacts(ctx, c, node.FactsOptions{})
			p := preflight.Sudo(h.IP, f, err)
			switch {
			case tc.want == "" && p != nil:
				t.Errorf("problem: %v", p)
			case tc.want == "" && err != nil:
				t.Errorf("facts: %v", err)
			case tc.want != "" && (p == nil || p.Error() != tc.want):
				t.Errorf("\n got %v (facts error %v)\nwant %s", p, err, tc.want)
			}
			if p != nil {
				t.Log(p)
			}
		})
	}
}

package rollout

import (
	"testing"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Every host of one run dials with the same jump pool; a pool the caller
// set is kept.
func TestOneJumpPoolPerRun(t *testing.T) {
	o := withDefaults(Options{SSH: func(address string) ssh.Options { return ssh.Options{Address: address, Jump: "bastion"} }})
	a, b := o.SSH("10.0.0.1"), o.SSH("10.0.0.2")
	if a.Jumps == nil || a.Jumps != b.Jumps {
		t.Errorf("hosts of one run have pools %p and %p, want one", a.Jumps, b.Jumps)
	}
	other := withDefaults(Options{SSH: func(address string) ssh.Options { return ssh.Options{Address: address} }})
	if other.SSH("10.0.0.1").Jumps == a.Jumps {
		t.Error("two runs share a pool")
	}
	mine := ssh.NewJumpPool()
	kept := withDefaults(Options{SSH: func(address string) ssh.Options { return ssh.Options{Address: address, Jumps: mine} }})
	if kept.SSH("10.0.0.1").Jumps != mine {
		t.Error("the caller's pool was replaced")
	}
}

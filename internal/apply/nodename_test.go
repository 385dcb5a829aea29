package apply

import "testing"

func TestNodeNameIs(t *testing.T) {
	for _, c := range []struct {
		name, node string
		suffixed   bool
		want       bool
	}{
		{"pi3", "pi3", false, true},
		{"pi3-7a097ee9", "pi3", false, false},
		{"pi3-7a097ee9", "pi3", true, true},
		// Without the suffix the node is another machine of the same name,
		// the very case with-node-id exists for.
		{"pi3", "pi3", true, false},
		{"pi3-7a097ee", "pi3", true, false},
		{"pi3-7A097EE9", "pi3", true, false},
		{"pi3-extra-7a097ee9", "pi3", true, false},
		{"pi30-7a097ee9", "pi3", true, false},
	} {
		if got := nodeNameIs(c.name, c.node, c.suffixed); got != c.want {
			t.Errorf("nodeNameIs(%q, %q, %v) = %v, want %v", c.name, c.node, c.suffixed, got, c.want)
		}
	}
}

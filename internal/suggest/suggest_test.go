package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"token", "token", 0},
		{"tokne", "token", 1}, // adjacent swap
		{"node-lable", "node-label", 1},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
		{"apiadress", "apiaddress", 1},
		{"äbc", "abc", 1},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Distance(tc.b, tc.a); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
	long := string(make([]byte, 100))
	if Distance(long, long) != 0 || Distance(long, long+"x") != 101 {
		t.Error("long inputs are compared for equality only")
	}
}

func TestBudget(t *testing.T) {
	for s, want := range map[string]int{"ip": 1, "tok": 1, "token": 2, "node-name": 2, "cluster-init": 3} {
		if got := Budget(s); got != want {
			t.Errorf("Budget(%q) = %d, want %d", s, got, want)
		}
	}
}

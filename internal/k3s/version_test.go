package k3s

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"v1.31.4+k3s1":     {1, 31, 4, "", 1},
		"v1.32.4-rc1+k3s1": {1, 32, 4, "rc1", 1},
		"1.30.0+k3s12":     {1, 30, 0, "", 12},
		" v1.29.10+k3s2\n": {1, 29, 10, "", 2},
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, hint := range map[string]string{
		"":                 "empty",
		"v1.31.4":          "did you mean v1.31.4+k3s1",
		"v1.31+k3s1":       "three numbers",
		"v1.31.x+k3s1":     "not a number",
		"v1.31.4+rke2r1":   "+k3s<N>",
		"v1.31.4+k3s":      "+k3s<N>",
		"v1.31.4+k3s0":     "N ≥ 1",
		"v1.31.4-RC1+k3s1": "rc1",
		"latest":           "three numbers",
		"v1.31.4+k3s1x":    "N ≥ 1",
		"v1.31.4-+k3s1":    "rc1",
		"v1.31.04x+k3s1":   "not a number",
	} {
		_, err := ParseVersion(in)
		if err == nil || !strings.Contains(err.Error(), hint) || !strings.Contains(err.Error(), "e.g. v1.31.4+k3s1") {
			t.Errorf("ParseVersion(%q) error = %v, want one mentioning %q and an example", in, err, hint)
		}
	}
}

func TestVersionString(t *testing.T) {
	for _, s := range []string{"v1.31.4+k3s1", "v1.32.4-rc1+k3s1", "v1.30.10+k3s3"} {
		if got := MustParseVersion(s).String(); got != s {
			t.Errorf("String() = %q, want %q", got, s)
		}
	}
	if got := MustParseVersion("1.31.4+k3s1").String(); got != "v1.31.4+k3s1" {
		t.Errorf("String() of a version given without v = %q", got)
	}
	if (Version{}).String() != "" {
		t.Error("zero Version prints something")
	}
	if got := MustParseVersion("v1.31.4+k3s1").MinorChannel(); got != "v1.31" {
		t.Errorf("MinorChannel = %q", got)
	}
}

func TestVersionJSON(t *testing.T) {
	var v struct{ V Version }
	if err := json.Unmarshal([]byte(`{"V":"v1.31.4+k3s2"}`), &v); err != nil || v.V != MustParseVersion("v1.31.4+k3s2") {
		t.Fatalf("unmarshal: %+v %v", v, err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"V":"v1.31.4+k3s2"}` {
		t.Errorf("marshal: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"V":"v1.31"}`), &v); err == nil {
		t.Error("a channel name unmarshalled as a version")
	}
}

func TestCompare(t *testing.T) {
	// Each is newer than the one before.
	order := []string{
		"v1.29.15+k3s1",
		"v1.30.0-rc1+k3s1",
		"v1.30.0-rc2+k3s1",
		"v1.30.0-rc10+k3s1",
		"v1.30.0+k3s1",
		"v1.30.0+k3s2",
		"v1.30.0+k3s10",
		"v1.30.1+k3s1",
		"v1.30.10+k3s1",
		"v1.31.4+k3s1",
		"v1.31.4+k3s2",
		"v1.31.5-beta1+k3s1",
		"v1.31.5-rc1+k3s1",
		"v1.31.5-rc1+k3s2",
		"v1.31.5-rc2+k3s1",
		"v1.31.5+k3s1",
		"v2.0.0+k3s1",
	}
	for i := range order {
		for j := range order {
			a, b := MustParseVersion(order[i]), MustParseVersion(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := Compare(a, b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestMinorSkip(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     int
	}{
		{"v1.30.4+k3s1", "v1.30.9+k3s2", 0},
		{"v1.30.4+k3s1", "v1.31.0+k3s1", 0},
		{"v1.30.4+k3s1", "v1.32.0+k3s1", 1},
		{"v1.28.4+k3s1", "v1.32.0+k3s1", 3},
		{"v1.32.0+k3s1", "v1.30.4+k3s1", 0},
		{"v1.32.0+k3s1", "v2.0.0+k3s1", 1},
	} {
		if got := MinorSkip(MustParseVersion(tc.from), MustParseVersion(tc.to)); got != tc.want {
			t.Errorf("MinorSkip(%s, %s) = %d, want %d", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestParseVersionOutput(t *testing.T) {
	v, err := ParseVersionOutput("k3s version v1.31.4+k3s1 (94e29e2e)\ngo version go1.22.9\n")
	if err != nil || v != MustParseVersion("v1.31.4+k3s1") {
		t.Errorf("got %v, %v", v, err)
	}
	for _, out := range []string{"", "bash: k3s: command not found\n", "k3s version\n", "kubectl version v1.31.4+k3s1\n"} {
		if _, err := ParseVersionOutput(out); err == nil {
			t.Errorf("ParseVersionOutput(%q) accepted", out)
		}
	}
}

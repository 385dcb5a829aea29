package ssh

import "testing"

// TestHostKeyPolicySources pins what docs/README.md says about host keys:
// checking is on unless the command line or the ssh config turns it off.
func TestHostKeyPolicySources(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		config string
		flag   HostKeyChecking
		want   HostKeyChecking
	}{
		{"Host x\n  User pi\n", "", HostKeyAcceptNew},
		{"Host x\n  StrictHostKeyChecking yes\n", "", HostKeyStrict},
		{"Host x\n  StrictHostKeyChecking no\n", "", HostKeyOff},
		{"Host x\n  StrictHostKeyChecking no\n", HostKeyAcceptNew, HostKeyAcceptNew},
		{"Host x\n  User pi\n", HostKeyOff, HostKeyOff},
	} {
		r, err := resolve(&Options{Address: "x", ConfigFile: writeConfig(t, tc.config), HostKeyChecking: tc.flag})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.target.hostKeyChecking; got != tc.want {
			t.Errorf("config %q, flag %q: %q, want %q", tc.config, tc.flag, got, tc.want)
		}
	}
}

package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestProxyFlags(t *testing.T) {
	var got *JoinOptions
	capture := func(f *Factory) *cobra.Command {
		return NewCmdJoin(f, func(o *JoinOptions) error { got = o; return nil })
	}
	code, _, stderr := runWith(t, capture, "join", "--ip", "10.0.0.11", "--server-ip", "10.0.0.10",
		"--http-proxy", "http://ops:pw@proxy:3128", "--https-proxy", "http://proxy:3128", "--no-proxy", ".corp,10.0.0.0/8")
	if code != ExitOK || got == nil {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	p := got.Proxy
	if p == nil || p.HTTP.Reveal() != "http://ops:pw@proxy:3128" || p.HTTPS.Reveal() != "http://proxy:3128" || !slices.Equal(p.NoProxy, []string{".corp", "10.0.0.0/8"}) {
		t.Fatalf("proxy: %+v", p)
	}
	got = nil
	if code, _, _ := runWith(t, capture, "join", "--ip", "10.0.0.11", "--server-ip", "10.0.0.10"); code != ExitOK || got.Proxy != nil {
		t.Fatalf("no proxy flags: exit %d, proxy %+v", code, got.Proxy)
	}

	fail := func(o *InstallOptions) error { t.Error("ran despite a bad proxy"); return nil }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--https-proxy", "proxy:3128"}, "--https-proxy"},
		{[]string{"--http-proxy", "ftp://ops:hunter2@proxy:21"}, `scheme "ftp"`},
		{[]string{"--no-proxy", "10.0.0.0/8"}, "--no-proxy needs --http-proxy or --https-proxy"},
	} {
		code, _, stderr := runWith(t, func(f *Factory) *cobra.Command { return NewCmdInstall(f, fail) },
			append([]string{"install", "--ip", "10.0.0.10"}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "hunter2") {
			t.Errorf("%v: exit %d\n%s", tc.args, code, stderr)
		}
	}
}

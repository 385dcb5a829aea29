package inventory

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNumericAddressThatIsNoIP(t *testing.T) {
	_, err := Parse("fleet.yaml", []byte(header+`
servers:
  - address: 10.79.0.300
  - address: 10.79.0
  - address: 10.079.0.1
agents: [10.0.0.2, "host..lan", 10.0.0.3]
`), nil)
	want := strings.Join([]string{
		`fleet.yaml:5:14: address "10.79.0.300" is not a valid IP address: part 300 is more than 255 (an IPv4 address is four numbers from 0 to 255, e.g. address: 10.0.0.5)`,
		`fleet.yaml:6:14: address "10.79.0" is not a valid IP address: it has 3 parts, not 4 (an IPv4 address is four numbers from 0 to 255, e.g. address: 10.0.0.5)`,
		`fleet.yaml:7:14: address "10.079.0.1" is not a valid IP address: part 079 has a leading zero (an IPv4 address is four numbers from 0 to 255, e.g. address: 10.0.0.5)`,
		`fleet.yaml:8:20: address "host..lan" is not a host name or IP: it has an empty label (write an IP, a DNS name or an ssh config alias)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("problems:\n%v\nwant\n%s", err, want)
	}
}

func TestAddressesThatStayValid(t *testing.T) {
	for _, a := range []string{"10.0.0.5", "fe80::1", "pi-1", "pi-1.lan", "shop7.example.com.", "1password.example", "10.0.0.5.nip.io"} {
		if msg, _ := checkAddress(a); msg != "" {
			t.Errorf("%s: %s", a, msg)
		}
	}
}

func TestLookupNames(t *testing.T) {
	inv := parseOK(t, header+`
clusters:
  - name: a
    servers: [10.0.0.1, good.lan, gone.lan]
    agents:
      - {address: gone.lan, ssh: {port: 2222}}
      - {address: inside.lan, ssh: {jump: bastion}}
      - {address: pi-alias}
      - {address: slow.lan}
`, nil)
	var mu sync.Mutex
	asked := map[string]int{}
	lookup := func(ctx context.Context, name string) ([]string, error) {
		mu.Lock()
		asked[name]++
		mu.Unlock()
		switch name {
		case "good.lan":
			return []string{"10.0.0.9"}, nil
		case "slow.lan":
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	ps := LookupNames(context.Background(), inv, NameCheck{
		Lookup:  lookup,
		Timeout: 50 * time.Millisecond,
		Alias:   func(a string) bool { return a == "pi-alias" },
	})
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
		if !strings.Contains(p.Message, `"`+p.Address+`"`) {
			t.Errorf("problem at %s: %s", p.Address, p.Message)
		}
	}
	hint := " (check the name and the DNS settings of this machine, write the IP instead, or add the name as a Host in the SSH config)"
	want := []string{
		`test.yaml:6:35: address "gone.lan" does not resolve: no such host` + hint,
		`test.yaml:8:9: address "gone.lan" does not resolve: no such host` + hint,
		`test.yaml:11:9: address "slow.lan" does not resolve: no answer within 50ms` + hint,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if asked["gone.lan"] != 1 || asked["inside.lan"] != 0 || asked["pi-alias"] != 0 || asked["10.0.0.1"] != 0 {
		t.Errorf("lookups: %v", asked)
	}
}

func TestLookupNamesOtherErrors(t *testing.T) {
	inv := parseOK(t, header+"servers: [a.lan]\n", nil)
	ps := LookupNames(context.Background(), inv, NameCheck{Lookup: func(context.Context, string) ([]string, error) {
		return nil, errors.New("server misbehaving")
	}})
	if len(ps) != 1 || !strings.Contains(ps[0].Message, `address "a.lan" does not resolve: server misbehaving`) {
		t.Errorf("problems: %v", ps)
	}
}

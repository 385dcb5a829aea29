package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	s := New("K10abc::server:hunter2")
	type holder struct {
		Token Value
	}
	h := holder{Token: s}
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %+v %#v", s, s, s, h, h),
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(b))
	for _, o := range outs {
		if strings.Contains(o, "hunter2") {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if s.Reveal() != "K10abc::server:hunter2" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if New("").String() != "" || !New("").IsZero() {
		t.Error("zero value should print empty")
	}
}

package node

import "github.com/k3sctl/k3sctl/internal/k3s"

// LinksCommand makes kubectl, crictl and ctr point at k3s, leaving any
// existing command of that name alone.
func LinksCommand() string {
	var cmds []string
	for _, l := range k3s.Links() {
		cmds = append(cmds, Or(Command("test", "-e", l), Command("test", "-L", l), Command("ln", "-s", k3s.LinkTarget, l)))
	}
	return Seq(append(cmds, "true")...)
}

package k3s

import "testing"

func TestScriptsGolden(t *testing.T) {
	golden(t, "k3s-killall.sh", KillallScript())
	golden(t, "k3s-uninstall.sh", UninstallScript(Server))
	golden(t, "k3s-agent-uninstall.sh", UninstallScript(Agent))
}

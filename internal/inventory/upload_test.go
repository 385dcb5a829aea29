package inventory

import "testing"

func TestUploadModeFromClusterOrDefaults(t *testing.T) {
	inv, err := Parse("inv.yaml", []byte(`apiVersion: k3sctl.io/v1alpha1
kind: Inventory
defaults:
  upload: direct
clusters:
  - name: a
    servers: [10.0.0.1]
  - name: b
    upload: site
    servers: [10.0.1.1]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{inv.Clusters[0].Upload, inv.Clusters[1].Upload}; got[0] != UploadDirect || got[1] != UploadSite {
		t.Errorf("upload modes %q", got)
	}
}

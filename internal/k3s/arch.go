package k3s

import (
	"fmt"
	"strings"
)

// Arch is a K3s release architecture: amd64, arm64 or arm.
type Arch string

// Release architectures.
const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
	ARM   Arch = "arm"
)

// ArchFromUname maps `uname -m` to the release architecture.
func ArchFromUname(machine string) (Arch, error) {
	m := strings.TrimSpace(machine)
	switch {
	case m == "x86_64" || m == "amd64":
		return AMD64, nil
	case m == "aarch64" || m == "arm64":
		return ARM64, nil
	case strings.HasPrefix(m, "arm"):
		return ARM, nil
	}
	return "", fmt.Errorf("unsupported architecture %q: K3s is released for x86_64, aarch64 and armv7l/armv6l", m)
}

// BinaryAsset is the release asset name of the k3s binary.
func (a Arch) BinaryAsset() string {
	switch a {
	case ARM64:
		return "k3s-arm64"
	case ARM:
		return "k3s-armhf"
	}
	return "k3s"
}

// ChecksumAsset is the release asset holding sha256 sums for this arch.
func (a Arch) ChecksumAsset() string { return "sha256sum-" + string(a) + ".txt" }

// AirgapImagesAsset is the image tarball asset for this arch; ext is "tar", "tar.gz" or "tar.zst".
func (a Arch) AirgapImagesAsset(ext string) string {
	return "k3s-airgap-images-" + string(a) + "." + ext
}

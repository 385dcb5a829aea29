package ssh

import (
	"fmt"
	"io/fs"
	"os"
)

// KeyPermissionError is a private key file that others may read. OpenSSH
// refuses such a key ("UNPROTECTED PRIVATE KEY FILE!") and so does k3sctl:
// a key anyone on the workstation can copy is no longer a secret.
type KeyPermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *KeyPermissionError) Error() string {
	return fmt.Sprintf("key %s: UNPROTECTED PRIVATE KEY FILE: permissions %04o are too open; a private key must not be accessible by group or others, so it is ignored",
		e.Path, uint32(e.Mode.Perm()))
}

// Hint is the fix.
func (e *KeyPermissionError) Hint() string { return "chmod 600 " + e.Path }

// CheckKeyFilePermissions refuses a private key file of the current user
// that group or others may access, as OpenSSH does. Files of other owners
// (root reading a user's key) are not judged, as OpenSSH does not; neither
// are files on systems without Unix modes.
func CheckKeyFilePermissions(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !ownedByMe(fi) || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	return &KeyPermissionError{Path: path, Mode: fi.Mode().Perm()}
}

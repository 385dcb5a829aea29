package inventory

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed starter.yaml
var starter []byte

// Starter is a commented inventory for one small cluster, the start of a
// new inventory. It loads without errors as it is.
func Starter() []byte { return bytes.Clone(starter) }

// ErrExists is returned by WriteStarter when the file is already there.
var ErrExists = errors.New("file already exists")

// WriteStarter writes Starter to path, creating its directory. It refuses
// to replace an existing file unless overwrite is set: the file it would
// replace is likely an inventory someone wrote by hand.
func WriteStarter(path string, overwrite bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(starter)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

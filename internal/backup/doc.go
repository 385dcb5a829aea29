// Package backup owns the local copy of a cluster's state: the on-disk
// format of a backup (one directory per backup under <root>/<cluster>/, a
// JSON manifest plus one file per part), writing it atomically, optional
// age encryption of every part, verifying sizes and sha256 sums before
// anything is read back, listing, choosing and pruning backups.
//
// It knows nothing about SSH or K3s commands: the backup and restore commands
// feed it the bytes they fetched from a server and read the bytes back from
// it.
//
// A backup is laid out as
//
//	<root>/<cluster>/<cluster>-<UTC time, 20261202T153000Z>/   (mode 0700)
//	    manifest.json                                          (mode 0600)
//	    snapshot | db, token  (each with .age when encrypted)  (mode 0600)
//
// The cluster token is a part of every backup; read back it is a
// secret.Value.
package backup

// Package world starts the test world: Debian hosts in Docker containers
// with systemd as PID 1 and OpenSSH, on private bridge networks, for the
// end-to-end tests.
//
// Contract (used by every e2e test):
//
//	w := world.New(t)                 // docker up, image built/cached, fresh network; cleanup on t.Cleanup
//	hs := w.Start(t, "a", "b")        // hosts named a, b with fixed IPs, sshd answering
//	h := hs[0]
//	h.Name, h.IP                      // "a", "172.x.y.11"
//	h.Exec(t, "uname -m")             // docker exec as root, returns combined output, fails test on error
//	h.ExecErr(ctx, "cmd")             // same, returning (output, error)
//	h.CopyIn(t, localPath, remotePath, mode)  // docker cp, then chmod
//	h.Stop(t); h.Kill(t); h.Restart(t); h.Disconnect(t); h.Reconnect(t)
//	h.Recreate(t)                     // new container, same name and IP, new host keys
//	w.Key                             // private key file (OpenSSH format, no passphrase) for users pi and ops
//	w.PassphraseKey, w.Passphrase     // a second key for pi, protected by Passphrase
//	w.OpsPassword                     // sudo password of user ops
//	w.NewNetwork(t)                   // a second bridge network (for jump-host tests)
//	h.Connect(t, n)                   // attach host to another network; returns its IP there
//
// Users: pi (passwordless sudo), ops (sudo asks for OpsPassword).
// Each container generates its own host keys at first boot.
package world

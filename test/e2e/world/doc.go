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
//	h.Recreate(t)                     // new container, same name and IP, new host keys and machine-id
//	h.MachineID(t)                    // the host's /etc/machine-id
//	w.Key                             // private key file (OpenSSH format, no passphrase) for users pi and ops
//	w.PassphraseKey, w.Passphrase     // a second key for pi, protected by Passphrase
//	w.OpsPassword                     // sudo password of user ops
//	w.NewNetwork(t)                   // a second bridge network (for jump-host tests)
//	h.Connect(t, n)                   // attach host to another network; returns its IP there (kept on Recreate)
//
// More kinds of hosts (hosts.go):
//
//	h := w.NewHost(t, "name", opts...)   // one host; options:
//	  WithNetworks(a, b)                 //   on networks a and b (a gives h.IP); h.IPOn(b) is its address on b
//	  WithSmallDisk("/usr/local/bin", 20) //  a 20 MB tmpfs (exec allowed) at that path; h.FillDisk(t, path, freeMB)
//	  WithArch("arm64")                  //   arm64 Debian under qemu-user (uname -m: aarch64); image built on first use
//	w.DefaultNetwork()                   // the world's first network
//	w.NewInternalNetwork(t)              // its hosts reach nothing outside it (the test process still reaches them)
//	pg, dsn := w.Postgres(t)             // Debian PostgreSQL; dsn = postgres://k3s:<random>@ip:5432/k3s
//	px, url := w.Proxy(t, internal)      // tinyproxy on the first network and on internal; url = http://<ip on internal>:8888
//
// Images: the base image (build-image.sh) is built once per machine and
// tagged with a hash of its recipe; the postgres and proxy variants
// (build-variant.sh) add Debian packages to a copy of it, and the arm64
// image is build-image.sh for arm64; each is built the first time a test
// asks for it and cached the same way. The arm64 host needs qemu-user-static
// registered with flags POCF (scripts/testworld-deps.sh does it).
//
// Users: pi (passwordless sudo), ops (sudo asks for OpsPassword).
// Each container generates its own host keys at first boot and gets a
// random /etc/machine-id of its own before systemd starts (copy one host's
// id to another to test a cloned disk).
package world

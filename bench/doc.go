// Package bench measures k3sctl against the tools people would otherwise
// use, on the container test world. Nothing here asserts a timing.
//
// BenchmarkSideBySide (`make bench`) prints one markdown table, also written
// to results/<date>.md: k3sctl `apply -f` and k3sctl `install` + `join` one
// host at a time against floor.sh, the least work that installs a cluster
// over OpenSSH scp/ssh, run on all hosts at once (the floor the ratios are
// taken against) and one host at a time (the way k3sup works); and a
// no-change re-apply against one parallel `ssh host true` round. Every
// install case starts on freshly created hosts, with a simulator binary
// padded to K3s's real size. Wall seconds, CPU-seconds (of the local
// processes and of the whole machine, whose containers are the hosts) and
// bytes sent to the hosts are reported. k3sctl's `apply -f` runs with JSON
// events, and a table says where its time went: each phase, and each step on
// the slowest host. BENCH_BASELINE names another k3sctl binary (say, one
// built from main) that runs as one more case on the same hosts in the same
// run, so a change is compared against it under the same load; the load
// average at the start and end is in the notes.
//
// "Site behind a slow uplink": a site of 1 server and 2 agents whose SSH
// traffic from the workstation all goes through one shared uplink, a TCP
// proxy in this package (Uplink: a loopback listener per host, one token
// bucket per direction shared by every connection, BENCH_UPLINK_MBIT
// Mbit/s each way, default 80, and BENCH_UPLINK_MS of added latency each
// way, default 20), while the hosts reach each other directly, as on a
// site's LAN. The hosts are ssh config aliases of the proxy's ports, with
// known_hosts entries for [127.0.0.1]:port, so host keys are still checked;
// the inventory gives each host its privateAddress. Cases: floor.sh through
// the uplink (one upload per node), k3sctl `apply -f` with `upload: direct`
// and with `upload: site`. A k3sctl without the `upload:` key (it exits 2
// naming the unknown key) runs the direct case without the key, and the
// site case says "n/a". Reported: wall seconds, × that floor, and the
// megabytes that went from the workstation up the uplink. BENCH_SITE=0
// skips it.
//
// "Memory at many hosts": k3sctl `plan -f` (connect, facts, plan) against
// BENCH_MANY_HOSTS hosts (default 300), each an sshd of its own on a port
// of one of BENCH_MANY_CONTAINERS containers (default 10), in clusters of
// three; reported are wall seconds and k3sctl's peak resident set (rusage
// maxrss). `apply` is not measured there: the hosts of a container share
// its file system. BENCH_MANY_HOSTS=0 skips it.
//
// BENCH_CASES runs only some cases: names from cases.go (floor,
// floor-serial, apply, no-change, baseline, install-join, site-floor,
// site-direct, site-site, many-plan) or the groups sizes, site and many,
// comma-separated.
//
// BenchmarkUpload compares internal/ssh uploads with OpenSSH scp to the
// same test-world host, directly and through 40 ms of added latency.
// BenchmarkApply times `k3sctl apply` for 1, 10 and 30 hosts.
package bench

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
// BenchmarkUpload compares internal/ssh uploads with OpenSSH scp to the
// same test-world host, directly and through 40 ms of added latency.
// BenchmarkApply times `k3sctl apply` for 1, 10 and 30 hosts.
package bench

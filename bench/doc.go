// Package bench measures k3sctl against the tools people would otherwise
// use. BenchmarkUpload compares internal/ssh uploads with OpenSSH scp to the
// same test-world host, directly and through 40 ms of added latency.
package bench

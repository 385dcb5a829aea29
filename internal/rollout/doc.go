// Package rollout is the flow every command shares, as phases over an
// injected Dialer: connect to every host once, gather facts in parallel,
// resolve each cluster's K3s version, fetch the binaries (one per version
// and architecture), build the plan, execute it, and merge kubeconfigs.
// install, join and apply differ only in the Spec they hand it. The Spec
// is never changed: resolved versions live in a copy that Prepared
// returns. Every connection a phase opens is closed on every failure path,
// and by Prepared.Close otherwise.
//
// Progressive runs that flow cluster by cluster in waves (a canary, then
// waves of a size), stopping once more clusters failed than a budget
// allows; Schedule is its scheduler, independent of SSH.
package rollout

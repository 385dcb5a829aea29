// Package k3s holds what k3sctl knows about K3s itself: release assets and
// versions (ordered with go-version, plus K3s's +k3sN and rcN rules), the
// download cache, service units and scripts, tokens, the paths K3s uses on
// a node, and what its logs say when a node fails to start or join.
//
// It owns the model of a node's configuration: Config (config.yaml, rendered
// deterministically, secrets redacted when shown), the table of the flags
// `k3s server` and `k3s agent` take (LookupFlag), the one table of the keys
// k3sctl sets itself (OwnedKeys) and of the settings every server must share
// (CriticalKeys). BuildConfig assembles a node's config from what k3sctl
// decides (NodeSettings) and the user's settings; CheckSetting,
// ParseExtraArgs and ParseUserConfig check user settings against the model.
// Nothing here opens an SSH connection.
package k3s

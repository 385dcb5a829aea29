#!/usr/bin/env bash
# floor.sh: the least work that installs a K3s cluster over SSH, as the
# yardstick for k3sctl in `make bench`. For every host: copy the binary with
# OpenSSH scp, send config.yaml (with the token) and the systemd unit through
# ssh's stdin, start the service; then wait until the server lists every node
# as Ready. Host keys are checked against the known_hosts file given.
#
#   floor.sh -k KEY -K KNOWN_HOSTS -b BINARY [-u USER] [-F SSH_CONFIG] [-a ADDR] [-s] [-t SECONDS] SERVER [AGENT...]
#   floor.sh -k KEY -K KNOWN_HOSTS [-u USER] [-F SSH_CONFIG] -r HOST...
#
#   -s   one host at a time, each waited for until Ready (the way k3sup works);
#        default: every host at once
#   -r   only one parallel round of `ssh HOST true` to every host
#   -t   seconds to wait for the nodes to become Ready (default 300)
#   -F   an OpenSSH client config to read (default none: -F /dev/null), e.g.
#        for hosts that are aliases of forwarded ports
#   -a   the address the agents join the server on (default: SERVER)
#
# The token is read from $K3S_TOKEN, else generated; it never appears on a
# command line.
set -euo pipefail

usage() { sed -n '8,9p' "$0" >&2; exit 2; }

key="" known="" binary="" user="pi" serial=0 round=0 timeout=300 config=/dev/null join=""
while getopts "k:K:b:u:srt:F:a:" opt; do
	case $opt in
	k) key=$OPTARG ;;
	K) known=$OPTARG ;;
	b) binary=$OPTARG ;;
	u) user=$OPTARG ;;
	s) serial=1 ;;
	r) round=1 ;;
	t) timeout=$OPTARG ;;
	F) config=$OPTARG ;;
	a) join=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] && [ -n "$key" ] && [ -n "$known" ] || usage
[ -f "$known" ] || { echo "floor.sh: known_hosts file $known not found" >&2; exit 2; }

opts=(-F "$config" -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes
	-o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$known" -o LogLevel=ERROR)

if [ "$round" = 1 ]; then
	pids=()
	for h in "$@"; do
		ssh "${opts[@]}" "$user@$h" true &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	exit 0
fi

[ -n "$binary" ] && [ -f "$binary" ] || { echo "floor.sh: binary ${binary:-(none)} not found (-b)" >&2; exit 2; }
server=$1
join=${join:-$server}
token=${K3S_TOKEN:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}

# remote_script ROLE prints what `sudo sh -s` runs on a server or agent; it carries
# the token, so it only ever travels on ssh's stdin.
remote_script() {
	local role=$1 unit=k3s cmd=server cfg="token: $token"
	if [ "$role" = agent ]; then
		unit=k3s-agent cmd=agent
		cfg="$cfg
server: https://$join:6443"
	fi
	cat <<EOF
set -e
chown root:root /tmp/k3s-floor
chmod 0755 /tmp/k3s-floor
mv -f /tmp/k3s-floor /usr/local/bin/k3s
mkdir -p /etc/rancher/k3s
(umask 077; cat >/etc/rancher/k3s/config.yaml <<'CFG'
$cfg
CFG
)
cat >/etc/systemd/system/$unit.service <<'UNIT'
[Unit]
Description=Lightweight Kubernetes
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/k3s $cmd

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q $unit.service
systemctl start --no-block $unit.service
EOF
}

# say prints a timestamped progress line, to see where the time went.
say() { echo "$(date +%T.%3N) $*"; }

install_host() {
	local h=$1 role=$2
	say "$h: scp k3s"
	scp -q "${opts[@]}" "$binary" "$user@$h:/tmp/k3s-floor" ||
		{ echo "floor.sh: $h: scp of $binary failed" >&2; return 1; }
	say "$h: write config, unit; start $role"
	remote_script "$role" | ssh "${opts[@]}" "$user@$h" sudo sh -s ||
		{ echo "floor.sh: $h: configuring and starting K3s failed" >&2; return 1; }
	say "$h: started"
}

# wait_ready N: until the server lists N nodes as Ready.
wait_ready() {
	local want=$1 deadline=$((SECONDS + timeout)) n
	while :; do
		n=$(ssh "${opts[@]}" "$user@$server" sudo k3s kubectl get nodes --no-headers 2>/dev/null |
			awk '$2 == "Ready" { c++ } END { print c + 0 }') || n=0
		[ "$n" -ge "$want" ] && { say "$server: $n of $want nodes Ready"; return 0; }
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "floor.sh: $server: $n of $want nodes Ready after ${timeout}s" >&2
			return 1
		fi
		sleep 0.5
	done
}

if [ "$serial" = 1 ]; then
	i=0
	for h in "$@"; do
		role=agent
		[ $i = 0 ] && role=server
		install_host "$h" "$role"
		i=$((i + 1))
		wait_ready "$i"
	done
	exit 0
fi

pids=()
i=0
for h in "$@"; do
	role=agent
	[ $i = 0 ] && role=server
	install_host "$h" "$role" &
	pids+=($!)
	i=$((i + 1))
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || exit 1
wait_ready "$#"

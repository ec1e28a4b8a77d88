#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair, and an mpirun that starts one
# rank in each over TCP. See docs/distributed-testing.md ("Two hosts on one machine").
#
#   scripts/two-hosts.sh [--h1 NAME] [--h2 NAME] up
#   scripts/two-hosts.sh [--h1 NAME] [--h2 NAME] run [--timeout SECONDS] [--wdir DIR] [-x VAR]... -- PROGRAM [ARGS...]
#   scripts/two-hosts.sh [--h1 NAME] [--h2 NAME] stop     (end processes left in the namespaces)
#   scripts/two-hosts.sh [--h1 NAME] [--h2 NAME] down     (stop, then remove namespaces, veth pair, temp dir)
#   scripts/two-hosts.sh [--h1 NAME] [--h2 NAME] info
#
# Names default to $TWO_HOSTS_H1 / $TWO_HOSTS_H2, else kondate-h1 / kondate-h2. Needs root and `ip netns`.
set -euo pipefail

prog=${0##*/}
H1=${TWO_HOSTS_H1:-kondate-h1}
H2=${TWO_HOSTS_H2:-kondate-h2}
SUBNET=10.77.0.0/24
ADDR1=10.77.0.1
ADDR2=10.77.0.2

die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
usage() {
    sed -n 's/^#   //p' "$0" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --h1) [[ $# -ge 2 ]] || usage; H1=$2; shift 2 ;;
        --h2) [[ $# -ge 2 ]] || usage; H2=$2; shift 2 ;;
        -h|--help) usage ;;
        *) break ;;
    esac
done
[[ $# -ge 1 ]] || usage
command=$1; shift

[[ $H1 =~ ^[A-Za-z0-9_.-]+$ && $H2 =~ ^[A-Za-z0-9_.-]+$ ]] || die "namespace names may only hold letters, digits, '.', '_' and '-'"
[[ $H1 != "$H2" ]] || die "the two namespaces need different names (both are '$H1')"

# Interface names are at most 15 bytes, so the veth pair is named after a checksum of the namespace names:
# unique per pair, and the same in every invocation (down finds what up created).
sum=$(printf '%s/%s' "$H1" "$H2" | cksum | cut -d' ' -f1)
VETH1=kv${sum}a
VETH2=kv${sum}b
STATE_DIR=${TMPDIR:-/tmp}/kondate-two-hosts.$H1.$H2
AGENT=$STATE_DIR/rsh-agent
HOSTFILE=$STATE_DIR/hostfile

need_root_and_netns() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (creating network namespaces and veth pairs needs CAP_NET_ADMIN); try: sudo $0 $command"
    command -v ip >/dev/null 2>&1 || die "'ip' not found; install iproute2"
    ip netns list >/dev/null 2>&1 || die "'ip netns' is unavailable (iproute2 without netns support, or no network namespaces in this kernel/container)"
}

# `ip netns add NAME` creates /run/netns/NAME (/var/run is a link to /run).
netns_exists() { [[ -e /run/netns/$1 ]]; }

cmd_info() {
    printf 'H1=%s\nH2=%s\nVETH1=%s\nVETH2=%s\nADDR1=%s\nADDR2=%s\nSUBNET=%s\nSTATE_DIR=%s\nAGENT=%s\nHOSTFILE=%s\n' \
        "$H1" "$H2" "$VETH1" "$VETH2" "$ADDR1" "$ADDR2" "$SUBNET" "$STATE_DIR" "$AGENT" "$HOSTFILE"
}

# End every process still running in the two namespaces (mpirun, orted and ranks of an interrupted run).
cmd_stop() {
    need_root_and_netns
    local ns pids signal
    for signal in TERM KILL; do
        pids=
        for ns in "$H1" "$H2"; do
            if netns_exists "$ns"; then pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ' || true)"; fi
        done
        pids=${pids//[^0-9 ]/}
        [[ -n ${pids// /} ]] || return 0
        if [[ $signal == TERM ]]; then echo "ending processes left in $H1/$H2:$pids"; fi
        # shellcheck disable=SC2086
        kill -"$signal" $pids 2>/dev/null || true
        [[ $signal == KILL ]] || sleep 0.5
    done
}

cmd_down() {
    need_root_and_netns
    local ns
    cmd_stop
    for ns in "$H1" "$H2"; do
        if netns_exists "$ns"; then
            ip netns delete "$ns" 2>/dev/null || true
            echo "removed namespace $ns"
        fi
    done
    # Deleting a namespace deletes the veth end inside it (and so its peer); a half-made `up` may have left the
    # pair in this namespace.
    if ip link show "$VETH1" >/dev/null 2>&1; then ip link delete "$VETH1" 2>/dev/null || true; echo "removed veth $VETH1"; fi
    if ip link show "$VETH2" >/dev/null 2>&1; then ip link delete "$VETH2" 2>/dev/null || true; echo "removed veth $VETH2"; fi
    if [[ -d $STATE_DIR ]]; then rm -rf -- "$STATE_DIR"; echo "removed $STATE_DIR"; fi
}

cmd_up() {
    need_root_and_netns
    local ns
    for ns in "$H1" "$H2"; do
        ! netns_exists "$ns" || die "namespace $ns already exists; run: $0 --h1 $H1 --h2 $H2 down"
    done
    ! ip link show "$VETH1" >/dev/null 2>&1 || die "interface $VETH1 already exists; run: $0 --h1 $H1 --h2 $H2 down"
    # Undo a half-made setup if any step fails.
    trap 'echo "$prog: up failed; cleaning up" >&2; cmd_down >/dev/null 2>&1 || true' ERR

    ip netns add "$H1"
    ip netns add "$H2"
    ip link add "$VETH1" type veth peer name "$VETH2"
    ip link set "$VETH1" netns "$H1"
    ip link set "$VETH2" netns "$H2"
    ip -n "$H1" addr add "$ADDR1/24" dev "$VETH1"
    ip -n "$H2" addr add "$ADDR2/24" dev "$VETH2"
    ip -n "$H1" link set lo up
    ip -n "$H2" link set lo up
    ip -n "$H1" link set "$VETH1" up
    ip -n "$H2" link set "$VETH2" up

    mkdir -p "$STATE_DIR"
    # The rsh agent: mpirun calls it like ssh, `AGENT HOST WORD...`, where the words form one shell command line
    # (OpenMPI quotes them for a remote shell). The host is an address from the hostfile; run the command line
    # with sh inside that address's namespace, as sshd would on a real host.
    cat >"$AGENT" <<EOF
#!/bin/sh
# rsh agent for mpirun, made by $prog up: runs the command line in the namespace that holds HOST's address.
host=\$1; shift
case \$host in
    $ADDR1|$H1) ns=$H1 ;;
    $ADDR2|$H2) ns=$H2 ;;
    *) echo "rsh-agent: unknown host '\$host' (knows $ADDR1=$H1, $ADDR2=$H2)" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
EOF
    chmod 755 "$AGENT"
    # Addresses, not names: no /etc/hosts entry is needed. mpirun runs inside $H1, sees $ADDR1 on one of its
    # interfaces and starts that rank itself; $ADDR2 is remote and goes through the agent.
    printf '%s slots=1\n%s slots=1\n' "$ADDR1" "$ADDR2" >"$HOSTFILE"
    trap - ERR

    echo "two hosts up:"
    echo "  namespace $H1: $VETH1 $ADDR1/24, lo up"
    echo "  namespace $H2: $VETH2 $ADDR2/24, lo up"
    echo "  rsh agent: $AGENT"
    echo "  hostfile:  $HOSTFILE ($ADDR1, $ADDR2; one slot each)"
}

cmd_run() {
    need_root_and_netns
    command -v mpirun >/dev/null 2>&1 || die "mpirun not found (install OpenMPI: apt-get install openmpi-bin libopenmpi-dev)"
    netns_exists "$H1" && netns_exists "$H2" && [[ -x $AGENT ]] || die "the two hosts are not up; run: $0 --h1 $H1 --h2 $H2 up"
    local timeout=0 wdir=$PWD
    local -a exports=()
    while [[ $# -gt 0 ]]; do
        case $1 in
            --timeout) [[ $# -ge 2 ]] || usage; timeout=$2; shift 2 ;;
            --wdir) [[ $# -ge 2 ]] || usage; wdir=$2; shift 2 ;;
            -x) [[ $# -ge 2 ]] || usage; exports+=(-x "$2"); shift 2 ;;
            --) shift; break ;;
            *) die "run: unexpected '$1' (the program goes after --)" ;;
        esac
    done
    [[ $# -ge 1 ]] || die "run: no program given (scripts/two-hosts.sh run -- PROGRAM [ARGS...])"
    [[ $timeout =~ ^[0-9]+$ ]] || die "run: --timeout takes whole seconds"
    local name
    for name in PATH LD_LIBRARY_PATH NO_COLOR OMP_NUM_THREADS OPENBLAS_NUM_THREADS $(compgen -e | grep '^KONDATE_' || true); do
        if [[ -n ${!name+set} ]]; then exports+=(-x "$name"); fi
    done
    local -a mpirun=(
        mpirun --allow-run-as-root --oversubscribe --bind-to none
        -np 2 --hostfile "$HOSTFILE" --map-by node
        --mca plm_rsh_agent "$AGENT"
        --mca pml ob1 --mca btl tcp,self
        --mca btl_tcp_if_include "$SUBNET" --mca oob_tcp_if_include "$SUBNET"
        -wdir "$wdir" "${exports[@]}"
        "$@"
    )
    if [[ -n ${TWO_HOSTS_VERBOSE:-} ]]; then echo "+ ip netns exec $H1 ${mpirun[*]}" >&2; fi
    local -a launch=(ip netns exec "$H1" "${mpirun[@]}")
    # --foreground: signal mpirun alone, once. Without it timeout signals its whole process group as well, and
    # mpirun takes a second SIGTERM as "abort now", exiting without ending its daemon and ranks.
    if [[ $timeout -gt 0 ]]; then launch=(timeout --foreground --kill-after=5 "$timeout" "${launch[@]}"); fi
    # A caller may have signals blocked (a test runner's worker threads do), and the mask is inherited across
    # exec: mpirun would then never see the SIGTERM from timeout. Clear it first (perl is Essential on Debian).
    if command -v perl >/dev/null 2>&1; then
        launch=(perl -MPOSIX -e 'sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!\n";
                                 exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n"' "${launch[@]}")
    fi
    exec "${launch[@]}"
}

case $command in
    up) cmd_up ;;
    down) cmd_down ;;
    stop) cmd_stop ;;
    run) cmd_run "$@" ;;
    info) cmd_info ;;
    *) echo "$prog: unknown command '$command'" >&2; usage ;;
esac

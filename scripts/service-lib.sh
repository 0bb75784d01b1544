# Sourced by the test service scripts (seaweedfs.sh, dockerd.sh).

# Stop a process this script started: SIGTERM, up to 30 s to exit, then SIGKILL.
terminate() {
    local name=$1 pid=$2
    kill "$pid"
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$name (pid $pid) ignored SIGTERM for 30 s; killing it."
        kill -KILL "$pid"
    fi
    echo "$name (pid $pid) stopped."
}

# The pid in a pid file, if that process still runs the program (guards against recycled pids).
running_pid() {
    local pid_file=$1 program=$2 pid
    pid="$(cat "$pid_file" 2>/dev/null)" || return 1
    [ -n "$pid" ] && grep -qa "$program" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

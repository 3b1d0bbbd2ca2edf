#!/usr/bin/env bash
# Regenerates the counterexample gallery: for each guard, the shortest counterexample
# the checker finds with that guard switched off (breadth-first, stopping at the first
# violated property), as `ebbtide check` prints it.
#
#   specs/counterexamples/generate.sh            # every guard
#   specs/counterexamples/generate.sh resend     # only the named ones
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --quiet
bin=target/release/ebbtide
guards=("$@")
if [ ${#guards[@]} -eq 0 ]; then
    mapfile -t guards < <("$bin" check --list-guards)
fi
for g in "${guards[@]}"; do
    # The configuration of the guard tests (model/tests/guards_bite.rs): 2 nodes, 1 unit,
    # one of each fault; lease losses are on because reject-while-stopping needs them.
    args=(check --nodes 2 --work 1 --lease-losses 1 --without "$g" --search bfs --stop-at-first-failure)
    out="specs/counterexamples/$g.txt"
    echo "== $g" >&2
    {
        echo "\$ ebbtide ${args[*]}"
        echo
        "$bin" "${args[@]}" 2>/dev/null || true
    } > "$out"
    grep -m1 " violated: " "$out" >&2 || echo "   no counterexample!" >&2
done

#!/usr/bin/env bash
# Regenerates the counterexample gallery: for each guard, the shortest counterexample
# the checker finds with that guard switched off (breadth-first, stopping at the first
# violated property), as `ebbtide check` prints it; and the one of the checker-only
# variant `--winner-learns-late` (specs/decisions.md, "The winner learns its term when
# it wins").
#
#   specs/counterexamples/generate.sh            # every guard, and winner-learns-late
#   specs/counterexamples/generate.sh resend     # only the named ones
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --quiet
bin=target/release/ebbtide
guards=("$@")
if [ ${#guards[@]} -eq 0 ]; then
    mapfile -t guards < <("$bin" check --list-guards)
    guards+=(winner-learns-late)
fi
for g in "${guards[@]}"; do
    # The configuration of the guard tests (model/tests/guards_bite.rs): 2 nodes, 1 unit,
    # one of each fault; lease losses are on because reject-while-stopping needs them
    # (and one stray term, as by default, because elected-terms-only needs it).
    if [ "$g" = winner-learns-late ]; then
        variant=(--winner-learns-late)
    else
        variant=(--without "$g")
    fi
    args=(check --nodes 2 --work 1 --lease-losses 1 "${variant[@]}" --search bfs --stop-at-first-failure)
    out="specs/counterexamples/$g.txt"
    echo "== $g" >&2
    {
        echo "\$ ebbtide ${args[*]}"
        echo
        "$bin" "${args[@]}" 2>/dev/null || true
    } > "$out"
    grep -m1 " violated: " "$out" >&2 || echo "   no counterexample!" >&2
done

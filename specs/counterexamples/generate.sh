#!/usr/bin/env bash
# Regenerates the counterexample gallery: for each guard, the shortest counterexample
# the checker finds with that guard switched off (breadth-first, stopping at the first
# violated property), as `ebbtide check` prints it; and the one of the checker-only
# variant `--winner-learns-late` (specs/decisions.md, "The winner learns its term when
# it wins"). Next to each counterexample's text, <guard>.svg draws it as a sequence
# diagram (`ebbtide check --svg`, the Explorer's picture: model/src/checker/diagram.rs).
#
#   specs/counterexamples/generate.sh            # every guard, and winner-learns-late
#   specs/counterexamples/generate.sh resend     # only the named ones
#   EBBTIDE_BIN=target/debug/ebbtide specs/counterexamples/generate.sh resend
#                                                # with a binary already built
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${EBBTIDE_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet
    bin=target/release/ebbtide
fi
guards=("$@")
if [ ${#guards[@]} -eq 0 ]; then
    mapfile -t guards < <("$bin" check --list-guards)
    guards+=(winner-learns-late)
fi
for g in "${guards[@]}"; do
    # The configuration of the guard tests (model/tests/guards_bite.rs): 2 nodes, 1 unit,
    # one of each fault; lease losses are on because reject-while-stopping needs them
    # (and one stray term, as by default, because elected-terms-only needs it).
    config=(--nodes 2 --work 1 --lease-losses 1)
    search=(--search bfs --stop-at-first-failure)
    case "$g" in
        winner-learns-late) variant=(--winner-learns-late) ;;
        # Balance needs two Alive nodes besides the target, and L1's fair continuation
        # to show the livelock.
        balance-hysteresis)
            config=(--nodes 3 --work 1 --node-crashes 0 --failovers 0 --fair-rounds 7)
            variant=(--without "$g")
            ;;
        # Defence in depth: no counterexample exists; the gallery shows the exhaustive
        # run, whose unique-state count equals the one with every guard on.
        stopping-only-target | stopping-at-draining-epoch)
            search=()
            variant=(--without "$g")
            ;;
        *) variant=(--without "$g") ;;
    esac
    args=(check "${config[@]}" "${variant[@]}" "${search[@]}")
    out="specs/counterexamples/$g.txt"
    svg="specs/counterexamples/$g.svg"
    rm -f "$svg"
    echo "== $g" >&2
    {
        echo "\$ ebbtide ${args[*]}"
        echo
        "$bin" "${args[@]}" --svg "$svg" 2>/dev/null || true
        if [ ${#search[@]} -eq 0 ]; then
            echo
            echo "\$ ebbtide check ${config[*]}    # every guard on: the same unique states"
            echo
            "$bin" check "${config[@]}" 2>/dev/null | head -1 || true
        fi
    } > "$out"
    grep -m1 " violated: " "$out" >&2 || echo "   no counterexample" >&2
done

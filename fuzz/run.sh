#!/usr/bin/env bash
# Runs every fuzz target for a fixed time on its corpus; exits non-zero if
# any target crashed (or failed to build).
#
#   fuzz/run.sh [SECONDS_PER_TARGET]      default 30
#
# Environment:
#   FUZZ_TARGETS   targets to run, space-separated (default: all of them)
#   FUZZ_SANITIZER none (default) or address. `none` builds on stable Rust;
#                  `address` needs nightly flags, so it sets RUSTC_BOOTSTRAP=1
#                  and builds into its own target dir.
#   FUZZ_CORPUS    scratch corpus root (default fuzz/target/corpus). The seeds
#                  in fuzz/corpus/<target>/seed-* are copied there first, so
#                  what the fuzzer adds never lands in the repository; inputs
#                  found in earlier local runs are kept and reused.
#
# Crashes are written to fuzz/artifacts/<target>/ (ignored by git); each is
# reproduced with `cargo fuzz run --sanitizer none TARGET FILE`.
set -euo pipefail

SECS="${1:-30}"
FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SANITIZER="${FUZZ_SANITIZER:-none}"
CORPUS_ROOT="${FUZZ_CORPUS:-$FUZZ_DIR/target/corpus}"
TARGETS="${FUZZ_TARGETS:-wire pipeline coalesce config control_request publish_spec dns_dhcp dns dns_tcp dhcp_leases resolv_conf slirp_api capture_filter metrics_request}"

cd "$FUZZ_DIR"

# CI machines start fresh: bring cargo-fuzz if it is not there.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

fuzz_args=(--sanitizer "$SANITIZER")
if [ "$SANITIZER" != none ]; then
    # -Zsanitizer is a nightly flag; RUSTC_BOOTSTRAP lets stable rustc take
    # it. Sanitized objects differ, so they get a target dir of their own.
    export RUSTC_BOOTSTRAP=1
    fuzz_args+=(--target-dir "$FUZZ_DIR/target/$SANITIZER")
fi

# One build of all targets up front: a build error fails fast, and the
# per-target timings below measure fuzzing only.
cargo fuzz build "${fuzz_args[@]}"

failed=()
for t in $TARGETS; do
    corpus="$CORPUS_ROOT/$t"
    mkdir -p "$corpus"
    cp "$FUZZ_DIR/corpus/$t"/seed-* "$corpus/"
    echo "=== $t: ${SECS}s on $corpus ($(ls "$corpus" | wc -l) inputs)"
    # -rss_limit_mb: a GSO frame fanned out to ports without offloads makes
    #   up to 1024 segment copies; 2 GiB leaves room and still catches leaks.
    # -timeout: one input takes milliseconds; 30 s means a hang.
    # -print_final_stats: execs/s and coverage for the log.
    set +e
    cargo fuzz run "${fuzz_args[@]}" "$t" "$corpus" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 2>&1 | tee "$CORPUS_ROOT/$t.log" |
        grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::|==[0-9]+== ERROR|thread .* panicked|SUMMARY)|attempt to|index out of|out of range|Test unit written'
    status="${PIPESTATUS[0]}" # cargo fuzz's, not grep's
    set -e
    if [ "$status" -ne 0 ]; then
        echo "!!! $t failed (exit $status); full log: $CORPUS_ROOT/$t.log"
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/)"
    exit 1
fi
echo "fuzz: all targets ran ${SECS}s without a crash"

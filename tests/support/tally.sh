# tally.sh: sourced by keel's shell checks (tests/checks, tests/install).
# `ok WHAT` and `bad WHAT` print one result line each and count it;
# `tally_exit` prints the closing "N passed, N failed" line and exits 0
# only if nothing failed.
passed=0
failed=0
ok() {
        echo "ok: $*"
        passed=$((passed + 1))
}
bad() {
        echo "FAILED: $*"
        failed=$((failed + 1))
}
tally_exit() {
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        exit
}

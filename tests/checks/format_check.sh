#!/usr/bin/env bash
# Every C source and header follows .clang-format.
set -uo pipefail
cd "$(dirname "$0")/../.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find sdk orchestrator projector tests -name '*.[ch]')
bad=$(clang-format --dry-run $files 2>&1 | grep -o '^[^:]*:[0-9]*' | cut -d: -f1 | sort -u)
if [ -n "$bad" ]; then
        echo "FAILED: not formatted (run: clang-format -i FILE):"
        echo "$bad"
        echo "0 passed, 1 failed"
        exit 1
fi
echo "ok: $(echo "$files" | wc -w) files follow .clang-format"
echo "1 passed, 0 failed"

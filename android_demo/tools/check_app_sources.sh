#!/usr/bin/env bash
# Type-checks the app's Java sources (app/src/main/java) together with :core against
# tools/app_stubs/: hand-written declarations of the few Android, AndroidX, LiteRT and ExecuTorch
# APIs the app calls, with the signatures of their documentation. It catches syntax and type
# errors on a machine without the Android SDK; it is NOT an Android build (Android Studio /
# Gradle remain the real check) and the stubs may differ from the real libraries.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$HERE/build-tests/app-check"
if ! command -v javac >/dev/null 2>&1; then
    echo "app source check skipped: no JDK"
    exit 0
fi
GSON=""
for j in /usr/share/java/gson.jar /usr/share/java/gson-2*.jar; do [[ -f "$j" ]] && GSON="$j" && break; done
if [[ -z "$GSON" ]]; then
    echo "app source check skipped: no Gson jar (apt-get install libgoogle-gson-java; run_core_tests.sh installs it)"
    exit 0
fi
rm -rf "$OUT" && mkdir -p "$OUT"
javac --release 17 -encoding UTF-8 -Xlint:all,-serial -Werror -implicit:none -d "$OUT" \
    -cp "$GSON" -sourcepath "$HERE/tools/app_stubs" \
    $(find "$HERE/core/src/main/java" "$HERE/app/src/main/java" -name '*.java' | sort)
echo "app sources type-check against the API stubs: OK"

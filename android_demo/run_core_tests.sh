#!/usr/bin/env bash
# Compiles android_demo/core (+ its JUnit 4 tests) with javac and runs them, without Gradle or the
# Android SDK. The tests replay golden vectors, once per folder: the repository's tests/golden/ (the
# shipped model, word tokenizer) and tests/golden_bpe/ (an open_clip-architecture model, CLIP BPE).
#   android_demo/run_core_tests.sh                       # from anywhere
#   GOLDEN_DIR=/abs/export/folder android_demo/run_core_tests.sh   # one other folder only
# Exit status: 0 all passed (or no JDK: skipped), non-zero on any compile or test failure.
# Build outputs: android_demo/build-tests/ (git-ignored).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="$HERE/build-tests"
if [[ -n "${GOLDEN_DIR:-}" ]]; then
    GOLDENS=("$GOLDEN_DIR")
else
    GOLDENS=("$REPO/tests/golden" "$REPO/tests/golden_bpe")
fi

if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    echo "android_demo core tests skipped: no JDK (javac/java not on PATH; install a JDK 17, e.g. apt-get install openjdk-17-jdk-headless)"
    exit 0
fi
JAVA_MAJOR="$(javac -version 2>&1 | sed -E 's/^javac ([0-9]+).*/\1/')"
if [[ "$JAVA_MAJOR" =~ ^[0-9]+$ ]] && (( JAVA_MAJOR < 17 )); then
    echo "android_demo core tests need JDK 17+ (found javac $JAVA_MAJOR)" >&2
    exit 1
fi

find_jar() {  # first existing jar among the arguments
    for j in "$@"; do
        if [[ -f "$j" ]]; then echo "$j"; return 0; fi
    done
    return 1
}
junit_jar() { find_jar /usr/share/java/junit4.jar /usr/share/java/junit4-4*.jar; }
hamcrest_jar() { find_jar /usr/share/java/hamcrest-core.jar /usr/share/java/hamcrest-all.jar /usr/share/java/hamcrest.jar /usr/share/java/hamcrest-core-*.jar; }
gson_jar() { find_jar /usr/share/java/gson.jar /usr/share/java/gson-2*.jar; }

if ! junit_jar >/dev/null || ! hamcrest_jar >/dev/null || ! gson_jar >/dev/null; then
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
        echo "installing JUnit 4 and Gson (Debian packages junit4, libgoogle-gson-java)..."
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q junit4 libgoogle-gson-java >/dev/null 2>&1; then
            apt-get update -q >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q junit4 libgoogle-gson-java >/dev/null
        fi
    else
        echo "JUnit 4 or Gson not found (/usr/share/java/junit4.jar + hamcrest, gson.jar): install them with" \
             "'sudo apt-get install junit4 libgoogle-gson-java' and re-run" >&2
        exit 1
    fi
fi
JUNIT="$(junit_jar)" || { echo "JUnit 4 jar still missing after installing junit4" >&2; exit 1; }
HAMCREST="$(hamcrest_jar)" || { echo "hamcrest jar still missing after installing junit4" >&2; exit 1; }
GSON="$(gson_jar)" || { echo "Gson jar still missing after installing libgoogle-gson-java" >&2; exit 1; }

for GOLDEN in "${GOLDENS[@]}"; do
    if [[ ! -f "$GOLDEN/golden.json" || ! -f "$GOLDEN/manifest.json" ]]; then
        echo "golden vectors not found in $GOLDEN (need manifest.json, golden.json, golden/*.png and the tokenizer's file)" >&2
        exit 1
    fi
done

START=$(date +%s%N)
rm -rf "$OUT/main" "$OUT/test"
mkdir -p "$OUT/main" "$OUT/test"
# The same flags Gradle would use: Java 17, warnings are shown, -Werror keeps the code clean.
javac --release 17 -encoding UTF-8 -Xlint:all -Werror -d "$OUT/main" -cp "$GSON" \
    $(find "$HERE/core/src/main/java" -name '*.java' | sort)
javac --release 17 -encoding UTF-8 -Xlint:all,-serial -Werror -d "$OUT/test" -cp "$OUT/main:$GSON:$JUNIT:$HAMCREST" \
    $(find "$HERE/core/src/test/java" -name '*.java' | sort)

CLASSES=$(cd "$HERE/core/src/test/java" && find . -name '*Test.java' | sed -e 's|^\./||' -e 's|\.java$||' -e 's|/|.|g' | sort)
# -Djava.awt.headless: ImageIO needs no display. 2 CPU cores are plenty; keep the JVM small.
STATUS=0
for GOLDEN in "${GOLDENS[@]}"; do
    echo "== golden vectors: $GOLDEN"
    set +e
    java -Djava.awt.headless=true -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx512m \
        -Dgolden.dir="$GOLDEN" \
        -cp "$OUT/test:$OUT/main:$HERE/core/src/test/resources:$GSON:$JUNIT:$HAMCREST" \
        org.junit.runner.JUnitCore $CLASSES
    RUN=$?
    set -e
    [[ $RUN == 0 ]] || STATUS=$RUN
done
END=$(date +%s%N)
ELAPSED_MS=$(( (END - START) / 1000000 ))
printf 'android_demo core tests: %s in %d.%03d s (compile + run)\n' \
    "$([[ $STATUS == 0 ]] && echo passed || echo FAILED)" $((ELAPSED_MS / 1000)) $((ELAPSED_MS % 1000))
exit $STATUS

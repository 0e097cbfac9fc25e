// Plain-JVM library (no Android dependency): manifest, preprocessing, tokenizer, scoring and the
// Backend interface. `./gradlew :core:test` and `:core:testBpe` run the same JUnit 4 tests as
// ../run_core_tests.sh, on tests/golden and tests/golden_bpe.
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

tasks.withType<JavaCompile>().configureEach {
    options.encoding = "UTF-8"
}

tasks.named<JavaCompile>("compileJava") {
    options.compilerArgs.addAll(listOf("-Xlint:all", "-Werror"))
}

dependencies {
    // JSON parsing (Json.java wraps Gson's strict JsonReader); the JVM tests take Debian's
    // libgoogle-gson-java of the same line (run_core_tests.sh)
    implementation("com.google.code.gson:gson:2.10.1")
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // the repository's golden vectors (manifest.json, golden.json, golden/*.png, vocab.txt)
    systemProperty("golden.dir", rootProject.file("../tests/golden").absolutePath)
    systemProperty("java.awt.headless", "true")
    inputs.dir(rootProject.file("../tests/golden"))
}

// The same tests against the CLIP BPE model's golden vectors (../run_core_tests.sh runs both).
val testBpe by tasks.registering(Test::class) {
    description = "Runs the unit tests against ../tests/golden_bpe (a CLIP BPE tokenizer model)."
    group = "verification"
    testClassesDirs = sourceSets["test"].output.classesDirs
    classpath = sourceSets["test"].runtimeClasspath
    systemProperty("golden.dir", rootProject.file("../tests/golden_bpe").absolutePath)
    systemProperty("java.awt.headless", "true")
    inputs.dir(rootProject.file("../tests/golden_bpe"))
}

tasks.named("check") {
    dependsOn(testBpe)
}

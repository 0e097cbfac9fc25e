// Plain-JVM library (no Android dependency): manifest, preprocessing, tokenizer, scoring and the
// Backend interface. `./gradlew :core:test` runs the same JUnit 4 tests as ../run_core_tests.sh.
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
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // the repository's golden vectors (manifest.json, golden.json, golden/*.png, vocab.txt)
    systemProperty("golden.dir", rootProject.file("../tests/golden").absolutePath)
    systemProperty("java.awt.headless", "true")
    inputs.dir(rootProject.file("../tests/golden"))
}

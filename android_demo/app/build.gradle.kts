// The Android app (Java, like :core, so that its code is compile-checked on machines without an
// Android SDK: see ../tools/check_app_sources.sh).
plugins {
    id("com.android.application")
}

val litertVersion: String by project
val executorchVersion: String by project

android {
    namespace = "com.mobilesdk.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.mobilesdk.demo"
        minSdk = 26 // java.nio.file (core), BitmapFactory.Options.inPreferredColorSpace
        targetSdk = 35
        versionCode = 1
        versionName = "0.1"
        ndk {
            // the ABIs both runtimes ship native libraries for
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    androidResources {
        // keep the models uncompressed in the APK (they are copied out once; no inflate cost)
        noCompress += listOf("tflite", "pte")
    }

    sourceSets["main"].assets.srcDir(layout.buildDirectory.dir("generated/exportedModels"))
}

dependencies {
    implementation(project(":core"))
    implementation("androidx.appcompat:appcompat:1.7.0")
    implementation("androidx.activity:activity:1.9.3")
    implementation("com.google.ai.edge.litert:litert:$litertVersion")
    implementation("org.pytorch:executorch-android:$executorchVersion")
}

// ---------------------------------------------------------------------------------------------
// copyExportedModels: bundles an export folder (`mobile-sdk export --out DIR`) as the app's
// assets under models/: manifest.json, the tokenizer's file (vocab.txt, or the CLIP BPE merges
// bpe_simple_vocab_16e6.txt.gz), the label bank (label_bank.json, exports with --label-bank),
// golden.json, golden/*.png (the search gallery) and the Android artifacts (tflite/, executorch/);
// Core ML packages are left out.
//   ./gradlew copyExportedModels                       # from ../artifacts/demo (gradle.properties)
//   ./gradlew copyExportedModels -PexportDir=/abs/dir  # from another export
// It runs before every build; with no export folder the app still builds and shows
// "manifest not found" at start.
// ---------------------------------------------------------------------------------------------
val exportDirProperty = (findProperty("exportDir") as String?) ?: "../artifacts/demo"
val exportDir: File = rootProject.file(exportDirProperty)

val copyExportedModels by tasks.registering(Sync::class) {
    group = "mobile-sdk"
    description = "Copies manifest.json, the tokenizer file, the label bank, the golden samples and the .tflite/.pte artifacts " +
        "from -PexportDir (default ../artifacts/demo) into the app's assets (models/)."
    from(exportDir) {
        include("manifest.json", "vocab.txt", "*.txt.gz", "label_bank.json", "golden.json", "golden/*.png")
        include("tflite/*.tflite", "executorch/*.pte")  // not executorch/debug/ (parity-only twins)
    }
    into(layout.buildDirectory.dir("generated/exportedModels/models"))
    doFirst {
        if (!exportDir.resolve("manifest.json").isFile) {
            logger.warn(
                "copyExportedModels: no manifest.json in $exportDir; run `mobile-sdk export --out $exportDir` " +
                    "or pass -PexportDir=... (the app will show 'manifest not found')"
            )
        }
    }
}

tasks.named("preBuild") {
    dependsOn(copyExportedModels)
}

// Android demo of mobile-sdk: open this folder (android_demo/) in Android Studio.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google() // LiteRT (com.google.ai.edge.litert), AndroidX
        mavenCentral() // ExecuTorch (org.pytorch:executorch-android), JUnit
    }
}

rootProject.name = "mobile-sdk-android-demo"
include(":core", ":app")

// Plugin versions: see README.md ("Versions"); none of them could be resolved on the machine
// that wrote this project (no Android SDK, no network to Google Maven).
plugins {
    id("com.android.application") version "8.7.3" apply false
}

import Foundation
import MobileSDKCore

/// Finds the bundled export: manifest.json, the tokenizer's file, the label bank, the Core ML models
/// and the gallery images that `sync_assets.sh` copied into Sources/MobileSDKDemo/Resources. Xcode flattens
/// resource groups (and compiles `x.mlpackage` to `x.mlmodelc`), so a file is looked up by its
/// manifest path first, then by its name.
struct ResourceLocator {
    let bundles: [Bundle]

    /// The bundles of this build: the SwiftPM resource bundle when built as a package, the app bundle.
    static var app: ResourceLocator {
        #if SWIFT_PACKAGE
        return ResourceLocator(bundles: [Bundle.module, Bundle.main])
        #else
        return ResourceLocator(bundles: [Bundle.main])
        #endif
    }

    func url(for relativePath: String) -> URL? {
        let fm = FileManager.default
        let name = (relativePath as NSString).lastPathComponent
        for bundle in bundles {
            guard let root = bundle.resourceURL else { continue }
            for candidate in [relativePath, name, "Resources/" + relativePath, "Resources/" + name] {
                let url = root.appendingPathComponent(candidate)
                if fm.fileExists(atPath: url.path) {
                    return url
                }
            }
        }
        return nil
    }

    /// The bundled manifest, validated (unknown schema_version and the like are clear errors).
    func manifest() throws -> Manifest {
        guard let url = url(for: Manifest.fileName) else {
            throw SDKError(.manifest, "manifest.json is not in the app; run `ios_demo/sync_assets.sh EXPORT_DIR` "
                + "(EXPORT_DIR from `mobile-sdk export --out EXPORT_DIR`) and rebuild")
        }
        return try Manifest.load(url)
    }

    /// The tokenizer the manifest names (word vocabulary or CLIP BPE merges, each checked against
    /// the manifest), through the core's one factory; a clear error for a kind the app lacks.
    func tokenizer(for manifest: Manifest) throws -> any Tokenizer {
        do {
            return try Tokenizers.fromManifest(manifest) { name in
                try url(for: name).map { try Data(contentsOf: $0) }
            }
        } catch let e as SDKError where e.kind == .modelFile {
            throw SDKError(.modelFile, e.message + "; run ios_demo/sync_assets.sh EXPORT_DIR and rebuild")
        }
    }

    /// The export's label bank (the manifest's label_bank file), checked against the manifest's
    /// sha256, class count and the model's embed_dim by the core.
    func labelBank(for manifest: Manifest) throws -> LabelBank {
        do {
            return try LabelBank.fromManifest(manifest) { name in
                try url(for: name).map { try Data(contentsOf: $0) }
            }
        } catch let e as SDKError where e.kind == .modelFile {
            throw SDKError(.modelFile, e.message + "; run ios_demo/sync_assets.sh EXPORT_DIR and rebuild")
        }
    }

    /// The compiled model (`.mlmodelc`, made by Xcode at build time) of an artifact, or its
    /// `.mlpackage` when the build copied it uncompiled (then `compile` compiles it on the device).
    func model(for artifact: Manifest.Artifact) throws -> (url: URL, compiled: Bool) {
        let file = artifact.file as NSString
        let stem = (file.lastPathComponent as NSString).deletingPathExtension
        let compiled = (file.deletingLastPathComponent as NSString).appendingPathComponent(stem + ".mlmodelc")
        if let url = url(for: compiled) {
            return (url, true)
        }
        if let url = url(for: artifact.file) {
            return (url, false)
        }
        throw SDKError(.modelFile, "model file \(artifact.file) (\(artifact.platform) \(artifact.tower) "
            + "\(artifact.precision)) is not in the app; run ios_demo/sync_assets.sh EXPORT_DIR and rebuild")
    }

    /// The gallery for text-to-image search: every bundled PNG / JPEG, by name.
    func galleryImages() -> [URL] {
        var seen = Set<String>()
        var out: [URL] = []
        let fm = FileManager.default
        for bundle in bundles {
            guard let root = bundle.resourceURL else { continue }
            for dir in [root, root.appendingPathComponent("gallery"), root.appendingPathComponent("Resources/gallery")] {
                guard let names = try? fm.contentsOfDirectory(atPath: dir.path) else { continue }
                for name in names.sorted() where !seen.contains(name) {
                    let ext = (name as NSString).pathExtension.lowercased()
                    if ["png", "jpg", "jpeg", "heic"].contains(ext) && !name.hasPrefix("AppIcon") {
                        seen.insert(name)
                        out.append(dir.appendingPathComponent(name))
                    }
                }
            }
        }
        return out
    }
}

import Foundation

/// The one error type of the core library (android_demo's `SdkException`): every message names
/// the problem and, where there is one, the fix. `kind` lets an app pick how to show it (the demo
/// shows all of them as messages).
public struct SDKError: Error, Equatable, LocalizedError, CustomStringConvertible {
    /// What went wrong, coarse enough for a UI to react on.
    public enum Kind: String, Equatable, Sendable {
        /// manifest.json missing, not JSON, unknown schema / schema_version, or malformed.
        case manifest
        /// A model file (.mlpackage / .mlmodelc), the vocabulary or the label bank named by the manifest is
        /// missing or altered; or the export lacks the tower a use needs.
        case modelFile
        /// An image cannot be decoded or has no pixels.
        case image
        /// Bad text / vocabulary / tokenizer settings.
        case text
        /// Core ML failed to load or run a model, or gave an output of the wrong shape.
        case backend
        /// Anything else that is the caller's fault (wrong array sizes, ...).
        case invalidArgument
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var errorDescription: String? { message }

    public var description: String { "\(kind.rawValue): \(message)" }
}

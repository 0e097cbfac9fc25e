#if canImport(CoreML)
import CoreML
import CoreVideo
import Foundation
import MobileSDKCore

/// One tower of the model as a Core ML `MLModel`, driven by its manifest entry: the input's name,
/// shape and dtype come from `artifact.inputs[0]`, the output's name from `artifact.outputs[0]`.
/// The image tower takes float32 NCHW pixels in [0, 255] as an MLMultiArray, or, when the package
/// was converted with an image input, a BGRA pixel buffer (Core ML feeds the same [0, 255] values:
/// scale 1, bias 0); the text tower takes int32 ids (1, context_length).
final class CoreMLTower {
    let artifact: Manifest.Artifact
    let model: MLModel
    let input: TensorSpec
    let outputName: String
    let imageInput: Bool
    let embedDim: Int

    init(artifact: Manifest.Artifact, modelURL: URL, embedDim: Int, computeUnits: MLComputeUnits = .all) throws {
        guard let input = artifact.inputs.first, let output = artifact.outputs.first else {
            throw SDKError(.manifest, "\(artifact) has no input / output in the manifest")
        }
        let config = MLModelConfiguration()
        config.computeUnits = computeUnits
        let model: MLModel
        do {
            model = try MLModel(contentsOf: modelURL, configuration: config)
        } catch {
            throw SDKError(.backend, "Core ML cannot load \(artifact.file): \(error.localizedDescription)")
        }
        let inputs = model.modelDescription.inputDescriptionsByName
        guard let desc = inputs[input.name] else {
            throw SDKError(.backend, "\(artifact.file) has no input '\(input.name)' (it has \(inputs.keys.sorted())); "
                + "the bundled model and manifest.json come from different exports")
        }
        guard model.modelDescription.outputDescriptionsByName[output.name] != nil else {
            throw SDKError(.backend, "\(artifact.file) has no output '\(output.name)'; the bundled model and "
                + "manifest.json come from different exports")
        }
        if desc.type == .multiArray, let constraint = desc.multiArrayConstraint {
            let shape = constraint.shape.map { $0.intValue }
            guard shape == input.shape else {
                throw SDKError(.backend, "\(artifact.file) input '\(input.name)' has shape \(shape), the manifest "
                    + "says \(input.shape)")
            }
        }
        self.artifact = artifact
        self.model = model
        self.input = input
        self.outputName = output.name
        self.imageInput = desc.type == .image
        self.embedDim = embedDim
    }

    /// uint8 HWC pixels (size, size, 3) -> embedding.
    func encodeImage(hwc: [UInt8], size: Int) throws -> [Float] {
        if imageInput {
            return try predict(MLFeatureValue(pixelBuffer: CoreMLTower.pixelBuffer(hwc, size: size)))
        }
        let nchw = try Preprocess.toNCHW(hwc, size: size)
        guard nchw.count == input.elementCount else {
            throw SDKError(.invalidArgument, "image input \(input) needs \(input.elementCount) values, got \(nchw.count)")
        }
        let array = try CoreMLTower.multiArray(input, dataType: .float32)
        CoreMLTower.fill(array, nchw)
        return try predict(MLFeatureValue(multiArray: array))
    }

    /// int32 ids (context_length) -> embedding.
    func encodeText(ids: [Int32]) throws -> [Float] {
        guard ids.count == input.elementCount else {
            throw SDKError(.invalidArgument, "text input \(input) needs \(input.elementCount) ids, got \(ids.count)")
        }
        if input.dtype == "int32" {
            let array = try CoreMLTower.multiArray(input, dataType: .int32)
            CoreMLTower.fill(array, ids)
            return try predict(MLFeatureValue(multiArray: array))
        }
        let array = try CoreMLTower.multiArray(input, dataType: .float32)
        CoreMLTower.fill(array, ids.map { Float($0) })
        return try predict(MLFeatureValue(multiArray: array))
    }

    private func predict(_ value: MLFeatureValue) throws -> [Float] {
        let out: MLFeatureProvider
        do {
            let provider = try MLDictionaryFeatureProvider(dictionary: [input.name: value])
            out = try model.prediction(from: provider)
        } catch {
            throw SDKError(.backend, "Core ML prediction with \(artifact.file) failed: \(error.localizedDescription)")
        }
        guard let array = out.featureValue(for: outputName)?.multiArrayValue else {
            throw SDKError(.backend, "\(artifact.file) gave no multi-array output '\(outputName)'")
        }
        guard array.count == embedDim else {
            throw SDKError(.backend, "\(artifact.file) gave \(array.count) values, the manifest's embed_dim is \(embedDim)")
        }
        let lead = [NSNumber](repeating: 0, count: max(array.shape.count - 1, 0))
        return (0..<array.count).map { i in array[lead + [NSNumber(value: i)]].floatValue }
    }

    private static func multiArray(_ spec: TensorSpec, dataType: MLMultiArrayDataType) throws -> MLMultiArray {
        do {
            return try MLMultiArray(shape: spec.shape.map { NSNumber(value: $0) }, dataType: dataType)
        } catch {
            throw SDKError(.backend, "cannot allocate input \(spec): \(error.localizedDescription)")
        }
    }

    /// Row-major values into an MLMultiArray of any strides.
    private static func fill<T: MLShapedArrayScalar>(_ array: MLMultiArray, _ values: [T]) {
        let shape = array.shape.map { $0.intValue }
        array.withUnsafeMutableBufferPointer(ofType: T.self) { ptr, strides in
            for flat in 0..<values.count {
                var rest = flat, offset = 0
                for k in stride(from: shape.count - 1, through: 0, by: -1) {
                    offset += (rest % shape[k]) * strides[k]
                    rest /= shape[k]
                }
                ptr[offset] = values[flat]
            }
        }
    }

    /// HWC RGB bytes as a 32BGRA pixel buffer (alpha 255).
    private static func pixelBuffer(_ hwc: [UInt8], size: Int) throws -> CVPixelBuffer {
        var made: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, size, size, kCVPixelFormatType_32BGRA, nil, &made)
        guard status == kCVReturnSuccess, let buffer = made else {
            throw SDKError(.backend, "cannot allocate a \(size)x\(size) pixel buffer (status \(status))")
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else {
            throw SDKError(.backend, "cannot write the pixel buffer")
        }
        let bpr = CVPixelBufferGetBytesPerRow(buffer)
        let dst = base.assumingMemoryBound(to: UInt8.self)
        for y in 0..<size {
            for x in 0..<size {
                let s = (y * size + x) * 3, d = y * bpr + x * 4
                dst[d] = hwc[s + 2]
                dst[d + 1] = hwc[s + 1]
                dst[d + 2] = hwc[s]
                dst[d + 3] = 255
            }
        }
        return buffer
    }
}
#endif

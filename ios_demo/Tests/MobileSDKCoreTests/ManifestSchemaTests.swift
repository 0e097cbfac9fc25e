import Foundation
import MobileSDKCore
import XCTest

/// The manifest's JSON Schema (mobile_sdk/schemas/manifest.schema.json, the file the Python SDK
/// validates with) and this reader agree: every property the schema requires, removed in turn
/// from the golden manifest, is refused here too, as are the schema's fixed values.
final class ManifestSchemaTests: XCTestCase {
    private func schema() throws -> [String: Any] {
        let url = GoldenFiles.folder.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("mobile_sdk/schemas/manifest.schema.json")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    private func node(_ root: Any, _ path: [Any]) -> Any? {
        var o: Any? = root
        for p in path {
            if let i = p as? Int { o = (o as? [Any])?[i] } else if let k = p as? String { o = (o as? [String: Any])?[k] }
        }
        return o
    }

    /// `obj` with the key removed (or set) at `path`.
    private func edited(_ obj: Any, _ path: [Any], key: String, value: Any?) -> Any {
        if path.isEmpty {
            var d = obj as! [String: Any]
            d[key] = value
            return d
        }
        if let i = path[0] as? Int {
            var a = obj as! [Any]
            a[i] = edited(a[i], Array(path.dropFirst()), key: key, value: value)
            return a
        }
        var d = obj as! [String: Any]
        let k = path[0] as! String
        d[k] = edited(d[k]!, Array(path.dropFirst()), key: key, value: value)
        return d
    }

    private func assertRefused(_ obj: Any, _ what: String) throws {
        let data = try JSONSerialization.data(withJSONObject: obj)
        XCTAssertThrowsError(try Manifest.parse(data, source: what), "accepted a manifest the schema refuses: \(what)")
    }

    func testEveryPropertyTheSchemaRequiresIsRequiredHere() throws {
        let s = try schema()
        let manifest = try GoldenFiles.manifestObject()
        let places: [([Any], [Any])] = [
            ([], []),
            (["properties", "model"], ["model"]),
            (["properties", "model", "properties", "preprocessing"], ["model", "preprocessing"]),
            (["properties", "model", "properties", "tokenizer"], ["model", "tokenizer"]),
            (["properties", "artifacts", "items"], ["artifacts", 0]),
            (["$defs", "tensor"], ["artifacts", 0, "inputs", 0]),
        ]
        var checked = 0
        for (schemaPath, manifestPath) in places {
            let required = try XCTUnwrap((node(s, schemaPath) as? [String: Any])?["required"] as? [String])
            for key in required {
                XCTAssertNotNil((node(manifest, manifestPath) as? [String: Any])?[key], "golden manifest lacks \(key)")
                try assertRefused(edited(manifest, manifestPath, key: key, value: nil), "without \(key)")
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 15)
    }

    func testTheSchemasFixedValuesAreTheReadersToo() throws {
        let s = try schema()
        let manifest = try GoldenFiles.manifestObject()
        XCTAssertEqual(node(s, ["properties", "schema", "const"]) as? String, manifest["schema"] as? String)
        XCTAssertEqual(node(s, ["properties", "schema_version", "const"]) as? Int, Manifest.supportedSchemaVersion)
        try assertRefused(edited(manifest, ["artifacts", 0], key: "tower", value: "audio"), "tower audio")
        try assertRefused(edited(manifest, ["artifacts", 0], key: "default", value: "yes"), "default yes")
        try assertRefused(edited(manifest, ["artifacts", 0, "inputs", 0], key: "shape", value: [1, 0]), "zero in shape")
    }
}

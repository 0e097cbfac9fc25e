import Foundation
import MobileSDKCore
import XCTest

/// What the tests that edit copies of the golden files share (ErrorTests, LabelBankTests,
/// ClipBpeTests): a temporary folder per test, the golden manifest as a JSON object, and the
/// assertion that a call fails with a clear SDKError.

/// A new empty folder under the temporary directory, named `prefix`-UUID; `testCase` removes it
/// when the current test ends (call it from `setUpWithError` or from a test).
func makeTemporaryFolder(_ prefix: String, removedAfter testCase: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    testCase.addTeardownBlock {
        try? FileManager.default.removeItem(at: url)
    }
    return url
}

/// `body` throws an SDKError of `kind` whose message contains `text`.
func assertSDKError(_ kind: SDKError.Kind, containing text: String, _ body: () throws -> Void,
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        guard let e = error as? SDKError else {
            return XCTFail("expected an SDKError, got \(error)", file: file, line: line)
        }
        XCTAssertEqual(e.kind, kind, e.message, file: file, line: line)
        XCTAssertTrue(e.message.contains(text), "'\(e.message)' lacks '\(text)'", file: file, line: line)
    }
}

extension GoldenFiles {
    /// A golden folder's manifest.json as a JSON object, for a test to edit.
    static func manifestObject(in folder: URL = folder) throws -> [String: Any] {
        let data = try Data(contentsOf: url(manifestFile, in: folder))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}

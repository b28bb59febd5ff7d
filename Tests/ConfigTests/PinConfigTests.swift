import Foundation
import Testing
@testable import Config
@testable import ConfigFile

/// `hub.pin_sha256`: one pin or a list, each the base64 SHA-256 of a public key.
@Suite struct PinConfigTests {
    let minimal = "[station]\nid = \"ps-test-01\"\n"
    // SHA-256 of the empty string and of "a", base64.
    let pinA = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    let pinB = "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="

    func failure(_ text: String) -> ConfigError? {
        do { _ = try StationConfig.parse(text, file: "station.toml"); return nil } catch { return error }
    }

    @Test func onePinOrAListBecomeCurlsPinnedPublicKey() throws {
        let one = try StationConfig.parse(minimal + "[hub]\npin_sha256 = \"\(pinA)\"\n")
        #expect(one.hub.pinSHA256 == [pinA])
        let two = try StationConfig.parse(minimal + "[hub]\npin_sha256 = [\"\(pinA)\", \"sha256//\(pinB)\"]\n")
        #expect(two.hub.pinSHA256 == [pinA, pinB])
        #expect(PinSHA256.curlValue(two.hub.pinSHA256) == "sha256//\(pinA);sha256//\(pinB)")
        #expect(PinSHA256.curlValue([]) == nil)
        #expect(try StationConfig.parse(minimal).hub.pinSHA256.isEmpty)
    }

    @Test func malformedPinsNameTheValueAndHowToComputeOne() throws {
        // Hex instead of base64, a truncated hash, a SHA-1 sized hash.
        for bad in ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "47DEQpj8HBSa+/TImW+5", "2jmj7l5rSw0yVb/vlWAYkK/YBwk="] {
            let e = try #require(failure(minimal + "[hub]\npin_sha256 = \"\(bad)\"\n"), "\(bad) accepted")
            #expect(e.key == "hub.pin_sha256")
            #expect(e.line == 4)
            #expect(e.message.contains("is not a base64 SHA-256 hash"))
            #expect(e.nextStep?.contains("openssl x509 -pubkey") == true)
        }
        let wrongType = try #require(failure(minimal + "[hub]\npin_sha256 = 42\n"))
        #expect(wrongType.nextStep == "expected a base64 string or a list of them")
        let empty = try #require(failure(minimal + "[hub]\npin_sha256 = []\n"))
        #expect(empty.message == "the list is empty")
        let mixed = try #require(failure(minimal + "[hub]\npin_sha256 = [\"\(pinA)\", 7]\n"))
        #expect(mixed.key == "hub.pin_sha256")
    }
}

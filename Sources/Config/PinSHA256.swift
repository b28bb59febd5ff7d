import Foundation

/// Public-key pins for the hub's certificate (`hub.pin_sha256`), in the form
/// libcurl's `CURLOPT_PINNEDPUBLICKEY` takes.
public enum PinSHA256 {
    /// The shell pipeline that prints the pin of a server's current key.
    public static func command(host: String, port: Int) -> String {
        "openssl s_client -connect \(host):\(port) -servername \(host) </dev/null 2>/dev/null"
            + " | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der"
            + " | openssl dgst -sha256 -binary | openssl base64"
    }

    /// `sha256//A;sha256//B` for `CURLOPT_PINNEDPUBLICKEY`; nil without pins.
    public static func curlValue(_ pins: [String]) -> String? {
        pins.isEmpty ? nil : pins.map { "sha256//\($0)" }.joined(separator: ";")
    }
}

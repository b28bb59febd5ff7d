import Config
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The station's master key for the spool: 32 random bytes in a root-only
/// file, handed to the daemon by systemd (`LoadCredential=spool.key:…`).
/// It only seals each file's own data key (see `EncryptedHeader`).
public struct SpoolKey: Sendable {
    // Kept as bytes: SymmetricKey is not Sendable.
    private let bytes: [UInt8]
    /// Where it was read from, for messages (never the bytes).
    public let source: String

    public var key: SymmetricKey { SymmetricKey(data: bytes) }

    public static let byteCount = 32
    /// The name under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
    public static let credentialName = "spool.key"

    public init(key: SymmetricKey, source: String) {
        self.bytes = key.withUnsafeBytes { Array($0) }
        self.source = source
    }

    /// The shell command that creates a key at `path`.
    public static func createCommand(_ path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return "sudo sh -c 'umask 077; mkdir -p \(dir); head -c 32 /dev/urandom > \(path)'"
    }

    /// The next step when the key at `path` exists but this user cannot
    /// read it: run the command as the service user with the key handed
    /// over the way systemd hands it to the daemon.
    public static func accessStep(_ path: String) -> String {
        "run it as the service user with the key, the way the daemon gets it: sudo systemd-run --quiet --pipe --wait --same-dir -p User=telestation -p LoadCredential=\(credentialName):\(path) telestation …"
    }

    /// What looking for the key found.
    public enum Lookup: Sendable {
        case found(SpoolKey)
        case missing(path: String)
        /// A key file exists but this user may not read it (root only, as it should be).
        case notPermitted(SpoolError)
        /// A key file exists but cannot be used: too open, wrong size, not a file.
        case unusable(SpoolError)
    }

    /// `$CREDENTIALS_DIRECTORY/spool.key` first (the daemon under systemd), then `keyFile`.
    public static func lookup(keyFile: String, environment: [String: String]) -> Lookup {
        if let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty {
            let path = dir + "/" + credentialName
            if FileManager.default.fileExists(atPath: path) { return load(path) }
        }
        return load(keyFile)
    }

    /// Reads and checks one key file (`stat(2)`, `open(2)`, `read(2)`).
    static func load(_ path: String) -> Lookup {
        var st = stat()
        if stat(path, &st) != 0 {
            let err = errno
            if err == ENOENT { return .missing(path: path) }
            return .notPermitted(SpoolError(.encryptionKey, "cannot reach the spool key \(path): \(String(cString: strerror(err)))",
                                            nextStep: accessStep(path)))
        }
        let mode = st.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            return .unusable(SpoolError(.encryptionKey,
                                        "the spool key \(path) is open to other users (mode \(String(mode, radix: 8)))",
                                        nextStep: "make it private: sudo chmod 600 \(path)"))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            return .unusable(SpoolError(.encryptionKey, "the spool key \(path) is not a regular file",
                                        nextStep: "create it: \(createCommand(path))"))
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .notPermitted(SpoolError(.encryptionKey,
                                            "cannot read the spool key \(path): \(String(cString: strerror(errno))) (it belongs to root)",
                                            nextStep: accessStep(path)))
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: byteCount + 1)) ?? Data()
        guard data.count == byteCount else {
            return .unusable(SpoolError(.encryptionKey, "the spool key \(path) is \(data.count) bytes, not \(byteCount)",
                                        nextStep: "restore the station's key if it was damaged (images queued under it need it); on a station with nothing queued, create a new one: \(createCommand(path))"))
        }
        return .found(SpoolKey(key: SymmetricKey(data: data), source: path))
    }
}

/// What a spool opens for: storing images (the daemon, capture, enqueue,
/// sync), or only looking at the queue (status, diagnose), which works
/// without the key.
public enum SpoolPurpose: Sendable {
    case store, inspect
}

/// How a spool treats image files at rest.
public enum SpoolProtection: Sendable {
    /// New files are encrypted, plaintext ones are encrypted at open, reads decrypt.
    case encrypted(SpoolKey)
    /// `spool.insecure_allow_plaintext` and no key: new files are stored unencrypted.
    case plaintext
    /// No usable key in this process: the queue can be read, images cannot be stored or read.
    case locked(reason: SpoolError)

    public var isEncrypted: Bool {
        if case .encrypted = self { return true }
        return false
    }

    /// Decides from what the key lookup found. Without a key, storing is
    /// refused unless plaintext was explicitly allowed; a key file that
    /// exists but is unusable is always an error, never a reason to fall
    /// back to plaintext.
    public static func decide(_ lookup: SpoolKey.Lookup, allowPlaintext: Bool,
                              purpose: SpoolPurpose) throws(SpoolError) -> SpoolProtection {
        switch lookup {
        case let .found(key):
            return .encrypted(key)
        case let .missing(path):
            if allowPlaintext { return .plaintext }
            let error = SpoolError(.encryptionKey, "no spool key at \(path): patient images are only stored encrypted",
                                   nextStep: "create it: \(SpoolKey.createCommand(path))")
            if purpose == .inspect { return .locked(reason: error) }
            throw error
        case let .unusable(error), let .notPermitted(error):
            if purpose == .inspect { return .locked(reason: error) }
            throw error
        }
    }

    /// The protection `config` asks for, with the key from the environment or `spool.key_file`.
    public static func resolve(_ config: StationConfig, purpose: SpoolPurpose,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(SpoolError) -> SpoolProtection {
        try decide(SpoolKey.lookup(keyFile: config.spool.keyFile, environment: environment),
                   allowPlaintext: config.spool.insecureAllowPlaintext, purpose: purpose)
    }
}

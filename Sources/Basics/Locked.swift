import Synchronization

/// A value behind a `Mutex`, shareable by reference: a `Mutex` itself cannot
/// be stored in a copyable struct, and reference types holding one need no
/// `@unchecked Sendable`.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<R: Sendable, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> R {
        try mutex.withLock(body)
    }
}

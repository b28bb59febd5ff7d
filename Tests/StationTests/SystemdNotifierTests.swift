import Foundation
import Testing
@testable import Station

@Suite struct NotifyEnvironmentTests {
    @Test func watchdogFromTheEnvironment() {
        let e = NotifyEnvironment(environment: ["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000"], pid: 42)
        #expect(e.socketPath == "/run/systemd/notify")
        #expect(e.watchdogInterval == .seconds(60))
        #expect(e.pingInterval == .seconds(30))
    }

    @Test func watchdogPidMustBeOurs() {
        let mine = NotifyEnvironment(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"], pid: 42)
        #expect(mine.watchdogInterval == .seconds(2))
        let other = NotifyEnvironment(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "41"], pid: 42)
        #expect(other.watchdogInterval == nil)
    }

    @Test func noWatchdogWhenUnsetZeroOrGarbage() {
        #expect(NotifyEnvironment(environment: [:], pid: 1).watchdogInterval == nil)
        #expect(NotifyEnvironment(environment: ["WATCHDOG_USEC": "0"], pid: 1).watchdogInterval == nil)
        #expect(NotifyEnvironment(environment: ["WATCHDOG_USEC": "soon"], pid: 1).watchdogInterval == nil)
        #expect(NotifyEnvironment(environment: ["NOTIFY_SOCKET": ""], pid: 1).socketPath == nil)
    }

    @Test func datagramsHaveOneFieldPerLine() {
        #expect(NotifyField.datagram([.ready, .status("2 pending\ncamera ok")]) == "READY=1\nSTATUS=2 pending camera ok")
        #expect(NotifyField.datagram([.stopping]) == "STOPPING=1")
        #expect(NotifyField.datagram([.watchdog]) == "WATCHDOG=1")
    }
}

@Suite struct SystemdNotifierTests {
    @Test(arguments: [false, true])
    func sendsDatagramsToARealSocket(abstract: Bool) async throws {
        let listener = try NotifyListener(abstract: abstract)
        defer { listener.close() }
        let notifier = SystemdNotifier(environment: NotifyEnvironment(socketPath: listener.address, watchdogInterval: nil))
        #expect(try notifier.send(.ready, .status("queue empty, camera ok")))
        #expect(try notifier.send(.watchdog))
        #expect(try notifier.send(.stopping))
        let got = await listener.wait(timeout: .seconds(30)) { $0.count == 3 }
        #expect(got)
        #expect(listener.all.map(\.text) == ["READY=1\nSTATUS=queue empty, camera ok", "WATCHDOG=1", "STOPPING=1"])
    }

    @Test func withoutASocketNothingIsSent() throws {
        let notifier = SystemdNotifier(environment: NotifyEnvironment(socketPath: nil, watchdogInterval: nil))
        #expect(!notifier.isActive)
        #expect(try notifier.send(.ready) == false)
    }

    @Test func aMissingSocketIsAnErrorNamingSendto() {
        let notifier = SystemdNotifier(environment: NotifyEnvironment(socketPath: "/nonexistent/notify.sock", watchdogInterval: nil))
        #expect {
            try notifier.send(.ready)
        } throws: { error in
            guard let e = error as? StationError else { return false }
            return e.code == .system && e.function == "sendto" && e.errno == ENOENT && e.message.contains("No such file")
        }
    }

    @Test func anOverlongPathIsRejected() {
        let notifier = SystemdNotifier(environment: NotifyEnvironment(socketPath: "/" + String(repeating: "x", count: 200), watchdogInterval: nil))
        #expect(throws: StationError.self) { try notifier.send(.ready) }
    }
}

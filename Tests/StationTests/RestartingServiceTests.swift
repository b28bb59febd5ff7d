import Basics
import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import Station

struct Flaky: Service {
    let starts: Locked<Int>
    let failures: Int
    struct Boom: Error {}
    func run() async throws {
        let n = starts.withLock { $0 += 1; return $0 }
        if n <= failures { throw Boom() }
        try? await gracefulShutdown()
    }
}

struct Steady: Service {
    let stoppedEarly: Locked<Bool>
    func run() async throws {
        try? await gracefulShutdown()
        if !Task.isShuttingDownGracefully { stoppedEarly.withLock { $0 = true } }
    }
}

@Suite struct RestartingServiceTests {
    @Test func aFailingServiceIsRestartedWithoutStoppingTheOthers() async throws {
        let starts = Locked(0)
        let restarts = Locked<[Int]>([])
        let stoppedEarly = Locked(false)
        let flaky = RestartingService(
            name: "flaky", policy: RestartPolicy(initial: .milliseconds(5), maximum: .milliseconds(20)),
            logger: Logger(label: "test"), onRestart: { attempt, _ in restarts.withLock { $0.append(attempt) } }
        ) { Flaky(starts: starts, failures: 3) }
        let group = ServiceGroup(services: [Steady(stoppedEarly: stoppedEarly), flaky], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(60)
            while starts.withLock({ $0 }) < 4 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(starts.withLock { $0 } == 4)
        #expect(restarts.withLock { $0 } == [1, 2, 3])
        #expect(stoppedEarly.withLock { $0 } == false)
    }

    @Test func shutdownDuringTheBackoffEndsPromptly() async throws {
        let starts = Locked(0)
        let flaky = RestartingService(name: "down", policy: RestartPolicy(initial: .seconds(3600)),
                                      logger: Logger(label: "test")) { Flaky(starts: starts, failures: .max) }
        let group = ServiceGroup(services: [flaky], logger: Logger(label: "test"))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            while starts.withLock({ $0 }) < 1 { try await Task.sleep(for: .milliseconds(10)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(starts.withLock { $0 } == 1)
        // Well under the hour-long backoff: the sleep was cut short.
        #expect(ContinuousClock.now - started < .seconds(600))
    }
}

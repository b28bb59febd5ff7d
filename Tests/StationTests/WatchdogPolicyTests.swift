import Testing
@testable import Station

@Suite struct WatchdogPolicyTests {
    @Test func noPingUntilEveryLoopHasReported() {
        var p = WatchdogPolicy(loops: [.capture, .upload])
        #expect(p.tick() == .withhold(stalled: [.capture, .upload]))
        p.heartbeat(.capture)
        #expect(p.tick() == .withhold(stalled: [.upload]))
        p.heartbeat(.upload)
        #expect(p.tick() == .ping)
    }

    @Test func aPingNeedsFreshRoundsFromAllLoops() {
        var p = WatchdogPolicy(loops: [.capture, .upload])
        p.heartbeat(.capture); p.heartbeat(.upload)
        #expect(p.tick() == .ping)
        // The capture loop keeps going; the upload loop is wedged.
        for _ in 0..<3 {
            p.heartbeat(.capture)
            p.heartbeat(.capture)
            #expect(p.tick() == .withhold(stalled: [.upload]))
        }
        p.heartbeat(.upload)
        #expect(p.tick() == .ping)
    }

    @Test func manyRoundsBetweenPingsCountOnce() {
        var p = WatchdogPolicy(loops: [.upload])
        for _ in 0..<100 { p.heartbeat(.upload) }
        #expect(p.tick() == .ping)
        #expect(p.tick() == .withhold(stalled: [.upload]))
    }

    @Test func registeringAndUnregisteringLoops() {
        var p = WatchdogPolicy(loops: [.capture])
        p.heartbeat(.capture)
        p.register("retention")
        #expect(p.tick() == .withhold(stalled: ["retention"]))
        p.unregister("retention")
        #expect(p.tick() == .ping)
        #expect(p.loops == [.capture])
        // Registering an existing loop does not forget its round.
        p.heartbeat(.capture)
        p.register(.capture)
        #expect(p.tick() == .ping)
    }

    @Test func withNoLoopsThereIsNothingToWaitFor() {
        var p = WatchdogPolicy()
        #expect(p.tick() == .ping)
    }

    @Test func monitorIsSharedAcrossThreads() async {
        let monitor = LoopMonitor(loops: [.capture, .upload])
        await withTaskGroup(of: Void.self) { group in
            for loop in [LoopName.capture, .upload] {
                group.addTask { for _ in 0..<1000 { monitor.beat(loop) } }
            }
        }
        #expect(monitor.tick() == .ping)
        #expect(monitor.tick() == .withhold(stalled: [.capture, .upload]))
    }
}

@Suite struct ReadinessGateTests {
    @Test func readyOnlyOnceBothConditionsHold() {
        var g = ReadinessGate()
        #expect(g.mark(.portBound) == false)
        #expect(!g.isReady)
        #expect(g.mark(.portBound) == false)
        #expect(g.mark(.queueRecovered) == true)
        #expect(g.isReady)
        // A restarted HTTP server binding again must not announce READY twice.
        #expect(g.mark(.portBound) == false)
    }

    @Test func orderDoesNotMatter() {
        var g = ReadinessGate()
        #expect(g.mark(.queueRecovered) == false)
        #expect(g.mark(.portBound) == true)
    }
}

@Suite struct RestartPolicyTests {
    @Test func doublesUpToTheMaximum() {
        var p = RestartPolicy(initial: .seconds(1), maximum: .seconds(10), stableAfter: .seconds(60))
        let delays = (0..<6).map { _ in p.failed(after: .milliseconds(5)) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10)])
        #expect(p.consecutiveFailures == 6)
    }

    @Test func aLongRunResetsTheBackoff() {
        var p = RestartPolicy(initial: .seconds(1), maximum: .seconds(60), stableAfter: .seconds(60))
        _ = p.failed(after: .zero)
        _ = p.failed(after: .zero)
        #expect(p.failed(after: .zero) == .seconds(4))
        #expect(p.failed(after: .seconds(61)) == .seconds(1))
        #expect(p.consecutiveFailures == 1)
    }
}

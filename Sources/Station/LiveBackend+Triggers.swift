import Capture
import Config
import Foundation
import Logging
import ServiceLifecycle

extension StationConfig.Trigger {
    /// Whether any capture button is configured for this camera.
    public func anyButton(cameraDevice: String) -> Bool {
        (cameraButton && cameraDevice != "synthetic") || evdevDevice != nil || gpioLine != nil
    }
}

extension LiveBackend {
    public func setOpenCase(_ request: CaptureRequest?) async {
        triggers.setCase(request)
    }

    public func triggerStatus() async -> TriggerStatus {
        triggers.status(devices: triggerWatchers.withLock { $0.map(\.state) })
    }

    /// One debounced press from any button: the same capture as the
    /// kiosk's button, into the case open on the kiosk.
    func handlePress(_ press: TriggerPress, led: GPIOLED?) async {
        switch triggers.begin(autoSend: config.trigger.autoSend) {
        case .ignore:
            logger.info("\(press.kind.rawValue) pressed while a capture runs; ignored")
        case .askForCase:
            logger.notice("\(press.kind.rawValue) pressed but no case is open on the kiosk; nothing taken")
            triggers.finish(press, .needsCase, message: "enter the case on the kiosk, then press again", captured: false)
        case let .capture(request, send):
            led?.capturing()
            do {
                let item = try await capture(request, trigger: press.kind)
                if send {
                    let queued = try await accept(id: item.id)
                    triggers.finish(press, .queued, review: item, queueId: queued.id, captured: true)
                } else {
                    triggers.finish(press, .captured, review: item, captured: true)
                }
                logger.info("captured by \(press.kind.rawValue) (\(press.device)) for case \(request.caseId)")
                led?.finished(success: true)
            } catch {
                let message = (error as? StationError)?.message ?? "\(error)"
                logger.warning("capture by \(press.kind.rawValue) failed: \(message)")
                triggers.finish(press, .failed, message: message, captured: true)
                led?.finished(success: false)
            }
        }
    }

    /// The configured buttons' watchers; each press goes to `onPress`.
    func makeTriggerWatchers(onPress: @escaping @Sendable (TriggerPress) -> Void) -> [any TriggerWatcher] {
        let t = config.trigger
        let log = Logger(label: "telestation.trigger")
        var watchers: [any TriggerWatcher] = []
        if t.cameraButton && config.camera.device != "synthetic" {
            let device = config.camera.device
            // Most cameras have no button: look less often than for a configured device.
            watchers.append(EvdevButtonWatcher(kind: .cameraButton, key: 212, keyName: "KEY_CAMERA", debounce: t.debounce,
                                               retryInterval: 3, lookingFor: "the camera's input device", logger: log, locate: {
                let discovery = DeviceDiscovery()
                guard let video = device == "auto" ? try? discovery.firstCaptureDevice() : device else { return nil }
                // The camera's own input device: uvcvideo makes one when the camera has a button.
                return InputDeviceLookup().eventNodes(sameUSBDeviceAs: video).first
            }, onPress: onPress))
        }
        if let path = t.evdevDevice {
            watchers.append(EvdevButtonWatcher(kind: .key, key: t.evdevKey.code, keyName: t.evdevKey.name, debounce: t.debounce,
                                               lookingFor: path, logger: log, locate: {
                // A by-id link comes back when the switch is plugged in again.
                FileManager.default.fileExists(atPath: path) ? (path as NSString).resolvingSymlinksInPath : nil
            }, onPress: onPress))
        }
        if let line = t.gpioLine {
            watchers.append(GPIOButtonWatcher(chip: t.gpioChip, line: line, debounce: t.debounce, logger: log, onPress: onPress))
        }
        return watchers
    }

    /// Runs the button watchers and turns their presses into captures.
    struct TriggerService: Service {
        let backend: LiveBackend
        func run() async throws {
            let (presses, sink) = AsyncStream.makeStream(of: TriggerPress.self, bufferingPolicy: .bufferingNewest(4))
            let watchers = backend.makeTriggerWatchers { sink.yield($0) }
            backend.triggerWatchers.withLock { $0 = watchers }
            let t = backend.config.trigger
            let led = t.gpioLEDLine.flatMap { GPIOLED(chip: t.gpioChip, line: $0) }
            for w in watchers { w.start() }
            defer { for w in watchers { w.stop() } }
            try? await cancelWhenGracefulShutdown {
                // Each press in its own task, so one that comes during a
                // capture is seen (and ignored) at once rather than queued behind it.
                await withTaskGroup(of: Void.self) { group in
                    for await press in presses {
                        group.addTask { await backend.handlePress(press, led: led) }
                    }
                }
            }
            sink.finish()
        }
    }
}

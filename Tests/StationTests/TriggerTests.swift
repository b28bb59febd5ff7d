import Basics
import Capture
import Config
import ConfigFile
import Foundation
import Spool
import Dicom
import Testing
@testable import Station

@Suite struct OpenCaseTests {
    let request = CaptureRequest(caseId: "40123456", site: "face")
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func withoutAnOpenCaseAPressAsksForOne() {
        let open = OpenCase()
        #expect(open.decide(at: t0, busy: false, autoSend: false) == .askForCase)
    }

    @Test func aPressCapturesIntoTheOpenCase() {
        var open = OpenCase()
        open.set(request, at: t0)
        #expect(open.decide(at: t0.addingTimeInterval(10), busy: false, autoSend: false) == .capture(request, send: false))
        #expect(open.decide(at: t0.addingTimeInterval(10), busy: false, autoSend: true) == .capture(request, send: true))
        #expect(open.decide(at: t0.addingTimeInterval(10), busy: true, autoSend: false) == .ignore)
    }

    @Test func aCaseLeftBehindExpiresAndAClosedOneIsGone() {
        var open = OpenCase()
        open.set(request, at: t0)
        #expect(open.decide(at: t0.addingTimeInterval(OpenCase.lifetime - 1), busy: false, autoSend: false) == .capture(request, send: false))
        #expect(open.decide(at: t0.addingTimeInterval(OpenCase.lifetime + 1), busy: false, autoSend: false) == .askForCase)
        open.set(request, at: t0.addingTimeInterval(OpenCase.lifetime))
        #expect(open.current(at: t0.addingTimeInterval(OpenCase.lifetime + 1)) == request)
        open.set(nil, at: t0)
        #expect(open.current(at: t0) == nil)
    }
}

/// Presses delivered to the real backend: the synthetic camera through the
/// real capture engine, the real spool on disk, the status the kiosk reads.
@Suite(.serialized, .timeLimit(.minutes(2))) struct TriggerBackendTests {
    func withBackend(autoSend: Bool, _ body: (LiveBackend) async throws -> Void) async throws {
        let dir = NSTemporaryDirectory() + "telestation-trigger-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try makeSpoolKey(in: dir)
        let config = try StationConfig.parse("""
            [station]
            id = "ps-trigger"
            state_dir = "\(dir)"
            [camera]
            device = "synthetic"
            width = 640
            height = 480
            warmup_frames = 1
            [spool]
            min_free = "1MiB"
            key_file = "\(key)"
            [trigger]
            auto_send = \(autoSend)
            """)
        let spool = try Spool(config: config)
        let engine = CaptureEngine(settings: CaptureEngine.Settings(config.camera), source: CameraSelection(config.camera).sourceFactory())
        engine.start()
        let backend = LiveBackend(config: config, spool: spool, engine: engine, worker: nil, monitor: LoopMonitor(loops: [.capture]))
        do { try await body(backend) } catch { await engine.stop(); throw error }
        await engine.stop()
    }

    func statusJSON(_ backend: LiveBackend) async throws -> [String: Any] {
        let data = try ControlAPI.encoder.encode(await StatusReport(backend: backend))
        return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func aPressWithoutACaseTakesNothingAndTheKioskIsTold() async throws {
        try await withBackend(autoSend: false) { backend in
            await backend.handlePress(TriggerPress(kind: .cameraButton, device: "/dev/input/event4 (UVC Camera)"), led: nil)
            let last = try #require(await backend.triggerStatus().last)
            #expect(last.outcome == .needsCase && last.trigger == .cameraButton && last.review == nil)
            #expect(try await backend.queue().items.isEmpty)
            let triggers = try #require(try await statusJSON(backend)["triggers"] as? [String: Any])
            #expect(triggers["case_open"] as? Bool == false)
            #expect((triggers["last"] as? [String: Any])?["outcome"] as? String == "needs_case")
        }
    }

    @Test func aPressCapturesIntoTheOpenCaseForReview() async throws {
        try await withBackend(autoSend: false) { backend in
            await backend.setOpenCase(CaptureRequest(caseId: "40123456", site: "face"))
            await backend.handlePress(TriggerPress(kind: .key, device: "/dev/input/event7 (FootSwitch)"), led: nil)
            let last = try #require(await backend.triggerStatus().last)
            #expect(last.outcome == .captured, "\(last)")
            let review = try #require(last.review)
            #expect(review.trigger == .key && review.request.caseId == "40123456" && review.width == 640)
            // The same review the kiosk's own button makes: its image is there, Send queues it.
            #expect(try await backend.image(id: review.id, kind: .full).starts(with: [0xFF, 0xD8]))
            let queued = try await backend.accept(id: review.id)
            #expect(try await backend.queue().items.map(\.id) == [queued.id])
            let status = try await statusJSON(backend)
            let triggers = try #require(status["triggers"] as? [String: Any])
            #expect(triggers["case_open"] as? Bool == true)
            let json = try #require(triggers["last"] as? [String: Any])
            #expect(json["trigger"] as? String == "key")
            #expect((json["review"] as? [String: Any])?["trigger"] as? String == "key")
        }
    }

    @Test func autoSendQueuesWithoutReview() async throws {
        try await withBackend(autoSend: true) { backend in
            await backend.setOpenCase(CaptureRequest(caseId: "HC-000123", site: "hand", priority: .urgent))
            await backend.handlePress(TriggerPress(kind: .gpioButton, device: "gpiochip0:17"), led: nil)
            let last = try #require(await backend.triggerStatus().last)
            #expect(last.outcome == .queued, "\(last)")
            let items = try await backend.spool.perform { try $0.allItems() }.filter { $0.kind == .image }
            #expect(items.count == 1)
            #expect(items.first.map { String($0.id) } == last.queueId)
            #expect(items.first?.metadata.caseID == "HC-000123")
            #expect(items.first?.metadata.priority == .urgent)
        }
    }

    /// A whole kiosk case on the real backend: three images (one by the foot
    /// switch), sent as one case with the patient, history and consent; an
    /// image of another patient refused from it; what the hub and the DICOM
    /// object are told.
    @Test func aCaseOfThreeImagesIsSentAsOne() async throws {
        try await withBackend(autoSend: false) { backend in
            let patient = PatientEntry(surnames: "MAMANI QUISPE", givenNames: "Rosa", sex: "F", age: 54)
            let history = CaseHistory(duration: "3 meses", itching: true, bleeding: false, changed: true, treatment: "Ninguno")
            func request(_ role: ImageRole, caseId: String = "40123456") -> CaptureRequest {
                CaptureRequest(caseId: caseId, site: "arm_left", note: "", role: role, aspect: .back, patient: patient)
            }
            let overview = try await backend.capture(request(.overview))
            await backend.setOpenCase(request(.closeUp))
            await backend.handlePress(TriggerPress(kind: .key, device: "/dev/input/event7 (FootSwitch)"), led: nil)
            let closeUp = try #require(await backend.triggerStatus().last?.review)
            #expect(closeUp.request.role == .closeUp && closeUp.trigger == .key)
            let dermoscopic = try await backend.capture(request(.dermoscopic))
            let otherPatient = try await backend.capture(request(.overview, caseId: "HC-000123"))

            let details = CaptureRequest(caseId: "40123456", site: "", note: "Lesión pigmentada", priority: .urgent,
                                         patient: patient, history: history, consent: "El paciente acepta.")
            // A photograph of someone else is refused from the case, and nothing is queued.
            await #expect { try await backend.sendCase(CaseSubmission(ids: [overview.id, otherPatient.id], details: details)) } throws: { e in
                (e as? StationError)?.code == .conflict && (e as? StationError)?.message.contains("HC-000123") == true
            }
            #expect(try await backend.queue().items.isEmpty)

            let sent = try await backend.sendCase(CaseSubmission(ids: [overview.id, closeUp.id, dermoscopic.id], details: details))
            #expect(sent.items.count == 3)
            // Sent stills leave review; the other patient's stays for its own case.
            await #expect(throws: StationError.self) { try await backend.retake(id: closeUp.id) }
            try await backend.retake(id: otherPatient.id)

            let items = try await backend.spool.perform { try $0.allItems() }.filter { $0.kind == .image }.sorted { $0.id < $1.id }
            #expect(items.count == 3)
            let contexts = items.compactMap(\.metadata.context)
            #expect(contexts.count == 3)
            #expect(Set(contexts.compactMap(\.caseUID)) == [sent.caseUID])
            #expect(contexts.map(\.imageIndex) == [1, 2, 3] && contexts.allSatisfy { $0.imagesInCase == 3 })
            #expect(contexts.map(\.role) == ["overview", "close_up", "dermoscopic"])
            #expect(contexts.allSatisfy { $0.aspect == "back" && $0.patientName == "MAMANI QUISPE^Rosa" && $0.patientSex == "F" && $0.patientAge == "054Y" })
            #expect(contexts.allSatisfy { $0.history == history && $0.consent == "El paciente acepta." })
            #expect(items.allSatisfy { $0.metadata.caseID == "40123456" && $0.metadata.note == "Lesión pigmentada" && $0.metadata.priority == .urgent })

            // The hub is told the case in each image's metadata.
            let pairs = Dictionary(UploadWorker.metadata(for: items[1], station: "ps-trigger", prepared: nil, stationKey: nil).pairs,
                                   uniquingKeysWith: { a, _ in a })
            #expect(pairs["case_uid"] == sent.caseUID && pairs["image_index"] == "2" && pairs["images_in_case"] == "3")
            #expect(pairs["role"] == "close_up" && pairs["aspect"] == "back" && pairs["note"] == "Lesión pigmentada")
            #expect(pairs["patient_name"] == "MAMANI QUISPE^Rosa" && pairs["patient_age"] == "054Y" && pairs["consent"] == "El paciente acepta.")
            #expect(pairs["history"] == #"{"bleeding":false,"changed":true,"duration":"3 meses","itching":true,"treatment":"Ninguno"}"#)

            // One DICOM study for the case, with the patient's age.
            let dicom = try items.map { try DicomItem.context(for: $0, config: backend.config) }
            #expect(Set(dicom.map { DicomObject.uids(for: $0).study }).count == 1)
            #expect(dicom.allSatisfy { $0.patientAge == "054Y" && $0.patientName == "MAMANI QUISPE^Rosa" })

            // The kiosk offers the patient again for the next case.
            #expect(try await backend.queue().cases.first?.patient == patient)
        }
    }

}

@Suite(.serialized, .timeLimit(.minutes(2))) struct OpenCaseAPITests {
    /// The kiosk's `PUT /api/v1/case` is checked like a capture request, and
    /// `GET /api/v1/status` always carries the buttons' section.
    @Test func theOpenCaseIsValidatedLikeACapture() async throws {
        try await RunningStation.withStation { s in
            let bad = try await s.request("PUT", "/api/v1/case", json: #"{"case_id":"abc","site":"face"}"#)
            #expect(bad.status == 400 && bad.errorCode == "invalid_case_id")
            let foreign = try await s.request("PUT", "/api/v1/case", json: #"{"case_id":"45871236","site":"face"}"#,
                                              headers: ["Origin": "http://evil.example"])
            #expect(foreign.status == 403)
            let ok = try await s.request("PUT", "/api/v1/case", json: #"{"case_id":"45871236","site":"face"}"#)
            #expect(ok.status == 200 && ok.json["devices"] is [Any])
            #expect(try await s.request("DELETE", "/api/v1/case").status == 204)
            let status = try await s.request("GET", "/api/v1/status")
            #expect((status.json["triggers"] as? [String: Any])?["case_open"] as? Bool == false)
        }
    }
}

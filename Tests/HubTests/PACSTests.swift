import Crypto
import Foundation
import Testing
@testable import Hub

/// A DICOM Part 10 file's start: preamble, DICM, a meta header, one data element.
func part10(sopClass: String = "1.2.840.10008.5.1.4.1.1.77.1.4", sop: String = "1.2.3.4.5",
            transferSyntax: String = "1.2.840.10008.1.2.4.50", dataSet: Bool = true) -> [UInt8] {
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16) }
    func ui(_ element: Int, _ uid: String) -> [UInt8] {
        var v = Array(uid.utf8)
        if v.count % 2 == 1 { v.append(0) }
        return le16(2) + le16(element) + Array("UI".utf8) + le16(v.count) + v
    }
    let version = le16(2) + le16(1) + Array("OB".utf8) + [0, 0] + le32(2) + [0, 1]
    let group = version + ui(2, sopClass) + ui(3, sop) + ui(0x10, transferSyntax)
    let length = le16(2) + le16(0) + Array("UL".utf8) + le16(4) + le32(group.count)
    var bytes = [UInt8](repeating: 0, count: 128) + Array("DICM".utf8) + length + group
    if dataSet { bytes += le16(8) + le16(0x16) + Array("UI".utf8) + le16(2) + Array("1\0".utf8) }
    return bytes
}

func dicomJSON(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct DicomPart10Tests {
    @Test func readsTheMetaHeader() throws {
        let meta = try DicomPart10.parse(part10(sop: "1.2.826.0.1.3680043.10.1.77")).get()
        #expect(meta.sopInstanceUID == "1.2.826.0.1.3680043.10.1.77")
        #expect(meta.sopClassUID == "1.2.840.10008.5.1.4.1.1.77.1.4")
        #expect(meta.transferSyntaxUID == "1.2.840.10008.1.2.4.50")
    }

    @Test func refusesWhatIsNotPart10() {
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 0, count: 300)
        guard case let .failure(e) = DicomPart10.parse(jpeg) else { Issue.record("a JPEG passed"); return }
        #expect(e.description.contains("no DICM marker"))
        guard case let .failure(short) = DicomPart10.parse([1, 2, 3]) else { Issue.record("3 bytes passed"); return }
        #expect(short.description.contains("too short"))
        guard case let .failure(noData) = DicomPart10.parse(part10(dataSet: false)) else {
            Issue.record("a header without a data set passed"); return
        }
        #expect(noData.description.contains("no data set"))
        guard case let .failure(badUID) = DicomPart10.parse(part10(sop: "1.2.abc")) else { Issue.record("bad UID passed"); return }
        #expect(badUID.description.contains("not a UID"))
        var cut = part10()
        cut.removeSubrange(200...)
        if case .success = DicomPart10.parse(cut) { Issue.record("a header cut short passed") }
    }
}

@Suite struct StowTests {
    let sop = "1.2.826.0.1.3680043.10.999.1.1"

    /// Orthanc 1.10.1 with DICOMweb 1.7, recorded: a stored instance.
    var orthancStored: [UInt8] {
        dicomJSON("""
        {"00080005":{"Value":["ISO_IR 100"],"vr":"CS"},
         "00081190":{"Value":["http://127.0.0.1:18042/dicom-web/studies/1.2.826.0.1.3680043.10.999.1"],"vr":"UR"},
         "00081198":{"vr":"SQ"},
         "00081199":{"Value":[{"00081150":{"Value":["1.2.840.10008.5.1.4.1.1.77.1.4"],"vr":"UI"},
                               "00081155":{"Value":["\(sop)"],"vr":"UI"},
                               "00081190":{"Value":["http://x/instances/\(sop)"],"vr":"UR"}}],"vr":"SQ"}}
        """)
    }

    @Test func storedWhenReferencedAndNotFailed() {
        #expect(Stow.judge(status: 200, body: orthancStored, sopInstanceUID: sop) == .stored(warning: nil))
    }

    @Test func http200WithFailedSOPSequenceIsARefusal() {
        let body = dicomJSON("""
        {"00081198":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.77.1.4"]},
                                         "00081155":{"vr":"UI","Value":["\(sop)"]},
                                         "00081197":{"vr":"US","Value":[49152]}}]},
         "00081199":{"vr":"SQ"}}
        """)
        guard case let .refused(reason) = Stow.judge(status: 200, body: body, sopInstanceUID: sop) else {
            Issue.record("a FailedSOPSequence was taken for success"); return
        }
        #expect(reason.contains("FailedSOPSequence"))
        #expect(reason.contains("0xC000 (cannot understand)"))
    }

    @Test func failedWinsOverReferenced() {
        // A server that lists the instance in both: it is not filed.
        let body = dicomJSON("""
        {"00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["\(sop)"]},"00081197":{"vr":"US","Value":[42752]}}]},
         "00081199":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["\(sop)"]}}]}}
        """)
        guard case let .refused(reason) = Stow.judge(status: 202, body: body, sopInstanceUID: sop) else {
            Issue.record("failed and referenced was taken for success"); return
        }
        #expect(reason.contains("0xA700 (out of resources)"))
    }

    @Test func http200WithoutTheInstanceReferencedIsARefusal() {
        let other = dicomJSON(#"{"00081199":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["9.9.9"]}}]}}"#)
        guard case .refused = Stow.judge(status: 200, body: other, sopInstanceUID: sop) else {
            Issue.record("another instance's reference was taken for ours"); return
        }
        guard case .refused = Stow.judge(status: 200, body: [], sopInstanceUID: sop) else {
            Issue.record("an empty 200 was taken for success"); return
        }
        guard case .refused = Stow.judge(status: 200, body: Array("<html>ok</html>".utf8), sopInstanceUID: sop) else {
            Issue.record("an HTML 200 was taken for success"); return
        }
    }

    @Test func orthancsAnswerToAFileItCannotParse() {
        // Recorded: 400 with both sequences empty.
        let body = dicomJSON(#"{"00080005":{"Value":["ISO_IR 100"],"vr":"CS"},"00081198":{"vr":"SQ"},"00081199":{"vr":"SQ"}}"#)
        guard case let .refused(reason) = Stow.judge(status: 400, body: body, sopInstanceUID: sop) else {
            Issue.record("400 was not a refusal"); return
        }
        #expect(reason.contains("HTTP 400"))
    }

    @Test func warningsStillMeanStored() {
        let body = dicomJSON("""
        {"00081196":{"vr":"US","Value":[45056]},
         "00081199":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["\(sop)"]}}]}}
        """)
        #expect(Stow.judge(status: 202, body: body, sopInstanceUID: sop) == .stored(warning: "warning reason 0xB000"))
    }

    @Test func statusesThatMeanThePACSIsUnavailable() {
        for status in [0, 301, 404, 405, 408, 429, 500, 502, 503, 504] {
            guard case .unavailable = Stow.judge(status: status, body: orthancStored, sopInstanceUID: sop) else {
                Issue.record("HTTP \(status) was not 'unavailable'"); continue
            }
        }
        guard case let .unavailable(auth) = Stow.judge(status: 401, body: [], sopInstanceUID: sop) else {
            Issue.record("401 was not 'unavailable'"); return
        }
        #expect(auth.contains("--stow-password-file"))
    }

    @Test func qidoConfirmsOnlyTheInstance() {
        let listed = dicomJSON(#"[{"00080018":{"vr":"UI","Value":["\#(sop)"]},"0020000D":{"vr":"UI","Value":["1.2"]}}]"#)
        #expect(Stow.holds(qido: 200, body: listed, sopInstanceUID: sop))
        #expect(!Stow.holds(qido: 200, body: dicomJSON("[]"), sopInstanceUID: sop))
        #expect(!Stow.holds(qido: 204, body: [], sopInstanceUID: sop))
        #expect(!Stow.holds(qido: 200, body: listed, sopInstanceUID: "1.2.3"))
        #expect(!Stow.holds(qido: 500, body: listed, sopInstanceUID: sop))
    }

    @Test func multipartBodyHasOnePartPerInstance() {
        let a: [UInt8] = Array("first".utf8), b: [UInt8] = Array("second".utf8)
        let (type, body) = Stow.request(instances: [a, b], boundary: "XB")
        #expect(type == #"multipart/related; type="application/dicom"; boundary=XB"#)
        #expect(String(decoding: body, as: UTF8.self) ==
                "--XB\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--XB\r\nContent-Type: application/dicom\r\n\r\nsecond\r\n--XB--\r\n")
        let boundary = Stow.boundary(avoiding: part10())
        #expect(boundary.hasPrefix("telestation-") && boundary.count == 36)
    }
}

@Suite struct FilingBackoffTests {
    @Test func doublesFromBaseUpToTheCap() {
        let b = FilingBackoff(base: 2, cap: 60)
        #expect((1...7).map { b.window(failures: $0) } == [2, 4, 8, 16, 32, 60, 60])
        #expect(b.window(failures: 10_000) == 60, "no overflow after many failures")
        #expect(b.window(failures: 0) == 2)
    }

    @Test func jitterKeepsHalfTheWindow() {
        let b = FilingBackoff(base: 2, cap: 60)
        #expect(b.delay(failures: 3, random: 0) == 4)
        #expect(b.delay(failures: 3, random: 1) == 8)
        #expect(b.delay(failures: 3, random: 0.5) == 6)
        #expect(b.delay(failures: 3, random: 7) == 8, "random is clamped")
        for _ in 0..<1000 {
            let d = b.delay(failures: 20)
            #expect(d >= 30 && d <= 60)
        }
    }

    @Test func decisionsFollowTheVerdict() {
        let b = FilingBackoff(base: 2, cap: 60)
        let filed = FilingDecision.after(.stored(warning: nil), attempts: 4, pacsFailures: 3, backoff: b, random: 0)
        #expect(filed == FilingDecision(filed: true, attempts: 5, error: nil, retryIn: nil, pacsWide: false))

        // A refusal of this file: its own attempts set the wait.
        let refused = FilingDecision.after(.refused("no"), attempts: 2, pacsFailures: 9, backoff: b, random: 1)
        #expect(refused == FilingDecision(filed: false, attempts: 3, error: "no", retryIn: 8, pacsWide: false))

        // The PACS down: the run of PACS failures sets it, whatever this file's history.
        let down = FilingDecision.after(.unavailable("refused"), attempts: 0, pacsFailures: 4, backoff: b, random: 1)
        #expect(down == FilingDecision(filed: false, attempts: 1, error: "refused", retryIn: 32, pacsWide: true))
    }
}

@Suite struct ReceiptTests {
    func info(metadata: [String: String] = ["filetype": "application/dicom", "study_uid": "1.2", "sop_instance_uid": "1.2.3"],
              stored: Bool = true) -> UploadInfo {
        var i = UploadInfo(id: String(repeating: "a", count: 32), length: 10, metadata: metadata,
                           createdAt: Date(timeIntervalSince1970: 1_000), expiresAt: Date(timeIntervalSinceNow: 3600))
        if stored {
            i.storedAs = i.id + "-x.dcm"
            i.sha256 = String(repeating: "5", count: 64)
            i.completedAt = Date(timeIntervalSince1970: 2_000)
            i.dicomSOPInstanceUID = "1.2.3"
        }
        return i
    }

    @Test func unknownIs404() {
        #expect(Receipt.answer(nil, offset: 0, forwarding: true).status == 404)
        var expired = info(stored: false)
        expired.expiresAt = Date(timeIntervalSinceNow: -1)
        #expect(Receipt.answer(expired, offset: 3, forwarding: true).status == 404)
    }

    @Test func incompleteIsPending() {
        let r = Receipt.answer(info(stored: false), offset: 3, forwarding: true)
        #expect(r.status == 202)
        #expect(r.body?.state == "pending")
        #expect(r.body?.detail == "upload incomplete: 3 of 10 bytes received")
    }

    @Test func dicomWaitsForThePACS() {
        var i = info()
        let waiting = Receipt.answer(i, offset: 10, forwarding: true)
        #expect(waiting.status == 202)
        #expect(waiting.body?.detail == "stored on the hub, waiting to be filed in the PACS")
        let outage = PACSForwarder.LastError(at: Date(), upload: "other", message: "cannot reach the PACS at X",
                                             nextTry: Date(timeIntervalSince1970: 60))
        let down = Receipt.answer(i, offset: 10, forwarding: true, outage: outage)
        #expect(down.body?.detail == "stored on the hub, not yet filed in the PACS: cannot reach the PACS at X (next try at 1970-01-01T00:01:00Z)",
                "an upload not yet tried says what the PACS's outage is")
        i.pacsAttempts = 3
        i.pacsLastError = "cannot reach the PACS"
        i.pacsNextTry = Date(timeIntervalSince1970: 3_000)
        let failing = Receipt.answer(i, offset: 10, forwarding: true)
        #expect(failing.status == 202)
        #expect(failing.body?.detail?.contains("cannot reach the PACS (attempt 3, next try at 1970-01-01T00:50:00Z)") == true)
        let credentials = PACSForwarder.LastError(at: Date(), upload: "other", message: "the PACS refused the hub's credentials",
                                                  nextTry: Date(timeIntervalSince1970: 60))
        #expect(Receipt.answer(i, offset: 10, forwarding: true, outage: credentials).body?.detail?
                    .contains("refused the hub's credentials") == true, "the PACS's current failure wins over an older one")
        i.filedAt = Date(timeIntervalSince1970: 4_000)
        let filed = Receipt.answer(i, offset: 10, forwarding: true)
        #expect(filed.status == 200)
        #expect(filed.body == Receipt.Body(state: "filed", where: "pacs", filedAt: "1970-01-01T01:06:40Z",
                                           sha256: String(repeating: "5", count: 64), studyUID: "1.2", sopInstanceUID: "1.2.3"))
        #expect(String(decoding: filed.json(), as: UTF8.self) ==
                #"{"filed_at":"1970-01-01T01:06:40Z","sha256":"5555555555555555555555555555555555555555555555555555555555555555","sop_instance_uid":"1.2.3","state":"filed","study_uid":"1.2","where":"pacs"}"#)
    }

    @Test func theHubsOwnCopyWithoutAPACSOrForOtherFiles() {
        let noPACS = Receipt.answer(info(), offset: 10, forwarding: false)
        #expect(noPACS.status == 200)
        #expect(noPACS.body?.where == "hub")
        #expect(noPACS.body?.filedAt == "1970-01-01T00:33:20Z")
        let jpeg = Receipt.answer(info(metadata: ["filetype": "image/jpeg"]), offset: 10, forwarding: true)
        #expect(jpeg.status == 200)
        #expect(jpeg.body?.where == "hub")
        #expect(jpeg.body?.studyUID == nil, "no study_uid in the metadata, none in the receipt")
    }

    @Test func notDICOMIsRejected() {
        var i = info()
        i.rejected = "the upload's filetype is application/dicom but no DICM marker"
        for forwarding in [true, false] {
            let r = Receipt.answer(i, offset: 10, forwarding: forwarding)
            #expect(r.status == 409)
            #expect(r.body?.state == "rejected")
        }
    }
}

/// The hub over real HTTP: receipts, status, and a PACS that does not answer.
@Suite(.timeLimit(.minutes(2))) struct ReceiptHTTPTests {
    func upload(_ hub: RunningHub, _ data: [UInt8], filetype: String, token: String? = nil) async throws -> String {
        var h = tus.merging(["Upload-Length": "\(data.count)", "Content-Type": "application/offset+octet-stream",
                             "Upload-Metadata": "filename \(b64("x.dcm")),filetype \(b64(filetype)),study_uid \(b64("1.2.9"))"]) { $1 }
        if let token { h["Authorization"] = "Bearer \(token)" }
        let r = try await raw(hub.port, "POST", "/files/", headers: h, body: data)
        #expect(r.status == 201)
        #expect(r["upload-offset"] == "\(data.count)")
        return try #require(r["location"])
    }

    func json(_ r: RawResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any] ?? [:]
    }

    @Test func receiptsWithoutAPACS() async throws {
        let dir = try TempDir()
        let hub = try await HubServer(store: try HubStore(directory: dir.file("store")), token: "t0k").start()
        defer { Task { await hub.stop() } }
        let options = try await raw(hub.port, "OPTIONS", "/files/")
        #expect(options["telestation-receipts"] == "1")

        let dicom = try await upload(hub, part10(), filetype: "application/dicom", token: "t0k")
        let noToken = try await raw(hub.port, "GET", dicom + "/receipt")
        #expect(noToken.status == 401, "receipts need the bearer token")
        let r = try await raw(hub.port, "GET", dicom + "/receipt", headers: ["Authorization": "Bearer t0k"])
        #expect(r.status == 200)
        #expect(json(r)["where"] as? String == "hub")
        #expect(json(r)["study_uid"] as? String == "1.2.9")
        #expect(json(r)["sop_instance_uid"] as? String == "1.2.3.4.5", "from the file's meta header")
        #expect(json(r)["sha256"] as? String == SHA256.hash(data: part10()).map { String(format: "%02x", $0) }.joined())

        let notDICOM = try await upload(hub, Array("not dicom at all".utf8), filetype: "application/dicom", token: "t0k")
        let rejected = try await raw(hub.port, "GET", notDICOM + "/receipt", headers: ["Authorization": "Bearer t0k"])
        #expect(rejected.status == 409)
        #expect((json(rejected)["detail"] as? String)?.contains("too short") == true)

        let unknown = try await raw(hub.port, "GET", "/files/\(String(repeating: "0", count: 32))/receipt",
                                    headers: ["Authorization": "Bearer t0k"])
        #expect(unknown.status == 404)

        let status = try await raw(hub.port, "GET", "/status", headers: ["Authorization": "Bearer t0k"])
        #expect(status.status == 200)
        #expect(json(status)["stored"] as? Int == 2)
        #expect(json(status)["rejected"] as? Int == 1)
        #expect(json(status)["pending_pacs"] as? Int == 0)
    }

    @Test func aPACSThatDoesNotAnswerLeavesItPendingAndSaysWhy() async throws {
        let dir = try TempDir()
        // A loopback port nothing listens on.
        let closed = try #require(URL(string: "http://127.0.0.1:9/dicom-web"))
        var target = PACSTarget(root: closed)
        target.backoff = FilingBackoff(base: 0.2, cap: 0.5)
        let hub = try await HubServer(store: try HubStore(directory: dir.file("store")), pacs: target).start()
        defer { Task { await hub.stop() } }
        let location = try await upload(hub, part10(), filetype: "application/dicom")
        var receipt = try await raw(hub.port, "GET", location + "/receipt")
        var status: [String: Any] = [:]
        for _ in 0..<100 {
            receipt = try await raw(hub.port, "GET", location + "/receipt")
            status = json(try await raw(hub.port, "GET", "/status"))
            if (json(receipt)["detail"] as? String)?.contains("cannot reach the PACS") == true,
               status["last_pacs_error"] is [String: Any] { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(receipt.status == 202)
        #expect((json(receipt)["detail"] as? String)?.contains("cannot reach the PACS at http://127.0.0.1:9/dicom-web") == true)
        #expect(status["pending_pacs"] as? Int == 1)
        #expect(status["filed"] as? Int == 0)
        #expect(((status["last_pacs_error"] as? [String: Any])?["error"] as? String)?.contains("cannot reach") == true)
        // The record beside the file carries the forwarder's state.
        let id = String(location.dropFirst("/files/".count))
        let record = try #require(try await HubStore(directory: dir.file("store")).records().first { $0.id == id })
        #expect((record.pacsAttempts ?? 0) >= 1)
        #expect(record.pacsNextTry != nil)
        #expect(record.filedAt == nil)
        #expect(FileManager.default.fileExists(atPath: dir.file("store/\(record.storedAs!)")), "the file stays")
    }
}

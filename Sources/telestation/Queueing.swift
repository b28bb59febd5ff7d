import Basics
import Config
import Foundation
import Spool
import Station
import Uplink

/// Opening the station's pieces for the commands that work without the daemon.
extension StationConfig {
    func openSpool() throws -> Spool {
        do throws(SpoolError) {
            return try Spool(config: self)
        } catch {
            // A missing or unusable key is a configuration problem (EX_CONFIG).
            throw CommandFailure(message: "\(error)", code: error.code == .encryptionKey ? .configuration : .cannotCreate)
        }
    }

    func makeUploadWorker(spool: Spool) throws -> UploadWorker {
        guard hub.url != nil else {
            throw CommandFailure(message: "hub.url is not set in the configuration, so there is nowhere to upload to — set [hub] url and token_file (see README, Enrolment)", code: .configuration)
        }
        let client: TusClient
        do {
            client = try TusClient(config: self)
        } catch {
            throw CommandFailure(message: "\(error)", code: .configuration)
        }
        return UploadWorker(spool: spool, client: client, station: station.id, authBackoff: uplink.backoffMax,
                            transform: DicomItem.transform(config: self), recompress: uplink.recompress,
                            stickKeys: StickKeys(config: self), replies: ReplyStore(directory: station.stateDir))
    }
}

/// Validates a case id the way the kiosk does.
func validatedCaseID(_ raw: String) throws -> String {
    do {
        return try CaseIdPolicy.peru.normalize(raw)
    } catch {
        throw CommandFailure(message: "--case: \(error.description)", code: .usage)
    }
}

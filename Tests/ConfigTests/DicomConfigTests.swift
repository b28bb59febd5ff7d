import Foundation
import Testing
@testable import Config
@testable import ConfigFile

/// `[dicom]` and the camera keys that say what an image is filed as.
@Suite struct DicomConfigTests {
    let minimal = "[station]\nid = \"ps-test-01\"\n"

    func failure(_ text: String) -> ConfigError? {
        do { _ = try StationConfig.parse(text, file: "station.toml"); return nil } catch { return error }
    }

    @Test func defaultsKeepJPEGFiles() throws {
        let c = try StationConfig.parse(minimal)
        #expect(c.dicom == StationConfig.Dicom())
        #expect(!c.dicom.enabled && c.dicom.institution.isEmpty && c.dicom.stationName == nil)
        #expect(c.camera.imageType == .clinical && c.camera.polarized == nil && c.camera.contact == nil)
    }

    @Test func goodValues() throws {
        let c = try StationConfig.parse(minimal + """
            [camera]
            image_type = "dermoscopic"
            polarized = true
            contact = false
            [dicom]
            enabled = true
            institution = "Red de Salud Quispicanchi — Ñuñoa"
            station_name = "PS Ccatca"
            """)
        #expect(c.dicom.enabled && c.dicom.institution == "Red de Salud Quispicanchi — Ñuñoa" && c.dicom.stationName == "PS Ccatca")
        #expect(c.camera.imageType == .dermoscopic && c.camera.polarized == true && c.camera.contact == false)
    }

    @Test(arguments: [
        ("[dicom]\nenabled = \"yes\"\n", "dicom.enabled", "true or false"),
        ("[dicom]\nstation_name = \"Puesto de Salud de Ccatca\"\n", "dicom.station_name", "not a DICOM station name"),
        ("[dicom]\nstation_name = \"\"\n", "dicom.station_name", "not a DICOM station name"),
        ("[dicom]\ninstitution = \"a\\\\b\"\n", "dicom.institution", "not a DICOM institution name"),
        ("[dicom]\ninstitution = 3\n", "dicom.institution", "wrong type"),
        ("[dicom]\nenable = true\n", "dicom.enable", "unknown key"),
        ("[camera]\nimage_type = \"xray\"\n", "camera.image_type", "\"dermoscopic\", \"clinical\""),
        ("[camera]\npolarized = 1\n", "camera.polarized", "true or false"),
        ("[camera]\ncontact = \"no\"\n", "camera.contact", "true or false"),
    ])
    func badValuesNameTheKey(_ text: String, _ key: String, _ words: String) throws {
        let e = try #require(failure(minimal + text))
        #expect(e.key == key, "\(e)")
        #expect("\(e)".contains(words), "\(e)")
    }

    @Test func profilesSayWhatTheirImagesAre() throws {
        let profiles = try CameraProfile.loadAll(directory: CameraProfileTests.shipped)
        let derm = try #require(profiles.first { $0.id == "uvc-dermatoscope" })
        let plain = try StationConfig.parse(minimal)
        #expect(plain.camera(with: derm).imageType == .dermoscopic && plain.camera(with: derm).contact == true)
        for p in profiles where p.id != "uvc-dermatoscope" { #expect(plain.camera(with: p).imageType == .clinical, "\(p.id)") }
        // The configuration wins over the profile.
        let own = try StationConfig.parse(minimal + "[camera]\nimage_type = \"clinical\"\npolarized = true\n")
        #expect(own.camera(with: derm).imageType == .clinical && own.camera(with: derm).polarized == true && own.camera(with: derm).contact == true)
        // A profile with a bad value names the file and the key.
        do {
            _ = try CameraProfile.parse("[match]\ndrivers = [\"uvcvideo\"]\n[camera]\nimage_type = \"dermatoscope\"\n", file: "p.toml")
            Issue.record("accepted a bad image_type")
        } catch {
            #expect(error.key == "camera.image_type" && error.file == "p.toml", "\(error)")
        }
    }
}

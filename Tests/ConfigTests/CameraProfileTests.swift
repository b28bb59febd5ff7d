import Foundation
import Testing
@testable import Config
@testable import ConfigFile

@Suite struct CameraProfileTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../hardware/profiles").standardized.path

    @Test func shippedProfilesLoad() throws {
        let profiles = try CameraProfile.loadAll(directory: Self.shipped)
        #expect(Set(profiles.map(\.id)) == ["generic-uvc", "uvc-dermatoscope", "dinolite-microscope", "raspberry-pi-camera"])
        for p in profiles {
            #expect(!p.quirks.isEmpty, "\(p.id) documents its quirks")
            #expect(!p.setKeys.isEmpty, "\(p.id) sets camera keys")
        }
    }

    @Test func mostSpecificProfileWins() throws {
        let profiles = try CameraProfile.loadAll(directory: Self.shipped)
        let dino = CameraProfile.DeviceIdentity(usbID: "A168:0614", card: "Dino-Lite Pro", driver: "uvcvideo")
        #expect(CameraProfile.match(dino, in: profiles)?.id == "dinolite-microscope")
        let derm = CameraProfile.DeviceIdentity(usbID: "0c45:6366", card: "USB Dermatoscope: Camera", driver: "uvcvideo")
        #expect(CameraProfile.match(derm, in: profiles)?.id == "uvc-dermatoscope")
        let webcam = CameraProfile.DeviceIdentity(usbID: "046d:0825", card: "UVC Camera (046d:0825)", driver: "uvcvideo")
        #expect(CameraProfile.match(webcam, in: profiles)?.id == "generic-uvc")
        let vivid = CameraProfile.DeviceIdentity(usbID: nil, card: "vivid", driver: "vivid")
        #expect(CameraProfile.match(vivid, in: profiles) == nil)
    }

    @Test func configurationOverridesTheProfile() throws {
        let profiles = try CameraProfile.loadAll(directory: Self.shipped)
        let dino = try #require(profiles.first { $0.id == "dinolite-microscope" })
        let plain = try StationConfig.parse("[station]\nid = \"a\"\n")
        let merged = plain.camera(with: dino)
        #expect(merged.width == 1280 && merged.height == 1024 && merged.format == .mjpeg && merged.warmupFrames == 15)
        #expect(merged.controls["power_line_frequency"] == nil && merged.controlsIfPresent["power_line_frequency"] == 2,
                "Peru's mains are 60 Hz, the default station.mains_frequency")

        let own = try StationConfig.parse("[station]\nid = \"a\"\n[camera]\nwidth = 640\nheight = 480\nwarmup_frames = 2\n[camera.controls]\npower_line_frequency = 1\n")
        let mine = own.camera(with: dino)
        #expect(mine.width == 640 && mine.height == 480 && mine.warmupFrames == 2)
        #expect(mine.format == .mjpeg)  // not set by the configuration: the profile's
        #expect(mine.controls["power_line_frequency"] == 1)
        #expect(mine.controlsIfPresent["power_line_frequency"] == nil, "the configuration's own value wins")
    }

    /// The anti-flicker control follows the station's mains, with or without a profile.
    @Test func theMainsFrequencyIsAStationSettingCamerasFollow() throws {
        let profiles = try CameraProfile.loadAll(directory: Self.shipped)
        for hz in [50, 60] {
            let c = try StationConfig.parse("[station]\nid = \"a\"\nmains_frequency = \(hz)\n")
            #expect(c.station.mainsFrequency == hz)
            for profile in profiles.map(Optional.some) + [nil] {
                #expect(c.camera(with: profile).controlsIfPresent["power_line_frequency"] == (hz == 50 ? 1 : 2),
                        "\(profile?.id ?? "no profile") at \(hz) Hz")
            }
        }
        #expect(try StationConfig.parse("[station]\nid = \"a\"\n").station.mainsFrequency == 60, "Peru by default")
        for bad in ["55", "0", "\"60\""] {
            #expect(throws: ConfigError.self) { try StationConfig.parse("[station]\nid = \"a\"\nmains_frequency = \(bad)\n") }
        }
    }

    @Test func brokenProfilesNameFileAndKey() {
        #expect(throws: ConfigError.self) { try CameraProfile.parse("[match]\nusb_ids = [\"dino\"]\n", file: "p.toml") }
        do {
            _ = try CameraProfile.parse("[match]\ndrivers = [\"uvcvideo\"]\n[camera]\ndevice = \"/dev/video0\"\n", file: "p.toml")
            Issue.record("a profile may not choose the device")
        } catch {
            #expect(error.key == "camera.device")
            #expect(error.line == 4)
        }
        do {
            _ = try CameraProfile.parse("[profile]\nname = \"x\"\n", file: "p.toml")
            Issue.record("a profile must match something")
        } catch {
            #expect(error.message == "the profile matches no device")
        }
        do {
            _ = try CameraProfile.parse("[match]\ndrivers = [\"uvcvideo\"]\n[camera]\njpeg_quality = 0\n", file: "p.toml")
            Issue.record("out of range")
        } catch {
            #expect(error.description.contains("p.toml:4: camera.jpeg_quality: 0 is out of range"))
        }
    }
}

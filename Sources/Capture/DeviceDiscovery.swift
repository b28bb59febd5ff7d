import CV4L2
import Foundation

/// Lists the V4L2 video capture nodes of this machine and what they offer.
public struct DeviceDiscovery: Sendable {
    /// Where device nodes live; tests point this elsewhere.
    public var devRoot: String

    public init(devRoot: String = "/dev") {
        self.devRoot = devRoot
    }

    /// `/dev/video*` nodes in numeric order.
    public func nodes() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: devRoot)) ?? []
        return names.filter { $0.hasPrefix("video") && Int($0.dropFirst(5)) != nil }
            .sorted { Int($0.dropFirst(5))! < Int($1.dropFirst(5))! }
            .map { "\(devRoot)/\($0)" }
    }

    /// Every node that can stream video capture, fully described. Nodes that
    /// cannot be opened or are not capture devices (metadata, output, codec
    /// nodes) are left out.
    public func captureDevices() -> [DeviceInfo] {
        nodes().compactMap { try? inspect($0) }
    }

    /// The first capture device, for `camera.device = "auto"`.
    public func firstCaptureDevice() throws(CaptureError) -> String {
        for node in nodes() {
            if let h = try? V4L2Handle.open(node, viaLibv4l2: false) {
                defer { h.close() }
                if (try? Self.querycap(h)) != nil { return node }
            }
        }
        throw CaptureError(.deviceMissing, "no camera found: no video capture device under \(devRoot)",
                           nextStep: "plug the camera in (check `dmesg` for USB errors), or set camera.device = \"synthetic\" to try the station without one")
    }

    /// Describes one node, or throws if it is not a streaming capture device.
    public func inspect(_ path: String) throws(CaptureError) -> DeviceInfo {
        let h = try V4L2Handle.open(path, viaLibv4l2: false)
        defer { h.close() }
        let cap = try Self.querycap(h)
        return DeviceInfo(path: path, byIdPath: byIdPath(for: path), driver: cString(cap.driver), card: cString(cap.card),
                          bus: cString(cap.bus_info), version: "\(cap.version >> 16).\((cap.version >> 8) & 0xFF).\(cap.version & 0xFF)",
                          formats: Self.formats(h), controls: Self.controls(h))
    }

    /// The `/dev/v4l/by-id` link that points at `path`, if any.
    public func byIdPath(for path: String) -> String? {
        let dir = "\(devRoot)/v4l/by-id"
        guard let links = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        let target = (path as NSString).resolvingSymlinksInPath
        return links.sorted().map { "\(dir)/\($0)" }.first { ($0 as NSString).resolvingSymlinksInPath == target }
    }

    /// VIDIOC_QUERYCAP, refusing nodes without single-planar capture and streaming I/O.
    static func querycap(_ h: V4L2Handle) throws(CaptureError) -> v4l2_capability {
        var cap = v4l2_capability()
        try h.ioctl("VIDIOC_QUERYCAP", TS_VIDIOC_QUERYCAP, &cap)
        let caps = cap.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? cap.device_caps : cap.capabilities
        guard caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0, caps & UInt32(V4L2_CAP_STREAMING) != 0 else {
            throw CaptureError(.notACaptureDevice, "\(h.path) (\(cString(cap.card))) is not a streaming video capture device",
                               nextStep: "set camera.device to a node listed by `telestation devices`")
        }
        return cap
    }

    /// Native formats (libv4l2's emulated ones are skipped: the station
    /// converts nothing it does not have to) with sizes and intervals.
    static func formats(_ h: V4L2Handle) -> [FormatInfo] {
        var out: [FormatInfo] = []
        for index in 0..<UInt32(64) {
            var d = v4l2_fmtdesc()
            d.index = index
            d.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            guard h.tryIoctl(TS_VIDIOC_ENUM_FMT, &d) == 0 else { break }
            if d.flags & UInt32(V4L2_FMT_FLAG_EMULATED) != 0 { continue }
            let fourcc = FourCC(rawValue: d.pixelformat)
            out.append(FormatInfo(fourcc: fourcc, description: cString(d.description),
                                  compressed: d.flags & UInt32(V4L2_FMT_FLAG_COMPRESSED) != 0,
                                  sizes: sizes(h, fourcc)))
        }
        return out
    }

    static func sizes(_ h: V4L2Handle, _ fourcc: FourCC) -> [FrameSize] {
        var out: [FrameSize] = []
        for index in 0..<UInt32(256) {
            var s = v4l2_frmsizeenum()
            s.index = index
            s.pixel_format = fourcc.rawValue
            guard h.tryIoctl(TS_VIDIOC_ENUM_FRAMESIZES, &s) == 0 else { break }
            switch s.type {
            case V4L2_FRMSIZE_TYPE_DISCRETE.rawValue:
                let w = Int(s.discrete.width), hh = Int(s.discrete.height)
                out.append(.discrete(w, hh, intervals: intervals(h, fourcc, w, hh)))
            default:
                let sw = s.stepwise
                out.append(.range(s.type == V4L2_FRMSIZE_TYPE_CONTINUOUS.rawValue ? .continuous : .stepwise,
                                  min: (Int(sw.min_width), Int(sw.min_height)), max: (Int(sw.max_width), Int(sw.max_height)),
                                  step: (Int(sw.step_width), Int(sw.step_height))))
                return out  // a range is the only entry
            }
        }
        return out
    }

    static func intervals(_ h: V4L2Handle, _ fourcc: FourCC, _ w: Int, _ hh: Int) -> [String] {
        var out: [String] = []
        for index in 0..<UInt32(64) {
            var f = v4l2_frmivalenum()
            f.index = index
            f.pixel_format = fourcc.rawValue
            f.width = UInt32(w)
            f.height = UInt32(hh)
            guard h.tryIoctl(TS_VIDIOC_ENUM_FRAMEINTERVALS, &f) == 0 else { break }
            if f.type == V4L2_FRMIVAL_TYPE_DISCRETE.rawValue {
                out.append("\(f.discrete.numerator)/\(f.discrete.denominator)")
            } else {
                let s = f.stepwise
                out.append("\(s.min.numerator)/\(s.min.denominator)-\(s.max.numerator)/\(s.max.denominator)")
                break
            }
        }
        return out
    }

    static let typeNames: [UInt32: String] = [
        1: "int", 2: "bool", 3: "menu", 4: "button", 5: "int64", 7: "string", 8: "bitmask", 9: "intmenu",
    ]

    /// User controls via VIDIOC_QUERY_EXT_CTRL, with current values (VIDIOC_G_CTRL)
    /// and menu entries (VIDIOC_QUERYMENU). Compound controls are skipped.
    static func controls(_ h: V4L2Handle) -> [ControlInfo] {
        var out: [ControlInfo] = []
        var id = TS_V4L2_CTRL_FLAG_NEXT_CTRL
        while true {
            var q = v4l2_query_ext_ctrl()
            q.id = id
            guard h.tryIoctl(TS_VIDIOC_QUERY_EXT_CTRL, &q) == 0 else { break }
            id = q.id | TS_V4L2_CTRL_FLAG_NEXT_CTRL
            guard let type = typeNames[q.type], q.flags & UInt32(V4L2_CTRL_FLAG_DISABLED) == 0 else { continue }
            var flags: [String] = []
            if q.flags & UInt32(V4L2_CTRL_FLAG_READ_ONLY) != 0 { flags.append("read-only") }
            if q.flags & UInt32(V4L2_CTRL_FLAG_WRITE_ONLY) != 0 { flags.append("write-only") }
            if q.flags & UInt32(V4L2_CTRL_FLAG_INACTIVE) != 0 { flags.append("inactive") }
            if q.flags & UInt32(V4L2_CTRL_FLAG_GRABBED) != 0 { flags.append("grabbed") }
            if q.flags & UInt32(V4L2_CTRL_FLAG_VOLATILE) != 0 { flags.append("volatile") }
            var value: Int64?
            if [1, 2, 3, 8, 9].contains(q.type), q.flags & UInt32(V4L2_CTRL_FLAG_WRITE_ONLY) == 0 {
                var c = v4l2_control()
                c.id = q.id
                if h.tryIoctl(TS_VIDIOC_G_CTRL, &c) == 0 { value = Int64(c.value) }
            }
            var menu: [String] = []
            if q.type == 3 || q.type == 9, q.minimum >= 0, q.maximum - q.minimum < 256 {
                for i in q.minimum...q.maximum {
                    var m = v4l2_querymenu()
                    m.id = q.id
                    m.index = UInt32(i)
                    guard h.tryIoctl(TS_VIDIOC_QUERYMENU, &m) == 0 else { continue }
                    if q.type == 3 {
                        var buf = [CChar](repeating: 0, count: 33)
                        ts_querymenu_name(&m, &buf)
                        menu.append("\(i): \(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
                    } else {
                        menu.append("\(i): \(ts_querymenu_value(&m))")
                    }
                }
            }
            let label = cString(q.name)
            out.append(ControlInfo(id: q.id, name: ControlInfo.variableName(label), label: label, type: type,
                                   minimum: q.minimum, maximum: q.maximum, step: Int64(bitPattern: q.step),
                                   defaultValue: q.default_value, value: value, flags: flags, menu: menu))
        }
        return out
    }
}

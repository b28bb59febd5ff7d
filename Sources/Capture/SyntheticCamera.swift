import Foundation
import Imaging

/// An in-process camera drawing a moving test pattern with a running
/// timestamp, behind the same interface as a real device: for the demo,
/// kiosk development and tests on machines without a camera.
public final class SyntheticCamera: CameraSource {
    public enum Pattern: String, Sendable, CaseIterable {
        /// Eight full-saturation colour bars (white, yellow, cyan, green,
        /// magenta, red, blue, black), a moving white square and a clock.
        case bars
        /// All black, all white: exposure extremes.
        case black, white
        /// A smooth left-to-right grey ramp with no edges: what a badly
        /// focused camera sees.
        case gradient
    }

    public struct Settings: Sendable, Equatable {
        public var negotiation: FormatNegotiation
        public var pattern: Pattern
        public var framesPerSecond: Double
        public var controls: [String: Int]

        public init(negotiation: FormatNegotiation = FormatNegotiation(preference: .auto, width: 1280, height: 720),
                    pattern: Pattern = .bars, framesPerSecond: Double = 15, controls: [String: Int] = [:]) {
            self.negotiation = negotiation
            self.pattern = pattern
            self.framesPerSecond = framesPerSecond
            self.controls = controls
        }
    }

    /// What the synthetic device claims to offer. No MJPEG: a camera that
    /// compresses is simulated by feeding JPEG bytes to `StillProcessor` directly.
    public static let formats: [FormatInfo] = [FourCC.yuyv, .nv12, .yu12].map {
        FormatInfo(fourcc: $0, description: "synthetic \($0)", sizes: [
            .discrete(640, 480, intervals: ["1/15"]), .discrete(1280, 720, intervals: ["1/15"]),
            .discrete(1920, 1080, intervals: ["1/15"]), .discrete(2592, 1944, intervals: ["1/15"]),
        ])
    }

    /// The RGB colours of the bars, left to right.
    public static let barColours: [(UInt8, UInt8, UInt8)] = [
        (255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0),
    ]

    public let settings: Settings
    private var format: StreamFormat?
    private var frame: [UInt8] = []
    private var background: [UInt8] = []
    private var sequence: UInt64 = 0
    private var nextDue = 0.0
    private var isOpen = false

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    public func open() throws(CaptureError) -> StreamFormat {
        let choice = try settings.negotiation.choose(from: Self.formats, device: "the synthetic camera")
        let raw = choice.fourcc.rawPixelFormat!
        let bpl = raw.minimumBytesPerLine(width: choice.width)
        isOpen = true
        // Like a real device's, the values outlive a reopen; [camera.controls] applies on top.
        let applied = settings.controls.sorted { $0.key < $1.key }.map { name, value -> ControlResult in
            do throws(CaptureError) {
                _ = try setControl(name, value: Int64(value))
                return ControlResult(name: name, requested: value, applied: true, reason: nil)
            } catch {
                return ControlResult(name: name, requested: value, applied: false, reason: error.message)
            }
        }
        let fmt = StreamFormat(device: "synthetic", card: "Synthetic test pattern", requested: choice, fourcc: choice.fourcc,
                               width: choice.width, height: choice.height, bytesPerLine: bpl, range: .full, bufferCount: 1,
                               controls: applied)
        format = fmt
        redraw()
        sequence = 0
        nextDue = monotonicNow()
        return fmt
    }

    /// The static pattern with the picture controls applied.
    private func redraw() {
        guard let format, let raw = format.fourcc.rawPixelFormat else { return }
        var canvas = Canvas(format: raw, width: format.width, height: format.height,
                            bytes: Self.render(settings.pattern, format: raw, width: format.width, height: format.height))
        let manual = controlValues["auto_exposure"] == 1
        canvas.adjustLuma(gain: manual ? Double(controlValues["exposure_time_absolute"] ?? 250) / 250 : 1,
                          offset: Int(controlValues["brightness"] ?? 128) - 128)
        background = canvas.bytes
        frame = background
    }

    // MARK: Controls

    /// The controls the synthetic camera offers, named, typed and ranged as a
    /// USB webcam's are under uvcvideo. Brightness shifts the picture's
    /// luminance; in manual exposure, the exposure time scales it (250 is neutral).
    public static let controlSpecs: [ControlInfo] = [
        ControlInfo(id: 0x0098_0900, name: "brightness", label: "Brightness", type: "int", minimum: 0, maximum: 255, step: 1,
                    defaultValue: 128, value: nil),
        ControlInfo(id: 0x0098_0918, name: "power_line_frequency", label: "Power Line Frequency", type: "menu", minimum: 0, maximum: 2,
                    step: 1, defaultValue: 1, value: nil, menu: ["0: Disabled", "1: 50 Hz", "2: 60 Hz"]),
        ControlInfo(id: 0x0098_091A, name: "white_balance_temperature", label: "White Balance Temperature", type: "int",
                    minimum: 2800, maximum: 6500, step: 10, defaultValue: 4600, value: nil),
        ControlInfo(id: 0x0098_090C, name: "white_balance_automatic", label: "White Balance, Automatic", type: "bool",
                    minimum: 0, maximum: 1, step: 1, defaultValue: 1, value: nil),
        ControlInfo(id: 0x009A_0901, name: "auto_exposure", label: "Auto Exposure", type: "menu", minimum: 0, maximum: 3, step: 1,
                    defaultValue: 3, value: nil, menu: ["1: Manual Mode", "3: Aperture Priority Mode"]),
        ControlInfo(id: 0x009A_0902, name: "exposure_time_absolute", label: "Exposure Time, Absolute", type: "int",
                    minimum: 3, maximum: 2047, step: 1, defaultValue: 250, value: nil),
        ControlInfo(id: 0x009A_090A, name: "focus_absolute", label: "Focus, Absolute", type: "int", minimum: 0, maximum: 250,
                    step: 5, defaultValue: 0, value: nil),
        ControlInfo(id: 0x009A_090C, name: "focus_automatic_continuous", label: "Focus, Automatic Continuous", type: "bool",
                    minimum: 0, maximum: 1, step: 1, defaultValue: 1, value: nil),
    ]

    private lazy var controlValues: [String: Int64] =
        Dictionary(uniqueKeysWithValues: Self.controlSpecs.map { ($0.name, $0.defaultValue) })

    public func controls() throws(CaptureError) -> [ControlInfo] {
        guard isOpen else { throw CaptureError(.notStreaming, "the synthetic camera is not streaming") }
        return Self.controlSpecs.map { spec in
            var c = spec
            c.value = controlValues[spec.name]
            if let auto = ControlRequestCheck.automaticPartner[spec.name], let mode = controlValues[auto] {
                // auto_exposure is a menu whose manual entry is 1; the others are on/off.
                if auto == "auto_exposure" ? mode != 1 : mode != 0 { c.flags.append("inactive") }
            }
            return c
        }
    }

    public func setControl(_ name: String, value: Int64) throws(CaptureError) -> ControlInfo {
        let control = try ControlRequestCheck.check(name, value: value, in: controls()).get()
        // Like most drivers, round to the control's step.
        let step = max(1, control.step)
        controlValues[name] = control.minimum + (value - control.minimum) / step * step
        if ["brightness", "auto_exposure", "exposure_time_absolute"].contains(name) { redraw() }
        return try controls().first { $0.name == name }!
    }

    public func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError) {
        guard isOpen, let format else { throw CaptureError(.driverError, "the synthetic camera is not streaming", function: "nextFrame") }
        // Pace like a real sensor so warm-up and live view behave the same.
        let wait = nextDue - monotonicNow()
        if wait > timeout {
            throw CaptureError(.timeout, String(format: "no frame from the synthetic camera within %.1f s", timeout))
        }
        if wait > 0 { usleep(UInt32(wait * 1e6)) }
        nextDue = max(nextDue + 1 / settings.framesPerSecond, monotonicNow())
        let now = monotonicNow()
        let raw = format.fourcc.rawPixelFormat!
        if settings.pattern == .bars {
            frame = background  // copy-on-write: a single memcpy of the static pattern
            decorate(raw, format: format, time: now)
        }
        frame.withUnsafeBytes { bytes in
            body(CameraFrame(fourcc: format.fourcc, width: format.width, height: format.height, bytesPerLine: format.bytesPerLine,
                             range: .full, bytes: bytes, sequence: sequence, timestamp: now))
        }
        sequence += 1
    }

    public func close() {
        isOpen = false
        format = nil
    }

    /// Full-range BT.601 YCbCr, the colour space JPEG (JFIF) uses, so a
    /// synthetic frame survives encoding with its hues intact.
    static func ycbcr(_ c: (UInt8, UInt8, UInt8)) -> (UInt8, UInt8, UInt8) {
        let r = Double(c.0), g = Double(c.1), b = Double(c.2)
        func clamp(_ v: Double) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }
        return (clamp(0.299 * r + 0.587 * g + 0.114 * b),
                clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
                clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b))
    }

    /// Draws the static part of a pattern once per stream.
    static func render(_ pattern: Pattern, format: RawPixelFormat, width: Int, height: Int) -> [UInt8] {
        var canvas = Canvas(format: format, width: width, height: height)
        switch pattern {
        case .black: canvas.fill(x: 0, y: 0, w: width, h: height, ycbcr((0, 0, 0)))
        case .white: canvas.fill(x: 0, y: 0, w: width, h: height, ycbcr((255, 255, 255)))
        case .bars:
            for (i, c) in barColours.enumerated() {
                let x0 = i * width / 8, x1 = (i + 1) * width / 8
                canvas.fill(x: x0, y: 0, w: x1 - x0, h: height, ycbcr(c))
            }
        case .gradient:
            // Column by column; two columns share a chroma sample, so step by 2.
            for x in stride(from: 0, to: width, by: 2) {
                let v = UInt8(40 + 170 * x / max(1, width - 1))
                canvas.fill(x: x, y: 0, w: 2, h: height, (v, 128, 128))
            }
        }
        return canvas.bytes
    }

    private func decorate(_ raw: RawPixelFormat, format: StreamFormat, time: Double) {
        var canvas = Canvas(format: raw, width: format.width, height: format.height, bytes: frame)
        frame = []  // hand the storage over so Canvas mutates it in place
        let side = max(8, format.height / 8) & ~1
        let travel = max(1, format.width - side)
        let x = Int(sequence * 8) % (2 * travel)
        canvas.fill(x: (x < travel ? x : 2 * travel - x) & ~1, y: format.height / 2 - side / 2, w: side, h: side, (235, 128, 128))
        let scale = max(2, format.height / 120)
        let text = Self.clock(time) + " #\(sequence)"
        canvas.fill(x: 0, y: 0, w: (text.count * 4 + 1) * scale + 2, h: 7 * scale, (16, 128, 128))
        canvas.text(text, x: scale, y: scale, scale: scale)
        frame = canvas.bytes
    }

    static func clock(_ t: Double) -> String {
        let ms = Int((t * 1000).truncatingRemainder(dividingBy: 86_400_000))
        func pad(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
        return "\(pad(ms / 3_600_000, 2)):\(pad(ms / 60_000 % 60, 2)):\(pad(ms / 1000 % 60, 2)).\(pad(ms % 1000, 3))"
    }
}

/// A frame buffer in one of the raw layouts, drawn on with filled rectangles.
struct Canvas {
    let format: RawPixelFormat
    let width: Int
    let height: Int
    var bytes: [UInt8]

    init(format: RawPixelFormat, width: Int, height: Int, bytes: [UInt8]? = nil) {
        self.format = format
        self.width = width
        self.height = height
        self.bytes = bytes ?? [UInt8](repeating: 0, count: format.frameSize(width: width, height: height,
                                                                          bytesPerLine: format.minimumBytesPerLine(width: width)))
    }

    /// Fills a rectangle with one YCbCr colour, clipped to the frame; x and w
    /// should be even so chroma pairs are not split.
    mutating func fill(x: Int, y: Int, w: Int, h: Int, _ c: (UInt8, UInt8, UInt8)) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        let width = width, height = height, format = format
        bytes.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            switch format {
            case .yuyv:
                for row in y0..<y1 {
                    let line = base + row * width * 2
                    var col = x0 & ~1
                    while col < x1 {
                        let px = line + col * 2
                        px[0] = c.0; px[1] = c.1; px[2] = c.0; px[3] = c.2
                        col += 2
                    }
                }
            case .nv12, .yu12:
                for row in y0..<y1 { (base + row * width + x0).update(repeating: c.0, count: x1 - x0) }
                let cy0 = y0 / 2, cy1 = (y1 + 1) / 2, cx0 = x0 / 2, cx1 = (x1 + 1) / 2
                let chroma = base + width * height
                for row in cy0..<cy1 {
                    if format == .nv12 {
                        let line = chroma + row * width
                        for col in cx0..<cx1 { line[2 * col] = c.1; line[2 * col + 1] = c.2 }
                    } else {
                        let cw = width / 2, ch = (height + 1) / 2
                        (chroma + row * cw + cx0).update(repeating: c.1, count: cx1 - cx0)
                        (chroma + cw * ch + row * cw + cx0).update(repeating: c.2, count: cx1 - cx0)
                    }
                }
            case .rgb24:
                break
            }
        }
    }

    /// Scales and shifts every luma sample, clamped to 0...255: what a
    /// camera's gain and brightness do.
    mutating func adjustLuma(gain: Double, offset: Int) {
        guard gain != 1 || offset != 0 else { return }
        var table = [UInt8](repeating: 0, count: 256)
        for v in 0..<256 { table[v] = UInt8(max(0, min(255, Int((Double(v) * gain).rounded()) + offset))) }
        let lumaCount = width * height
        let format = format
        bytes.withUnsafeMutableBufferPointer { p in
            switch format {
            case .yuyv:
                for i in stride(from: 0, to: min(p.count, lumaCount * 2), by: 2) { p[i] = table[Int(p[i])] }
            case .nv12, .yu12:
                for i in 0..<min(p.count, lumaCount) { p[i] = table[Int(p[i])] }
            case .rgb24:
                break
            }
        }
    }

    /// A 3×5 pixel font, one row per string, for the clock.
    static let glyphs: [Character: [String]] = [
        "0": ["###", "#.#", "#.#", "#.#", "###"], "1": [".#.", "##.", ".#.", ".#.", "###"],
        "2": ["###", "..#", "###", "#..", "###"], "3": ["###", "..#", "###", "..#", "###"],
        "4": ["#.#", "#.#", "###", "..#", "..#"], "5": ["###", "#..", "###", "..#", "###"],
        "6": ["###", "#..", "###", "#.#", "###"], "7": ["###", "..#", "..#", "..#", "..#"],
        "8": ["###", "#.#", "###", "#.#", "###"], "9": ["###", "#.#", "###", "..#", "###"],
        ":": ["...", ".#.", "...", ".#.", "..."], ".": ["...", "...", "...", "...", ".#."],
        "#": ["#.#", "###", "#.#", "###", "#.#"], " ": ["...", "...", "...", "...", "..."],
    ]

    mutating func text(_ s: String, x: Int, y: Int, scale: Int) {
        for (i, ch) in s.enumerated() {
            guard let g = Self.glyphs[ch] else { continue }
            for (gy, row) in g.enumerated() {
                for (gx, bit) in row.enumerated() where bit == "#" {
                    fill(x: x + (i * 4 + gx) * scale, y: y + gy * scale, w: scale, h: scale, (235, 128, 128))
                }
            }
        }
    }
}

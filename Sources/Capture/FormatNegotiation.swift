/// What to ask the driver for.
public struct FormatChoice: Sendable, Equatable, Codable {
    public var fourcc: FourCC
    public var width: Int
    public var height: Int
}

/// Chooses a pixel format and frame size from what a device offers. Pure,
/// so every rule can be tested against made-up capability lists.
public struct FormatNegotiation: Sendable, Equatable {
    public var preference: FormatPreference
    /// Requested size; nil means the largest the chosen format offers.
    public var size: (width: Int, height: Int)?

    public init(preference: FormatPreference, width: Int? = nil, height: Int? = nil) {
        self.preference = preference
        if let width, let height { size = (width, height) } else { size = nil }
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.preference == b.preference && a.size?.width == b.size?.width && a.size?.height == b.size?.height
    }

    /// The best choice, or `formatUnsupported` naming what the device does offer.
    ///
    /// Without a size: the first preferred format the device has, at its
    /// largest size. With a size: the first preferred format that offers
    /// exactly that size; failing that, the first preferred format at the
    /// offered size closest in area (larger wins ties), so the driver is
    /// never asked for something it will silently change.
    public func choose(from formats: [FormatInfo], device: String = "the camera") throws(CaptureError) -> FormatChoice {
        let offered = preference.candidates.compactMap { c in formats.first { $0.fourcc == c && !$0.sizes.isEmpty } }
        guard !offered.isEmpty else {
            let has = formats.map(\.fourcc.description).joined(separator: ", ")
            let want = preference.candidates.map(\.description).joined(separator: "/")
            throw CaptureError(.formatUnsupported,
                               "\(device) offers no \(want) format (it has: \(has.isEmpty ? "none" : has))",
                               nextStep: preference == .auto ? "this camera's formats are not supported"
                                   : "set camera.format = \"auto\" to let the station choose")
        }
        guard let size else {
            let f = offered[0]
            let best = f.sizes.max { $0.width * $0.height < $1.width * $1.height }!
            return FormatChoice(fourcc: f.fourcc, width: best.width, height: best.height)
        }
        if let exact = offered.first(where: { f in f.sizes.contains { $0.allows(size.width, size.height) } }) {
            return FormatChoice(fourcc: exact.fourcc, width: size.width, height: size.height)
        }
        let f = offered[0]
        let target = size.width * size.height
        let nearest = f.sizes.map { s -> (Int, Int) in
            switch s.kind {
            case .discrete: return (s.width, s.height)
            case .stepwise, .continuous:
                // Clamp into the range, then snap down onto the step grid.
                let minW = s.minWidth ?? 1, minH = s.minHeight ?? 1
                let sw = max(1, s.stepWidth ?? 1), sh = max(1, s.stepHeight ?? 1)
                let w = min(max(size.width, minW), s.width), h = min(max(size.height, minH), s.height)
                return (minW + (w - minW) / sw * sw, minH + (h - minH) / sh * sh)
            }
        }.min { a, b in
            let da = abs(a.0 * a.1 - target), db = abs(b.0 * b.1 - target)
            return da != db ? da < db : a.0 * a.1 > b.0 * b.1
        }!
        return FormatChoice(fourcc: f.fourcc, width: nearest.0, height: nearest.1)
    }
}

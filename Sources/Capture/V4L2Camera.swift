import CV4L2
import Foundation
import Imaging

/// A real camera through libv4l2: mmap streaming with several buffers and
/// `poll` with a timeout.
public final class V4L2Camera: CameraSource {
    public struct Settings: Sendable, Equatable {
        /// A device path, or "auto" for the first capture device.
        public var device: String
        public var negotiation: FormatNegotiation
        public var controls: [String: Int]
        /// Set like `controls` when the camera has them; silently skipped when it does not.
        public var controlsIfPresent: [String: Int]
        public var bufferCount: Int
        /// Consecutive error-flagged buffers tolerated before giving up.
        public var maxBadFrames: Int

        public init(device: String, negotiation: FormatNegotiation, controls: [String: Int] = [:],
                    controlsIfPresent: [String: Int] = [:], bufferCount: Int = 4, maxBadFrames: Int = 30) {
            self.device = device
            self.negotiation = negotiation
            self.controls = controls
            self.controlsIfPresent = controlsIfPresent
            self.bufferCount = bufferCount
            self.maxBadFrames = maxBadFrames
        }
    }

    public let settings: Settings
    public let discovery: DeviceDiscovery
    private var handle: V4L2Handle?
    private var buffers: [(start: UnsafeMutableRawPointer, length: Int)] = []
    private var format: StreamFormat?
    private var streaming = false
    private var loss = FrameLossCounter()

    public var frameLoss: FrameLoss { loss.loss }

    public init(settings: Settings, discovery: DeviceDiscovery = DeviceDiscovery()) {
        self.settings = settings
        self.discovery = discovery
    }

    deinit { close() }

    public func open() throws(CaptureError) -> StreamFormat {
        close()
        let path = settings.device == "auto" ? try discovery.firstCaptureDevice() : settings.device
        let h = try V4L2Handle.open(path, viaLibv4l2: true)
        handle = h
        do {
            return try start(h)
        } catch {
            close()
            throw error
        }
    }

    private func start(_ h: V4L2Handle) throws(CaptureError) -> StreamFormat {
        let cap = try DeviceDiscovery.querycap(h)
        let card = cString(cap.card)
        let choice = try settings.negotiation.choose(from: DeviceDiscovery.formats(h), device: "\(h.path) (\(card))")

        // VIDIOC_S_FMT; the driver may adjust the size, and says so in the reply.
        var f = v4l2_format()
        ts_fmt_set_pix(&f, UInt32(choice.width), UInt32(choice.height), choice.fourcc.rawValue)
        try h.ioctl("VIDIOC_S_FMT", TS_VIDIOC_S_FMT, &f)
        let granted = FourCC(rawValue: ts_fmt_pix_pixelformat(&f))
        guard granted == choice.fourcc else {
            throw CaptureError(.formatUnsupported, "\(h.path) was asked for \(choice.fourcc) but granted \(granted)",
                               nextStep: "set camera.format to one `telestation devices` lists for this camera")
        }
        let width = Int(ts_fmt_pix_width(&f)), height = Int(ts_fmt_pix_height(&f))
        let bpl = Int(ts_fmt_pix_bytesperline(&f))
        // V4L2's default quantisation is limited range for YCbCr unless the
        // colourspace is JPEG (V4L2_MAP_QUANTIZATION_DEFAULT).
        let quantization = ts_fmt_pix_quantization(&f)
        let range: YCbCrRange = quantization == V4L2_QUANTIZATION_FULL_RANGE.rawValue
            || (quantization == V4L2_QUANTIZATION_DEFAULT.rawValue && ts_fmt_pix_colorspace(&f) == V4L2_COLORSPACE_JPEG.rawValue)
            ? .full : .limited

        let controlResults = applyControls(h)

        var req = v4l2_requestbuffers()
        req.count = UInt32(settings.bufferCount)
        req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        req.memory = V4L2_MEMORY_MMAP.rawValue
        try h.ioctl("VIDIOC_REQBUFS", TS_VIDIOC_REQBUFS, &req)
        guard req.count >= 2 else {
            throw CaptureError(.driverError, "\(h.path) granted only \(req.count) capture buffer(s)",
                               nextStep: "close other camera programs, or unplug and replug the camera", function: "VIDIOC_REQBUFS")
        }
        for i in 0..<req.count {
            var b = v4l2_buffer()
            b.index = i
            b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            b.memory = V4L2_MEMORY_MMAP.rawValue
            try h.ioctl("VIDIOC_QUERYBUF", TS_VIDIOC_QUERYBUF, &b)
            // v4l2_mmap returns MAP_FAILED ((void *)-1), not nil, on failure.
            let p = v4l2_mmap(nil, Int(b.length), PROT_READ | PROT_WRITE, MAP_SHARED, h.fd, Int64(ts_buf_offset(&b)))
            guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw CaptureError.classify(function: "v4l2_mmap", errno: errno, device: h.path)
            }
            buffers.append((p, Int(b.length)))
        }
        for i in 0..<buffers.count { try queue(h, index: UInt32(i)) }
        var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
        try h.ioctl("VIDIOC_STREAMON", TS_VIDIOC_STREAMON, &type)
        streaming = true
        loss.streamStarted()

        let fmt = StreamFormat(device: h.path, card: card, requested: choice, fourcc: granted, width: width, height: height,
                               bytesPerLine: bpl, range: range, bufferCount: buffers.count, controls: controlResults)
        format = fmt
        return fmt
    }

    private func queue(_ h: V4L2Handle, index: UInt32) throws(CaptureError) {
        var b = v4l2_buffer()
        b.index = index
        b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        b.memory = V4L2_MEMORY_MMAP.rawValue
        try h.ioctl("VIDIOC_QBUF", TS_VIDIOC_QBUF, &b)
    }

    /// Sets each `[camera.controls]` entry with VIDIOC_S_CTRL; never throws,
    /// a rejected control is reported and capture goes on.
    private func applyControls(_ h: V4L2Handle) -> [ControlResult] {
        guard !settings.controls.isEmpty || !settings.controlsIfPresent.isEmpty else { return [] }
        let known = DeviceDiscovery.controls(h)
        let wanted = settings.controls.merging(
            settings.controlsIfPresent.filter { name, _ in known.contains { $0.name == name } }) { mine, _ in mine }
        return wanted.sorted { $0.key < $1.key }.map { name, value in
            guard let c = known.first(where: { $0.name == name }) else {
                return ControlResult(name: name, requested: value, applied: false, reason: "this camera has no control named \(name)")
            }
            if c.flags.contains("read-only") {
                return ControlResult(name: name, requested: value, applied: false, reason: "\(name) is read-only on this camera")
            }
            if c.type != "button", !(c.minimum...c.maximum).contains(Int64(value)) {
                return ControlResult(name: name, requested: value, applied: false,
                                     reason: "\(value) is outside \(name)'s range \(c.minimum)...\(c.maximum)")
            }
            var ctrl = v4l2_control()
            ctrl.id = c.id
            ctrl.value = Int32(value)
            let e = h.tryIoctl(TS_VIDIOC_S_CTRL, &ctrl)
            return e == 0 ? ControlResult(name: name, requested: value, applied: true, reason: nil)
                : ControlResult(name: name, requested: value, applied: false, reason: "VIDIOC_S_CTRL failed: \(CaptureError.errnoText(e))")
        }
    }

    /// VIDIOC_QUERY_EXT_CTRL over the open stream (through libv4l2), after a
    /// VIDIOC_QUERYCAP that tells an unplugged camera from one without controls.
    public func controls() throws(CaptureError) -> [ControlInfo] {
        guard let h = handle else {
            throw CaptureError(.notStreaming, "the camera is not open", nextStep: "wait until it streams again")
        }
        var cap = v4l2_capability()
        let e = h.tryIoctl(TS_VIDIOC_QUERYCAP, &cap)
        if e != 0 { throw CaptureError.control(errno: e, control: "the controls", value: 0, device: h.path) }
        return DeviceDiscovery.controls(h)
    }

    /// Checks the request against what the camera lists, sets it with
    /// VIDIOC_S_CTRL and reads the control back, so the caller sees the
    /// value the driver applied.
    public func setControl(_ name: String, value: Int64) throws(CaptureError) -> ControlInfo {
        let control = try ControlRequestCheck.check(name, value: value, in: controls()).get()
        guard let h = handle else { throw CaptureError(.notStreaming, "the camera is not open") }
        guard let v = Int32(exactly: value) else {
            throw CaptureError(.controlUnsupported, "\(name) = \(value) does not fit a 32-bit control value")
        }
        var ctrl = v4l2_control()
        ctrl.id = control.id
        ctrl.value = v
        let e = h.tryIoctl(TS_VIDIOC_S_CTRL, &ctrl)
        if e != 0 { throw CaptureError.control(errno: e, control: name, value: value, device: h.path) }
        return try controls().first { $0.id == control.id } ?? control
    }

    /// Waits with `poll`, dequeues with VIDIOC_DQBUF, hands the mapped
    /// buffer to `body` and queues it again with VIDIOC_QBUF. Buffers the
    /// driver flags as damaged are skipped, up to `maxBadFrames` in a row.
    public func nextFrame(timeout: Double, _ body: (CameraFrame) -> Void) throws(CaptureError) {
        guard let h = handle, let format, streaming else {
            throw CaptureError(.driverError, "the camera is not streaming", function: "nextFrame")
        }
        let deadline = monotonicNow() + timeout
        var bad = 0
        while true {
            let remaining = deadline - monotonicNow()
            guard remaining > 0 else {
                throw CaptureError(.timeout, String(format: "no frame from %@ within %.1f s", h.path, timeout),
                                   nextStep: "check the camera's cable and lighting; unplug and replug it if this persists")
            }
            var p = pollfd(fd: h.fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&p, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if rc < 0 {
                let e = errno
                if e == EINTR { continue }
                throw CaptureError.classify(function: "poll", errno: e, device: h.path)
            }
            if rc == 0 { continue }
            // POLLERR: fall through to DQBUF, whose errno says what happened.
            var b = v4l2_buffer()
            b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            b.memory = V4L2_MEMORY_MMAP.rawValue
            let e = h.tryIoctl(TS_VIDIOC_DQBUF, &b)
            if e == EAGAIN { continue }
            if e != 0 { throw CaptureError.classify(function: "VIDIOC_DQBUF", errno: e, device: h.path) }

            let flagged = b.flags & UInt32(V4L2_BUF_FLAG_ERROR) != 0
            let damaged = flagged || b.bytesused == 0 || Int(b.index) >= buffers.count
            loss.dequeued(sequence: b.sequence, damaged: damaged)
            if damaged {
                try queue(h, index: b.index)
                bad += 1
                if bad > settings.maxBadFrames {
                    throw CaptureError(.corruptFrames, "\(h.path) delivered \(bad) damaged frames in a row",
                                       nextStep: "unplug and replug the camera; try camera.format = \"mjpeg\" or a smaller size",
                                       function: "VIDIOC_DQBUF")
                }
                continue
            }
            let monotonic = b.flags & UInt32(V4L2_BUF_FLAG_TIMESTAMP_MASK) == UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
            let buf = buffers[Int(b.index)]
            let frame = CameraFrame(fourcc: format.fourcc, width: format.width, height: format.height,
                                    bytesPerLine: format.bytesPerLine, range: format.range,
                                    bytes: UnsafeRawBufferPointer(start: buf.start, count: min(Int(b.bytesused), buf.length)),
                                    sequence: UInt64(b.sequence),
                                    timestamp: monotonic ? ts_buf_timestamp(&b) : monotonicNow())
            body(frame)
            try queue(h, index: b.index)
            return
        }
    }

    /// Calls VIDIOC_STREAMOFF, `v4l2_munmap`, VIDIOC_REQBUFS(0) and `v4l2_close`,
    /// ignoring errors: after an unplug every one of them fails.
    public func close() {
        guard let h = handle else { return }
        if streaming {
            var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
            _ = h.tryIoctl(TS_VIDIOC_STREAMOFF, &type)
        }
        for b in buffers { _ = v4l2_munmap(b.start, b.length) }
        if !buffers.isEmpty {
            var req = v4l2_requestbuffers()
            req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            req.memory = V4L2_MEMORY_MMAP.rawValue
            _ = h.tryIoctl(TS_VIDIOC_REQBUFS, &req)
        }
        buffers = []
        streaming = false
        format = nil
        h.close()
        handle = nil
    }
}

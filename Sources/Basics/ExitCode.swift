/// The exit statuses of the station's commands, from sysexits(3): shell
/// scripts and systemd (`RestartPreventExitStatus=`) act on them.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    /// A command failed in a way no code below names; `diagnose`: a check warned.
    case failure = 1
    /// `diagnose`: a check failed.
    case checkFailed = 2
    /// EX_USAGE: bad arguments.
    case usage = 64
    /// EX_DATAERR: the input file is not what it should be (not a JPEG).
    case dataError = 65
    /// EX_NOINPUT: an input file does not exist or cannot be read.
    case noInput = 66
    /// EX_UNAVAILABLE: the camera (or another needed service) is missing.
    case unavailable = 69
    /// EX_SOFTWARE: an internal error.
    case software = 70
    /// EX_CANTCREAT: cannot write an output file or the queue.
    case cannotCreate = 73
    /// EX_IOERR: an input/output error.
    case ioError = 74
    /// EX_TEMPFAIL: try again later (camera busy, items left at the deadline).
    case temporaryFailure = 75
    /// EX_NOPERM: not allowed (the hub refused the credentials, a key too open).
    case noPermission = 77
    /// EX_CONFIG: the configuration is wrong.
    case configuration = 78
}

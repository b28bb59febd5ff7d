import HubCommand

/// The hub on its own, for `swift run telestation-hub` and the tests; the
/// package installs telestation-hub as a symlink to telestation instead.
/// An async `main` of a `@main` type, as `telestation` has: from top-level
/// code the call resolved to ArgumentParser's synchronous `main()`, which
/// refuses to run an async command ("Asynchronous root command needs
/// availability annotation").
@main
enum HubMain {
    static func main() async {
        await TelestationHub.main()
    }
}

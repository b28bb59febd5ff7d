import HubCommand

// The hub on its own, for `swift run telestation-hub` and the tests; the
// package installs telestation-hub as a symlink to telestation instead.
await TelestationHub.main()

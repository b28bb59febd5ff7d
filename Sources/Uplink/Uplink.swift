// The Uplink module.

// The daemon speaks the control API; its users get the wire types with it.
@_exported import StationAPI

import Testing
@testable import Station

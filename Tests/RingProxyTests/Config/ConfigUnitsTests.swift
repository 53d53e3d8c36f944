// HAProxy's time format (configuration.txt §2.5) and size format (§2.6), unit by unit, and the
// errors for text that is neither.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigUnitsTests: XCTestCase {
    private func milliseconds(_ text: String) -> Int? {
        try? ConfigUnits.milliseconds(text).get()
    }

    func testBareNumberIsMilliseconds() {
        XCTAssertEqual(milliseconds("10000"), 10_000)
        XCTAssertEqual(milliseconds("0"), 0)
    }

    func testEveryTimeUnitConvertsToMilliseconds() {
        XCTAssertEqual(milliseconds("5000us"), 5)
        XCTAssertEqual(milliseconds("250ms"), 250)
        XCTAssertEqual(milliseconds("240s"), 240_000)
        XCTAssertEqual(milliseconds("30m"), 1_800_000)
        XCTAssertEqual(milliseconds("2h"), 7_200_000)
        XCTAssertEqual(milliseconds("1d"), 86_400_000)
    }

    func testMicrosecondsRoundUpSoANonZeroTimeNeverBecomesZero() {
        XCTAssertEqual(milliseconds("1us"), 1)
        XCTAssertEqual(milliseconds("1500us"), 2)
        XCTAssertEqual(milliseconds("0us"), 0)
        XCTAssertEqual(milliseconds("2000us"), 2)
        XCTAssertEqual(milliseconds("2001us"), 3)
    }

    // Found by the config fuzzer in CI: rounding up by adding 999 first overflowed (a trap,
    // so `ringproxy -c` crashed) for microseconds near Int.max.
    func testTheLargestMicrosecondCountIsRejectedNotATrap() {
        XCTAssertEqual(
            ConfigUnits.milliseconds("9223372036854775807us"),
            .failure(ConfigValueError(message: "time '9223372036854775807us' is too large", hint: "the maximum is 2147483647 ms, about 24.8 days")))
        XCTAssertEqual(milliseconds("2147483647000us"), 2_147_483_647)
        XCTAssertNil(milliseconds("2147483647001us"))
    }

    func testTimesBeyondHAProxysLimitAreRejected() {
        XCTAssertEqual(milliseconds("24d"), 2_073_600_000)
        XCTAssertEqual(
            ConfigUnits.milliseconds("25d"),
            .failure(ConfigValueError(message: "time '25d' is too large", hint: "the maximum is 2147483647 ms, about 24.8 days")))
        XCTAssertEqual(
            ConfigUnits.milliseconds("99999999999999999999999"),
            .failure(ConfigValueError(message: "time '99999999999999999999999' is too large", hint: "the maximum is 2147483647 ms, about 24.8 days")))
    }

    func testGarbageTimesAreRejectedWithTheUnitsInTheHint() {
        let hint = "units are us, ms, s, m, h, d; a bare number is milliseconds"
        XCTAssertEqual(ConfigUnits.milliseconds("10x"), .failure(ConfigValueError(message: "invalid time '10x': unknown unit 'x'", hint: hint)))
        XCTAssertEqual(ConfigUnits.milliseconds("10S"), .failure(ConfigValueError(message: "invalid time '10S': unknown unit 'S'", hint: hint)))
        XCTAssertEqual(ConfigUnits.milliseconds("10 s"), .failure(ConfigValueError(message: "invalid time '10 s': unknown unit ' s'", hint: hint)))
        XCTAssertEqual(ConfigUnits.milliseconds("1.5s"), .failure(ConfigValueError(message: "invalid time '1.5s': unknown unit '.5s'", hint: hint)))
        XCTAssertEqual(ConfigUnits.milliseconds("s"), .failure(ConfigValueError(message: "invalid time 's'", hint: "expected a number with an optional unit; " + hint)))
        XCTAssertEqual(ConfigUnits.milliseconds("-5"), .failure(ConfigValueError(message: "invalid time '-5'", hint: "expected a number with an optional unit; " + hint)))
        XCTAssertEqual(ConfigUnits.milliseconds(""), .failure(ConfigValueError(message: "invalid time ''", hint: "expected a number with an optional unit; " + hint)))
        XCTAssertEqual(
            ConfigUnits.milliseconds("2x", for: "inter"),
            .failure(ConfigValueError(message: "invalid time '2x' for 'inter': unknown unit 'x'", hint: hint)))
    }

    func testSizeSuffixesArePowersOf1024AsHAProxyDocuments() {
        XCTAssertEqual(try ConfigUnits.size("100").get(), 100)
        XCTAssertEqual(try ConfigUnits.size("100k").get(), 102_400)
        XCTAssertEqual(try ConfigUnits.size("100K").get(), 102_400)
        XCTAssertEqual(try ConfigUnits.size("1m").get(), 1_048_576)
        XCTAssertEqual(try ConfigUnits.size("2g").get(), 2_147_483_648)
    }

    func testGarbageAndOversizedSizesAreRejected() {
        let hint = "expected a number with an optional suffix k, m or g, each a factor of 1024"
        XCTAssertEqual(ConfigUnits.size("100x"), .failure(ConfigValueError(message: "invalid size '100x': unknown suffix 'x'", hint: hint)))
        XCTAssertEqual(ConfigUnits.size("k"), .failure(ConfigValueError(message: "invalid size 'k'", hint: hint)))
        XCTAssertEqual(ConfigUnits.size("4g"), .failure(ConfigValueError(message: "size '4g' is too large", hint: "the maximum is 4294967295")))
    }

    func testIntegersAreDigitsOnlyAndWithinTheirRange() {
        XCTAssertEqual(try ConfigUnits.integer("256", in: 0...256, what: "weight").get(), 256)
        XCTAssertEqual(
            ConfigUnits.integer("300", in: 0...256, what: "weight"),
            .failure(ConfigValueError(message: "weight 300 is out of range", hint: "allowed: 0 to 256")))
        XCTAssertEqual(
            ConfigUnits.integer("5x", in: 0...256, what: "weight"),
            .failure(ConfigValueError(message: "invalid weight '5x'", hint: "expected a whole number")))
        XCTAssertEqual(
            ConfigUnits.integer("-1", in: 0...256, what: "weight"),
            .failure(ConfigValueError(message: "invalid weight '-1'", hint: "expected a whole number")))
        XCTAssertEqual(
            ConfigUnits.integer("99999999999999999999", in: 1...10, what: "maxconn"),
            .failure(ConfigValueError(message: "maxconn 99999999999999999999 is out of range", hint: "allowed: 1 to 10")))
        XCTAssertEqual(ConfigUnits.port("65535"), 65535)
        XCTAssertNil(ConfigUnits.port("0"))
        XCTAssertNil(ConfigUnits.port("65536"))
    }

    func testTimeoutsInAConfigurationAcceptEveryUnit() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            defaults
              timeout connect 5000us
              timeout client 250ms
              timeout server 240s
              timeout tunnel 30m
              timeout check 2h
              timeout client-fin 1d
              timeout server-fin 1500
              timeout queue 0
            """))
        let timeouts = config.defaults[0].settings.timeouts
        XCTAssertEqual(timeouts, Timeouts(
            connectMs: 5, clientMs: 250, serverMs: 240_000, checkMs: 7_200_000, tunnelMs: 1_800_000,
            clientFinMs: 86_400_000, serverFinMs: 1500, queueMs: 0))
    }
}

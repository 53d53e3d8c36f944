// HAProxy's value formats: times (configuration.txt §2.5: a bare number is milliseconds; us, ms,
// s, m, h, d suffixes), sizes (§2.6: k, m, g are powers of 1024, case-insensitive) and plain
// integers. Pure functions from text to numbers; the wording of errors lives here too so that
// every keyword reports the same way.

/// Why a value could not be read; `message` and `hint` become a ConfigDiagnostic's.
struct ConfigValueError: Error, Equatable {
    var message: String
    var hint: String?
}

enum ConfigUnits {
    /// HAProxy keeps times in a signed 32-bit count of milliseconds (about 24.8 days).
    static let millisecondsMax = Int(Int32.max)
    /// Sizes (stick-table entries) are unsigned 32-bit in HAProxy.
    static let sizeMax = Int(UInt32.max)

    private static let timeUnitsHint = "units are us, ms, s, m, h, d; a bare number is milliseconds"

    /// `10000` -> 10000, `240s` -> 240000, `30m` -> 1800000, `1500us` -> 2 (microseconds round
    /// up to the next millisecond, as HAProxy does, so a non-zero time never becomes 0).
    /// `what` names the setting in messages ("invalid time '2x' for 'inter'").
    static func milliseconds(_ text: String, for what: String? = nil) -> Result<Int, ConfigValueError> {
        let (digits, unit) = splitNumber(text)
        let invalid = "invalid time '\(text)'" + (what.map { " for '\($0)'" } ?? "")
        guard !digits.isEmpty else {
            return .failure(ConfigValueError(
                message: invalid, hint: "expected a number with an optional unit; " + timeUnitsHint))
        }
        guard let value = Int(digits) else { return .failure(tooLargeTime(text)) }
        let result: (partialValue: Int, overflow: Bool)
        switch unit {
        case "", "ms": result = (value, false)
        case "us": result = (value / 1000 + (value % 1000 == 0 ? 0 : 1), false)  // no +999: Int.max us
        case "s": result = value.multipliedReportingOverflow(by: 1000)
        case "m": result = value.multipliedReportingOverflow(by: 60_000)
        case "h": result = value.multipliedReportingOverflow(by: 3_600_000)
        case "d": result = value.multipliedReportingOverflow(by: 86_400_000)
        default:
            return .failure(ConfigValueError(message: "\(invalid): unknown unit '\(unit)'", hint: timeUnitsHint))
        }
        guard !result.overflow, result.partialValue <= millisecondsMax else { return .failure(tooLargeTime(text)) }
        return .success(result.partialValue)
    }

    /// `100` -> 100, `100k` -> 102400, `1m` -> 1048576, `1g` -> 1073741824. HAProxy documents
    /// k, m, g as 2^10, 2^20, 2^30 factors for stick-table sizes (configuration.txt, "stick-table",
    /// <size>) and for sizes in general (§2.6).
    static func size(_ text: String) -> Result<Int, ConfigValueError> {
        let (digits, unit) = splitNumber(text)
        let hint = "expected a number with an optional suffix k, m or g, each a factor of 1024"
        guard !digits.isEmpty else {
            return .failure(ConfigValueError(message: "invalid size '\(text)'", hint: hint))
        }
        let factor: Int
        switch unit.lowercased() {
        case "": factor = 1
        case "k": factor = 1 << 10
        case "m": factor = 1 << 20
        case "g": factor = 1 << 30
        default:
            return .failure(ConfigValueError(message: "invalid size '\(text)': unknown suffix '\(unit)'", hint: hint))
        }
        let tooLarge = ConfigValueError(message: "size '\(text)' is too large", hint: "the maximum is \(sizeMax)")
        guard let value = Int(digits) else { return .failure(tooLarge) }
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        guard !overflow, product <= sizeMax else { return .failure(tooLarge) }
        return .success(product)
    }

    /// A non-negative decimal integer made of digits only (no sign, no unit); nil otherwise or on
    /// overflow.
    static func integer(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    /// An integer in `range`, or an error naming `what`: "invalid maxconn 'abc'" /
    /// "maxconn 0 is out of range (allowed: 1 to 2147483647)".
    static func integer(_ text: String, in range: ClosedRange<Int>, what: String) -> Result<Int, ConfigValueError> {
        guard let value = integer(text) else {
            let tooLong = text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) && !text.isEmpty
            if tooLong {
                return .failure(ConfigValueError(
                    message: "\(what) \(text) is out of range",
                    hint: "allowed: \(range.lowerBound) to \(range.upperBound)"))
            }
            return .failure(ConfigValueError(message: "invalid \(what) '\(text)'", hint: "expected a whole number"))
        }
        guard range.contains(value) else {
            return .failure(ConfigValueError(
                message: "\(what) \(value) is out of range",
                hint: "allowed: \(range.lowerBound) to \(range.upperBound)"))
        }
        return .success(value)
    }

    /// A TCP port, 1 to 65535.
    static func port(_ text: String) -> Int? {
        guard let value = integer(text), (1...65535).contains(value) else { return nil }
        return value
    }

    private static func splitNumber(_ text: String) -> (digits: String, unit: String) {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        return (String(digits), String(text.dropFirst(digits.count)))
    }

    private static func tooLargeTime(_ text: String) -> ConfigValueError {
        ConfigValueError(message: "time '\(text)' is too large", hint: "the maximum is \(millisecondsMax) ms, about 24.8 days")
    }
}

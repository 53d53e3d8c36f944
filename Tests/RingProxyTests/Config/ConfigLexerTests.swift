// How a line becomes words (configuration.txt §2.2 and §2.3): comments, quotes, escapes,
// environment variables, and line endings.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigLexerTests: XCTestCase {
    private func words(_ line: String, environment: [String: String] = [:]) -> [String] {
        let output = ConfigLexer.words(
            in: line, environment: environment,
            context: ConfigLexer.Context(file: "haproxy.cfg", line: 7, section: "mqtt_in"))
        XCTAssertEqual(output.errors, [], line)
        return output.words
    }

    private func lex(_ line: String, environment: [String: String] = [:]) -> ConfigLexer.Output {
        ConfigLexer.words(in: line, environment: environment, context: ConfigLexer.Context(file: "haproxy.cfg", line: 7, section: "mqtt_in"))
    }

    func testSpacesAndTabsSeparateWords() {
        XCTAssertEqual(words("  server\temqx1   127.0.0.1:1883 \t check  "), ["server", "emqx1", "127.0.0.1:1883", "check"])
        XCTAssertEqual(words(""), [])
        XCTAssertEqual(words(" \t "), [])
    }

    func testHashStartsACommentEvenWithoutASpaceBeforeIt() {
        XCTAssertEqual(words("  # timeout > mqtt's keepalive * 1.2"), [])
        XCTAssertEqual(words("mode tcp # or http"), ["mode", "tcp"])
        XCTAssertEqual(words("global#this is the global section"), ["global"])
    }

    func testQuotedOrEscapedHashIsNotAComment() {
        XCTAssertEqual(words(##"stats realm "a#b" 'c#d' e\#f"##), ["stats", "realm", "a#b", "c#d", "e#f"])
    }

    func testDoubleQuotesKeepSpacesAndResolveEscapes() {
        XCTAssertEqual(words(#"stats realm "HAProxy Statistics""#), ["stats", "realm", "HAProxy Statistics"])
        XCTAssertEqual(words(#"x "say \"hi\"" "back\\slash" "\$HOME""#), ["x", #"say "hi""#, #"back\slash"#, "$HOME"])
        XCTAssertEqual(words(#"x "tab\there""#), ["x", "tab\there"])
    }

    func testSingleQuotesKeepEverythingAsWritten() {
        XCTAssertEqual(words(#"x '$HOME \n "q" \' "#), ["x", #"$HOME \n "q" \"#], "a backslash cannot escape a single quote")
        XCTAssertEqual(words(#"x '$HOME \n'"#), ["x", #"$HOME \n"#])
    }

    func testEscapesOutsideQuotes() {
        XCTAssertEqual(words(#"stats realm HAProxy\ Statistics"#), ["stats", "realm", "HAProxy Statistics"])
        XCTAssertEqual(words(#"a\\b \'c\' \"d\" e\x41f"#), [#"a\b"#, "'c'", #""d""#, "eAf"])
        XCTAssertEqual(words(#"regsub \1\2"#), ["regsub", #"\1\2"#], "unknown escapes keep their backslash")
    }

    func testQuotedPartsConcatenateIntoOneWord() {
        XCTAssertEqual(words(#"log-format "%{+Q}o %t"' %s'\ %{-Q}r"#), ["log-format", "%{+Q}o %t %s %{-Q}r"])
        XCTAssertEqual(words(#"x """#), ["x", ""], "an empty quoted string is still a word")
    }

    func testEnvironmentVariablesExpandOnlyInsideDoubleQuotes() {
        let environment = ["MQTT_PORT": "1883", "HOST": "10.0.0.1"]
        XCTAssertEqual(words(#"bind "*:${MQTT_PORT}""#, environment: environment), ["bind", "*:1883"])
        XCTAssertEqual(words(#"bind "$HOST:1883""#, environment: environment), ["bind", "10.0.0.1:1883"])
        XCTAssertEqual(words(#"bind '*:${MQTT_PORT}'"#, environment: environment), ["bind", "*:${MQTT_PORT}"])
        XCTAssertEqual(words(#"bind *:${MQTT_PORT}"#, environment: environment), ["bind", "*:${MQTT_PORT}"])
    }

    func testEnvironmentVariableDefaultsAndListsAndPseudoVariables() {
        XCTAssertEqual(words(#"log "${SYSLOG-127.0.0.1}:514""#), ["log", "127.0.0.1:514"])
        XCTAssertEqual(words(#"log "${SYSLOG-127.0.0.1}:514""#, environment: ["SYSLOG": "10.1.1.1"]), ["log", "10.1.1.1:514"])
        XCTAssertEqual(words(#"bind "${ADDRS[*]}" ssl"#, environment: ["ADDRS": "a:1 b:2"]), ["bind", "a:1", "b:2", "ssl"])
        XCTAssertEqual(words(#"x "${.FILE}:${.LINE} in ${.SECTION}""#), ["x", "haproxy.cfg:7 in mqtt_in"])
    }

    func testUnsetVariableExpandsToEmptyWithAWarning() {
        let output = lex(#"bind "*:${PORT}""#)
        XCTAssertEqual(output.words, ["bind", "*:"])
        XCTAssertEqual(output.warnings, [ConfigLexer.Issue(
            message: "environment variable 'PORT' is not set; it expands to an empty string",
            hint: "set it, or give a default with ${PORT-value}")])
    }

    func testUnmatchedQuotesAndBadEscapesAreErrors() {
        XCTAssertEqual(lex(#"stats realm "HAProxy"#).errors, [ConfigLexer.Issue(message: "unmatched double quote", hint: "close the quote before the end of the line")])
        XCTAssertEqual(lex("stats realm 'HAProxy").errors, [ConfigLexer.Issue(message: "unmatched single quote", hint: "close the quote before the end of the line")])
        XCTAssertEqual(lex(#"x \xZZ"#).errors, [ConfigLexer.Issue(message: "invalid '\\x' escape", hint: "expected two hexadecimal digits, e.g. \\x23")])
        XCTAssertEqual(lex(#"x "${PORT""#).errors.first?.message, "missing '}' after '${'")
        XCTAssertEqual(lex(#"x "${1PORT}""#).errors.first?.message, "invalid environment variable name '1PORT'")
    }

    func testLinesSplitOnLFAndCRLFWithoutTheirTerminators() {
        XCTAssertEqual(ConfigParser.State.lines(of: "a\nb\r\nc \r\n\nd"), ["a", "b", "c ", "", "d"])
        XCTAssertEqual(ConfigParser.State.lines(of: "a\n"), ["a"])
        XCTAssertEqual(ConfigParser.State.lines(of: ""), [])
    }

    func testCRLFFileWithTrailingWhitespaceParsesLikeItsUnixTwin() throws {
        let unix = "global\n  maxconn 100  \n\nbackend b\n\tserver s1 127.0.0.1:1883   check\t\n"
        let windows = unix.replacingOccurrences(of: "\n", with: "\r\n")
        let fromUnix = try XCTUnwrap(ConfigTestSupport.parse(unix))
        let fromWindows = try XCTUnwrap(ConfigTestSupport.parse(windows))
        XCTAssertEqual(fromUnix, fromWindows)
        XCTAssertEqual(fromWindows.global.maxconn, 100)
        XCTAssertEqual(fromWindows.backends.first?.servers.first?.options.check, true)
        XCTAssertEqual(fromWindows.backends.first?.servers.first?.location.line, 5)
    }

    func testSectionKeywordsAreRecognisedAtAnyIndentation() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
                global
            maxconn 10
                  backend b
            server s1 127.0.0.1:1883
            """))
        XCTAssertEqual(config.global.maxconn, 10)
        XCTAssertEqual(config.backends.map(\.name), ["b"])
    }

    func testQuotedValuesReachTheModel() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(#"""
            frontend stats
              mode http
              bind "${STATS_ADDR-127.0.0.1}:8888"   # comment after a quoted word
              stats realm "Ring Proxy"
              stats auth 'admin:pa ss#word'
              stats uri /stats\ page
            """#))
        let frontend = try XCTUnwrap(config.frontend(named: "stats"))
        XCTAssertEqual(frontend.binds.first?.addresses, [BindAddress(host: "127.0.0.1", port: 8888)])
        XCTAssertEqual(frontend.settings.stats?.realm, "Ring Proxy")
        XCTAssertEqual(frontend.settings.stats?.credentials, [StatsCredential(user: "admin", password: "pa ss#word")])
        XCTAssertEqual(frontend.settings.stats?.uri, "/stats page")
    }

    func testSetenvChangesWhatLaterLinesExpandTo() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            global
              setenv PORT 1884
              presetenv HOST 127.0.0.2
              presetenv PORT 9999
            frontend f
              bind "${HOST}:${PORT}"
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            """))
        XCTAssertEqual(config.frontends.first?.binds.first?.addresses, [BindAddress(host: "127.0.0.2", port: 1884)])
    }
}

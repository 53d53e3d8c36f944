// The stats page's request parser on good and bad requests: every verdict it can give, each
// prefix of a good request asking for more, and limits answered with their status.
import XCTest
@testable import RingProxy

final class HTTPRequestParserTests: XCTestCase {
    private func parse(_ text: String, headMax: Int = 8192, bodyMax: Int = 4096) -> HTTPRequestVerdict {
        Array(text.utf8).withUnsafeBytes { HTTPRequestParser.parse($0, headBytesMax: headMax, bodyBytesMax: bodyMax) }
    }

    private func request(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> HTTPRequest? {
        guard case .complete(let request, let consumed) = parse(text) else {
            XCTFail("not complete: \(parse(text))", file: file, line: line)
            return nil
        }
        XCTAssertEqual(consumed, text.utf8.count, file: file, line: line)
        return request
    }

    func testAGetWithHeadersIsReadWithItsPathQueryAndHeaders() throws {
        let r = try XCTUnwrap(request("GET /stats;csv?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization:  Basic YTpi  \r\nX-Y: z\r\n\r\n"))
        XCTAssertEqual(r.method, "GET")
        XCTAssertEqual(r.target, "/stats;csv?x=1")
        XCTAssertEqual(r.path, "/stats;csv")
        XCTAssertEqual(r.query, "x=1")
        XCTAssertEqual(r.minorVersion, 1)
        XCTAssertEqual(r.header("authorization"), "Basic YTpi")
        XCTAssertEqual(r.header("x-y"), "z")
    }

    func testBareLineFeedsAnHTTP10RequestWithoutHostAndAnAbsoluteTargetAreAccepted() throws {
        XCTAssertEqual(try XCTUnwrap(request("GET /metrics HTTP/1.0\n\n")).path, "/metrics")
        XCTAssertEqual(try XCTUnwrap(request("\r\nGET http://h:8/stats?a HTTP/1.1\r\nHost: h\r\n\r\n")).target, "/stats?a")
    }

    func testAPostBodyIsWaitedForUpToItsContentLength() throws {
        let text = "POST /stats HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nb=x&s=y&a=z"
        XCTAssertEqual(parse(String(text.dropLast(3))), .needMore)
        XCTAssertEqual(try XCTUnwrap(request(text)).body, Array("b=x&s=y&a=z".utf8))
    }

    func testEveryPrefixOfAGoodRequestNeedsMore() {
        let text = "GET /stats HTTP/1.1\r\nHost: example\r\n\r\n"
        for length in 0..<text.utf8.count {
            XCTAssertEqual(parse(String(decoding: Array(text.utf8)[0..<length], as: UTF8.self)), .needMore, "prefix \(length)")
        }
    }

    func testMalformedRequestsAreAnswered400() {
        for bad in [
            "garbage\u{1}\r\n\r\n", "GET\r\n\r\n", "GET  /stats HTTP/1.1\r\nHost: a\r\n\r\n", "GET /stats HTTP/1.1 x\r\n\r\n",
            "GET stats HTTP/1.1\r\nHost: a\r\n\r\n", "GET /stats HTTQ/1.1\r\n\r\n", "GET /stats HTTP/1.1\r\n\r\n",
            "GET /stats HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET /stats HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
            "GET /stats HTTP/1.1\r\nHost: a\r\nName : x\r\n\r\n", "GET /stats HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "GET /stats HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET /stats HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            "GET /stats HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "\u{16}\u{3}\u{1}\u{2}\u{0}",   // a TLS ClientHello is refused before any line ends
        ] {
            XCTAssertEqual(parse(bad), .error(status: 400), bad.debugDescription)
        }
    }

    func testLimitsAndUnsupportedFeaturesHaveTheirStatus() {
        XCTAssertEqual(parse("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\n"), .error(status: 431))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "b", count: 9000))"), .error(status: 431))
        let manyHeaders = (0..<150).map { "X\($0): y\r\n" }.joined()
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\n\(manyHeaders)\r\n"), .error(status: 431))
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"), .error(status: 413))
        XCTAssertEqual(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), .error(status: 501))
        XCTAssertEqual(parse("GET / HTTP/2.0\r\n\r\n"), .error(status: 505))
    }

    func testAnyMethodTokenParsesSoThatThePageCanAnswer405() throws {
        XCTAssertEqual(try XCTUnwrap(request("DELETE /stats HTTP/1.1\r\nHost: a\r\n\r\n")).method, "DELETE")
    }
}

// Things that parse but that an operator should hear about: ignored keywords (with the reason),
// missing timeouts (as HAProxy warns), settings that have no effect in their section.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigWarningTests: XCTestCase {
    private let complete = """
        frontend mqtt_in
          bind *:1883
          default_backend brokers
        backend brokers
          server b1 127.0.0.1:18831
        """

    func testCompleteConfigurationHasNoWarnings() {
        XCTAssertEqual(ConfigTestSupport.warnings(ConfigTestSupport.preamble + complete), [])
    }

    func testDaemonIsAcceptedWithAWarning() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("global\n  daemon\n"))
        XCTAssertTrue(config.global.daemon)
        XCTAssertEqual(config.warnings.map(\.description), [
            "haproxy.cfg:2: 'daemon': ignored: ringproxy runs in the foreground; use systemd",
        ])
    }

    func testNoOpOptionsAreAcceptedWithAWarning() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            defaults
              option dontlognull
              option httplog
              option tcpka
              option log-health-checks
              no option dontlognull
            """))
        XCTAssertEqual(config.defaults[0].settings.options.httplog, true)
        XCTAssertEqual(config.defaults[0].settings.options.dontlognull, false, "the later 'no option' wins")
        XCTAssertEqual(config.warnings.map(\.description), [
            "haproxy.cfg:4: 'option tcpka': ignored: not implemented by ringproxy",
            "haproxy.cfg:5: 'option log-health-checks': ignored: not implemented by ringproxy",
        ])
    }

    func testChecksRingproxyCannotRunAreRefusedAndTheirSettingsIgnored() {
        // A check type that is not built must not leave servers unchecked unnoticed.
        ConfigTestSupport.assertErrors("""
            defaults
              option httpchk GET /health
              option redis-check
            """, [
                "haproxy.cfg:2: 'option httpchk': 'option httpchk' is not supported by ringproxy: check MQTT brokers with 'option mqtt-check' (CONNECT, expect CONNACK 0) or 'option tcp-check' rules",
                "haproxy.cfg:3: 'option redis-check': 'option redis-check' is not supported by ringproxy: check MQTT brokers with 'option mqtt-check' (CONNECT, expect CONNACK 0) or 'option tcp-check' rules",
            ])
        XCTAssertEqual(ConfigTestSupport.warnings("""
            backend b
              timeout connect 5s
              timeout server 5s
              http-check expect status 200
              tcp-check connect
              external-check command /bin/true
              server s1 127.0.0.1:18831
            """), [
                "haproxy.cfg:4: 'http-check': ignored: ringproxy checks servers with a connect, 'option tcp-check' or 'option mqtt-check'",
                "haproxy.cfg:6: 'external-check': ignored: ringproxy checks servers with a connect, 'option tcp-check' or 'option mqtt-check'",
            ])
    }

    func testProcessLevelGlobalKeywordsAreIgnoredWithTheirReason() {
        XCTAssertEqual(ConfigTestSupport.warnings("""
            global
              user haproxy
              chroot /var/lib/haproxy
              stats socket /run/haproxy/admin.sock mode 660 level admin
              tune.maxrewrite 1024
              ssl-default-server-ciphers ECDHE+AESGCM
              nbproc 2
            """), [
                "haproxy.cfg:2: 'user': ignored: ringproxy runs in the foreground under systemd; set this in its unit file",
                "haproxy.cfg:3: 'chroot': ignored: ringproxy runs in the foreground under systemd; set this in its unit file",
                "haproxy.cfg:5: 'tune.maxrewrite': ignored: HAProxy tuning has no ringproxy equivalent",
                "haproxy.cfg:7: 'nbproc': ignored: ringproxy runs one worker per core; use 'nbthread' to limit them",
            ])
    }

    func testMissingTimeoutsInAFrontendAndABackendAreWarnedAboutLikeHAProxyDoes() {
        XCTAssertEqual(ConfigTestSupport.warnings(complete), [
            "haproxy.cfg:1: 'frontend': missing timeouts for frontend 'mqtt_in': 'timeout client' is not set (HAProxy warns too: idle connections would never expire; set them here or in its defaults section)",
            "haproxy.cfg:4: 'backend': missing timeouts for backend 'brokers': 'timeout connect', 'timeout server' are not set (HAProxy warns too: idle connections would never expire; set them here or in its defaults section)",
        ])
    }

    func testMissingTimeoutsInAListenAreOneWarning() {
        XCTAssertEqual(ConfigTestSupport.warnings("""
            listen mqtt
              bind *:1883
              timeout connect 5s
              server b1 127.0.0.1:18831
            """), [
                "haproxy.cfg:1: 'listen': missing timeouts for listen 'mqtt': 'timeout client', 'timeout server' are not set (HAProxy warns too: idle connections would never expire; set them here or in its defaults section)",
            ])
    }

    func testTunnelTimeoutStandsInForTheServerTimeoutInTCPMode() {
        XCTAssertEqual(ConfigTestSupport.warnings("""
            defaults
              timeout connect 5s
              timeout client 1m
              timeout tunnel 1h
            \(complete)
            """), [])
    }

    func testSettingsThatDoNotApplyInASectionAreIgnoredWithAWarning() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + """
            frontend mqtt_in
              bind *:1883
              timeout server 10s
              retries 5
              default_backend brokers
            backend brokers
              timeout client 10s
              maxconn 100
              option dontlognull
              server b1 127.0.0.1:18831
            """))
        XCTAssertNil(config.frontends[0].settings.timeouts.serverMs)
        XCTAssertNil(config.backends[0].settings.timeouts.clientMs)
        XCTAssertNil(config.backends[0].settings.maxconn)
        XCTAssertEqual(config.warnings.map(\.description), [
            "haproxy.cfg:16: 'timeout server': ignored in frontend section (it only applies in a defaults, backend or listen section)",
            "haproxy.cfg:17: 'retries': ignored in frontend section (it only applies in a defaults, backend or listen section)",
            "haproxy.cfg:20: 'timeout client': ignored in backend section (it only applies in a defaults, frontend or listen section)",
            "haproxy.cfg:21: 'maxconn': ignored in backend section (it only applies in a defaults, frontend or listen section)",
            "haproxy.cfg:22: 'option dontlognull': ignored in backend section (it only applies in a defaults, frontend or listen section)",
        ])
    }

    func testUnsupportedSectionsAreSkippedWithAWarning() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + """
            userlist admins
              user admin password secret
            peers mesh
              peer node1 10.0.0.1:10000
            \(complete)
            """))
        XCTAssertEqual(config.backends.map(\.name), ["brokers"])
        XCTAssertEqual(config.warnings.map(\.description), [
            "haproxy.cfg:14: 'userlist': section ignored: not implemented by ringproxy",
            "haproxy.cfg:16: 'peers': section ignored: not implemented by ringproxy",
        ])
    }

    func testFrontendWithNowhereToSendConnectionsIsWarnedAbout() {
        XCTAssertEqual(ConfigTestSupport.warnings(ConfigTestSupport.preamble + """
            frontend lonely
              bind *:1883
            """), [
                "haproxy.cfg:14: 'frontend': frontend 'lonely' has no 'default_backend' and no 'use_backend' (connections it accepts have nowhere to go and are closed)",
            ])
    }

    func testIgnoredServerAndBindOptionsAreNamedInTheWarning() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + """
            frontend mqtt_in
              bind *:1883 v4v6 backlog 1024
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831 check resolvers dns agent-check
            """))
        XCTAssertEqual(config.backends[0].servers[0].options.check, true)
        XCTAssertEqual(config.warnings.map(\.description), [
            "haproxy.cfg:15: 'bind': 'v4v6' ignored: not implemented by ringproxy",
            "haproxy.cfg:15: 'bind': 'backlog 1024' ignored: not implemented by ringproxy",
            "haproxy.cfg:18: 'server': 'resolvers dns' ignored: not implemented by ringproxy",
            "haproxy.cfg:18: 'server': 'agent-check' ignored: not implemented by ringproxy",
        ])
    }

    func testUnsetEnvironmentVariableIsWarnedAboutOnItsLine() {
        let warnings = ConfigTestSupport.warnings(ConfigTestSupport.preamble + """
            frontend mqtt_in
              bind "${BIND_ADDR-*}:1883"
              bind "127.0.0.1:${ADMIN_PORT}1884"
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """)
        XCTAssertEqual(warnings, [
            "haproxy.cfg:16: environment variable 'ADMIN_PORT' is not set; it expands to an empty string (set it, or give a default with ${ADMIN_PORT-value})",
        ])
    }

    func testNoticeAndWarningDirectivesBecomeWarnings() {
        XCTAssertEqual(ConfigTestSupport.warnings("""
            .notice "migrated from HAProxy 2.8"
            .warning "TLS is not configured yet"
            global
            """), [
                "haproxy.cfg:1: '.notice': migrated from HAProxy 2.8",
                "haproxy.cfg:2: '.warning': TLS is not configured yet",
            ])
    }

    func testTLSSettingsWithoutSSLAreWarnedAbout() {
        XCTAssertEqual(ConfigTestSupport.warnings(ConfigTestSupport.preamble + """
            frontend mqtt_in
              bind *:8883 crt server.pem
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """), [
                "haproxy.cfg:15: 'bind': TLS settings without 'ssl': this listener accepts plain TCP (add 'ssl' to terminate TLS)",
            ])
    }
}

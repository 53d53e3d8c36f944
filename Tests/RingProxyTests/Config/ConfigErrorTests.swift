// One test per error path: each asserts the exact `FILE:LINE: 'keyword': message (hint)` line an
// operator reads, so that the wording is part of the contract.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigErrorTests: XCTestCase {
    private func assertErrors(_ text: String, _ expected: [String], environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) {
        ConfigTestSupport.assertErrors(text, expected, environment: environment, file: file, line: line)
    }

    // MARK: keywords

    func testMisspelledKeywordSuggestsTheClosestValidOne() {
        assertErrors("""
            backend mqtt_backend
              balanse roundrobin
              server emqx1 127.0.0.1:18831
            """, ["haproxy.cfg:2: unknown keyword 'balanse' in backend section (did you mean 'balance'?)"])
    }

    func testUnknownKeywordFarFromAnyValidOneHasNoSuggestion() {
        assertErrors("""
            backend b
              frobnicate 3
            """, ["haproxy.cfg:2: unknown keyword 'frobnicate' in backend section"])
    }

    func testSuggestionsOnlyComeFromKeywordsValidInThatSection() {
        assertErrors("""
            global
              maxcon 100
              nbthred 4
            """, [
                "haproxy.cfg:2: unknown keyword 'maxcon' in global section (did you mean 'maxconn'?)",
                "haproxy.cfg:3: unknown keyword 'nbthred' in global section (did you mean 'nbthread'?)",
            ])
    }

    func testMisspelledOptionAndTimeoutSuggestTheirFullKeyword() {
        assertErrors("""
            defaults
              option tcplgo
              timeout clinet 5s
              no option redispatc
            """, [
                "haproxy.cfg:2: unknown keyword 'option tcplgo' in defaults section (did you mean 'option tcplog'?)",
                "haproxy.cfg:3: unknown keyword 'timeout clinet' in defaults section (did you mean 'timeout client'?)",
                "haproxy.cfg:4: unknown keyword 'no option redispatc' in defaults section (did you mean 'no option redispatch'?)",
            ])
    }

    func testBindInABackendIsNotAllowed() {
        assertErrors("""
            backend b
              bind *:1883
              server s1 127.0.0.1:1883
            """, ["haproxy.cfg:2: 'bind': not allowed in backend section (use it in a frontend or listen section)"])
    }

    func testServerInAFrontendIsNotAllowed() {
        assertErrors("""
            frontend f
              bind *:1883
              server s1 127.0.0.1:1883
            """, ["haproxy.cfg:3: 'server': not allowed in frontend section (use it in a backend or listen section)"])
    }

    func testProxyOnlyKeywordsInDefaultsAreNotAllowed() {
        assertErrors("""
            defaults
              use_backend b
              stick on src
              stick-table type ip size 1k
            """, [
                "haproxy.cfg:2: 'use_backend': not allowed in defaults section (use it in a frontend or listen section)",
                "haproxy.cfg:3: 'stick': not allowed in defaults section (use it in a backend or listen section)",
                "haproxy.cfg:4: 'stick-table': not allowed in defaults section (use it in a frontend, backend or listen section)",
            ])
    }

    func testGlobalKeywordsInAProxyAndProxyKeywordsInGlobalAreNotAllowed() {
        assertErrors("""
            global
              mode tcp
            defaults
              daemon
              nbthread 4
            """, [
                "haproxy.cfg:2: 'mode': not allowed in global section (it belongs in a defaults, frontend, backend or listen section)",
                "haproxy.cfg:4: 'daemon': not allowed in defaults section (it belongs in the global section)",
                "haproxy.cfg:5: 'nbthread': not allowed in defaults section (it belongs in the global section)",
            ])
    }

    func testKeywordBeforeAnySectionIsAnError() {
        assertErrors("""
            # a comment is fine
            maxconn 100

            global
              maxconn 100
            """, ["haproxy.cfg:2: 'maxconn': appears before any section (start a 'global', 'defaults', 'frontend', 'backend' or 'listen' section first)"])
    }

    func testRemovedAndUnsupportedKeywordsAreErrors() {
        assertErrors("""
            defaults
              contimeout 5000
            frontend f
              bind *:80
              http-request deny
              default_backend b
            backend b
              server s1 127.0.0.1:80
            """, [
                "haproxy.cfg:2: 'contimeout': was removed from HAProxy (use 'timeout connect')",
                "haproxy.cfg:5: 'http-request': not supported by ringproxy",
            ])
    }

    func testConditionalBlocksAndAlertsAreErrors() {
        assertErrors("""
            .if defined(TLS)
            global
              maxconn 10
            .endif
            .alert "configure TLS first"
            """, [
                "haproxy.cfg:1: '.if': conditional blocks are not supported by ringproxy (keep the lines you want and remove the .if/.elif/.else/.endif lines)",
                "haproxy.cfg:5: '.alert': configure TLS first",
            ])
    }

    // MARK: arguments

    func testServerWithoutAddress() {
        assertErrors("""
            backend b
              server emqx1
              server
            """, [
                "haproxy.cfg:2: 'server': missing address (expected 'server <name> <address>:<port> [options]')",
                "haproxy.cfg:3: 'server': missing name and address (expected 'server <name> <address>:<port> [options]')",
            ])
    }

    func testServerWithABadOrMissingPort() {
        assertErrors("""
            backend b
              server s1 127.0.0.1:99999
              server s2 127.0.0.1:mqtt
              server s3 127.0.0.1
              server s4 127.0.0.1:0
            """, [
                "haproxy.cfg:2: 'server': invalid port '99999' in address '127.0.0.1:99999' (ports are 1 to 65535)",
                "haproxy.cfg:3: 'server': invalid port 'mqtt' in address '127.0.0.1:mqtt' (ports are 1 to 65535)",
                "haproxy.cfg:4: 'server': missing port in address '127.0.0.1' (ringproxy needs an explicit port: '127.0.0.1:1883')",
                "haproxy.cfg:5: 'server': invalid port '0' in address '127.0.0.1:0' (ports are 1 to 65535)",
            ])
    }

    func testServerWithABadHost() {
        assertErrors("""
            backend b
              server s1 300.1.2.3:1883
              server s2 -broker-:1883
              server s3 /var/run/broker.sock
              server s4 [::1:1883
              server s5 fe80::1:1883
            """, [
                "haproxy.cfg:2: 'server': invalid host '300.1.2.3' in address '300.1.2.3:1883'",
                "haproxy.cfg:3: 'server': invalid host '-broker-' in address '-broker-:1883'",
                "haproxy.cfg:4: 'server': address '/var/run/broker.sock' is not supported by ringproxy (servers are reached over TCP: '<host>:<port>')",
                "haproxy.cfg:5: 'server': invalid address '[::1:1883' (e.g. 127.0.0.1:1883 or [::1]:1883)",
            ])
    }

    func testWeightAboveHAProxysLimitIsRejected() {
        assertErrors("""
            backend b
              server s1 127.0.0.1:1883 weight 300
              server s2 127.0.0.1:1884 weight heavy
            """, [
                "haproxy.cfg:2: 'server': weight 300 is out of range (allowed: 0 to 256)",
                "haproxy.cfg:3: 'server': invalid weight 'heavy' (expected a whole number)",
            ])
    }

    func testServerOptionsWithBadValuesOrUnknownNames() {
        assertErrors("""
            backend b
              server s1 127.0.0.1:1883 chek
              server s2 127.0.0.1:1884 check inter 2x
              server s3 127.0.0.1:1885 rise 0
              server s4 127.0.0.1:1886 maxconn
              server s5 127.0.0.1:1887
              server s5 127.0.0.1:1888
              server s6 127.0.0.1:1889 verify optional
            """, [
                "haproxy.cfg:2: 'server': unknown option 'chek' (did you mean 'check'?)",
                "haproxy.cfg:3: 'server': invalid time '2x' for 'inter': unknown unit 'x' (units are us, ms, s, m, h, d; a bare number is milliseconds)",
                "haproxy.cfg:4: 'server': rise 0 is out of range (allowed: 1 to 2147483647)",
                "haproxy.cfg:5: 'server': missing value after 'maxconn'",
                "haproxy.cfg:7: 'server': server name 's5' is already used at line 6",
                "haproxy.cfg:8: 'server': invalid verify 'optional' (expected 'verify none' or 'verify required')",
            ])
    }

    func testGarbageTimeIsRejected() {
        assertErrors("""
            defaults
              timeout client 10x
              timeout server
              timeout connect 5s 10s
              timeout tunnel 30d
            """, [
                "haproxy.cfg:2: 'timeout client': invalid time '10x': unknown unit 'x' (units are us, ms, s, m, h, d; a bare number is milliseconds)",
                "haproxy.cfg:3: 'timeout server': missing argument (expected 'timeout server <time>')",
                "haproxy.cfg:4: 'timeout connect': unexpected '10s' (expected 'timeout connect <time>')",
                "haproxy.cfg:5: 'timeout tunnel': time '30d' is too large (the maximum is 2147483647 ms, about 24.8 days)",
            ])
    }

    func testBadNumbersAreRejected() {
        assertErrors("""
            global
              maxconn lots
              nbthread 0
            defaults
              retries -1
              maxconn 0
            """, [
                "haproxy.cfg:2: 'maxconn': invalid value 'lots' (expected a whole number)",
                "haproxy.cfg:3: 'nbthread': value 0 is out of range (allowed: 1 to 4096)",
                "haproxy.cfg:5: 'retries': invalid value '-1' (expected a whole number)",
                "haproxy.cfg:6: 'maxconn': value 0 is out of range (allowed: 1 to 2147483647)",
            ])
    }

    func testBadModeAndBalanceAreRejectedWithSuggestions() {
        assertErrors("""
            backend b
              mode tpc
              balance roundrobbin
              server s1 127.0.0.1:1883
            backend c
              balance hash
              balance roundrobin extra
              balance clientid-hash client_identifier
              balance clientid_hash
            """, [
                "haproxy.cfg:2: 'mode': unknown mode 'tpc' (did you mean 'tcp'?)",
                "haproxy.cfg:3: 'balance': unknown algorithm 'roundrobbin' (did you mean 'roundrobin'?)",
                "haproxy.cfg:6: 'balance': 'hash' needs a sample expression (e.g. 'balance hash req.payload(0,0),mqtt_field_value(connect,client_identifier)')",
                "haproxy.cfg:7: 'balance': unexpected 'extra' ('balance roundrobin' takes no argument)",
                "haproxy.cfg:8: 'balance': unexpected 'client_identifier' ('balance clientid-hash' takes no argument)",
                "haproxy.cfg:9: 'balance': unknown algorithm 'clientid_hash' (did you mean 'clientid-hash'?)",
            ])
    }

    func testBadLogLines() {
        assertErrors("""
            global
              log 127.0.0.1 local8 info
              log 127.0.0.1
              log 127.0.0.1 local0 loud
              log ring@buffer local0
              log
            """, [
                "haproxy.cfg:2: 'log': unknown facility 'local8' (did you mean 'local0'?)",
                "haproxy.cfg:3: 'log': missing facility (expected 'log <address> [len <length>] [format <format>] <facility> [<level> [<minlevel>]]', e.g. local0)",
                "haproxy.cfg:4: 'log': unknown level 'loud' (known: emerg, alert, crit, err, warning, notice, info, debug)",
                "haproxy.cfg:5: 'log': log target 'ring@buffer' is not supported by ringproxy (use a UDP address, a UNIX socket path, stdout or stderr)",
                "haproxy.cfg:6: 'log': missing address (expected 'log <address> [len <length>] [format <format>] <facility> [<level> [<minlevel>]]', e.g. 'log 127.0.0.1 local0 info' or 'log stderr local0')",
            ])
    }

    func testBadBindLines() {
        assertErrors("""
            frontend f
              bind *
              bind *:1883 ssl
              bind *:8883 ssl crt server.pem verify required
              bind *:1883 sssl
              bind /run/mqtt.sock
              bind *:2000-1000
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:2: 'bind': missing port in address '*' (e.g. '*:1883')",
                "haproxy.cfg:3: 'bind': 'ssl' needs a certificate (add 'crt <path to PEM file>')",
                "haproxy.cfg:4: 'bind': 'verify required' needs 'ca-file' (name the CAs that sign client certificates: 'ca-file <path>')",
                "haproxy.cfg:5: 'bind': unknown option 'sssl' (did you mean 'ssl'?)",
                "haproxy.cfg:6: 'bind': address '/run/mqtt.sock' is not supported by ringproxy (ringproxy listens on TCP addresses: '*:1883')",
                "haproxy.cfg:7: 'bind': invalid port '2000-1000' in address '*:2000-1000' (ports are 1 to 65535; a range is written 1883-1890)",
            ])
    }

    func testBadStickTables() {
        assertErrors("""
            backend a
              stick-table type string len 32 expire 30m
            backend b
              stick-table type text size 1k
            backend c
              stick-table type ip size 100x
            backend d
              stick-table type ip size 1k expyre 30m
            backend e
              stick-table type ip size 1k
              stick-table type ip size 2k
            """, [
                "haproxy.cfg:2: 'stick-table': missing 'size' (e.g. 'stick-table type string len 32 size 100k expire 30m')",
                "haproxy.cfg:4: 'stick-table': unknown type 'text' (known: ip, ipv6, integer, string, binary)",
                "haproxy.cfg:6: 'stick-table': invalid size '100x': unknown suffix 'x' (expected a number with an optional suffix k, m or g, each a factor of 1024)",
                "haproxy.cfg:8: 'stick-table': unknown parameter 'expyre' (did you mean 'expire'?)",
                "haproxy.cfg:11: 'stick-table': a proxy has only one stick-table; the first is at line 10",
            ])
    }

    func testBadStatsLines() {
        assertErrors("""
            frontend stats
              mode http
              bind *:8404
              stats
              stats socket /run/haproxy.sock
              stats auth admin
              stats refresh often
              stats realm Ring Proxy
              stats urri /stats
            """, [
                "haproxy.cfg:4: 'stats': missing stats keyword (e.g. 'stats enable' or 'stats uri /stats')",
                "haproxy.cfg:5: 'stats socket': only allowed in the global section (the stats socket is declared once, in global)",
                "haproxy.cfg:6: 'stats auth': expected '<user>:<password>', found 'admin'",
                "haproxy.cfg:7: 'stats refresh': invalid time 'often' (expected a number with an optional unit; units are us, ms, s, m, h, d; a bare number is milliseconds)",
                "haproxy.cfg:8: 'stats realm': unexpected 'Proxy' (quote the realm or escape its spaces: stats realm HAProxy\\ Statistics)",
                "haproxy.cfg:9: unknown keyword 'stats urri' in frontend section (did you mean 'stats uri'?)",
            ])
    }

    func testBadACLAndOptionAndNoLines() {
        assertErrors("""
            frontend f
              bind *:1883
              acl
              acl is_mqtt
              acl listed src -M /etc/ringproxy/allow.map
              acl bad!name src 10.0.0.1
              option
              no
              no balance
              mode health
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'acl': missing ACL name (expected 'acl <name> <criterion> [flags] [patterns]')",
                "haproxy.cfg:4: 'acl': missing criterion (expected 'acl <name> <criterion> [flags] [patterns]')",
                "haproxy.cfg:5: 'acl': map files ('-M') are not supported by ringproxy (use '-f <file>' for a list of patterns)",
                "haproxy.cfg:6: 'acl': invalid character '!' in ACL name 'bad!name' (names may contain letters, digits, '-', '_', '.' and ':')",
                "haproxy.cfg:7: 'option': missing option name (e.g. 'option tcplog')",
                "haproxy.cfg:8: 'no': missing keyword after 'no' (e.g. 'no option tcplog' or 'no log')",
                "haproxy.cfg:9: 'no': 'no balance' is not supported (ringproxy knows 'no option <name>' and 'no log')",
                "haproxy.cfg:10: 'mode': 'mode health' is not supported by ringproxy (HAProxy 2.x removed it too; use 'mode tcp')",
            ])
    }

    func testNoOptionRedispatchIsRefusedBecauseRetriesAlwaysGoToTheNextServer() {
        assertErrors("""
            defaults
              option redispatch
            backend b
              no option redispatch
              server s1 127.0.0.1:18831
              server s2 127.0.0.1:18832
            """, [
                "haproxy.cfg:4: 'no option redispatch': ringproxy always redispatches: each retry of a failed connection goes to the next server; retrying the same server is not supported (remove it; 'retries 0' gives up after the first failed attempt instead)",
            ])
    }

    func testRedispatchIntervalsThatKeepRetriesOnTheSameServerAreRefused() {
        assertErrors("""
            backend b
              option redispatch 0
              option redispatch 2
              option redispatch -1
              option redispatch often
              option redispatch 1 2
              server s1 127.0.0.1:18831
            """, [
                "haproxy.cfg:2: 'option redispatch': an interval of 0 turns it off; ringproxy always redispatches: each retry of a failed connection goes to the next server; retrying the same server is not supported (remove it; 'retries 0' gives up after the first failed attempt instead)",
                "haproxy.cfg:3: 'option redispatch': redispatching on some retries only (interval 2) is not supported; ringproxy always redispatches: each retry of a failed connection goes to the next server (use 'option redispatch 1' or plain 'option redispatch')",
                "haproxy.cfg:4: 'option redispatch': redispatching on some retries only (interval -1) is not supported; ringproxy always redispatches: each retry of a failed connection goes to the next server (use 'option redispatch 1' or plain 'option redispatch')",
                "haproxy.cfg:5: 'option redispatch': unexpected 'often' ('option redispatch' takes at most one number, the retries between redispatches)",
                "haproxy.cfg:6: 'option redispatch': unexpected '2' ('option redispatch' takes at most one number, the retries between redispatches)",
            ])
    }

    func testBadTCPRequestAndStickKeywords() {
        assertErrors("""
            frontend f
              bind *:1883
              tcp-request
              tcp-request contnet accept
              tcp-request inspect-delay forever
              tcp-request content
              default_backend b
            backend b
              stick-table type ip size 1k
              stick
              stick store-response src
              stick onn src
              stick on
              stick on src table
              stick on src when
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'tcp-request': missing 'inspect-delay', 'content' or 'connection' (e.g. 'tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }')",
                "haproxy.cfg:4: unknown keyword 'tcp-request contnet' in frontend section (did you mean 'tcp-request content'?)",
                "haproxy.cfg:5: 'tcp-request inspect-delay': invalid time 'forever' (expected a number with an optional unit; units are us, ms, s, m, h, d; a bare number is milliseconds)",
                "haproxy.cfg:6: 'tcp-request content': missing action (expected 'tcp-request content accept|reject [if|unless <condition>]')",
                "haproxy.cfg:10: 'stick': missing 'on', 'match' or 'store-request' (e.g. 'stick on src')",
                "haproxy.cfg:11: 'stick store-response': not supported by ringproxy (keys come from the request: use 'stick on' or 'stick store-request')",
                "haproxy.cfg:12: unknown keyword 'stick onn' in backend section (did you mean 'stick on'?)",
                "haproxy.cfg:13: 'stick on': missing sample expression (e.g. 'stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)')",
                "haproxy.cfg:14: 'stick on': missing backend name after 'table'",
                "haproxy.cfg:15: 'stick on': unexpected 'when' after the sample expression (a condition starts with 'if' or 'unless')",
            ])
    }

    func testPROXYProtocolOptionsThatCannotBeHonouredAreErrors() {
        assertErrors("""
            frontend f
              bind *:1883 accept-proxy
              tcp-request connection expect-proxy layer3 if { src 10.0.0.0/8 }
              default_backend b
            backend b
              server s1 127.0.0.1:1883 send-proxy-v2 proxy-v2-options ssl,cert-nc
              server s2 127.0.0.1:1884 send-proxy-v2 set-proxy-v2-tlv-fmt(0xE1) %[fc_pp_tlv(0xE1)]
            """, [
                "haproxy.cfg:3: 'tcp-request connection': 'expect-proxy' needs 'layer4' (tcp-request connection expect-proxy layer4 if { src <front balancers> })",
                "haproxy.cfg:6: 'server': unknown proxy-v2-options value 'cert-nc' (did you mean 'cert-cn'?)",
                "haproxy.cfg:7: 'server': 'set-proxy-v2-tlv-fmt' (custom TLVs in PROXY v2 headers) is not implemented yet",
            ])
    }

    func testMoreBadBindAndServerOptions() {
        assertErrors("""
            frontend f
              bind *:8883 ssl crt-list /etc/certs.lst
              bind *:8883 ssl crt a.pem verify sometimes
              bind *:8883 ssl crt a.pem ssl-min-ver TLSv1.4
              bind *:8883 ssl crt
              bind *:1883 maxconn 0
              default_backend b
            backend b
              default-server 127.0.0.1:1883 check
              server s1 127.0.0.1:1883 port 70000
              server s2 127.0.0.1:+1000
            """, [
                "haproxy.cfg:2: 'bind': 'crt-list' is not supported by ringproxy (list certificates with several 'crt <path>')",
                "haproxy.cfg:3: 'bind': invalid verify 'sometimes' (expected none, optional or required)",
                "haproxy.cfg:4: 'bind': invalid 'ssl-min-ver' value 'TLSv1.4' (known: SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)",
                "haproxy.cfg:5: 'bind': missing value after 'crt'",
                "haproxy.cfg:6: 'bind': maxconn 0 is out of range (allowed: 1 to 2147483647)",
                "haproxy.cfg:9: 'default-server': takes options only, not an address (e.g. 'default-server inter 2s rise 2 fall 3')",
                "haproxy.cfg:10: 'server': invalid check port '70000' (ports are 1 to 65535)",
                "haproxy.cfg:11: 'server': port offsets such as '+1000' are not supported by ringproxy (write the port itself)",
            ])
    }

    func testMoreBadSelectionAndBalanceLines() {
        assertErrors("""
            frontend f
              bind *:1883
              use_backend
              use_backend be_%[req.len]
              default_backend
              default_backend a b
            backend b
              balance hdr
              balance random(two)
              balance url_param
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'use_backend': missing backend name (expected 'use_backend <backend> [if|unless <condition>]')",
                "haproxy.cfg:4: 'use_backend': backend names computed from samples are not supported by ringproxy (name the backend, and choose it with 'use_backend <name> if <condition>')",
                "haproxy.cfg:5: 'default_backend': missing argument (expected 'default_backend <backend>')",
                "haproxy.cfg:6: 'default_backend': unexpected 'b' (expected 'default_backend <backend>')",
                "haproxy.cfg:8: 'balance': 'hdr' needs a name (e.g. 'balance hdr(<name>)')",
                "haproxy.cfg:9: 'balance': 'random' takes at most one number, the count of draws (e.g. 'balance random(2)')",
                "haproxy.cfg:10: 'balance': 'url_param' needs a name (e.g. 'balance url_param <name>')",
            ])
    }

    func testMoreBadGlobalLines() {
        assertErrors("""
            global foo
              lua-load /etc/haproxy/auth.lua
              log global
              log 127.0.0.1 len 10 local0
              log 127.0.0.1 format json local0
              log ::1 local0
              log 127.0.0.1:70000 local0
              daemon now
            """, [
                "haproxy.cfg:1: 'global': takes no arguments (remove 'foo')",
                "haproxy.cfg:2: 'lua-load': Lua scripts are not supported by ringproxy",
                "haproxy.cfg:3: 'log': 'log global' is for proxies (the global section declares the targets: 'log 127.0.0.1 local0')",
                "haproxy.cfg:4: 'log': len 10 is out of range (allowed: 80 to 65535)",
                "haproxy.cfg:5: 'log': unknown log format 'json' (known: local, rfc3164, rfc5424, short, raw, priority, timed, iso)",
                "haproxy.cfg:6: 'log': invalid host ':' in log address '::1' (write IPv6 addresses in brackets, e.g. [::1]:514: without them the text after the last colon is the port)",
                "haproxy.cfg:7: 'log': invalid port '70000' in log address '127.0.0.1:70000' (ports are 1 to 65535)",
                "haproxy.cfg:8: 'daemon': unexpected 'now' (expected 'daemon')",
            ])
    }

    func testAmbiguousDefaultsNameInFrom() {
        assertErrors("""
            defaults base
              mode tcp
            defaults base
              mode http
            backend b from base
              server s1 127.0.0.1:1883
            """, ["haproxy.cfg:5: 'backend': defaults section name 'base' is not unique (rename one of the defaults sections declared at lines 1, 3)"])
    }

    // MARK: sections and references

    func testDuplicateBackendNames() {
        assertErrors("""
            backend mqtt_backend
              server s1 127.0.0.1:1883
            backend mqtt_backend
              server s2 127.0.0.1:1884
            """, ["haproxy.cfg:3: 'backend': name 'mqtt_backend' is already used by the backend declared at haproxy.cfg:1"])
    }

    func testDuplicateFrontendNames() {
        assertErrors("""
            frontend mqtt
              bind *:1883
            frontend mqtt
              bind *:1884
            """, ["haproxy.cfg:3: 'frontend': name 'mqtt' is already used by the frontend declared at haproxy.cfg:1"])
    }

    func testListenClashesWithBothFrontendsAndBackends() {
        assertErrors("""
            backend mqtt
              server s1 127.0.0.1:1883
            listen mqtt
              bind *:1883
              server s2 127.0.0.1:1884
            frontend edge
              bind *:1884
              default_backend mqtt
            listen edge
              bind *:1885
              server s3 127.0.0.1:1885
            """, [
                "haproxy.cfg:3: 'listen': name 'mqtt' is already used by the backend declared at haproxy.cfg:1",
                "haproxy.cfg:9: 'listen': name 'edge' is already used by the frontend declared at haproxy.cfg:6",
            ])
    }

    func testDefaultBackendNamingAMissingBackendSuggestsTheClosestName() {
        assertErrors("""
            frontend f
              bind *:1883
              default_backend mqtt_backnd
              use_backend other
            backend mqtt_backend
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'default_backend': no backend named 'mqtt_backnd' (did you mean 'mqtt_backend'?)",
                "haproxy.cfg:4: 'use_backend': no backend named 'other' (declare it with 'backend other')",
            ])
    }

    func testFrontendWithoutBind() {
        assertErrors("""
            frontend mqtt_servers
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            listen both
              server s2 127.0.0.1:1884
            """, [
                "haproxy.cfg:1: 'frontend': frontend 'mqtt_servers' has no 'bind' line (add one such as 'bind *:1883', or make it a backend if it only holds servers)",
                "haproxy.cfg:5: 'listen': listen 'both' has no 'bind' line (add one such as 'bind *:1883')",
            ])
    }

    func testStickOnWithoutAStickTableInThatBackend() {
        assertErrors("""
            backend b
              stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)
              server s1 127.0.0.1:1883
            """, ["haproxy.cfg:2: 'stick on': backend 'b' has no 'stick-table' (add one such as 'stick-table type string len 32 size 100k expire 30m', or name another backend's with 'table <backend>')"])
    }

    func testStickRuleNamingAnotherBackendsTableNeedsThatTable() throws {
        assertErrors("""
            backend a
              stick match src table b
              stick on src table nowhere
              server s1 127.0.0.1:1883
            backend b
              server s2 127.0.0.1:1884
            """, [
                "haproxy.cfg:2: 'stick match': backend 'b' has no 'stick-table' (declare the table in that backend)",
                "haproxy.cfg:3: 'stick on': no backend named 'nowhere' for 'table'",
            ])
        // With the table there, the same rule is fine.
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            backend a
              stick match src table b
              server s1 127.0.0.1:1883
            backend b
              stick-table type ip size 1k
              server s2 127.0.0.1:1884
            """))
        XCTAssertEqual(config.backend(named: "a")?.stickRules.first?.table, "b")
    }

    func testFromMustNameADefaultsSectionAbove() {
        assertErrors("""
            defaults tcp_defaults
              mode tcp
            backend b from tcp_default
              server s1 127.0.0.1:1883
            backend c from web
              server s1 127.0.0.1:1883
            defaults web
            """, [
                "haproxy.cfg:3: 'backend': no defaults section named 'tcp_default' (did you mean 'tcp_defaults'?)",
                "haproxy.cfg:5: 'backend': no defaults section named 'web' (a 'from' must name a defaults section declared above)",
            ])
    }

    func testSectionHeadersNeedAValidName() {
        assertErrors("""
            backend
            frontend mqtt/in
              bind *:1883
            """, [
                "haproxy.cfg:1: 'backend': missing backend name (e.g. 'backend mqtt_servers')",
                "haproxy.cfg:2: 'frontend': invalid character '/' in frontend name 'mqtt/in' (names may contain letters, digits, '-', '_', '.' and ':')",
            ])
    }

    func testHTTPFrontendCannotUseATCPBackend() {
        assertErrors("""
            frontend web
              mode http
              bind *:80
              default_backend brokers
            backend brokers
              mode tcp
              server s1 127.0.0.1:1883
            """, ["haproxy.cfg:4: 'default_backend': frontend 'web' is in http mode but backend 'brokers' is in tcp mode (HAProxy refuses this too; use the same mode on both)"])
    }

    func testServerTLSWithoutACAFileIsRefusedUnlessVerifyNone() throws {
        assertErrors("""
            backend b
              server s1 127.0.0.1:8883 ssl
              server s2 127.0.0.1:8884 ssl verify none
              server s3 127.0.0.1:8885 ssl ca-file ca.pem
            """, ["haproxy.cfg:2: 'server': server 's1' verifies its certificate (the default with 'ssl') but has no 'ca-file' (add 'ca-file <path>', or 'verify none' (global 'ssl-server-verify none') if the network is trusted)"])
        XCTAssertNotNil(ConfigTestSupport.parse("""
            global
              ssl-server-verify none
            backend b
              server s1 127.0.0.1:8883 ssl
            """))
    }

    func testServerTLSOptionsRefuseWhatCannotWork() throws {
        assertErrors("""
            global
              ssl-default-server-options no-tls-tickets prefer-client-ciphers
            backend b
              server s1 127.0.0.1:8883 ssl verify none sni req.hdr(host)
              server s2 127.0.0.1:8883 ssl verify none ssl-min-ver TLSv1.0
              server s3 127.0.0.1:8883 ssl verify none sni str(broker.example.com) ssl-max-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256
            """, [
                "haproxy.cfg:2: 'ssl-default-server-options': unknown or unsupported option 'prefer-client-ciphers' (known: no-tls-tickets, tls-tickets, no-ssl-reuse, ssl-reuse, ssl-min-ver, ssl-max-ver)",
                "haproxy.cfg:4: 'server': unsupported sni expression 'req.hdr(host)' (use 'sni str(<name>)' for a fixed name, or 'sni ssl_fc_sni' to pass on the TLS client's)",
                "haproxy.cfg:5: 'server': 'ssl-min-ver TLSv1.0' is below the TLS 1.2 floor: ringproxy terminates TLS 1.2 and 1.3 only (use 'ssl-min-ver TLSv1.2' or leave it out)",
            ])
    }

    // MARK: conditions and samples

    func testContentRuleWithAnUnknownFetchOrConverter() {
        assertErrors("""
            frontend f
              bind *:1883
              tcp-request content reject unless { req.paylod(0,0),mqtt_is_valid }
              tcp-request content reject unless { req.payload(0,0),mqtt_is_vaild }
              tcp-request content accept if { hdr(host) -m str example.com }
              tcp-request content reject if { req.payload(0,0),lower -m str x }
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'tcp-request content': unknown fetch 'req.paylod' (did you mean 'req.payload'?)",
                "haproxy.cfg:4: 'tcp-request content': unknown converter 'mqtt_is_vaild' (did you mean 'mqtt_is_valid'?)",
                "haproxy.cfg:5: 'tcp-request content': unknown fetch 'hdr' (ringproxy knows: dst_port, req.len, req.payload, sc0_conn_cnt, sc0_conn_cur, sc0_conn_rate, sc_conn_cnt, sc_conn_cur, sc_conn_rate, src)",
                "haproxy.cfg:6: 'tcp-request content': unknown converter 'lower' (ringproxy knows: mqtt_field_value, mqtt_is_valid)",
            ])
    }

    func testMQTTFieldValueArgumentsAreChecked() {
        assertErrors("""
            backend b
              stick-table type string size 1k
              stick on req.payload(0,0),mqtt_field_value(connect,client_id)
              stick on req.payload(0,0),mqtt_field_value(publish,topic)
              stick on req.payload(0,0),mqtt_field_value(conect,username)
              stick on req.payload(0,0),mqtt_field_value(connect)
              stick on src,mqtt_field_value(connect,username)
              stick on req.payload(0),mqtt_field_value(connect,username)
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'stick on': unknown CONNECT field 'client_id' (known: flags, protocol_name, protocol_version, client_identifier, will_topic, will_payload, username, password, keepalive)",
                "haproxy.cfg:4: 'stick on': MQTT PUBLISH packets cannot be read (only the first packet each way is inspected: connect (from the client) and connack (from the server))",
                "haproxy.cfg:5: 'stick on': unknown MQTT packet type 'conect' (did you mean 'connect'?)",
                "haproxy.cfg:6: 'stick on': 'mqtt_field_value' needs two arguments, a packet type and a field (e.g. mqtt_field_value(connect,client_identifier))",
                "haproxy.cfg:7: 'stick on': converter 'mqtt_field_value' cannot take the ip output of 'src' (give it the request bytes, e.g. req.payload(0,0),mqtt_field_value)",
                "haproxy.cfg:8: 'stick on': 'req.payload' needs two arguments, an offset and a length (e.g. req.payload(0,0) for all the bytes received)",
            ])
    }

    func testConditionSyntaxErrors() {
        assertErrors("""
            frontend f
              bind *:1883
              tcp-request content reject unless {req.payload(0,0),mqtt_is_valid}
              tcp-request content reject unless { req.len gt 0
              tcp-request content reject if
              tcp-request content reject when { req.len gt 0 }
              tcp-request content reject if { req.len gt 0 } or
              use_backend b if is_admin
              tcp-request content reject if { req.payload(0,4) -m str MQTT }
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'tcp-request content': braces must be separate words in '{req.payload(0,0),mqtt_is_valid}' (write '{ req.payload(0,0),mqtt_is_valid }')",
                "haproxy.cfg:4: 'tcp-request content': missing '}' to close '{' (braces must be separate words: { req.len gt 0 })",
                "haproxy.cfg:5: 'tcp-request content': missing condition after 'if'",
                "haproxy.cfg:6: 'tcp-request content': unexpected 'when' after the action (a condition starts with 'if' or 'unless')",
                "haproxy.cfg:7: 'tcp-request content': condition ends with 'or' (add a condition after it)",
                "haproxy.cfg:8: 'use_backend': unknown ACL 'is_admin' (declare it with 'acl is_admin ...' above this line)",
            ])
    }

    func testStringSamplesInACLsNeedAMatchMethod() {
        assertErrors("""
            frontend f
              bind *:1883
              acl is_alice req.payload(0,0),mqtt_field_value(connect,username) alice
              acl bad_flag req.len -x 3
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'acl': matching the string sample 'req.payload(0,0),mqtt_field_value(connect,username)' needs '-m <method>' (e.g. 'req.payload(0,0),mqtt_field_value(connect,username) -m str value'; HAProxy requires it too)",
                "haproxy.cfg:4: 'acl': unknown ACL flag '-x' (known: -f, -i, -m, -n, -u, --)",
            ])
    }

    func testConnectionRulesCannotReadContents() {
        assertErrors("""
            frontend f
              bind *:1883
              tcp-request connection reject unless { req.payload(0,0),mqtt_is_valid }
              tcp-request content set-var(txn.x) src
              tcp-request content rejekt
              tcp-request session accept
              default_backend b
            backend b
              server s1 127.0.0.1:1883
            """, [
                "haproxy.cfg:3: 'tcp-request connection': 'req.payload' reads request contents, which do not exist yet when a 'tcp-request connection' rule runs (use 'tcp-request content' instead)",
                "haproxy.cfg:4: 'tcp-request content': action 'set-var(txn.x)' is not supported by ringproxy (supported: accept, reject, track-sc0, expect-proxy)",
                "haproxy.cfg:5: 'tcp-request content': unknown action 'rejekt' (did you mean 'reject'?)",
                "haproxy.cfg:6: 'tcp-request session': not supported by ringproxy (use 'tcp-request connection' or 'tcp-request content')",
            ])
    }

    // MARK: lexing and files

    func testUnmatchedQuoteIsReportedOnItsLineAndTheRestStillParses() {
        assertErrors("""
            backend b
              server s1 "127.0.0.1:1883
              server s2 127.0.0.1:70000
            """, [
                "haproxy.cfg:2: unmatched double quote (close the quote before the end of the line)",
                "haproxy.cfg:3: 'server': invalid port '70000' in address '127.0.0.1:70000' (ports are 1 to 65535)",
            ])
    }

    func testEveryErrorInAFileIsReportedInLineOrder() throws {
        let text = """
            global
              maxconn 1024000
              daemon
            defaults
              timeout client 10x
            backend mqtt_backend
              balanse roundrobin
              server emqx1 127.0.0.1:18831 weight 300
              server emqx2
            frontend mqtt_servers
              bind *:1883
              default_backend mqtt_backnd
            """
        let result = ConfigParser.parse(text: text, file: "haproxy.cfg", environment: [:])
        guard case .failure(let error) = result else { return XCTFail("expected errors") }
        XCTAssertEqual(error.description, """
            haproxy.cfg:5: 'timeout client': invalid time '10x': unknown unit 'x' (units are us, ms, s, m, h, d; a bare number is milliseconds)
            haproxy.cfg:7: unknown keyword 'balanse' in backend section (did you mean 'balance'?)
            haproxy.cfg:8: 'server': weight 300 is out of range (allowed: 0 to 256)
            haproxy.cfg:9: 'server': missing address (expected 'server <name> <address>:<port> [options]')
            haproxy.cfg:12: 'default_backend': no backend named 'mqtt_backnd' (did you mean 'mqtt_backend'?)
            """)
        XCTAssertEqual(error.diagnostics.map(\.line), [5, 7, 8, 9, 12])
        XCTAssertEqual(error.diagnostics[1].keyword, "")
        XCTAssertEqual(error.diagnostics[2].keyword, "server")
        XCTAssertEqual(error.diagnostics[2].message, "weight 300 is out of range")
        XCTAssertEqual(error.diagnostics[2].hint, "allowed: 0 to 256")
        XCTAssertEqual(error.warnings.map(\.line), [3, 10], "warnings found on the way travel with the error")
    }

    func testMissingFileIsAConfigErrorNamingThePath() {
        XCTAssertThrowsError(try ConfigParser.parse(contentsOf: "/nonexistent/haproxy.cfg", environment: [:])) { error in
            XCTAssertEqual((error as? ConfigError)?.description, "/nonexistent/haproxy.cfg: cannot read the configuration: no such file")
        }
        XCTAssertThrowsError(try ConfigParser.parse(contentsOf: ConfigFixtures.seedDirectory.path, environment: [:])) { error in
            XCTAssertEqual((error as? ConfigError)?.description, "\(ConfigFixtures.seedDirectory.path): cannot read the configuration: it is a directory")
        }
    }

    func testErrorsInAFileReadFromDiskNameThatFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ringproxy-config-\(UUID().uuidString).cfg").path
        try "backend b\n  server s1 127.0.0.1\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try ConfigParser.parse(contentsOf: path, environment: [:])) { error in
            XCTAssertEqual((error as? ConfigError)?.diagnostics.map(\.description), [
                "\(path):2: 'server': missing port in address '127.0.0.1' (ringproxy needs an explicit port: '127.0.0.1:1883')",
            ])
        }
    }
}

/// Huge or hostile files are refused in time linear in their size, quoting only a prefix.
final class ConfigLimitTests: XCTestCase {
    private func errors(_ text: String) -> [ConfigDiagnostic] {
        switch ConfigParser.parse(text: text, file: "big.cfg", environment: [:]) {
        case .success: return []
        case .failure(let e): return e.diagnostics
        }
    }

    func testAMegabyteLineIsRefusedQuicklyQuotingOnlyItsStart() {
        let started = Date()
        let found = errors("global\n  " + String(repeating: "a", count: 1_000_000) + "\n  maxconn 10\n")
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "a 1 MB line must not take seconds (it took 19-32 s)")
        XCTAssertEqual(found.count, 1)
        XCTAssertEqual(found.first?.line, 2)
        let text = found.first?.description ?? ""
        XCTAssertTrue(text.contains("line longer than the 65536 bytes"), text)
        XCTAssertTrue(text.contains("'  aaaaaaaa"), text)
        XCTAssertLessThan(text.count, 300, "the message quotes a prefix, not the line")
    }

    func testALongUnknownKeywordIsNamedShortlyAndCostsNoEditDistance() {
        let started = Date()
        let found = errors("global\n  " + String(repeating: "b", count: 8_000) + " x\n")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
        XCTAssertEqual(found.count, 1)
        XCTAssertLessThan(found.first?.description.count ?? 0, 600)
    }

    func testAWordLongerThanTheLimitAndTooManyWordsAreRefusedAtTheirLine() {
        let found = errors("global\n  maxconn " + String(repeating: "9", count: 9_000) + "\nfrontend f\n  bind " + Array(repeating: "127.0.0.1:1", count: 80).joined(separator: " ") + "\n")
        XCTAssertTrue(found.contains { $0.line == 2 && $0.message.contains("a word of 9000 bytes") }, "\(found)")
        XCTAssertTrue(found.contains { $0.line == 4 && $0.message.contains("81 words on one line, more than the 64") }, "\(found)")
    }
}

#!/usr/bin/env bash
# One client sends the largest CONNECT without a will (191 KB) in small segments (CHUNK bytes,
# default 16, 100 µs apart): the proxy CPU it costs, which must grow with the size, not with its
# square (each segment used to re-gather and re-parse everything held).
#   Benchmarks/attacks/dribble-connect.sh [CHUNK]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/ringproxy}
[ -x "$BIN" ] || swift build -c release --product ringproxy >/dev/null
CHUNK=${1:-16}
dir=$(mktemp -d)
printf 'listener 28941 127.0.0.1\nallow_anonymous true\n' > $dir/b.conf
mosquitto -c $dir/b.conf > /dev/null 2>&1 & MQ=$!
$BIN --listen 127.0.0.1:28990 --backend 127.0.0.1:28941 --mqtt --cores 1 --log none > $dir/rp.err 2>&1 & RP=$!; sleep 0.5
python3 - $RP $CHUNK <<'PY'
import socket, struct, sys, time
pid=int(sys.argv[1])
def cpu():
    f=open(f"/proc/{pid}/stat").read().split(")")[1].split(); return (int(f[11])+int(f[12]))/100
cid=b"c"*65535; user=b"u"*65535; pw=b"p"*60000
var=b"\x00\x04MQTT\x04\xc2\x00\x3c"
payload=struct.pack(">H",len(cid))+cid+struct.pack(">H",len(user))+user+struct.pack(">H",len(pw))+pw
rem=len(var)+len(payload); hdr=bytearray([0x10])
while True:
    b=rem%128; rem//=128; hdr.append(b|(0x80 if rem else 0))
    if not rem: break
pkt=bytes(hdr)+var+payload
c0=cpu(); t0=time.time()
s=socket.create_connection(("127.0.0.1",28990)); s.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)
chunk=int(sys.argv[2])
for i in range(0,len(pkt),chunk):
    s.send(pkt[i:i+chunk]); time.sleep(0.0001)
s.settimeout(10); ack=s.recv(4)
print("CONNECT", len(pkt), "bytes in", chunk, "byte sends: CONNACK", ack.hex(), "in %.2f s, proxy CPU %.2f s"%(time.time()-t0, cpu()-c0))
PY
kill $RP $MQ; wait 2>/dev/null || true
rm -rf "$dir"

#!/usr/bin/env bash
# A single-node Ceph cluster with an S3 gateway, for tests and benchmarks: one monitor, one
# OSD on memstore (data in memory), RGW, cephx off, everything on 127.0.0.1. Debian's
# ceph-mon, ceph-osd and radosgw (make test installs them).
#
#   scripts/ceph.sh start DIR MON_PORT RGW_PORT ACCESS_KEY SECRET_KEY
#   scripts/ceph.sh gateway DIR RGW_PORT   # start the gateway again (after it died)
#   scripts/ceph.sh stop DIR
#
# `start` returns once the gateway answers and the S3 user exists; the daemons' logs are in
# DIR/log/. Notifications to HTTP endpoints may carry a password
# (rgw_allow_notification_secrets_in_cleartext): the endpoints are on loopback.
set -euo pipefail

command=${1:?start or stop}
dir=$(realpath -m "${2:?a directory}")

stop() {
    for pidfile in "$dir"/run/*.pid; do
        [ -e "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
    for pidfile in "$dir"/run/*.pid; do
        [ -e "$pidfile" ] || continue
        kill -9 "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

# Start RGW on the cluster in $dir and wait until it answers on $1.
gateway() {
    radosgw -c "$dir/ceph.conf" -n client.rgw.a
    for _ in $(seq 240); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.5
    done
    echo "ceph.sh: RGW did not answer" >&2
    return 1
}

case "$command" in
    stop) stop; exit 0 ;;
    gateway) gateway "${3:?gateway port}"; exit ;;
esac

mon_port=${3:?monitor port}
rgw_port=${4:?gateway port}
access_key=${5:?access key}
secret_key=${6:?secret key}
mkdir -p "$dir"/{run,log,mon,osd}
conf="$dir/ceph.conf"
fsid=$(cat /proc/sys/kernel/random/uuid)
cat > "$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
# The monitor refuses to start when its disk has less than 5 % free, which a big,
# busy build machine can have (13 GiB free of 260 GiB): the test cluster keeps its
# data in memory and needs a few MiB, so only a full disk should stop it.
mon data avail crit = 0
mon data avail warn = 0
osd max object name len = 460
osd max object namespace len = 64
[client]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = localhost
rgw allow notification secrets in cleartext = true
rgw enable apis = s3, admin, notifications
rgw thread pool size = 64
EOF

ceph() { /usr/bin/ceph -c "$conf" --connect-timeout 20 "$@"; }

monmaptool --create --add a "v2:127.0.0.1:$mon_port" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >"$dir/log/mkfs-mon.log" 2>&1
ceph-mon -c "$conf" -i a
ceph osd create >/dev/null
ceph osd crush add-bucket localhost host >/dev/null
ceph osd crush move localhost root=default >/dev/null
mkdir -p "$dir/osd/ceph-0"
ceph-osd -c "$conf" -i 0 --mkfs >"$dir/log/mkfs-osd.log" 2>&1
ceph osd crush add osd.0 1.0 host=localhost >/dev/null
ceph-osd -c "$conf" -i 0
for _ in $(seq 120); do
    ceph osd dump 2>/dev/null | grep -q '^osd.0 up' && break
    sleep 0.5
done
ceph osd dump | grep -q '^osd.0 up' || { echo "ceph.sh: the OSD did not come up" >&2; exit 1; }
gateway "$rgw_port"
radosgw-admin -c "$conf" user create --uid=hashgate --display-name=hashgate \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null
echo "http://127.0.0.1:$rgw_port"

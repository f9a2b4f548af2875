#!/usr/bin/env bash
# The hashgate flow on this machine, on sample data generated here: clearinghouse lists in
# every supported format are imported into a local hash database, a tree of "uploads" is
# scanned, a withdrawn entry stops matching, and a damaged filter is refused without hiding
# a match. The sample files are harmless text and random bytes; the lists carry their digests.
#
# Usage: HASHGATE=path/to/hashgate scripts/run-local.sh   (make run does this)
set -euo pipefail

HASHGATE=${HASHGATE:-target/debug/hashgate}
root=${HASHGATE_DEMO_DIR:-.local/demo}
rm -rf "$root"
mkdir -p "$root"/uploads/photos/2026 "$root"/uploads/docs "$root"/lists
db="$root/db"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
md5() { md5sum "$1" | cut -d' ' -f1; }
sha1() { sha1sum "$1" | cut -d' ' -f1; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

step "Generating sample uploads in $root/uploads"
u="$root/uploads"
for i in 1 2 3 4 5 6; do
  head -c $((20000 + i * 7919)) /dev/urandom >"$u/photos/2026/IMG_000$i.jpg"
done
head -c 3145728 /dev/urandom >"$u/photos/2026/clip.mp4"
printf 'quarterly report\n' >"$u/docs/report Q3 + notes.txt"
printf 'shopping list\n' >"$u/docs/list.txt"
: >"$u/docs/empty.txt"
find "$u" -type f | sort | sed 's/^/  /'

step "Writing hash lists in each format (some uploads are on them)"
{
  echo "# provider's own confirmed matches"
  md5 "$u/photos/2026/IMG_0001.jpg"
} >"$root/lists/provider.txt"
{
  echo "md5,sha1,category,id"
  echo "$(md5 "$u/photos/2026/IMG_0003.jpg"),$(sha1 "$u/photos/2026/IMG_0003.jpg"),A1,CH-1003"
  echo ",$(sha1 "$u/photos/2026/clip.mp4"),B2,CH-1004"
} >"$root/lists/clearinghouse.csv"
cat >"$root/lists/projectvic.json" <<EOF
{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/\$metadata#Media",
 "value":[
  {"MediaID":5001,"Category":1,"MD5":"$(md5 "$u/photos/2026/IMG_0005.jpg")","SHA1":"$(sha1 "$u/photos/2026/IMG_0005.jpg")","IsPrecategorized":"true"},
  {"MediaID":5002,"Category":2,"MD5":"","SHA1":null}
 ]}
EOF
sha256 "$u/photos/2026/IMG_0006.jpg" >"$root/lists/sha256-list.txt"
for f in "$root"/lists/*; do echo "  $f"; done

step "hashgate lists import"
"$HASHGATE" lists import --db "$db" "$root"/lists/*

step "hashgate lists stats"
"$HASHGATE" lists stats --db "$db"

step "hashgate scan (text)"
set +e
"$HASHGATE" scan --db "$db" "$u"
status=$?
set -e
echo "exit status: $status (0 all clean, 1 something matched, 2 something could not be scanned)"

step "hashgate scan --json (one object per file)"
"$HASHGATE" scan --json --db "$db" "$u/photos/2026/IMG_0003.jpg" "$u/docs/list.txt" || true

step "A clearinghouse withdraws an entry: import it with --remove (the list's only entry:"
echo "   more than the share a withdrawal may take unforced, so first refused, then --force)"
md5 "$u/photos/2026/IMG_0001.jpg" >"$root/lists/provider-withdrawn.txt"
"$HASHGATE" lists import --remove --list provider --db "$db" "$root/lists/provider-withdrawn.txt" || true
"$HASHGATE" lists import --remove --force --list provider --db "$db" "$root/lists/provider-withdrawn.txt"
"$HASHGATE" scan --db "$db" "$u/photos/2026/IMG_0001.jpg" || true

step "A malformed list is refused whole, naming file, line and reason"
printf 'md5\n%s\nnot-a-digest\n' "$(md5 "$u/docs/list.txt")" >"$root/lists/broken.csv"
"$HASHGATE" lists import --db "$db" "$root/lists/broken.csv" || true
"$HASHGATE" scan --db "$db" "$u/docs/list.txt" || true

step "A damaged filter snapshot is refused; the exact store still finds every match"
printf 'garbage' | dd of="$db/filter.hgf" bs=1 seek=200 conv=notrunc status=none
"$HASHGATE" scan --db "$db" "$u/photos/2026/IMG_0005.jpg" || true
"$HASHGATE" filter rebuild --db "$db"

step "Done"
echo "Database: $db    Uploads: $u"
echo "Try: $HASHGATE scan --db $db --json $u"

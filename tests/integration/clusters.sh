#!/usr/bin/env bash
# Clusters (store/cluster.h) on a real mount: `zbudfsctl pack` packs a copied tree of real
# files, which then reads back exactly (O_DIRECT, from the store) in less memory than zbud's
# two-pages-per-pool-page rule allows; an overwrite inside a packed file, a truncate and a
# punch through one, reclaim to the overflow directory (which spills clusters whole) and the
# background packer (pack_after=) all keep every byte; `rm -rf` gives every byte back.
source "$(dirname "$0")/lib.sh"

SRC=/usr/include/linux
mount_zbudfs -o size=1G,pack_after=3600
check "a copy of $SRC is packed by zbudfsctl pack, in less memory"
cp -a "$SRC" "$MNT/tree"
sync -f "$MNT/tree"
(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/want"
used_before=$(stat_value mem_used_total)
[[ $(stat_value clustered_pages) == 0 ]] || fail "pages clustered before any pack"
out=$("$ZBUDFSCTL_BIN" pack "$MNT") || fail "zbudfsctl pack failed"
note "$out"
clustered=$(stat_value clustered_pages)
used_after=$(stat_value mem_used_total)
orig=$(stat_value orig_data_size)
note "orig $orig, mem_used_total $used_before -> $used_after, clustered_pages $clustered," \
  "clusters $(stat_value clusters), allocations $(stat_value cluster_allocations)"
((clustered > 0)) || fail "zbudfsctl pack packed nothing"
((used_after * 10 < used_before * 9)) || fail "packing saved under 10 % ($used_before -> $used_after)"
# The data's density: the tree's 792 inodes are memory too (inode_bytes, about 0.6 MB here),
# but not what packing changes.
data_mem=$((used_after - $(stat_value inode_bytes)))
((orig * 100 > data_mem * 210)) || fail "density $orig/$data_mem (inodes left out) is not above 2.1"
grep -q "density" <<<"$out" || fail "zbudfsctl pack printed no density: $out"
"$ZBUDFSCTL_BIN" stats -h "$MNT" | grep -q "$clustered pages packed in" ||
  fail "stats -h does not show the clustered pages: $("$ZBUDFSCTL_BIN" stats -h "$MNT")"

check "the packed tree reads back exactly, from the store"
got=$(cd "$MNT/tree" && find . -type f -print0 | sort -z |
  while IFS= read -r -d '' f; do echo "$(readback_sha256 "$f")  $f"; done)
[[ $got == "$(cat "$WORK/want")" ]] || fail "packed files differ from $SRC"

check "overwrite, truncate and punch inside packed files"
big=$(cd "$MNT/tree" && find . -type f -size +64k | sort | head -1)
[[ -n $big ]] || fail "no file over 64 KiB in $SRC"
cp "$MNT/tree/$big" "$WORK/model"
printf 'zbudfs was here' | dd of="$MNT/tree/$big" bs=1 seek=5000 conv=notrunc status=none
printf 'zbudfs was here' | dd of="$WORK/model" bs=1 seek=5000 conv=notrunc status=none
fallocate -p -o 20000 -l 9000 "$MNT/tree/$big"
fallocate -p -o 20000 -l 9000 "$WORK/model"
truncate -s 50001 "$MNT/tree/$big"
truncate -s 50001 "$WORK/model"
sync -f "$MNT/tree"
[[ $(readback_sha256 "$MNT/tree/$big") == $(sha256sum <"$WORK/model" | cut -d' ' -f1) ]] ||
  fail "$big differs from its model after overwrite, punch and truncate"
unmount_zbudfs

check "reclaim spills clusters to the overflow directory whole; every byte stays"
mount_zbudfs -o size=1G,mem_limit=2M,pack_after=3600
cp -a "$SRC" "$MNT/tree"
sync -f "$MNT/tree"
"$ZBUDFSCTL_BIN" pack "$MNT" >/dev/null || fail "zbudfsctl pack failed under mem_limit=2M"
cp -a /usr/include/asm-generic "$MNT/more"  # Pushes the packed pages out.
sync -f "$MNT/more"
note "overflow_pages $(stat_value overflow_pages), clustered_pages $(stat_value clustered_pages)," \
  "mem_used_total $(stat_value mem_used_total)"
(($(stat_value overflow_pages) > 0)) || fail "nothing went to the overflow directory"
(($(stat_value mem_used_total) <= 2 * 1048576 + 65536)) || fail "memory above mem_limit"
got=$(cd "$MNT/tree" && find . -type f -print0 | sort -z |
  while IFS= read -r -d '' f; do echo "$(readback_sha256 "$f")  $f"; done)
[[ $got == "$(cat "$WORK/want")" ]] || fail "files differ after reclaim of clusters"
unmount_zbudfs

check "the background packer packs files not written for pack_after seconds"
mount_zbudfs -o size=1G,pack_after=1
cp -a "$SRC" "$MNT/tree"
sync -f "$MNT/tree"
packed() { (($(stat_value clustered_pages) > 0)); }
wait_until packed ||
  fail "nothing packed 10 s after the copy (pack_after=1)"
got=$(cd "$MNT/tree" && find . -type f -print0 | sort -z |
  while IFS= read -r -d '' f; do echo "$(readback_sha256 "$f")  $f"; done)
[[ $got == "$(cat "$WORK/want")" ]] || fail "files differ after background packing"
check "rm -rf frees every cluster"
rm -rf "$MNT/tree"
no_clusters() { [[ $(stat_value clusters) == 0 ]]; }
wait_until no_clusters || fail "clusters $(stat_value clusters) after rm -rf"
[[ $(stat_value orig_data_size) == 0 ]] || fail "orig_data_size not 0 after rm -rf"
((used = $(stat_value mem_used_total), used <= 65536)) || fail "mem_used_total $used after rm -rf"
check "pack is refused to other users, and on a non-zbudfs directory"
if setpriv --reuid=65534 --regid=65534 --clear-groups "$ZBUDFSCTL_BIN" pack "$MNT" 2>/dev/null; then
  fail "nobody could pack the mount"
fi
"$ZBUDFSCTL_BIN" pack "$WORK" 2>/dev/null && fail "pack of a plain directory succeeded"
unmount_zbudfs

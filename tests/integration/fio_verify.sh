#!/usr/bin/env bash
# Concurrency and data: fio with several jobs writing compressible random data and
# verifying it with crc32c (buffered, then O_DIRECT), while the daemon stays up.
source "$(dirname "$0")/lib.sh"
command -v fio >/dev/null || fail "fio is not installed"

mount_zbudfs -o size=1G
common=(--directory="$MNT" --numjobs=4 --size=32M --group_reporting --verify=crc32c
  --verify_fatal=1 --verify_state_save=0 --buffer_compress_percentage=60 --buffer_compress_chunk=4096
  --refill_buffers=1 --output="$WORK/fio.out")
check "fio 4 jobs x 32 MiB, random 4k-64k writes, verify crc32c (buffered)"
fio --name=buffered --rw=randwrite --bsrange=4k-64k "${common[@]}" ||
  { cat "$WORK/fio.out"; fail "fio buffered verify failed"; }
require_mounted
check "fio 4 jobs x 32 MiB, sequential 1M writes, verify crc32c (O_DIRECT)"
fio --name=direct --rw=write --bs=1M --direct=1 "${common[@]}" ||
  { cat "$WORK/fio.out"; fail "fio direct verify failed"; }
require_mounted
check "fio mixed random read/write 4k on one 32 MiB file, verify crc32c"
fio --name=shared --filename="$MNT/shared" --rw=randrw --bs=4k --size=32M --numjobs=1 \
  --iodepth=1 --verify=crc32c --verify_fatal=1 --verify_state_save=0 --verify_state_save=0 --buffer_compress_percentage=60 \
  --buffer_compress_chunk=4096 --refill_buffers=1 --output="$WORK/fio.out" ||
  { cat "$WORK/fio.out"; fail "fio shared-file verify failed"; }
require_mounted
rm -f "$MNT"/*
unmount_zbudfs

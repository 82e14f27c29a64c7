# Sourced by scripts/bench.sh (its globals: work, res, tdir, ...): how each target is
# mounted. Kept apart so that bench.sh stays a script a reader can hold.

# ---------------------------------------------------------------- targets
wait_mount() { # dir pid name
  local rc=0
  zb_wait_mount "$1" "$2" 100 0.1 || rc=$?
  ((rc != 1)) || die "$3 exited before mounting (log: $res/$3.log)"
  ((rc != 2)) || die "$3 did not mount within 10 s (log: $res/$3.log)"
}

start_daemon() { # name binary mountpoint [options]: a FUSE daemon in the foreground (-f), in the background
  local pid
  mkdir -p "$3"; mounts+=("$3")
  "$2" -f ${4:+-o "$4"} "$3" >"$res/$1.log" 2>&1 &
  pid=$!; tpid[$1]=$pid
  wait_mount "$3" "$pid" "$1"
  tdir[$1]=$3
}

mount_zbudfs() { start_daemon zbudfs "$zbbin" "$work/zbudfs"; }
# The same with the kernel's writeback cache off: fewer requests per file, slower small writes.
mount_zbudfs_nowb() { start_daemon zbudfs_nowb "$zbbin" "$work/zbudfs-nowb" no_writeback; }

mount_tmpfs() {
  mkdir -p "$work/tmpfs"; mounts+=("$work/tmpfs")
  mount -t tmpfs -o mode=0755 bench-tmpfs "$work/tmpfs"
  tdir[tmpfs]=$work/tmpfs
}

mount_passthrough() {
  mkdir -p "$work/pt-src" "$work/passthrough"
  mounts+=("$work/pt-src"); mount -t tmpfs -o mode=0755 bench-ptsrc "$work/pt-src"
  mounts+=("$work/passthrough")
  # passthrough_ll holds an O_PATH descriptor per inode the kernel knows: a tree copy needs
  # far more than the usual 1024 (or 20000) descriptors.
  (ulimit -Hn 1048576 2>/dev/null || true; ulimit -n "$(ulimit -Hn)" || true
   exec "$ptbin" -f -o "source=$work/pt-src,writeback,cache=always" "$work/passthrough") \
    >"$res/passthrough_ll.log" 2>&1 &
  tpid[passthrough_ll]=$!
  wait_mount "$work/passthrough" "${tpid[passthrough_ll]}" passthrough_ll
  tdir[passthrough_ll]=$work/passthrough
}

mount_memfs() { start_daemon memfs_ll "$mfbin" "$work/memfs"; }

zram_note=""
mount_zram() {
  local algo algos dev disksize
  if [[ ! -e /sys/block/zram0 ]]; then modprobe zram 2>/dev/null || true; fi
  if [[ ! -e /sys/block/zram0 ]]; then zram_note="no /sys/block/zram0 and modprobe zram did not create it"; return 1; fi
  if [[ $(cat /sys/block/zram0/disksize) == 0 ]] && ! grep -q '^/dev/zram0 ' /proc/swaps /proc/mounts; then
    dev=zram0
  elif [[ -w /sys/class/zram-control/hot_add ]]; then
    dev=zram$(cat /sys/class/zram-control/hot_add) || { zram_note="zram0 busy and hot_add failed"; return 1; }
    zram_hot=1
  else
    zram_note="zram0 is in use and there is no hot_add"; return 1
  fi
  zram_dev=$dev
  [[ -b /dev/$dev ]] || { zram_note="/dev/$dev is not a block device here"; return 1; }
  algos=$(cat "/sys/block/$dev/comp_algorithm")
  algo=${ZRAM_ALGO:-}
  if [[ -z $algo ]]; then
    for a in lz4 zstd; do [[ " ${algos//[\[\]]/} " == *" $a "* ]] && { algo=$a; break; }; done
  fi
  [[ -n $algo ]] && { echo "$algo" >"/sys/block/$dev/comp_algorithm" || { zram_note="cannot set $algo"; return 1; }; }
  algo=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "/sys/block/$dev/comp_algorithm")
  disksize=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) * 1024 / 2))   # like tmpfs: half of RAM
  echo "$disksize" >"/sys/block/$dev/disksize" || { zram_note="cannot set disksize"; return 1; }
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "/dev/$dev" >/dev/null 2>&1 \
    || { zram_note="mkfs.ext4 on /dev/$dev failed"; return 1; }
  mkdir -p "$work/zram"; mounts+=("$work/zram")
  mount "/dev/$dev" "$work/zram" || { zram_note="mounting /dev/$dev failed"; return 1; }
  tdir[zram]=$work/zram
  zram_note="/dev/$dev, $algo, ext4 (mkfs.ext4 defaults), disksize $((disksize >> 20)) MiB"
}

IFS=, read -r -a want <<<"$targets_arg"
for t in "${want[@]}"; do
  case $t in zbudfs|zbudfs_nowb|tmpfs|passthrough_ll|memfs_ll|zram) ;; *) die "unknown target: $t" ;; esac
done
targets=()
order=(zbudfs zbudfs_nowb passthrough_ll memfs_ll tmpfs zram)     # the order jobs run in, per job
for t in "${order[@]}"; do
  [[ ",$targets_arg," == *",$t,"* ]] || continue
  case $t in
    zbudfs) log "mounting zbudfs (default options)"; mount_zbudfs ;;
    zbudfs_nowb) log "mounting zbudfs -o no_writeback"; mount_zbudfs_nowb ;;
    tmpfs) log "mounting tmpfs"; mount_tmpfs ;;
    passthrough_ll) log "mounting passthrough_ll -o writeback,cache=always over a tmpfs"; mount_passthrough ;;
    memfs_ll)
      if [[ -n $memfs_note ]]; then log "memfs_ll: $memfs_note - skipped"; continue; fi
      log "mounting memfs_ll (libfuse's in-memory example, its defaults)"; mount_memfs ;;
    zram)
      log "setting up zram + ext4"
      if ! mount_zram; then log "zram: unavailable ($zram_note) - skipped"; continue; fi
      log "zram: $zram_note" ;;
  esac
  targets+=("$t")
done
((${#targets[@]})) || die "no targets"
for t in "${targets[@]}"; do mkdir -p "${tdir[$t]}/fio" "${tdir[$t]}/realio"; done

# Sourced by scripts/bench.sh (its globals: res, records, targets, tdir, ...): the
# metadata steps' functions. Kept apart so that bench.sh stays a script a reader can hold.

# ---------------------------------------------------------------- metadata
# A real tree copied with `cp -a` (+ sync -f) and deleted with `rm -rf` (+ sync -f), one copy
# and then $ncopies at once into separate directories; fio's filecreate, filestat and
# filedelete engines with 1 and 2 jobs, a directory each; every run, targets rotated as for
# fio. Then, once per FUSE target, the requests a copy and a delete of a small tree cost,
# counted in the debug (-d) output of a second mount.
mkdir -p "$res/meta"
meta_cmds=$res/meta-commands.txt
: >"$meta_cmds"

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Prints why passthrough_ll cannot take N more inodes, or returns 1 if it can: it holds an
# O_PATH descriptor for every inode the kernel caches, until the kernel forgets it.
pt_no_room() { # target inodes what
  local fdmax
  [[ $1 == passthrough_ll ]] || return 1
  fdmax=$(awk '/^Max open files/ {print $4}' "/proc/${tpid[passthrough_ll]}/limits")
  (($2 + 100 > fdmax)) || return 1
  echo "passthrough_ll keeps an open descriptor per inode the kernel caches; $3 needs $2, its descriptor limit here is $fdmax (and cannot be raised without CAP_SYS_RESOURCE)"
}

# cp's complaints, as JSON fields: memfs_ll has no symlinks, so cp -a cannot create them there.
err_json() { # cp's stderr file
  local n l
  n=$(grep -c . "$1") || true
  l=$(grep -c 'cannot create symbolic link' "$1") || true
  printf '"cp_errors":%d,"cp_symlink_errors":%d,"cp_err":"%s"' "${n:-0}" "${l:-0}" "$1"
}

tree_copy() { # run serial|parallel target
  local run=$1 mode=$2 t=$3 n=1 base err why what i p s e rs re sec rsec copy_json cprc=0 rmrc=0 pids=()
  alive "$t" || return 0
  [[ $mode == parallel ]] && n=$ncopies
  what="the tree ($tree_inodes entries)"
  ((n == 1)) || what="$n copies of the tree ($tree_inodes entries each)"
  why=$(pt_no_room "$t" $((n * tree_inodes)) "$what") || why=""
  [[ $mode == parallel && -z $why ]] && why=$par_note
  if [[ -n $why ]]; then
    printf '          %-15s skipped: %s\n' "$t" "$why"
    printf '{"kind":"step","step":"tree","mode":"%s","copies":%d,"run":%d,"target":"%s","skipped":"%s"}\n' \
      "$mode" "$n" "$run" "$t" "$why" >>"$records"
    return 0
  fi
  base=${tdir[$t]}/tree
  err=$res/meta/cp-$mode-$t-r$run.err
  : >"$err"
  for ((i = 1; i <= n; i++)); do mkdir -p "$base/$i"; done
  sync -f "$base" || true
  probe_before "$t"
  s=$(date +%s.%N)
  # One cp per directory, all at once; waiting on their PIDs only (the daemons are children too).
  for ((i = 1; i <= n; i++)); do
    cp -a "${tree_src[@]}" "$base/$i/" 2>>"$err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || cprc=$?; done
  sync -f "$base" 2>>"$err" || cprc=${cprc/#0/99}
  e=$(date +%s.%N)
  probe_after "$t"
  copy_json=$pa_json
  probe_before "$t"
  pids=()
  rs=$(date +%s.%N)
  for ((i = 1; i <= n; i++)); do
    rm -rf "${base:?}/$i" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rmrc=$?; done
  sync -f "${tdir[$t]}" || rmrc=${rmrc/#0/99}
  re=$(date +%s.%N)
  rm -rf "$base"
  settle "$t"
  probe_after "$t"
  alive "$t" || failed=1
  if ((cprc)); then
    log "WARNING: cp -a into $t ($mode) returned $cprc ($(wc -l <"$err") lines in $err)"
  fi
  ((rmrc == 0)) || { failed=1; log "ERROR: rm -rf in $t ($mode) returned $rmrc"; }
  sec=$(secs "$s" "$e")
  rsec=$(secs "$rs" "$re")
  printf '{"kind":"step","step":"tree","mode":"%s","copies":%d,"run":%d,"target":"%s","seconds":%s,"rm_seconds":%s,"settle_s":%s,"cp_rc":%d,"rm_rc":%d,%s,%s,"after_rm":{%s}}\n' \
    "$mode" "$n" "$run" "$t" "$sec" "$rsec" "$settle_s" "$cprc" "$rmrc" "$(err_json "$err")" "$copy_json" "$pa_json" >>"$records"
  [[ -s $err ]] || rm -f "$err"
  printf '          %-15s cp -a %6.2f s (%4.0f MiB/s)   rm -rf %6.2f s%s\n' "$t" "$sec" \
    "$(awk -v b="$tree_bytes" -v n="$n" -v s="$sec" 'BEGIN { printf "%.0f", n * b / 1048576 / s }')" "$rsec" \
    "$( ((cprc == 0)) || echo "   (cp exit status $cprc)")"
}

meta_fio() { # run numjobs target
  local run=$1 nj=$2 t=$3 dir eng json why rc j c0 cpu files line="" common mfa
  alive "$t" || return 0
  why=$(pt_no_room "$t" $((nj * meta_files)) "$nj x $meta_files files") || why=""
  if [[ -n $why ]]; then
    printf '          %-15s skipped: %s\n' "$t" "$why"
    for eng in "${meta_engines[@]}"; do
      printf '{"kind":"step","step":"metafio","run":%d,"engine":"%s","numjobs":%d,"target":"%s","skipped":"%s"}\n' \
        "$run" "$eng" "$nj" "$t" "$why" >>"$records"
    done
    return 0
  fi
  dir=${tdir[$t]}/meta
  rm -rf "$dir"
  for ((j = 0; j < nj; j++)); do mkdir -p "$dir/d$j"; done
  sync -f "$dir"
  # One directory per job; fio deletes nothing itself (unlink=0).
  # shellcheck disable=SC2016  # $jobnum and $filenum are fio's
  common=(--numjobs="$nj" --group_reporting --nrfiles="$meta_files" --filesize=4k --fallocate=none
          --unlink=0 '--filename_format=d$jobnum/f.$filenum')
  for eng in filecreate fill filestat filedelete; do
    # filecreate: each file is created when fio opens it (create_on_open), so the create is
    # what is timed, one file open at a time. fill (not measured): a 4 KiB write into each,
    # opened without O_TRUNC, so that filestat finds the files complete and does not lay them
    # out itself (fio's layout truncates: O_TRUNC, ftruncate; memfs_ll deadlocks on a
    # truncate). filestat: stat(2) of the files, round after round for the runtime.
    # filedelete: unlink(2) of every file once; afterwards none may be left.
    case $eng in
      filecreate) mfa=(--create_on_open=1 --openfiles=1) ;;
      fill) mfa=(--ioengine=psync --rw=write --bs=4k --create_on_open=1 --openfiles=1) ;;
      filestat) mfa=(--time_based --runtime="${runtime}s") ;;
      filedelete) mfa=() ;;
    esac
    [[ $eng == fill ]] || mfa+=(--ioengine="$eng")
    mfa=(--name="$eng" "${mfa[@]}" "${common[@]}")
    json=$res/meta/r${run}_j${nj}_${eng}_${t}.json
    if [[ $run == 1 && $t == "${targets[0]}" ]]; then
      printf '%s\t%s\tfio --directory=TARGET/meta %s--output-format=json\n' \
        "$nj" "$eng" "$(printf '%q ' "${mfa[@]}")" >>"$meta_cmds"
    fi
    rc=0 c0=0 cpu=0
    [[ -n ${tpid[$t]:-} ]] && c0=$(ticks "${tpid[$t]}")
    fio --directory="$dir" "${mfa[@]}" --output-format=json --output="$json" >"$json.log" 2>&1 || rc=$?
    [[ -n ${tpid[$t]:-} ]] && cpu=$(($(ticks "${tpid[$t]}") - c0))
    [[ -s $json.log ]] || rm -f "$json.log"
    files=$(find "$dir" -type f | wc -l)
    if ((rc)); then
      failed=1; log "ERROR: fio $eng failed on $t ($nj jobs): $(tail -1 "$json.log")"
    elif [[ $eng == filecreate || $eng == fill ]] && ((files != nj * meta_files)); then
      failed=1; rc=98; log "ERROR: fio $eng on $t ($nj jobs) left $files files, not $((nj * meta_files))"
    elif [[ $eng == filedelete ]] && ((files)); then
      failed=1; rc=98; log "ERROR: fio filedelete on $t ($nj jobs) left $files of $((nj * meta_files)) files"
    fi
    alive "$t" || failed=1
    if [[ $eng == fill ]]; then
      ((rc == 0)) || break
      continue
    fi
    printf '{"kind":"step","step":"metafio","run":%d,"engine":"%s","numjobs":%d,"nrfiles":%d,"target":"%s","json":"%s","rc":%d,"files_after":%d,"cpu_ticks":%d}\n' \
      "$run" "$eng" "$nj" "$meta_files" "$t" "$json" "$rc" "$files" "$cpu" >>"$records"
    if ((rc)); then
      line+="  $eng FAILED"
    else
      line+="  $eng $(python3 scripts/benchlib.py columns "$json" | awk '{ print $2 }')"
    fi
  done
  rm -rf "$dir"
  sync -f "${tdir[$t]}"
  settle "$t"
  printf '          %-15s%s IOPS\n' "$t" "$line"
}

# The FUSE requests of `cp -a` and `rm -rf` of the small tree, per entry: a second mount of
# the target with -d (libfuse prints a line with "opcode: NAME" for each request it
# receives), counted between byte offsets of its log, which may hold binary bytes.
req_json() { # debug log, from, to -> {"total":N,"NAME":n,...}
  local seg=$work/requests.seg
  dd if="$1" of="$seg" iflag=skip_bytes,count_bytes skip="$2" count=$(($3 - $2)) bs=1M status=none
  { grep -a -o 'opcode: [A-Z_0-9]*' "$seg" || true; } |
    awk '{ n[$2]++; all++ } END { printf "{\"total\":%d", all; for (k in n) printf ",\"%s\":%d", k, n[k]; printf "}" }'
  rm -f "$seg"
}

stop_daemon() { # mountpoint pid: unmount, then wait (at most 15 s) for the daemon to exit
  local n
  fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
  for ((n = 0; n < 150; n++)); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$2" 2>/dev/null; then kill "$2" 2>/dev/null || true; sleep 1; kill -9 "$2" 2>/dev/null || true; fi
  wait "$2" 2>/dev/null || true
}

fuse_requests() { # target
  local t=$1 mnt dlog err src=$work/debug-pt-src pid o0 o1 o2 rc=0 cprc=0 rmrc=0 cpj rmj ncp=0 nrm=0
  mnt=$work/debug-$t dlog=$res/meta/debug-$t.log err=$res/meta/cp-debug-$t.err
  local nowb=""; [[ $t == zbudfs_nowb ]] && nowb=1
  mkdir -p "$mnt"
  : >"$dlog"
  case $t in
    zbudfs|zbudfs_nowb)
      mounts+=("$mnt")
      "$zbbin" -f -d ${nowb:+-o no_writeback} "$mnt" >>"$dlog" 2>&1 & ;;
    passthrough_ll)
      mkdir -p "$src"
      mounts+=("$src"); mount -t tmpfs -o mode=0755 bench-dbgsrc "$src"
      mounts+=("$mnt")
      (ulimit -Hn 1048576 2>/dev/null || true; ulimit -n "$(ulimit -Hn)" || true
       exec "$ptbin" -f -d -o "source=$src,writeback,cache=always" "$mnt") >>"$dlog" 2>&1 & ;;
    memfs_ll)
      mounts+=("$mnt")
      "$mfbin" -f -d "$mnt" >>"$dlog" 2>&1 & ;;
  esac
  pid=$!
  dbg_pids=("$pid")
  zb_wait_mount "$mnt" "$pid" 100 0.1 || rc=$?
  if ((rc)); then
    failed=1; log "ERROR: the debug mount of $t did not come up (log: $dlog)"
    stop_daemon "$mnt" "$pid"; dbg_pids=()
    printf '{"kind":"step","step":"fuse_requests","target":"%s","rc":%d,"log":"%s"}\n' "$t" "$rc" "$dlog" >>"$records"
    return 0
  fi
  sleep 0.3                                 # INIT and the first requests before counting
  o0=$(stat -c %s "$dlog")
  cp -a "$count_tree" "$mnt/" 2>"$err" || cprc=$?
  sync -f "$mnt" 2>>"$err" || cprc=${cprc/#0/99}
  sleep 0.5                                 # RELEASEs, sent after close(2) returned
  o1=$(stat -c %s "$dlog")
  rm -rf "${mnt:?}/${count_tree##*/}" || rmrc=$?
  sync -f "$mnt" || rmrc=${rmrc/#0/99}
  sleep 0.5                                 # FORGETs of the deleted inodes
  o2=$(stat -c %s "$dlog")
  stop_daemon "$mnt" "$pid"
  dbg_pids=()
  [[ $t == passthrough_ll ]] && umount "$src"
  cpj=$(req_json "$dlog" "$o0" "$o1")
  rmj=$(req_json "$dlog" "$o1" "$o2")
  ((cprc == 0)) || log "WARNING: cp -a into the debug mount of $t returned $cprc ($(wc -l <"$err") lines in $err)"
  ((rmrc == 0)) || { failed=1; log "ERROR: rm -rf in the debug mount of $t returned $rmrc"; }
  printf '{"kind":"step","step":"fuse_requests","target":"%s","op":"cp","tree":"%s","entries":%d,"rc":%d,%s,"requests":%s,"log":"%s"}\n' \
    "$t" "$count_tree" "$count_entries" "$cprc" "$(err_json "$err")" "$cpj" "$dlog" >>"$records"
  printf '{"kind":"step","step":"fuse_requests","target":"%s","op":"rm","tree":"%s","entries":%d,"rc":%d,"requests":%s,"log":"%s"}\n' \
    "$t" "$count_tree" "$count_entries" "$rmrc" "$rmj" "$dlog" >>"$records"
  [[ -s $err ]] || rm -f "$err"
  [[ $cpj =~ \"total\":([0-9]+) ]] && ncp=${BASH_REMATCH[1]}
  [[ $rmj =~ \"total\":([0-9]+) ]] && nrm=${BASH_REMATCH[1]}
  printf '          %-15s cp -a %d requests (%s per entry)   rm -rf %d (%s per entry)\n' "$t" "$ncp" \
    "$(awk -v r="$ncp" -v n="$count_entries" 'BEGIN { printf "%.2f", r / n }')" "$nrm" \
    "$(awk -v r="$nrm" -v n="$count_entries" 'BEGIN { printf "%.2f", r / n }')"
}

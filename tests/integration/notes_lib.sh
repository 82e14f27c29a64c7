# How an integration test reports, for lib.sh and for the tests that need no mount
# (man_pages.sh): fail, note and check. Sourced, never run (scripts/test.sh skips *lib.sh).
#
# A passing test prints nothing: what it checks and sees goes to $WORK/notes (check, note),
# which fail prints with the tail of $WORK/daemon.log if there is one; ZBUDFS_TEST_VERBOSE=1
# prints the notes as they come (on stderr).

TEST_NAME=$(basename "$0" .sh)

fail() {
  echo "FAIL [$TEST_NAME]${CHECKING:+ (checking: $CHECKING)}: $*" >&2
  if [[ -n ${WORK:-} && -s $WORK/notes ]]; then
    echo "--- what the test saw (last 30 notes):" >&2
    tail -n 30 "$WORK/notes" >&2
  fi
  if [[ -n ${WORK:-} && -s $WORK/daemon.log ]]; then
    echo "--- daemon log (last 20 lines):" >&2
    tail -n 20 "$WORK/daemon.log" >&2
  fi
  exit 1
}

# note MSG: keeps a line of what the test saw (figures, outcomes) for a failure's report. It
# writes to a file, not stdout, so it also works in functions whose output is captured.
note() {
  echo "  $*" >>"$WORK/notes"
  if [[ ${ZBUDFS_TEST_VERBOSE:-} == 1 ]]; then echo "[$TEST_NAME] $*" >&2; fi
}

# check WHAT: what is being checked from here on, named by fail.
CHECKING=
check() {
  CHECKING=$*
  note "check: $*"
}

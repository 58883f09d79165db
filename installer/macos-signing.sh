# Sourced by package.sh on a Mac (and by the tests on Linux): decides how the app is signed
# from the APPLE_* variables, and leaves Tauri only variables that mean what they say.
#
# A repository secret that is not set reaches the job as a set but *empty* variable, and
# Tauri decides by presence: an empty APPLE_CERTIFICATE imports an empty certificate
# ("failed to import keychain certificate"), an empty APPLE_SIGNING_IDENTITY replaces
# ad hoc's "-" with "", and empty APPLE_ID/APPLE_PASSWORD/APPLE_TEAM_ID make it notarize
# anyway ("Team ID must be at least 3 characters"). So every empty one is unset first.
# Then each group is all or nothing:
#   signing       APPLE_CERTIFICATE, APPLE_CERTIFICATE_PASSWORD, APPLE_SIGNING_IDENTITY
#   notarization  APPLE_ID, APPLE_PASSWORD, APPLE_TEAM_ID  (an Apple ID), or
#                 APPLE_API_KEY, APPLE_API_ISSUER and the key itself: the .p8 file's
#                 contents, base64, in APPLE_API_KEY_P8_BASE64, written here to a file
#                 that APPLE_API_KEY_PATH names (Tauri wants a path; a secret holds text)
# A half-set group is refused with what is missing, never guessed around.
#
# Sets: signing_mode (ad-hoc | signed | notarized), signing_identity ("-" or the
# identity) and signing_hardened (true with an identity: notarization needs it; false ad
# hoc, since dyld refuses an ad-hoc app's own dylibs with it on). Returns 1 on a refusal.

signing_setup() {
  local v
  for v in APPLE_CERTIFICATE APPLE_CERTIFICATE_PASSWORD APPLE_SIGNING_IDENTITY APPLE_ID \
    APPLE_PASSWORD APPLE_TEAM_ID APPLE_API_KEY APPLE_API_ISSUER APPLE_API_KEY_PATH \
    APPLE_API_KEY_P8_BASE64 TAURI_SIGNING_PRIVATE_KEY TAURI_SIGNING_PRIVATE_KEY_PASSWORD \
    KINDLING_UPDATER_PUBKEY; do
    if [ -z "${!v:-}" ]; then unset "$v"; fi
  done
  _group() { # GROUP VAR...: prints "all" or "none"; a half-set group is refused
    local group="$1" set=() missing=() name
    shift
    for name in "$@"; do
      if [ -n "${!name:-}" ]; then set+=("$name"); else missing+=("$name"); fi
    done
    if [ ${#set[@]} -gt 0 ] && [ ${#missing[@]} -gt 0 ]; then
      printf '::error::%s needs %s together: %s set, %s missing. Set the missing secrets, or remove the others.\n' \
        "$group" "$*" "${set[*]}" "${missing[*]}" >&2
      return 1
    fi
    if [ ${#set[@]} -gt 0 ]; then echo all; else echo none; fi
  }
  local signs apple_id api_key
  signs="$(_group "Signing" APPLE_CERTIFICATE APPLE_CERTIFICATE_PASSWORD APPLE_SIGNING_IDENTITY)" || return 1
  apple_id="$(_group "Notarization with an Apple ID" APPLE_ID APPLE_PASSWORD APPLE_TEAM_ID)" || return 1
  if [ -n "${APPLE_API_KEY_P8_BASE64:-}" ] && [ -z "${APPLE_API_KEY_PATH:-}" ]; then
    local dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
    APPLE_API_KEY_PATH="$dir/AuthKey_${APPLE_API_KEY:-kindling}.p8"
    (umask 077 && printf '%s' "$APPLE_API_KEY_P8_BASE64" | base64 --decode > "$APPLE_API_KEY_PATH") 2>/dev/null || {
      echo "::error::APPLE_API_KEY_P8_BASE64 is not base64 (it should be the .p8 file, base64-encoded)." >&2
      return 1
    }
    export APPLE_API_KEY_PATH
  fi
  unset APPLE_API_KEY_P8_BASE64
  api_key="$(_group "Notarization with an API key" APPLE_API_KEY APPLE_API_ISSUER APPLE_API_KEY_PATH)" || return 1
  if [ "$apple_id" = all ] && [ "$api_key" = all ]; then
    echo "::error::Both an Apple ID and an API key are set for notarization; keep one." >&2
    return 1
  fi
  if [ "$signs" = none ] && { [ "$apple_id" = all ] || [ "$api_key" = all ]; }; then
    echo "::error::Notarization needs a signed app: set APPLE_CERTIFICATE, APPLE_CERTIFICATE_PASSWORD and APPLE_SIGNING_IDENTITY too." >&2
    return 1
  fi
  if [ "$signs" = all ]; then
    signing_identity="$APPLE_SIGNING_IDENTITY"
    signing_hardened=true
    if [ "$apple_id" = all ] || [ "$api_key" = all ]; then signing_mode=notarized; else signing_mode=signed; fi
  else
    signing_identity="-"
    signing_hardened=false
    signing_mode=ad-hoc
  fi
  return 0
}
